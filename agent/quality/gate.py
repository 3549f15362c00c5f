"""The quality gate: is this frameset a sample the standard accepts, and if not, what to say.

``QualityGate.measure`` runs face detection and landmarks on the color frame and measures the main
face against every threshold using color and aligned depth together; ``apply`` folds the measurement
into the capture: checks judged over a window of framesets (depth completeness), one prompt with
hysteresis, progress. ``check_stream_spec`` (``spec.py``) checks the streams once when they start.

Illuminance (§7.5 d) is judged only on a camera with a measured lux calibration
(``[quality.lux_calibration]``): an estimate from an uncalibrated camera's exposure metadata is off
by whatever its units and response are (20-40x on real RealSense colour modules, whose exposure is
reported in 100 µs units). Without one, exposure is judged from the image alone (face gray level,
clipping, and whether the picture as a whole has run out of light), with its own prompts.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.face import Detection, FaceDetector, Mesh, face_mesh
from agent.face.mesh import with_irises
from agent.face.pose import POSE_AGREEMENT_DEG, Pose, head_pose
from agent.face.relit import ir_relit, relit_detections
from agent.pipeline import inplace
from agent.pipeline.align import AlignedFrameSet
from agent.quality import metrics as M
from agent.quality.depth import FaceDepth, face_depth
from agent.quality.distance import judge_range, nose_distance_from_colour, stated_range
from agent.quality.faces import face_evidence, head_in_depth
from agent.quality.prompts import PRIORITY, Prompt, PromptSelector
from agent.quality.settings import QualitySettings
from agent.quality.spec import CheckResult, check_stream_spec, require_stream_spec  # noqa: F401 (re-exported)

# The simulator's colour response: lux x (exposure s x gain) per linear skin level, measured on
# `sim://` (any camera profile: they share one sensor model) against its set illuminance on the
# reference identity (type II skin). Not applied unless a configuration names it: a calibration is
# a measurement of one camera model, and the simulator is one (tests and `doctor --lux-k` use it).
SIM_LUX_K = 18.7
EYE_WINDOW = 15                   # framesets of eyelid openings the eyes-open check compares with

# Other detections large enough to count that are examined for face evidence (agent/quality/faces.py).
MAX_EXAMINED_OTHERS = 3
# A detection lying this much (share of its own box) inside the main face's box is the subject's own
# face found again at another scale, not another face: behind the subject's face another face is
# hidden by it, and the detector's weighted NMS keeps a tight box (the face alone) apart from a loose
# one (face and hair) when their raw boxes overlap by less than its IoU threshold. On the fifth
# family's Gemini 336L (a 94° lens, a small face) a 0.94-score 124 px box inside the 0.64-score
# 211 px main box, 0.35 of its area, refused a live person MULTIPLE_FACES (docs/liveness.md).
SAME_FACE_INSIDE = 0.8
# ... and only if it is the same face: its eyes and nose where the main box's are, each within this
# share of its own width (review14, fifth/live 26: the loose and the tight box of the subject's face put
# them 5-41 px apart, 0.04-0.34 of the tight box's width, the most where a bystander's raw boxes were
# merged into the loose one). A second person at the subject's shoulder, partly behind the head, can
# lie >= 80 % inside a loose main box (the simulator's bystander 0.13-0.16 m aside, 0.15-0.25 m
# behind: a 0.70-0.78-score 105 px box, 0.83-0.87 inside), with eyes of their own (105-129 px from the
# main box's, 1.0-1.2 of its width): that box is examined and counted like any other.
SAME_FACE_KEYPOINTS = 0.5


@dataclass(frozen=True, eq=False)
class FaceObservation:
    detection: Detection
    mesh: Mesh
    yaw: float                    # NaN when depth and landmarks disagree (``pose.agreed`` False)
    pitch: float
    roll: float
    pose_source: str
    pose: Pose | None = None

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return self.detection.bbox


@dataclass(frozen=True, eq=False)
class Measurement:
    """One frameset's checks before they are folded into a capture (see ``QualityGate.apply``):
    ``checks`` are this frameset's own; ``depth`` is what the window checks are judged from."""

    checks: list[CheckResult]
    face: FaceObservation | None
    faces_found: int
    values: dict[str, float]
    timing_ms: float
    depth: FaceDepth | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass(frozen=True, eq=False)
class QualityReport:
    ok: bool
    checks: list[CheckResult]
    prompt: Prompt | None                    # the one prompt to show now (with hysteresis)
    prompts: list[str]                       # every failing prompt code, most useful first
    progress: int                            # 0..100 across the capture
    face: FaceObservation | None
    faces_found: int
    timing_ms: float
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary. Landmarks are biometric and deliberately left out."""
        return {"ok": self.ok, "prompt": self.prompt.to_dict() if self.prompt else None, "prompts": self.prompts,
                "progress": self.progress, "faces_found": self.faces_found, "timing_ms": round(self.timing_ms, 3),
                "checks": [c.to_dict() for c in self.checks],
                "metrics": {k: (round(v, 4) if v is not None and np.isfinite(v) else None)
                            for k, v in self.metrics.items()}}



def _inside(det: Detection, box_of: Detection) -> float:
    """The share of ``det``'s box that lies inside ``box_of``'s."""
    (a0, b0, a1, b1), (c0, d0, c1, d1) = det.bbox, box_of.bbox
    inter = max(0.0, min(a1, c1) - max(a0, c0)) * max(0.0, min(b1, d1) - max(b0, d0))
    return inter / max(det.width * det.height, 1e-9)


def _same_face(det: Detection, main: Detection) -> bool:
    """Whether ``det`` is the main face found again at another scale: lying ``SAME_FACE_INSIDE`` inside
    its box, with its eyes and nose where the main detection's are (``SAME_FACE_KEYPOINTS``)."""
    if _inside(det, main) < SAME_FACE_INSIDE:
        return False
    apart = np.linalg.norm(np.asarray(det.keypoints[:3], float) - np.asarray(main.keypoints[:3], float), axis=1)
    return bool(np.all(apart <= SAME_FACE_KEYPOINTS * max(det.width, 1e-9)))


class QualityGate:
    def __init__(self, settings: QualitySettings | None = None, channel: str | None = None,
                 detector: FaceDetector | None = None):
        self.settings = settings or QualitySettings()
        self.thresholds = self.settings.thresholds_for(channel)
        self.detector = detector or FaceDetector()
        self.selector = PromptSelector()
        self.good_frames = 0
        # Set by the session's owner of the camera while its auto-exposure meters the face
        # (``agent.quality.metering.FaceMetering``): exposure prompts are then read differently.
        self.face_metered = False
        self._depth_window: collections.deque[FaceDepth] = collections.deque(
            maxlen=max(1, self.thresholds.depth_window))
        # Whether the last good frameset's depth window settles §7.5 h (``complete``).
        self._depth_settled = False
        self._openness: collections.deque[float] = collections.deque(maxlen=EYE_WINDOW)

    def reset(self) -> None:
        self.selector.reset()
        self.good_frames = 0
        self.face_metered = False
        self._depth_window.clear()
        self._depth_settled = False
        self._openness.clear()

    @property
    def progress(self) -> int:
        need = max(1, self.thresholds.good_frames_required)
        good = self.good_frames if self.complete else min(self.good_frames, need - 1)
        return int(round(100 * min(1.0, good / need)))

    @property
    def complete(self) -> bool:
        """The capture has its good framesets, and its last good frameset's depth window settles
        §7.5 h: the window's median passes even with the framesets it still lacks counted as
        having no depth (``_depth_settled``). A full window is judged as it is; a short one only
        when the framesets still to come could not overturn it, so marginal depth is not passed on
        the median of a quick session's first few, and a good face is not held for more."""
        return self.good_frames >= self.thresholds.good_frames_required and self._depth_settled

    def lux_k(self, serial: str) -> float | None:
        """The camera's measured lux calibration, or None: its illuminance is then not judged."""
        cal = self.settings.lux_calibration
        k = cal.get(serial, cal.get("default"))
        return float(k) if k is not None else None

    def _main_face(self, dets: list[Detection], aligned: AlignedFrameSet) -> int:
        """The detection most likely the subject's: large, central and near."""
        if len(dets) == 1:
            return 0                         # nothing to rank (its depth median is not needed)
        h, w = aligned.depth_m.shape
        scores = []
        for d in dets:
            c = d.centre
            centrality = 1.0 - min(1.0, np.hypot((c[0] - w / 2) / w, (c[1] - h / 2) / h) * 1.5)
            x0, y0, x1, y1 = (int(v) for v in d.bbox)
            patch = aligned.depth_m[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)]
            z = float(np.nanmedian(patch)) if patch.size and np.isfinite(patch).any() else 2.0
            scores.append(d.width * d.height * (0.5 + centrality) / max(z, 0.2))
        return int(np.argmax(scores))

    def _second_face(self, dets: list[Detection], main: int, aligned: AlignedFrameSet) -> tuple[float, int]:
        """The largest other face's area against the main face's, and how many detections large
        enough to count were not faces (``agent/quality/faces.py``: the same evidence as the main
        face). Smaller detections are not examined: their size already keeps them from counting."""
        limit = self.thresholds.second_face_area_ratio
        # The subject's face is as large as its tightest box: a loose main box (face and hair) found
        # again tighter inside is ~3x the face's area, and a second face measured against it would
        # need ~3x the size to count (review14: a shoulder-height bystander at 0.22-0.25 of the loose
        # box is 0.67-0.76 of the face).
        again = [o for i, o in enumerate(dets) if i != main and _same_face(o, dets[main])]
        area = min(o.width * o.height for o in [dets[main], *again])
        others = sorted((o for i, o in enumerate(dets) if i != main and not any(o is a for a in again)),
                        key=lambda o: -o.width * o.height)
        not_faces = 0
        for o in others:
            ratio = o.width * o.height / area
            # A frame full of large face-like things (a poster of faces) is not examined one by one at
            # the cost of a landmark model each: past MAX_EXAMINED_OTHERS they count as faces.
            if ratio < limit or not_faces >= MAX_EXAMINED_OTHERS or face_evidence(
                    aligned.color.pixels, o, aligned, self.thresholds.presence_min).is_face:
                return ratio, not_faces
            not_faces += 1
        return 0.0, not_faces

    def evaluate(self, aligned: AlignedFrameSet) -> QualityReport:
        return self.apply(self.measure(aligned))

    def relit_faces(self, aligned: AlignedFrameSet) -> list[Detection]:
        """The second try, for a colour image on which the detector found no face: its detections
        on the image relit (``agent.face.relit``: hard stripes of light divided out), kept only where
        the aligned depth holds a head (``faces.head_in_depth``: the relit image also makes faces of
        photographs and walls, the depth does not)."""
        return [d for d in relit_detections(self.detector, aligned.color.pixels) if head_in_depth(d, aligned).is_head]

    def relit_mesh(self, aligned: AlignedFrameSet, det: Detection,
                   check: Callable[[], None] | None = None) -> Mesh | None:
        """The second landmark try, for a detected face whose mesh presence is under the limit: FaceMesh
        on the colour relit by the light the aligned IR shows (``agent.face.relit.ir_relit``: the sun's
        stripes through blinds cross both images); None where the IR shows no hard stripes on the face
        or the colour does not darken with it. Its irises are found only where its presence reaches the
        limit (below it ``measure`` does not take it: ``face_mesh`` without them, perf32). ``check``: called
        between the steps (``ir_relit``'s), for a caller that may stop it by raising."""
        if aligned.ir is None:
            return None
        relit = ir_relit(aligned.color.pixels, aligned.ir, det, check)
        if relit is None:
            return None
        mesh = face_mesh(relit, det, with_iris=False)
        if mesh.presence < self.thresholds.presence_min:
            return mesh
        if check is not None:
            check()
        return with_irises(relit, mesh)

    def relit_tried(self, m: Measurement) -> bool:
        """Whether ``measure`` tried the second landmark try (``relit_mesh``) on ``m``'s frameset: its main
        face's colour landmarks were under the presence limit (taken from the relit image, or kept)."""
        return m.face is not None and (bool(m.values.get("mesh_relit"))
                                       or m.face.mesh.presence < self.thresholds.presence_min)

    def main_face_mesh(self, bgr: np.ndarray, detections: list[Detection]) -> Mesh | None:
        """The main face's landmarks (``face_mesh``, irises included, exactly as ``measure`` runs
        it) when the colour image's detections alone say which face is the main one: a single
        detection. None otherwise (several: the main face is chosen with the aligned depth). Needs
        no alignment, so a caller can run it beside the alignment and hand it to ``measure``."""
        return face_mesh(bgr, detections[0]) if len(detections) == 1 else None

    def measure(self, aligned: AlignedFrameSet, detections: list[Detection] | None = None,
                mesh: Mesh | None = None, on_face: Callable[[FaceObservation], None] | None = None,
                relit: tuple[Detection, Mesh | None] | None = None) -> Measurement:
        """Every check on one frameset, without touching the gate's state: safe to run for several
        framesets at once on different threads (the face models are per thread), then ``apply``
        them in order. ``detections``: ``self.detector.detect`` of the colour image, when the caller
        ran it already (the liveness judge runs it beside the alignment); ``mesh``: the main face's
        landmarks, ``main_face_mesh`` of the same colour image and detections, when the caller ran
        it already (the judge runs it beside the alignment too), only with a single detection.
        ``on_face``: called with the main face (detection, landmarks, pose: the ``Measurement``'s
        very ``face``) as soon as it is known, before its depth and the checks (the judge reads the
        window's last frameset's cues from it meanwhile); not called without a face. ``relit``: a detection
        and ``relit_mesh`` of it on this very ``aligned``, worked out ahead (the judge starts it on the window's
        last frameset once its IR is aligned, beside the colour landmarks, where the frameset before needed
        the second try): taken where the main face is that detection and its colour landmarks need the
        second try, which is then not run again."""
        t0 = time.perf_counter()
        t = self.thresholds
        color = aligned.color
        bgr = color.pixels
        dets = self.detector.detect(bgr) if detections is None else detections
        if mesh is not None and (detections is None or len(detections) != 1):
            raise ValueError("a mesh run ahead is the single detection's (main_face_mesh)")
        checks: list[CheckResult] = []
        values: dict[str, float] = {}
        if not dets:
            dets = self.relit_faces(aligned)
            if dets:
                values["faces_relit"] = float(len(dets))     # found by the second try
        face = None
        depth = None
        if not dets:
            checks.append(CheckResult("face_present", False, 0, ">= 1 face", "6.1.1", "NO_FACE"))
        else:
            main = self._main_face(dets, aligned)
            d = dets[main]
            ratio, not_faces = self._second_face(dets, main, aligned)
            values["detections_not_faces"] = float(not_faces)
            again = sum(1 for i, o in enumerate(dets) if i != main and _same_face(o, d))
            if again:
                values["detections_same_face"] = float(again)     # the main face found again: not another
            checks.append(CheckResult("single_face", ratio < t.second_face_area_ratio, ratio,
                                      f"other faces < {t.second_face_area_ratio:g} of the main face (a face: the mesh "
                                      "model finds one, and where depth exists a face's size and relief)", "6.1.1",
                                      "MULTIPLE_FACES"))
            if mesh is None:
                mesh = face_mesh(bgr, d)
            if mesh.presence < t.presence_min:
                second = relit[1] if relit is not None and relit[0] is d else self.relit_mesh(aligned, d)
                if second is not None and second.presence >= t.presence_min:
                    mesh = second
                    values["mesh_relit"] = 1.0          # landmarks from the IR-relit second try
            pose = head_pose(mesh.landmarks, mesh.pupils, aligned.depth_m, color.intrinsics)
            face = FaceObservation(d, mesh, pose.yaw, pose.pitch, pose.roll, pose.source, pose)
            if on_face is not None:
                on_face(face)
            depth = face_depth(aligned, mesh.landmarks, mesh.ipd_px)
            checks += self._face_checks(aligned, face, depth, values)
        n_faces = len(dets) - int(values.get("detections_not_faces", 0)) - int(values.get("detections_same_face", 0))
        return Measurement(checks, face, n_faces, values, (time.perf_counter() - t0) * 1000, depth)

    def apply(self, m: Measurement) -> QualityReport:
        """Fold one measured frameset into the capture: the checks judged over the window, progress,
        and the prompt (with hysteresis)."""
        checks = list(m.checks)
        values = dict(m.values)
        if m.depth is not None:
            self._depth_window.append(m.depth)
            checks += self._window_checks(values)
        if "eye_aspect_ratio" in values:
            checks.append(self._eyes_open(values))
        ok = all(c.ok for c in checks)
        failing = sorted({c.prompt for c in checks if not c.ok and c.prompt}, key=PRIORITY.__getitem__)
        if ok:
            self.good_frames += 1
            self._depth_settled = self._window_settled()
        prompt = self.selector.update(failing)
        if ok:
            prompt = None
        return QualityReport(ok, checks, prompt, failing, self.progress, m.face, m.faces_found, m.timing_ms, values)

    def _eyes_open(self, v: dict[str, float]) -> CheckResult:
        """§7.4 eyes open, against this person's own open eyes: eyelid openings differ from person
        to person (0.16-0.45 of the eye's width open, less seen from below), so a fixed fraction
        refuses narrow eyes for ever. Closed is under ``eye_open_relative`` of the 90th percentile
        over the last framesets, or under the absolute floor whatever the history."""
        t = self.thresholds
        ear = v["eye_aspect_ratio"]
        if np.isfinite(ear):
            self._openness.append(ear)
        usual = float(np.percentile(self._openness, 90)) if self._openness else float("nan")
        need = max(t.eye_open_min, t.eye_open_relative * usual) if np.isfinite(usual) else t.eye_open_min
        v["eye_open_usual"] = usual
        return CheckResult("eyes_open", bool(ear >= need), ear,
                           f"eyelid opening >= {need:.2f} of eye width ({t.eye_open_relative:g} of this person's "
                           f"open eyes, at least {t.eye_open_min:g})", "7.4", "OPEN_EYES")

    def _window_checks(self, v: dict[str, float]) -> list[CheckResult]:
        """§7.5 h over the last ``depth_window`` framesets with a face: the median completeness, so
        one frame's noise neither fails nor passes a capture. A shortfall is the camera's (its own
        prompt), never an accusation of the person: that needs an occluder (``_face_checks``)."""
        t = self.thresholds
        face = float(inplace.median([d.face for d in self._depth_window]))
        core = float(inplace.median([d.core for d in self._depth_window]))
        v.update(depth_face_completeness_window=face, depth_core_completeness_window=core)
        n = len(self._depth_window)
        return [
            CheckResult("depth_face_completeness", face >= t.depth_face_completeness_min, face,
                        f">= {t.depth_face_completeness_min:.0%} (median of {n} framesets)", "7.5 h", "DEPTH_SPARSE"),
            CheckResult("depth_core_completeness", core >= t.depth_core_completeness_min, core,
                        f">= {t.depth_core_completeness_min:.0%} at eyes, nose, mouth (median of {n} framesets; "
                        "glint holes left out)", "7.5 h", "DEPTH_SPARSE"),
        ]

    def _window_settled(self) -> bool:
        """Whether the depth window's verdict is one no framesets still to come can overturn: its
        median passes with the framesets it lacks counted as having none (a full window: its own
        median). At the defaults (a window of 6, 5 good framesets) a good face's first 5 settle it
        (each with enough depth: at most one of 6 could fall short), so it completes when it did;
        marginal depth waits for the full window (issue 14, the nineteenth session)."""
        t = self.thresholds
        missing = [0.0] * max(0, (self._depth_window.maxlen or 1) - len(self._depth_window))
        face = float(inplace.median([d.face for d in self._depth_window] + missing))
        core = float(inplace.median([d.core for d in self._depth_window] + missing))
        return face >= t.depth_face_completeness_min and core >= t.depth_core_completeness_min

    def _range_checks(self, aligned: AlignedFrameSet, depth: FaceDepth, ipd_frontal: float,
                      v: dict[str, float]) -> list[CheckResult]:
        """§7.5 h: is the face within the distances the depth camera measures (``distance.py``)?
        Judged only on a camera that states its range, and only when this frameset's depth on the
        face falls short: a face nearer than the minimum is then told to move back (not that the
        camera is measuring), one beyond the maximum to come closer."""
        t = self.thresholds
        rng = stated_range(aligned)
        if rng is None:
            return [CheckResult("depth_range", True, None, "camera states no depth range: not judged", "7.5 h")]
        colour_z = nose_distance_from_colour(ipd_frontal, aligned.color.intrinsics.fx)
        v.update(face_distance_colour_m=colour_z, face_depth_nearest_m=depth.nearest_m,
                 face_depth_furthest_m=depth.furthest_m)
        short = depth.face < t.depth_face_completeness_min or depth.core < t.depth_core_completeness_min
        j = judge_range(rng, depth, colour_z, short)
        how = {"depth": "the face's depth ends at it", "colour": "no depth on the face: placed by its IPD",
               "": "depth on the face is complete: not judged" if not short else "not placed"}[j.evidence]
        value = depth.nearest_m if j.evidence == "depth" else colour_z
        out = []
        if rng.min_m is not None:
            out.append(CheckResult("depth_range_min", not j.near, value,
                                   f"face beyond the camera's minimum depth {rng.min_m:.3g} m ({how})", "7.5 h",
                                   "MOVE_BACK"))
        if rng.max_m is not None:
            value = depth.furthest_m if j.evidence == "depth" else colour_z
            out.append(CheckResult("depth_range_max", not j.far, value,
                                   f"face within the camera's maximum depth {rng.max_m:.3g} m ({how})", "7.5 h",
                                   "MOVE_CLOSER"))
        return out

    def _face_checks(self, aligned: AlignedFrameSet, f: FaceObservation, depth: FaceDepth,
                     v: dict[str, float]) -> list[CheckResult]:
        t = self.thresholds
        color = aligned.color
        lm = f.mesh.landmarks
        ipd = f.mesh.ipd_px
        # A turned head shortens the pupil line in the image by cos(yaw); judge distance on the
        # frontal equivalent, so a turned head is told to turn, not to come closer. (Landmark yaw
        # while the pose is being measured again: it only scales a distance.)
        yaw_for_ipd = f.yaw if np.isfinite(f.yaw) else (f.pose.landmark_yaw if f.pose is not None else 0.0)
        ipd_frontal = ipd / max(np.cos(np.deg2rad(min(abs(yaw_for_ipd), 45.0))), 0.5)
        h, w = color.height, color.width
        inside = np.all((lm[:, 0] >= 1) & (lm[:, 0] < w - 1) & (lm[:, 1] >= 1) & (lm[:, 1] < h - 1))
        exposure = M.face_exposure(color.pixels, lm, t.gray_low, t.gray_high)
        snr = M.face_snr(color.pixels, lm, ipd)
        # Eyelid opening from the iris model's eyelid contour (it follows the lids far more closely
        # than the 468-point mesh); the mesh's eye aspect ratio only when irises were not run.
        if f.mesh.openness is not None:
            ear = min(f.mesh.openness)
        else:
            ear = min(M.eye_aspect_ratio(lm, M.RIGHT_EYE), M.eye_aspect_ratio(lm, M.LEFT_EYE))
        mar = M.mouth_open_ratio(lm)
        smile = M.smile_index(lm, f.roll, ipd)
        sharp = M.sharpness(color.pixels, f.detection.centre, ipd)
        md = color.metadata
        k = self.lux_k(color.device_serial)
        lux = None
        if k is not None:
            lux = M.estimate_lux(M.skin_linear_level(color.pixels, lm, ipd), md.exposure_us, md.gain, k)
        cct = md.white_balance_k
        distortion = M.lens_distortion(color.intrinsics, f.bbox)
        pose = f.pose
        disagreement = abs(pose.depth_yaw - pose.landmark_yaw) if pose is not None else float("nan")
        v.update(ipd_px=ipd, yaw_deg=f.yaw, pitch_deg=f.pitch, roll_deg=f.roll, presence=f.mesh.presence,
                 landmark_yaw_deg=pose.landmark_yaw if pose is not None else f.yaw,
                 depth_yaw_deg=pose.depth_yaw if pose is not None else float("nan"),
                 depth_face_completeness=depth.face, depth_core_completeness=depth.core,
                 depth_glint_holes=float(depth.glint_holes), in_front_share=depth.in_front,
                 brim_share=depth.brim, over_eyes_share=depth.over_eyes,
                 gray_share=exposure.share, mean_gray=exposure.mean, face_clipped=exposure.clipped,
                 picture_gray=exposure.picture, face_snr=snr, eye_aspect_ratio=ear, mouth_open_ratio=mar,
                 smile_index=smile,
                 sharpness=sharp, lux=lux if lux is not None else float("nan"),
                 cct_k=cct if cct is not None else float("nan"), lens_distortion=distortion,
                 exposure_us=md.exposure_us if md.exposure_us is not None else float("nan"),
                 gain=md.gain if md.gain is not None else float("nan"))
        C = CheckResult
        # Which exposure prompt: the picture as a whole tells whether the camera ran out of light
        # (or of darkness), or merely metered something other than the face.
        exposure_prompt = M.exposure_prompt(exposure, t, self.face_metered)
        dark_face = exposure.mean < t.gray_low and exposure.clipped <= t.face_clipped_max
        # Something in front of the eyes with nothing below them is most likely a brim pulled over them:
        # the person is asked to take the cap off (refused either way).
        headwear = depth.over_eyes > 0 and depth.below_eyes <= t.occluder_share_max
        agreed = pose is None or pose.agreed
        out = [
            C("face_visible", bool(inside) and f.mesh.presence >= t.presence_min, f.mesh.presence,
              f"whole face in frame, presence >= {t.presence_min:g}", "6.1.1", "FACE_INCOMPLETE"),
            C("ipd_min", ipd_frontal >= t.ipd_min_px, ipd_frontal,
              f">= {t.ipd_min_px:g} px (prefer > {t.ipd_preferred_px:g})", "7.4", "MOVE_CLOSER"),
            C("ipd_max", ipd_frontal <= t.ipd_max_px, ipd_frontal, f"<= {t.ipd_max_px:g} px", "7.4", "MOVE_BACK"),
            # Depth's yaw and the landmarks' must agree; when they do not, the pose is measured again on
            # the next frameset (a frontal face measures best), never taken from one of them silently.
            C("pose_measured", agreed, disagreement,
              f"depth and landmark yaw within {POSE_AGREEMENT_DEG:g}°"
              + ("" if agreed or pose is None else f" ({pose.source})"), "7.4", "TURN_TO_CAMERA"),
            C("yaw", not agreed or abs(f.yaw) <= t.max_yaw_deg, f.yaw, f"|yaw| <= {t.max_yaw_deg:g}°", "7.4",
              "TURN_TO_CAMERA"),
            C("pitch", abs(f.pitch) <= t.max_pitch_deg, f.pitch, f"|pitch| <= {t.max_pitch_deg:g}°", "7.4",
              "HEAD_LEVEL"),
            C("roll", abs(f.roll) <= t.max_roll_deg, f.roll, f"|roll| <= {t.max_roll_deg:g}°", "7.4", "HEAD_UPRIGHT"),
            C("mouth_closed", mar <= t.mouth_open_max, mar, f"inner-lip ratio <= {t.mouth_open_max:g}", "7.4",
              "CLOSE_MOUTH"),
            C("neutral_expression", smile <= t.smile_max, smile, f"corner lift <= {t.smile_max:g} IPD", "7.4",
              "NEUTRAL_EXPRESSION"),
            C("sharpness", sharp >= t.sharpness_min, sharp, f">= {t.sharpness_min:g}", "7.4", "HOLD_STILL"),
            # The band's lower edge is a proxy for a picture with little noise; skin reflects 0.06-0.47
            # of green light (Fitzpatrick VI-I), so in the same light a dark face sits below it, or is
            # brought into it by gain that raises its noise as much. A face darker than the band passes
            # on what its picture holds (face_snr), which binds every face alike.
            C("gray_levels", exposure.share >= t.gray_share_min or (dark_face and snr >= t.face_snr_min),
              exposure.share, f">= {t.gray_share_min:.0%} of face in {t.gray_low:g}-{t.gray_high:g}, "
              f"or a darker face with SNR >= {t.face_snr_min:g}", "7.4", exposure_prompt),
            C("face_snr", not snr < t.face_snr_min, snr if np.isfinite(snr) else None,
              f">= {t.face_snr_min:g} (face at 60 px IPD; "
              "not measurable: not judged)", "7.4", "FACE_TOO_DARK"),
            C("face_clipping", exposure.clipped <= t.face_clipped_max, exposure.clipped,
              f"<= {t.face_clipped_max:.0%} of face at full scale", "7.4", exposure_prompt),
            C("lens_distortion", distortion <= t.distortion_max, distortion, f"<= {t.distortion_max:.0%}", "7.4",
              "MOVE_TO_CENTRE"),
            # Only a surface in front of the face accuses the person of covering it; missing depth is
            # the camera's (the window's completeness checks in ``apply``).
            # A cap's brim above the upper lids, the eyes clear of it, is not one (``FaceDepth.brim``).
            C("not_occluded", depth.occluding <= t.occluder_share_max, depth.occluding,
              f"<= {t.occluder_share_max:.0%} of the face's depth in front of the nose tip (a cap's brim above "
              "the upper lids, the eyes clear of it, left out)", "6.1.1",
              "FACE_HEADWEAR" if headwear else "FACE_OCCLUDED"),
        ]
        out += self._range_checks(aligned, depth, ipd_frontal, v)
        if k is None:
            out.append(C("illuminance", True, None, "camera has no measured lux calibration: not judged; "
                         "exposure judged from the image (gray_levels, face_clipping)", "7.5 d"))
        elif lux is None:
            out.append(C("illuminance", True, None, "no exposure metadata: not checked", "7.5 d"))
        else:
            out.append(C("illuminance_min", lux >= t.lux_min, lux, f">= {t.lux_min:g} lux", "7.5 d", "TOO_DARK"))
            out.append(C("illuminance_max", lux <= t.lux_max, lux, f"<= {t.lux_max:g} lux", "7.5 d", "TOO_BRIGHT"))
        if cct is None:
            out.append(C("color_temperature", True, None, "no white-balance metadata: not checked", "7.5 d"))
        else:
            out.append(C("color_temperature", t.cct_min <= cct <= t.cct_max, cct,
                         f"{t.cct_min:g}-{t.cct_max:g} K", "7.5 d", "LIGHT_COLOR"))
        return out
