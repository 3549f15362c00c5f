"""The liveness judge's fusion as it was before it worked ahead while the frames arrive: every
window-wide step at ``finish``, one face grid per frame on the window's box, every projector pair
and motion pair measured there (``agent.liveness.judge`` at the commit before). The judge now must
give the same result, to the last bit, on the same measured framesets
(``tests/liveness/test_fusion_equivalence.py``). Kept here, not in the package: nothing else runs it.
The face grid is the cell-by-cell loop the grid had then."""

from __future__ import annotations

import dataclasses
import hashlib
import time

import numpy as np

from agent.liveness.challenge import (
    _LINEAR,
    GRID,
    PALETTE,
    Challenge,
    ChallengeResult,
    Kind,
    _split_bounds,
    evidence_box,
    face_response,
    projector_states,
    verify,
)
from agent.liveness.detectors import score
from agent.liveness.features import (
    NOTHING_EXPLAINED,
    FrameCues,
    PatternFit,
    ProjectorMeasure,
    Run,
    _depth_in_both,
    _unit_metres,
    depth_noise,
    motion_from_steps,
    motion_snr,
    motion_step,
    one_light_runs,
    projector_light,
)
from agent.liveness.fusion import LivenessVerdict, VerdictThresholds, decide, fuse
from agent.liveness.judge import (
    DROWNED_SCORE_CAP,
    FLICKER,
    FLOOD_COLOUR_STEP,
    FLOOD_FRAMES,
    FLOOD_LINE_DN,
    FLOOD_PAIR_REACH,
    FLOOD_RAMP,
    FLOOD_REACH,
    FLOOD_RISE_DN,
    MIN_FACE_FRAMES,
    Judge,
    JudgeResult,
    injection_signals,
    lit_when_drowned,
    model_versions,
)
from agent.liveness.power import same_power
from agent.pipeline.align import AlignedFrameSet, scratch, to_metres
from agent.quality import FaceObservation, QualityGate, QualityReport
from drivers.frame import FrameSet


def face_grid(bgr: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in box)
    region = _LINEAR[bgr[y0:y1, x0:x1]]
    out = np.empty((GRID, GRID, 3), np.float64)
    rows, cols = _split_bounds(region.shape[0], GRID), _split_bounds(region.shape[1], GRID)
    for i in range(GRID):
        band = region[rows[i]:rows[i + 1]]
        for j in range(GRID):
            out[i, j] = band[:, cols[j]:cols[j + 1]].reshape(-1, 3).mean(axis=0)[::-1]
    return out


def background_alone(sets: list[FrameSet], skins: list) -> list[float]:
    """Each frameset's IR mean outside one rectangle covering every skin patch's box of the window (NaN
    without IR; the whole frame without skin). Written apart from ``judge.background_levels``."""
    boxes = [s.box for s in skins if s is not None]
    out = []
    for fs in sets:
        if fs.ir is None:
            out.append(float("nan"))
            continue
        ir = fs.ir.pixels.astype(np.float64)
        keep = np.ones(ir.shape, bool)
        if boxes:
            h, w = ir.shape
            y0 = min(0 if b[0].start is None else b[0].start for b in boxes)
            y1 = max(h if b[0].stop is None else b[0].stop for b in boxes)
            x0 = min(0 if b[1].start is None else b[1].start for b in boxes)
            x1 = max(w if b[1].stop is None else b[1].stop for b in boxes)
            keep[y0:y1, x0:x1] = False
        out.append(float(ir[keep].mean()) if keep.any() else float("nan"))
    return out


def colour_alone(sets: list[FrameSet], boxes: list) -> list:
    """Each frameset's colour background, written apart from ``judge.colour_levels``: per channel, the mean of
    the pixels outside one rectangle round every face box (x0, y0, x1, y1), over 255, to the power 2.2, over the
    stated exposure times gain (each 1 when not stated); None without a colour image, outside pixels or a
    positive scale."""
    out: list = []
    for fs in sets:
        c = fs.color
        if c is None or c.pixels.ndim != 3:
            out.append(None)
            continue
        h, w = c.pixels.shape[:2]
        inside = np.zeros((h, w), bool)
        if boxes:
            x0 = max(0, int(min(float(b[0]) for b in boxes)))
            y0 = max(0, int(min(float(b[1]) for b in boxes)))
            inside[y0:int(max(float(b[3]) for b in boxes)) + 1, x0:int(max(float(b[2]) for b in boxes)) + 1] = True
        if inside.all():
            out.append(None)
            continue
        scale = (c.metadata.exposure_us or 1.0) * (c.metadata.gain or 1.0)
        rgb = c.pixels[~inside].astype(np.float64)
        out.append((rgb.mean(axis=0) / 255.0) ** 2.2 / scale if scale > 0 else None)
    return out


def flood_frames_alone(levels: list[float], lit: list[bool], colours: list | None = None) -> list[bool]:
    """A frame is flooded when its level stands over the least level of up to ``FLOOD_REACH`` frames of its own
    projector state on each side (walking outwards, frames without a level skipped) by more than
    ``FLOOD_RISE_DN``, or with such frames on both sides (``FLOOD_RAMP``), over the lowest line through one on
    each side that the others bear out (``_ir_flooded_alone``); never without a level or without such a
    neighbour. With ``colours`` (flood30): a flooded
    frame whose colour differs by more than ``FLOOD_COLOUR_STEP`` (relative, on some channel) from the nearest
    unflooded frame with a colour on each side it has one is a visible light's leak, not flooded."""
    flagged = _ir_flooded_alone(levels, lit)
    if colours is None:
        return flagged
    clear = [j for j, c in enumerate(colours) if c is not None and not flagged[j]]

    def apart(a, b) -> bool:
        return max(abs(x - y) / max(x, y, 1e-12) for x, y in zip(a, b, strict=True)) > FLOOD_COLOUR_STEP

    out = list(flagged)
    for k, ck in enumerate(colours):
        if not flagged[k] or ck is None:
            continue
        before, after = [j for j in clear if j < k], [j for j in clear if j > k]
        sides = before[-1:] + after[:1]
        if sides and all(apart(ck, colours[j]) for j in sides):
            out[k] = False
    return out


def _ir_flooded_alone(levels: list[float], lit: list[bool]) -> list[bool]:
    """counter30's IR rule of :func:`flood_frames_alone`, before the colour; with ``FLOOD_RAMP`` (door31) a frame
    with neighbours on both sides is measured against the lowest straight line through one of them on each
    side (its value at the frame) that no neighbour stands under by more than ``FLOOD_LINE_DN`` and a third
    neighbour stands on within it, not their least level (their least without such a line)."""
    out = []
    for k, level in enumerate(levels):
        if not np.isfinite(level):
            out.append(False)
            continue
        sides: dict[int, list[tuple[int, float]]] = {-1: [], 1: []}
        for step in (-1, 1):
            j = k + step
            while 0 <= j < len(levels) and len(sides[step]) < FLOOD_REACH:
                if lit[j] == lit[k] and np.isfinite(levels[j]):
                    sides[step].append((j, levels[j]))
                j += step
        near = sides[-1] + sides[1]
        if not near:
            out.append(False)
            continue
        floor = min(v for _, v in near)
        if FLOOD_RAMP and sides[-1] and sides[1]:
            lines = []
            for i, a in sides[-1]:
                for j, b in sides[1]:
                    fit = np.polyfit([i, j], [a, b], 1)
                    gaps = np.array([v for _, v in near]) - np.polyval(fit, [m for m, _ in near])
                    others = [g for (m, _), g in zip(near, gaps, strict=True) if m not in (i, j)]
                    if gaps.min() >= -FLOOD_LINE_DN and any(abs(g) <= FLOOD_LINE_DN for g in others):
                        lines.append(float(np.polyval(fit, k)))
            floor = min(lines, default=floor)
        out.append(level - floor > FLOOD_RISE_DN)
    return out


def noise_pair_alone(lit: list[bool], k: int, flooded: list[bool] | None, gap: int = 1):
    """Two frames ``gap`` apart in one projector state nearest edge ``k`` (the later one among the six nearest
    of frames gap .. n - 1 within 6 of k, earlier first at a tie; unlit pairs before lit ones), neither
    flooded."""
    n = len(lit)
    later = [j for j in range(gap, n) if abs(j - k) <= 6]
    later.sort(key=lambda j: (abs(j - k), j))
    for want in (False, True):
        for j in later[:6]:
            i = j - gap
            if lit[i] is want and lit[j] is want and not (flooded and (flooded[i] or flooded[j])):
                return i, j
    return None


def flood_pairs_alone(lit: list[bool], flooded: list[bool]):
    """counter30's pairs, written apart from ``judge.flood_pairs``: per edge (projector state changed between
    k - 1 and k), its own pair with its noise pair when none of the four is flooded; its own pair with the
    nearest clear noise pair (1, else ``FLOOD_PAIR_REACH`` apart) when only the noise pair is; when the pair
    itself is, the first of (k - 2, k) and (k - 1, k + 1) whose frames lie in the edge's two runs, clear,
    with a clear noise pair as far apart, unless that pair was taken already. Returns (pairs, edges touched)."""
    lit = [bool(x) for x in lit]
    n = len(lit)
    out: list = []
    touched = 0
    for k in range(1, n):
        if lit[k] == lit[k - 1]:
            continue
        on, off = (k, k - 1) if lit[k] else (k - 1, k)
        own = noise_pair_alone(lit, k, None)
        frames = [on, off] + (list(own) if own is not None else [])
        if not any(flooded[f] for f in frames):
            out.append((on, off, own))
            continue
        touched += 1
        if not flooded[on] and not flooded[off]:
            quiet = noise_pair_alone(lit, k, flooded) or noise_pair_alone(lit, k, flooded, FLOOD_PAIR_REACH)
            if quiet is not None:
                out.append((on, off, quiet))
            continue
        for before, after in ((k - FLOOD_PAIR_REACH, k), (k - 1, k - 1 + FLOOD_PAIR_REACH)):
            if before < 0 or after >= n:
                continue
            runs = [lit[m] == lit[k - 1] for m in range(before, k)] + [lit[m] == lit[k] for m in range(k, after + 1)]
            if not all(runs):
                continue
            if flooded[before] or flooded[after]:
                continue
            got = (after, before) if lit[after] else (before, after)
            quiet = noise_pair_alone(lit, k, flooded, after - before)
            if quiet is not None and got not in [(a, b) for a, b, _ in out]:
                out.append((*got, quiet))
            break
    return out, touched


class ReferenceJudge:
    """The judge's fold and fusion as they were: ``fold`` each measured frameset (what
    ``agent.liveness.judge.Judge`` measured for it) in arrival order, then ``finish``."""

    def __init__(self, gate: QualityGate, thresholds: VerdictThresholds, *, challenge: Challenge | None,
                 notes: list[str] | None = None):
        self.gate, self.thresholds, self.challenge = gate, thresholds, challenge
        self.notes = list(notes or [])
        self.sets: list[FrameSet] = []
        self.aligned: list[AlignedFrameSet] = []
        self.faces: list[FaceObservation | None] = []
        self.skins: list = []                    # each frameset's material skin as measured (a flood's background)
        self.cues: list[FrameCues] = []
        self.motion_steps: list[tuple[float, float]] = []
        self.cue_frames: list[int] = []          # the frameset index of each entry of ``cues``
        self.energies: list[float] = []          # per frameset (NaN without an IR frame)
        self.digests: list[str] = []
        self.last_report: QualityReport | None = None
        self.ranks: list[tuple[tuple, int, FaceObservation]] = []
        self.ms = {"align": 0.0, "quality": 0.0, "liveness": 0.0}
        gate.reset()

    def fold(self, fs: FrameSet, r) -> None:
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
        self.skins.append(r.skin)
        self.energies.append(r.energy if r.energy is not None else float("nan"))
        self.digests.append(r.digest)
        self.sets.append(fs)
        self.aligned.append(r.aligned)
        for name, v in zip(("align", "quality", "liveness"), r.ms, strict=True):
            self.ms[name] += v

    def finish(self) -> JudgeResult:
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
            if FLICKER:
                # The finish-time rules of the room's light (flicker23's contradictions, pwm25's unlit
                # light), as the judge applies them to the window's own grids, IR and energies.
                ch_result = Judge._flicker(self, challenge, ch_result, sel)  # type: ignore[arg-type]
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
            flood_edges = 0
            drowned = lit_when_drowned(ch_result.get(Kind.PROJECTOR) if ch_result is not None else None, sets)
            if drowned is not None:
                sel.lit = drowned
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

                boxes = [f.detection.bbox for f in self.faces if f is not None]
                flooded = None
                if FLOOD_FRAMES:
                    levels = background_alone(sets, self.skins)
                    flooded = flood_frames_alone(levels, lit)
                    if any(flooded):
                        flooded = flood_frames_alone(levels, lit, colour_alone(sets, boxes))
                if flooded is None or not any(flooded):
                    for k in range(1, len(aligned)):
                        if lit[k] == lit[k - 1]:
                            continue
                        on, off = (k, k - 1) if lit[k] else (k - 1, k)
                        face = faces[on]
                        if face is not None and usual_power(on):
                            lights.append(projector_light(aligned[on], aligned[off], face, same_pair(k)))
                else:
                    # A foreign flood's frames read in no pair (counter30): the judge's own pairs then.
                    pairs, flood_edges = flood_pairs_alone(lit, flooded)
                    for on, off, q in pairs:
                        face = faces[on]
                        if face is not None and usual_power(on):
                            lights.append(projector_light(aligned[on], aligned[off], face,
                                                          (aligned[q[0]], aligned[q[1]]) if q is not None else None))
                    if flood_edges:
                        notes.append(f"a foreign NIR light lit {sum(flooded)} of the window's IR frames over the "
                                     f"projector's schedule ({flood_edges} of its on-off pairs touched): those frames "
                                     f"were read in no pair")
            motion = motion_from_steps(self.cues, sel.motion_steps(self.cues, self.cue_frames, self.motion_steps))
            motion["motion_snr"] = motion_snr(self.cues, sel.light_runs(self.cue_frames), len(sets))
            notes.extend(sel.notes)
            s = score(self.cues, projector_on=[lit[k] for k in self.cue_frames] if lit is not None else None,
                      projector_seen=projector_seen,
                      projector=(dataclasses.replace(ProjectorMeasure.pool(lights), flood_edges=flood_edges)
                                 if lights or flood_edges else None),
                      motion=motion)
            notes.extend(s.notes)
            detectors = s.as_dict()
            fused = min(fuse(detectors), s.material_bound)
            result = decide(fused, self.thresholds)
            if s.unmeasured:
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

    def _selection(self) -> ReferenceSelection:
        boxes = [f.detection.bbox for f in self.faces if f is not None]
        box = evidence_box(boxes, self.sets[0].color.pixels.shape if self.sets and self.sets[0].color is not None
                           else None)
        return ReferenceSelection(box, [face_grid(fs.color.pixels, box) if box is not None and fs.color is not None
                                    else None for fs in self.sets], self.energies)


class ReferenceSelection:
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
            # A clipped IR image's lit frames are its low ones (``SequenceResult.inverted``: the
            # schedule followed the wrong way round): the cues that need the projector are read on
            # them. That window is not measurable, so this decides only attack or inconclusive.
            p = result.get(Kind.PROJECTOR)
            flip = p is not None and p.inverted
            self.lit = [bool(v) != flip for v in projector_states(self.energies)]
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


def depth_noise_on_metres(a: np.ndarray, b: np.ndarray) -> float:
    """``features.depth_noise`` as it read the last two framesets before (until perf24): on their
    whole frames' metres (float32, NaN where no depth), ``a`` the earlier. Its own lines."""
    both = np.isfinite(a) & np.isfinite(b)
    far = both & (a > np.median(a[both][::7]) + 0.2) if both.any() else both
    if far.sum() < 200:
        far = both
    if far.sum() < 50:
        return float("nan")
    z = a[far]
    d = (a[far] - b[far]) / np.sqrt(2)
    return float(np.std(d / (z * z)) * 1000)



def depth_noise_masked(aligned_frames: list[AlignedFrameSet]) -> float:
    """``features.depth_noise`` as it read the last two framesets' units before perf30 (perf24-29),
    line for line: the masks counted by ``sum``, each frame's metres read through its mask (the
    bench's ``unshrunk`` judging, and the identity test); the masks made as ``depth_noise`` makes them
    (``_depth_in_both``: perf30 did not change them)."""
    if len(aligned_frames) < 2:
        return float("nan")
    fa, fb = aligned_frames[-2], aligned_frames[-1]
    ua, ub, both = _depth_in_both(fa, fb)
    far = both
    if both.any():
        threshold = np.median(to_metres(ua[both][::7], fa.depth_scale)) + 0.2
        above = np.flatnonzero(_unit_metres(fa.depth_scale) > threshold)
        far = scratch("features.depth_noise.far", ua.shape, np.bool_)
        if above.size:
            np.greater_equal(ua, np.uint16(above[0]), out=far)
            far &= both
        else:
            far.fill(False)
    if far.sum() < 200:
        far = both
    if far.sum() < 50:
        return float("nan")
    z = fa.depth_m[far]
    d = (z - fb.depth_m[far]) / np.sqrt(2)
    return float(np.std(d / (z * z)) * 1000)

def nonnegative_fit_alone(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dotref._nonnegative_fit`` as it was until perf28: each subset of the bases solved on its own
    (``np.ix_`` and one ``np.linalg.solve`` a subset). Its own lines."""
    g = a.T @ a
    b = a.T @ y
    k = a.shape[1]
    best, best_cost = np.zeros(k), float(y @ y)
    for mask in range(1, 1 << k):
        idx = [i for i in range(k) if mask >> i & 1]
        try:
            c = np.linalg.solve(g[np.ix_(idx, idx)], b[idx])
        except np.linalg.LinAlgError:
            continue
        if (c < 0).any():
            continue
        full = np.zeros(k)
        full[idx] = c
        cost = float(y @ y - 2 * full @ b + full @ g @ full)
        if cost < best_cost:
            best, best_cost = full, cost
    return best


def match_pattern_alone(diff: np.ndarray, skin: np.ndarray, predicted: np.ndarray, covered: np.ndarray,
                        noise_diff: np.ndarray | None = None, noise_scale: float = 0.0) -> tuple[float, float]:
    """``dotref.match_pattern`` as it read a pair before (until perf26): the difference's local mean,
    its relative bands and the noise pair's worked out again for every pattern, the non-negative fit
    a subset at a time (until perf28). Its own lines; (unmatched, covered share)."""
    import cv2

    from agent.liveness.dotref import FIT_SIGMAS, LOCAL_SIGMA, MIN_COVERED, MIN_LOCAL_DN, _bands
    nan = float("nan")
    covered_share = float(covered[skin].mean()) if skin.any() else 0.0
    if covered_share < MIN_COVERED:
        return nan, covered_share
    local = cv2.GaussianBlur(diff, (0, 0), LOCAL_SIGMA)
    ok = skin & covered & (local > MIN_LOCAL_DN)
    if ok.sum() < 50:
        return nan, covered_share
    n = np.where(local > MIN_LOCAL_DN, diff / np.maximum(local, MIN_LOCAL_DN), 0.0).astype(np.float32)
    bases = [predicted if s == 0.0 else cv2.GaussianBlur(predicted, (0, 0), s) for s in FIT_SIGMAS]
    a = np.stack([_bands(b)[ok] for b in bases], axis=1).astype(np.float64)
    y = _bands(n)[ok].astype(np.float64)
    coef = nonnegative_fit_alone(a, y)
    fit = a @ coef
    resid = y - fit
    noise = 0.0
    if noise_diff is not None:
        nn = np.where(local > MIN_LOCAL_DN, noise_diff / np.maximum(local, MIN_LOCAL_DN), 0.0).astype(np.float32)
        noise = noise_scale * float(np.var(_bands(nn)[ok]))
    explained_energy = float(np.var(fit))
    unmatched = max(float(np.var(resid)) - noise, 0.0) / explained_energy if explained_energy > 0 else float("inf")
    return unmatched, covered_share


def pattern_reading_alone(diff: np.ndarray, skin: np.ndarray,
                          predicted: tuple[np.ndarray, np.ndarray] | PatternFit | None,
                          noise_diff: np.ndarray | None, noise_scale: float) -> float:
    """``features._pattern_reading`` as it was before perf26: every shift's fit on its own
    (``match_pattern_alone``), the shifts as the agent makes them (of a ``PatternFit`` only its
    pattern and coverage are read: nothing it worked out)."""
    from agent.liveness.features import shifted_patterns
    if predicted is None:
        return float("inf")
    if isinstance(predicted, PatternFit):
        predicted = predicted.pattern, predicted.covered
    best = None
    nothing = False
    for p, c in shifted_patterns(*predicted):
        unmatched, _ = match_pattern_alone(diff, skin, p, c, noise_diff, noise_scale)
        if np.isfinite(unmatched) and (best is None or unmatched < best):
            best = unmatched
        nothing |= unmatched == float("inf")
    if best is not None:
        return best
    return NOTHING_EXPLAINED if nothing else float("inf")      # (unit33: a fit that explained nothing)


def flood_floors_before33(levels: list[float], lit: list[bool]) -> list[float | None]:
    """perf32's ``judge.flood_frames`` IR rule frame by frame in Python (``_flood_floor``), before perf33 worked
    every frame's floor out at once (``judge._flood_floors``): each frame's floor, None for a frame the rule
    reads no floor for (no level, or no frame of its state with a level on either side). The judge's floors
    must be these to the bit."""
    def floor(k: int, before: list[int], after: list[int]) -> float:
        least = min(levels[j] for j in before + after)
        if not (FLOOD_RAMP and before and after):
            return least

        def line(i: int, j: int, m: int) -> float:
            return levels[i] + (levels[j] - levels[i]) * (m - i) / (j - i)
        near = before + after
        held = [line(i, j, k) for i in before for j in after
                if all(levels[m] >= line(i, j, m) - FLOOD_LINE_DN for m in near)
                and any(abs(levels[m] - line(i, j, m)) <= FLOOD_LINE_DN for m in near if m not in (i, j))]
        return min(held, default=least)
    n = len(levels)
    out: list[float | None] = []
    for k in range(n):
        same = [j for j in range(n) if j != k and lit[j] == lit[k] and np.isfinite(levels[j])]
        before, after = [j for j in same if j < k][-FLOOD_REACH:], [j for j in same if j > k][:FLOOD_REACH]
        out.append(floor(k, before, after) if np.isfinite(levels[k]) and (before or after) else None)
    return out


def flood_frames_before33(levels: list[float], lit: list[bool], colour: list | None = None) -> list[bool]:
    """``judge.flood_frames`` as perf32 ran it: the IR floors frame by frame (``flood_floors_before33``), then the
    colour's check (``judge._colour_cleared``, unchanged). The bench's reference (``bench_finish_cpu``'s
    ``before33``)."""
    from agent.liveness.judge import _colour_cleared
    flags = [f is not None and levels[k] > f + FLOOD_RISE_DN for k, f in enumerate(flood_floors_before33(levels, lit))]
    return _colour_cleared(flags, colour)
