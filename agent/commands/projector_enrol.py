"""``capture-agent projector-enrol URI [URI ...] --out FILE``: record a camera's projector dot
pattern (``agent.liveness.dotref``) from its own on-off frames and depth, for the material
measure's pattern check (``[liveness] dot_reference``).

Each URI is one scene of the same camera; the pattern's parallax is found from scenes at two
depths: point the camera at a matte board held 0.4-0.6 m in front of it, then at the bare wall
(1.2 m or more) behind, one URI each (a real camera's URI twice, with the board moved away
between them: ``--pause`` waits for Enter before each scene). The projector is switched on and off
every few frames; each frame's state is read from its own dots, as the judge reads them."""

from __future__ import annotations

import sys

import numpy as np

import drivers
from agent.liveness.challenge import dot_energy, projector_states
from agent.liveness.dotref import DotReference, EnrolmentFailed, EnrolPair, PatternNotSeen, enrol
from agent.pipeline.frames import FramesetReader
from drivers.frame import FrameSet, StreamKind

# Frames in each projector state before it is switched: the sim's and a D4xx's command latency
# (up to 3 frames) still leaves settled frames of each state.
RUN_FRAMES = 4
SETTLE_FRAMES = 10
DEFAULT_PAIRS = 12
# What an enrolment reads: IR and the lit frame's depth, never colour (a camera that can leave it out
# does: the simulator then renders none).
ENROL_STREAMS = (StreamKind.DEPTH, StreamKind.IR)
# What a technician can change when no pattern was seen: the usual cause is daylight's infrared behind
# the board (a kiosk facing a glazed street front) drowning the dots on the far surface.
NOT_SEEN_ADVICE = ("point the camera at a plain matte wall 1.2 m or more away, with no window, glazing or "
                   "sunlit street behind the board or in view (daylight's infrared drowns the projector's "
                   "dots; draw a blind or enrol at another wall), hold the board still 0.4-0.6 m in front of "
                   "the camera, then run projector-enrol again")


def collect_framesets(cam: drivers.Camera, count: int) -> list[FrameSet]:
    """Framesets with IR and depth from an open camera while the projector alternates (runs of
    ``RUN_FRAMES``, after ``SETTLE_FRAMES`` left out): ``count`` of them, or fewer if the stream ends.
    The projector is left on afterwards."""
    reader = FramesetReader(cam)
    sets: list[FrameSet] = []
    on = True
    k = 0
    try:
        for fs in reader.stream(timeout_s=30.0, per_frameset=True):
            k += 1
            if k <= SETTLE_FRAMES:
                continue
            if fs.ir is not None and fs.depth is not None:
                sets.append(fs)
            if (k - SETTLE_FRAMES) % RUN_FRAMES == 0:
                on = not on
                cam.set_projector(on)
            if len(sets) >= count:
                break
    finally:
        cam.set_projector(True)
    return sets


def collect_pairs(cam: drivers.Camera, pairs: int) -> tuple[list[EnrolPair], float]:
    """On-off pairs (lit minus unlit IR, the lit frame's depth in metres) from an open camera, and
    the IR imager's ``fx``. The projector is left on afterwards."""
    sets = collect_framesets(cam, pairs * RUN_FRAMES + 2 * RUN_FRAMES)
    if not sets:
        raise EnrolmentFailed("the camera gave no framesets with IR and depth")
    energies = [dot_energy(fs.ir.pixels) for fs in sets if fs.ir is not None]
    lit = projector_states(energies)
    out: list[EnrolPair] = []
    fx = 0.0
    for i in range(1, len(sets)):
        if lit[i] == lit[i - 1]:
            continue
        a, b = (sets[i], sets[i - 1]) if lit[i] else (sets[i - 1], sets[i])
        assert a.ir is not None and b.ir is not None and a.depth is not None
        depth = a.depth.pixels.astype(np.float32) * np.float32(a.depth.depth_scale)
        z = np.where(depth > 0, depth, np.nan).astype(np.float32)
        out.append(EnrolPair(a.ir.pixels.astype(np.float32) - b.ir.pixels.astype(np.float32), z))
        fx = a.ir.intrinsics.fx
    return out, fx


def enrol_uris(uris: list[str], pairs: int = DEFAULT_PAIRS, *, pause: bool = False) -> DotReference:
    """Enrol one camera from scenes at its URIs (the same camera: one size and focal length)."""
    all_pairs: list[EnrolPair] = []
    fxs: list[float] = []
    for uri in uris:
        if pause:
            input(f"scene {len(fxs) + 1} of {len(uris)}: set it up, then press Enter ")
        cam = drivers.open(uri)
        cam.select_streams(ENROL_STREAMS)
        with cam:
            got, fx = collect_pairs(cam, pairs)
        all_pairs += got
        fxs.append(fx)
    if max(fxs) - min(fxs) > 0.5:
        raise EnrolmentFailed("the scenes were not taken by one camera mode (their focal lengths differ)")
    try:
        return enrol(all_pairs, fxs[0])
    except PatternNotSeen as e:
        raise EnrolmentFailed(f"{e.message}: {NOT_SEEN_ADVICE}") from e


def register(sub) -> None:
    p = sub.add_parser("projector-enrol", help="record a camera's projector dot pattern for the material "
                                               "measure's pattern check")
    p.add_argument("uris", nargs="+", metavar="URI", help="the camera's URI, once per scene (a board near it, "
                                                          "the wall behind)")
    p.add_argument("--out", required=True, help="the reference file to write ([liveness] dot_reference)")
    p.add_argument("--pairs", type=int, default=DEFAULT_PAIRS, help="on-off pairs per scene")
    p.add_argument("--pause", action="store_true", help="wait for Enter before each scene")
    p.set_defaults(func=run)


def run(args) -> int:
    if not 2 <= args.pairs <= 200:
        raise EnrolmentFailed("--pairs must be 2..200")
    ref = enrol_uris(list(args.uris), args.pairs, pause=args.pause)
    digest = ref.save(args.out)
    print(f"dot reference {args.out}: f·b {ref.parallax_px_m:.1f} px·m at fx {ref.fx:.1f}, "
          f"{ref.covered.mean():.0%} of the projector's field covered, sha256 {digest}", file=sys.stdout)
    return 0
