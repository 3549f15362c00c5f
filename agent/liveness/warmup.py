"""The liveness worker's warm-up session, synthesised from arrays: no camera, no simulator, no face.

Before its sandbox closes, the worker must import every module and start every model interpreter
a session touches (after the privilege drop the interpreter's own library may be unreadable). It
used to render a short session with the simulator for this; that imported ``drivers.sim`` and
SciPy into the worker and left the simulator's caches resident, about 230 MiB of the worker's
memory (issue 20). The framesets here are built from arrays instead:

* depth: a flat surface 0.6 m away with a low dome in the middle and a millimetre of noise;
* IR: a dim noisy background, plus a sparse dot pattern on the frames the challenge lights;
* colour: noise around mid-grey, tinted with the challenge's screen colour of each frame;
  the first frameset is black (no face in view).

There is no face in them, and nothing measured from a person (the terminal keeps nothing
biometric). The real face detector runs on every frame (and finds nothing); ``WarmUpDetector``
then reports a fixed detection in the middle of the frame, so the landmark and iris models run on
that crop and every face-dependent path of the judge (pose, the gate's face checks, the liveness
cues, the projector's light, motion, the detectors, fusion, the challenge's verification) runs
too. The frames are small: what a session's larger frames need (buffers, the alignment table of
the camera's calibration) is allocated by the session itself, and the warm-up's calibration is
dropped from the alignment cache afterwards.
"""

from __future__ import annotations

import numpy as np

from agent.face import Detection, FaceDetector
from agent.liveness.challenge import Challenge
from drivers.frame import (
    ClockDomain,
    DistortionModel,
    Extrinsics,
    Frame,
    FrameMetadata,
    FrameSet,
    Intrinsics,
    PixelFormat,
    StreamKind,
)

# Wider than 4:3, so the detector's tiled search runs as well as its whole-frame pass.
COLOR_SIZE = (424, 240)
DEPTH_SIZE = (320, 240)
DEPTH_SCALE = 0.001                 # metres per unit, as a D4xx reports it
DISTANCE_M = 0.6
FRAME_MS = 1000 / 30
PROJECTOR_POWER_MW = 150.0
NONCE = b"liveness-worker-warm-up-window!!"      # a fixed nonce: the warm-up is the same every start
SERIAL = "warm-up"


def _intrinsics(size: tuple[int, int], hfov_deg: float, model: DistortionModel,
                coeffs: tuple[float, float, float, float, float]) -> Intrinsics:
    w, h = size
    f = (w / 2) / np.tan(np.deg2rad(hfov_deg) / 2)
    return Intrinsics(w, h, float(f), float(f), (w - 1) / 2, (h - 1) / 2, model, coeffs)


COLOR_INTRINSICS = _intrinsics(COLOR_SIZE, 69.0, DistortionModel.BROWN_CONRADY, (0.02, -0.05, 0.0, 0.0, 0.01))
DEPTH_INTRINSICS = _intrinsics(DEPTH_SIZE, 87.0, DistortionModel.NONE, (0.0, 0.0, 0.0, 0.0, 0.0))
# A few pixels of the face (in the depth imager's pixels) where a glint clipped the IR.
GLINT = (slice(DEPTH_SIZE[1] // 2 - 2, DEPTH_SIZE[1] // 2 + 2), slice(DEPTH_SIZE[0] // 2 - 12, DEPTH_SIZE[0] // 2 - 8))
DEPTH_TO_COLOR = Extrinsics((1, 0, 0, 0, 1, 0, 0, 0, 1), (0.015, 0.0, 0.0))      # a 15 mm baseline


def face_box() -> tuple[float, float, float, float]:
    """Where ``WarmUpDetector`` says the face is: the middle of the colour frame, half its height."""
    w, h = COLOR_SIZE
    side = h / 2
    return (w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2


def _detection(box: tuple[float, float, float, float], score: float) -> Detection:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    # BlazeFace's keypoints: right eye, left eye, nose, mouth, right ear, left ear (the subject's
    # right is the image's left).
    rel = [(0.32, 0.40), (0.68, 0.40), (0.50, 0.60), (0.50, 0.78), (0.02, 0.45), (0.98, 0.45)]
    return Detection(box, score, np.array([(x0 + u * w, y0 + v * h) for u, v in rel]))


class WarmUpDetector(FaceDetector):
    """For the warm-up only: it sees faces in noise. The real model runs on every frame with no
    score threshold, so the decoding of its boxes and the weighted NMS run on its real output;
    what it found is then replaced by a fixed face in the middle of the frame (none on a black
    frame), and, on every other frame, a small second face, so the gate's choice of the main face
    runs too."""

    def __init__(self) -> None:
        super().__init__(min_score=0.0)

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        super().detect(bgr)
        if not bgr.any():
            return []
        x0, y0, x1, y1 = face_box()
        out = [_detection((x0, y0, x1, y1), 0.9)]
        if int(bgr[0, 0, 0]) % 2:
            s = (x1 - x0) / 4
            out.append(_detection((x1 + 4, y0, x1 + 4 + s, y0 + s), 0.6))
        return out


def _depth(rng: np.random.Generator) -> np.ndarray:
    w, h = DEPTH_SIZE
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xs - w / 2) / (w / 5)) ** 2 + ((ys - h / 2) / (h / 3)) ** 2
    z_mm = DISTANCE_M * 1000 - 40.0 * np.clip(1.0 - r2, 0.0, None)          # a 4 cm dome
    z_mm += rng.normal(0.0, 1.0, z_mm.shape)
    z = np.round(z_mm).astype(np.uint16)
    z[:, :8] = 0                                                             # the usual invalid band
    z[GLINT] = 0                               # a glint on the face leaves a hole in depth
    return z


def _ir(rng: np.random.Generator, lit: bool) -> np.ndarray:
    w, h = DEPTH_SIZE
    ir = rng.normal(40.0, 1.0, (h, w))
    if lit:
        dots = rng.random((h, w)) < 0.2
        ir += 150.0 * dots
    ir[GLINT] = 255                                                          # clipped: a specular glint
    return np.clip(ir, 0, 255).astype(np.uint8)


def _color(rng: np.random.Generator, tint: tuple[float, float, float] | None, k: int) -> np.ndarray:
    w, h = COLOR_SIZE
    if k == 0:
        return np.zeros((h, w, 3), np.uint8)                                 # no face in view
    bgr = rng.normal(120.0, 18.0, (h, w, 3))
    if tint is not None:
        r, g, b = tint
        bgr += 30.0 * np.array([b, g, r])
    out = np.clip(bgr, 1, 255).astype(np.uint8)
    out[0, 0, 0] = 100 + k % 2                  # odd: WarmUpDetector adds a second, smaller face
    return out


def _frame(kind: StreamKind, pixels: np.ndarray, fmt: PixelFormat, k: int, intr: Intrinsics, *,
           depth_scale: float = 0.0, metadata: FrameMetadata | None = None) -> Frame:
    t_ms = 1000.0 + k * FRAME_MS
    return Frame(kind, pixels, fmt, t_ms, ClockDomain.HARDWARE, int(t_ms * 1e6), k + 1, intr,
                 device_serial=SERIAL, depth_scale=depth_scale, metadata=metadata or FrameMetadata())


def framesets(challenge: Challenge | None, n: int, seed: int = 0) -> list[FrameSet]:
    """``n`` synthetic framesets following ``challenge`` (projector states, screen colours)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        lit = bool(challenge.schedule[k]) if challenge is not None and k < len(challenge.schedule) else True
        tint = challenge.colour_at(k) if challenge is not None else None
        ir_md = FrameMetadata(exposure_us=8000.0, gain=16.0, projector_on=lit,
                              projector_power_mw=PROJECTOR_POWER_MW, frame_counter=k + 1)
        color_md = FrameMetadata(exposure_us=10000.0, gain=64.0, frame_counter=k + 1, white_balance_k=4600.0)
        frames = {
            StreamKind.COLOR: _frame(StreamKind.COLOR, _color(rng, tint, k), PixelFormat.BGR8, k, COLOR_INTRINSICS,
                                     metadata=color_md),
            StreamKind.DEPTH: _frame(StreamKind.DEPTH, _depth(rng), PixelFormat.Z16, k, DEPTH_INTRINSICS,
                                     depth_scale=DEPTH_SCALE, metadata=ir_md),
            StreamKind.IR: _frame(StreamKind.IR, _ir(rng, lit), PixelFormat.Y8, k, DEPTH_INTRINSICS, metadata=ir_md),
        }
        out.append(FrameSet(frames, {(StreamKind.DEPTH, StreamKind.COLOR): DEPTH_TO_COLOR,
                                     (StreamKind.DEPTH, StreamKind.IR): Extrinsics.identity()}, skew_ms=0.5))
    return out
