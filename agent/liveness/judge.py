"""Judging: framesets, through align, the quality gate's measurements and the physical cues, to a verdict.

The same code runs in the sandboxed liveness worker (the daemon) and in-process (offline analysis
and the PAD bench). Face data lives only in memory here.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from agent.face.models import manifest
from agent.liveness.challenge import (
    GRID,
    PALETTE,
    Challenge,
    ChallengeResult,
    Kind,
    dot_energy,
    evidence_box,
    face_grid,
    face_response,
    projector_states,
    verify,
)
from agent.liveness.detectors import score
from agent.liveness.features import (
    FrameCues,
    ProjectorLight,
    Run,
    depth_noise,
    frame_cues,
    motion_from_steps,
    motion_snr,
    motion_step,
    one_light_runs,
    projector_light,
    same_power,
)
from agent.liveness.fusion import ALGORITHM_VERSION, LivenessVerdict, VerdictThresholds, decide, fuse
from agent.pipeline.align import AlignedFrameSet, align_frameset
from agent.quality import FaceObservation, QualityGate, QualityReport
from agent.quality.gate import Measurement
from drivers.frame import FrameSet, StreamKind

MIN_FACE_FRAMES = 5
DROWNED_SCORE_CAP = 0.45          # material unmeasurable under a challenge (direct sunlight)


def frameset_digest(fs: FrameSet) -> str:
    """SHA-256 over the exact pixels judged (color, depth, IR, in that order)."""
    h = hashlib.sha256()
    for kind in (StreamKind.COLOR, StreamKind.DEPTH, StreamKind.IR):
        f = fs.get(kind)
        if f is not None:
            h.update(kind.value.encode())
            h.update(np.ascontiguousarray(f.pixels).data)       # the array's own bytes, no copy
    return h.hexdigest()


def model_versions() -> dict[str, str]:
    out = {name: digest[:16] for name, digest in manifest()["models"].items()}
    out["liveness"] = ALGORITHM_VERSION
    return out


@dataclass
class JudgeResult:
    verdict: LivenessVerdict
    quality: QualityReport | None
    max_skew_ms: float
    timing_ms: dict[str, float] = field(default_factory=dict)
    framesets: int = 0
    best_index: int | None = None            # the frameset a probe's crops come from
    best_face: FaceObservation | None = None  # its face (landmarks stay in memory)
    evidence: dict | None = None             # per-frame measurements of a challenged window (for the server)


def injection_signals(sets: list[FrameSet], aligned_noise: float) -> dict:
    """Signs that frames did not come from a physical sensor streaming now."""
    numbers = [fs.depth.frame_number for fs in sets if fs.depth is not None]
    stamps = [fs.depth.timestamp_ms for fs in sets if fs.depth is not None]
    monotonic = bool(np.all(np.diff(numbers) > 0)) and bool(np.all(np.diff(stamps) > 0)) if len(numbers) > 1 else True
    noisy = bool(np.isfinite(aligned_noise) and aligned_noise > 0.5)
    return {"frame_counter_monotonic": monotonic, "depth_noise_per_m2_mm": round(aligned_noise, 3)
            if np.isfinite(aligned_noise) else None, "sensor_noise_present": noisy,
            "suspicious": (not monotonic) or (np.isfinite(aligned_noise) and not noisy)}


JUDGE_THREADS = max(1, min(2, os.cpu_count() or 1))
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def judge_pool() -> ThreadPoolExecutor:
    """The process's threads for measuring framesets side by side (two, or one on a single core).
    The heavy work (alignment, the face models, filters) runs in numpy, OpenCV and LiteRT, which
    release the GIL, and each thread has its own interpreters."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=JUDGE_THREADS, thread_name_prefix="liveness-judge")
        return _POOL


@dataclass
class _Measured:
    aligned: AlignedFrameSet
    measurement: Measurement
    cues: FrameCues | None
    energy: float | None
    digest: str
    ms: tuple[float, float, float]       # align, quality, liveness


class Judge:
    """One session judged a frameset at a time, as the frames arrive, then decided by ``finish``.

    ``add`` hands the per-frameset work (alignment, the quality gate's checks, the physical cues,
    the projector's dot energy, the digest) to the judge threads, so framesets are measured side by
    side while the capture goes on; their results are folded in strictly in arrival order (the
    gate's progress and prompts, motion against the first face frame). A caller that feeds frames
    during the capture only waits for the last ones and the fusion at the end. ``judge`` is the
    batch form of the same thing.
    """

    def __init__(self, gate: QualityGate, thresholds: VerdictThresholds, *, challenge: Challenge | None,
                 notes: list[str] | None = None, pool: ThreadPoolExecutor | None = None):
        self.gate, self.thresholds, self.challenge = gate, thresholds, challenge
        self.notes = list(notes or [])
        self.pool = pool
        self._pending: collections.deque = collections.deque()
        self.sets: list[FrameSet] = []
        self.aligned: list[AlignedFrameSet] = []
        self.faces: list[FaceObservation | None] = []
        self.cues: list[FrameCues] = []
        self.motion_steps: list[tuple[float, float]] = []
        self.cue_frames: list[int] = []          # the frameset index of each entry of ``cues``
        self.energies: list[float] = []          # per frameset (NaN without an IR frame)
        self.digests: list[str] = []
        self.last_report: QualityReport | None = None
        self.ranks: list[tuple[tuple, int, FaceObservation]] = []
        self.ms = {"align": 0.0, "quality": 0.0, "liveness": 0.0}
        gate.reset()

    def _measure(self, fs: FrameSet) -> _Measured:
        t0 = time.perf_counter()
        a = align_frameset(fs)
        t1 = time.perf_counter()
        m = self.gate.measure(a)
        t2 = time.perf_counter()
        c = frame_cues(a, m.face) if m.face is not None else None
        # In the IR imager's own pixels: one fixed geometry for every frame (aligned IR has holes
        # wherever that frame's depth has none, and unlit frames have far fewer depth pixels).
        e = dot_energy(fs.ir.pixels) if fs.ir is not None else None
        digest = frameset_digest(fs)
        t3 = time.perf_counter()
        return _Measured(a, m, c, e, digest, ((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000))

    def add(self, fs: FrameSet) -> None:
        if self.pool is None:
            self._fold(fs, self._measure(fs))
            return
        self._pending.append((fs, self.pool.submit(self._measure, fs)))
        self._drain(block=False)

    def _drain(self, block: bool) -> None:
        while self._pending and (block or self._pending[0][1].done()):
            fs, fut = self._pending.popleft()
            self._fold(fs, fut.result())

    def _fold(self, fs: FrameSet, r: _Measured) -> None:
        k = len(self.sets)
        report = self.gate.apply(r.measurement)
        self.last_report = report
        if report.face is not None:
            # Ranked now, chosen at ``finish`` (where the challenge's lag says which frames were lit
            # by a neutral screen): passes the gate, then the most confident detection, then the latest.
            self.ranks.append(((report.ok, report.face.detection.score, k), k, report.face))
            c = r.cues
            if c is not None:
                if self.cues:                    # motion against the first face frame, as it comes
                    self.motion_steps.append(motion_step(self.cues[0].landmarks, c.landmarks))
                self.cues.append(c)
                self.cue_frames.append(k)
        self.faces.append(report.face)
        self.energies.append(r.energy if r.energy is not None else float("nan"))
        self.digests.append(r.digest)
        self.sets.append(fs)
        self.aligned.append(r.aligned)
        for name, v in zip(("align", "quality", "liveness"), r.ms, strict=True):
            self.ms[name] += v

    def finish(self) -> JudgeResult:
        self._drain(block=True)
        t0 = time.perf_counter()
        sets, aligned, faces, challenge, notes = self.sets, self.aligned, self.faces, self.challenge, self.notes
        noise = depth_noise(aligned)
        injection = injection_signals(sets, noise)
        digests = list(self.digests)
        sel = self._selection()
        ch_result: ChallengeResult | None = None
        ch_dict = None
        if challenge is not None:
            ch_result = verify(challenge, self.energies, sel.rgb)
            # Binds the verdict to the server's nonce: the server checks it against the probe header.
            ch_dict = {**ch_result.to_dict(), "nonce_sha256": hashlib.sha256(challenge.nonce).hexdigest()}
            sel.settle(challenge, ch_result)
        if len(self.cues) < MIN_FACE_FRAMES:
            verdict = LivenessVerdict("inconclusive", 0.0, {}, digests, model_versions(), challenge is not None,
                                      ch_dict, injection,
                                      notes + [f"a face was measured in only {len(self.cues)} framesets"])
        else:
            # Material cues need the projector; with a challenge, judge them on the lit frames only.
            reported = [fs.ir.metadata.projector_on for fs in sets if fs.ir is not None]
            projector_seen = not reported or any(r is not False for r in reported)
            lights = []
            lit = sel.lit
            if lit is not None:
                # Pairs of consecutive frames where the projector went on->off or off->on, as the IR
                # frames themselves show it (an edge that landed a frame late is paired where it landed).
                def same_pair(k: int):
                    # The nearest two consecutive frames in one projector state measure the noise.
                    # Dark pairs first: a lit pair also differs by the dots moving with the face.
                    near = sorted(range(1, len(aligned)), key=lambda j: abs(j - k))
                    for want in (False, True):
                        for j in near[:6]:
                            if lit[j] == want and lit[j - 1] == want:
                                return aligned[j - 1], aligned[j]
                    return None

                # A power change that landed inside the window (a camera's latency) must not mix
                # powers within the session's pairs: lit frames at another power are left out.
                power = [fs.ir.metadata.projector_power_mw if fs.ir is not None else None for fs in sets]
                lit_power = [p for p, on in zip(power, lit, strict=True) if on and p]
                usual = float(np.median(lit_power)) if lit_power else None

                def usual_power(k: int) -> bool:
                    p = power[k]
                    return usual is None or p is None or same_power(p, usual)

                for k in range(1, len(aligned)):
                    if lit[k] == lit[k - 1]:
                        continue
                    on, off = (k, k - 1) if lit[k] else (k - 1, k)
                    face = faces[on]
                    if face is not None and usual_power(on):
                        lights.append(projector_light(aligned[on], aligned[off], face, same_pair(k)))
            motion = motion_from_steps(self.cues, sel.motion_steps(self.cues, self.cue_frames, self.motion_steps))
            motion["motion_snr"] = motion_snr(self.cues, sel.light_runs(self.cue_frames), len(sets))
            notes.extend(sel.notes)
            s = score(self.cues, projector_on=[lit[k] for k in self.cue_frames] if lit is not None else None,
                      projector_seen=projector_seen,
                      projector=ProjectorLight.median(lights) if lights else None,
                      motion=motion)
            notes.extend(s.notes)
            detectors = s.as_dict()
            fused = fuse(detectors)
            result = decide(fused, self.thresholds)
            if s.material_drowned:
                # Unmeasured is not evidence of life, nor of an attack: the score stays below any
                # live threshold and, unless another detector already says attack, the verdict
                # is inconclusive (the person is asked to retry out of direct light).
                result = "attack" if result == "attack" else "inconclusive"
                fused = min(fused, DROWNED_SCORE_CAP)
            if ch_result is not None and not ch_result.passed:     # (set exactly when there is a challenge)
                if ch_result.unmeasurable:
                    # Too weak to tell (bright room) is not a contradiction: never live, retry elsewhere.
                    result = "attack" if result == "attack" else "inconclusive"
                    fused = min(fused, DROWNED_SCORE_CAP)
                else:
                    result, fused = "attack", 0.0
                notes.append("challenge failed: " + ch_result.detail)
            if injection["suspicious"]:
                result, fused = "attack", 0.0
                notes.append("stream does not look like a physical sensor streaming now")
            verdict = LivenessVerdict(result, fused, detectors, digests, model_versions(), challenge is not None,
                                      ch_dict, injection, notes, s.cues)
        n = max(len(sets), 1)
        finish_ms = (time.perf_counter() - t0) * 1000
        liveness_ms = self.ms["liveness"] + finish_ms
        total = self.ms["align"] + self.ms["quality"] + liveness_ms
        timing = {"align": self.ms["align"], "quality": self.ms["quality"], "liveness": liveness_ms,
                  "finish": finish_ms, "total": total, "per_frameset": total / n}
        skew = max((fs.skew_ms for fs in sets), default=float("nan"))
        best = sel.best(self.ranks)
        evidence = sel.evidence(challenge, sets, self.energies, digests, faces) if challenge is not None else None
        return JudgeResult(verdict, self.last_report, skew, timing, len(sets),
                           best[1] if best else None, best[2] if best else None, evidence)

    def _selection(self) -> FrameSelection:
        boxes = [f.detection.bbox for f in self.faces if f is not None]
        box = evidence_box(boxes, self.sets[0].color.pixels.shape if self.sets and self.sets[0].color is not None
                           else None)
        return FrameSelection(box, [face_grid(fs.color.pixels, box) if box is not None and fs.color is not None
                                    else None for fs in self.sets], self.energies)


class FrameSelection:
    """Which frames of a challenged window carry which cue, and what the server gets of them.

    * The face's colour for the illumination challenge is read from one fixed box (the median face
      box of the window, shrunk to the skin): the same pixels every frame, so the face's texture
      does not move in and out of the measurement with each frame's landmarks.
    * Depth geometry, the cross-modal cues and dot sharpness need the projector: under the
      projector challenge they use the frames the IR energies show lit (an unlit D4xx frame under
      LED light has almost no depth on skin). Material pairs are consecutive frames the IR shows
      in opposite states, wherever each edge landed.
    * The probe's crops come preferably from a frame the screen lit neutrally (before the first
      colour landed, or under black or white), so a colour cast does not reach the template."""

    def __init__(self, box: tuple[int, int, int, int] | None, grids: list[np.ndarray | None],
                 energies: list[float]):
        self.box = box
        self.grids = grids
        self.energies = energies
        self.rgb = face_response([g.reshape(-1, 3) if g is not None else np.full((GRID * GRID, 3), np.nan)
                                  for g in grids])
        self.lit: list[bool] | None = None
        self.neutral: list[bool] | None = None
        self.shown: list[int | None] | None = None        # the screen colour each frame showed, if certain
        self.notes: list[str] = []

    def settle(self, challenge: Challenge, result: ChallengeResult) -> None:
        n = len(self.grids)
        if Kind.PROJECTOR in challenge.kinds:
            self.lit = [bool(v) for v in projector_states(self.energies)]
        ill = result.get(Kind.ILLUMINATION)
        if ill is not None and challenge.steps:
            lag = ill.lag_frames
            neutral = []
            for k in range(n):
                j = k - lag
                c = challenge.colour_at(j) if j >= 0 else None
                # Before the first step lands the screen shows the app's own picture; black and white
                # add no colour. The frame after an edge may still show the previous colour.
                prev = challenge.colour_at(j - 1) if j >= 1 else None
                neutral.append(j < 0 or (c in ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)) and (prev is None or prev == c)))
            self.neutral = neutral
            shown: list[int | None] = []
            for k in range(n):
                j = k - lag
                c, prev = (challenge.colour_at(j), challenge.colour_at(j - 1)) if j >= 1 else (None, None)
                shown.append(PALETTE.index(c) if c is not None and c == prev else None)
            self.shown = shown

    def motion_steps(self, cues: list[FrameCues], frames: list[int],
                     steps: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """Landmark motion between frames the screen lit alike. The face models place landmarks a
        little differently under another colour of light (a head model under the illumination
        sequence "moved" 0.005 IPD, as much as a still person); so under the illumination challenge
        frames are compared in pairs shown the same colour, frames at an edge (either colour) left
        out, and only pairs at least a third of the window apart count (a living face's drift shows
        over time; the sequence repeats its first colour at its end for this). Without
        the illumination challenge, or without such pairs, ``steps`` (every frame against the
        first) as measured."""
        shown = self.shown
        if shown is None:
            return steps
        groups: dict[int, list[tuple[int, int]]] = {}
        for i, k in enumerate(frames):
            code = shown[k] if k < len(shown) else None
            if code is not None:
                groups.setdefault(code, []).append((i, k))
        out = [motion_step(cues[i].landmarks, cues[j].landmarks)
               for members in groups.values() for a, (i, k) in enumerate(members) for j, m in members[a + 1:]
               if 3 * (m - k) >= len(shown)]
        if len(out) < 3:
            self.notes.append("motion measured across the screen's colours (too few frames under one colour "
                              "a third of the window apart)")
            return steps
        return out

    def light_runs(self, frames: list[int]) -> list[Run]:
        """The window's runs for ``motion_snr``: frames in a row the screen showed one colour
        (the frames at an edge left out), under the illumination challenge; otherwise the whole
        window is under one light, and its first and last thirds are the runs."""
        shown = self.shown
        if shown is None:
            return one_light_runs(frames, len(self.grids))
        runs: list[Run] = []
        for i, k in enumerate(frames):
            code = shown[k] if k < len(shown) else None
            if code is None:
                continue
            if runs and runs[-1][0] == code and runs[-1][1][-1][1] == k - 1:
                runs[-1][1].append((i, k))
            else:
                runs.append((code, [(i, k)]))
        return runs

    def best(self, ranks: list[tuple[tuple, int, FaceObservation]]) -> tuple[tuple, int, FaceObservation] | None:
        neutral = self.neutral
        def key(r: tuple[tuple, int, FaceObservation]) -> tuple:
            ok, score_, k = r[0]
            return (ok, bool(neutral[k]) if neutral is not None and k < len(neutral) else True, score_, k)
        return max(ranks, key=key, default=None)

    def evidence(self, challenge: Challenge, sets: list[FrameSet], energies: list[float], digests: list[str],
                 faces: list[FaceObservation | None]) -> dict:
        """What the server re-verifies (``hil/ingest/evidence.py``): per frameset its counters,
        timestamps, IR energy and the 4 x 4 linear colour grid of the face box."""
        frames = []
        for fs, e, d, g, f in zip(sets, energies, digests, self.grids, faces, strict=True):
            ref = fs.depth or fs.ir
            frames.append({
                "frame_counter": int(ref.frame_number) if ref is not None else 0,
                "timestamp_ms": float(ref.timestamp_ms) if ref is not None else 0.0,
                "color_frame_counter": int(fs.color.frame_number) if fs.color is not None else 0,
                "color_timestamp_ms": float(fs.color.timestamp_ms) if fs.color is not None else 0.0,
                "ir_energy": float(e) if np.isfinite(e) else 0.0,
                "face_grid": [round(float(v), 6) for v in g.reshape(-1)] if g is not None else [],
                "digest": d, "face": f is not None})
        return {"challenges": sorted(k.value for k in challenge.kinds),
                "face_box": list(self.box) if self.box is not None else [], "frames": frames}


def judge(sets: list[FrameSet], gate: QualityGate, thresholds: VerdictThresholds, *, challenge: Challenge | None,
          notes: list[str] | None = None) -> JudgeResult:
    """Judge a whole session at once (offline analysis, the PAD bench)."""
    j = Judge(gate, thresholds, challenge=challenge, notes=notes, pool=judge_pool())
    for fs in sets:
        j.add(fs)
    return j.finish()
