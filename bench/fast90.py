"""Issue 20, step 1 of the fast mode: what the challenges and the judge do when depth/IR run at
90 fps during the window while colour stays at 30 fps. A measurement only: nothing in the daemon,
the judge or the challenge changes (``python -m bench.measure_digest`` is main's).

``python -m bench.fast90 PART [N]`` prints JSON lines. PART:

* ``pairing`` — how the sync module pairs a 90 fps depth/IR stream with 30 fps colour today, against
  the pairing this bench uses (below).
* ``timing`` — blind pass and genuine pass at 90 fps windows of 32 and 48 framesets, the emitter's
  latency and jitter kept in milliseconds (N: blind trials per row, default 20000; genuine windows
  per condition N / 5).
* ``summary FILE`` — the ``judge`` part's lines summed up per species and rate.
* ``colour60`` — the illumination challenge with colour at 60 fps for the window (blind and genuine
  pass at 90 fps windows of 32 and 48 framesets, the screen's lag kept in ms).
* ``judge [N] [at=FPSxFRAMES,...] [attacks=M] [species=S,...]`` — rendered sessions of the **train**
  family (never held-out, never test): the same presentations judged at 30 fps (32 framesets) and
  at 90 fps (32 and 48 framesets), or at the rates and windows ``at=`` names (``30x24,30x32``: 30 fps,
  24 and 32 framesets), each detector's score and the cues behind the motion detector, verdicts, the
  challenge's outcome, and the judge's CPU per frameset (N: live presentations, default 8; attacks
  M, N / 2 by default, of each of ``head_model``, ``mask`` and ``print``; ``species=``: those
  species alone).

**Pairing at 90 fps (this bench's decision).** A frameset is one depth/IR tick (depth and IR of
the same frame number: one imager pair, one exposure) with the newest colour frame captured at
most one colour period (33.3 ms) before it: "within one frame" of the slower stream, formed as
soon as the tick is whole. So each colour frame serves up to three consecutive framesets. Pairing
each tick with the *nearest* colour frame instead (skew under 16.7 ms) makes a tick wait up to two
ticks for the colour frame after it; the window sends the projector's commands as framesets
arrive, so that wait quantised the IR's on/off to the colour clock (runs of three ticks, measured). The sync module
today (``FrameSetMatcher`` at the slowest stream's rate) instead uses each colour frame once and
drops two depth ticks in three: 30 framesets a second, nothing gained (``pairing`` shows it).

**Emitter timing in milliseconds.** A profile's ``projector_latency_frames`` and
``projector_jitter`` are in frames of its 30 fps mode: the D435's 1 frame is 33.3 ms, and its jitter
is a 5 % chance of one more 30 fps frame (33.3 ms). At 90 fps (11.1 ms a frame) the same emitter
lands 3 frames after the command, and with the jitter's chance 6. The challenge itself stays in
framesets (runs of 2–6, an edge tolerated one frameset late, lag 0–3 framesets), as the verifier
has it today. The sim's own jitter adds one tick whatever the rate, so rendered 90 fps sessions
run at latency 3 without jitter and the jitter's effect comes from the timing model
(``genuine_rate``, as ``challenge_stats`` does at 30 fps).

**The screen's colours stay on the colour clock.** The illumination challenge is measured on colour
frames; at 30 fps colour a window of 32 (48) framesets at 90 fps holds 11 (16) colour frames, so
its figures are those of an 11- (16-) frame illumination window at 30 fps.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from agent.liveness.challenge import Challenge, Kind
from agent.pipeline.frames import FramesetReader
from bench import challenge_stats as cs
from drivers.frame import Frame, FrameSet, StreamKind

FAST_FPS = 90
COLOR_FPS = 30
FAST_MODE = "640x480@90"          # the D435/D415's 640x480 at 90 fps: the detectors' own geometry
WINDOWS = (32, 48)
# The emitter of the train family's cameras (drivers/sim/profiles.py): latency 1 frame of 30 fps.
LATENCY_MS = 1000.0 / 30
TICK_MS = 1000.0 / FAST_FPS


def ms_to_ticks(ms: float, fps: float) -> int:
    return int(round(ms * fps / 1000.0))


def colour_frames(framesets: int, fps: float = FAST_FPS, color_fps: float = COLOR_FPS) -> int:
    """Colour frames a window of ``framesets`` depth ticks spans (each tick's nearest colour frame)."""
    return int(math.floor(framesets * color_fps / fps + 0.5))


# -- pairing ----------------------------------------------------------------------------------------

class TickReader(FramesetReader):
    """Framesets at the depth/IR rate, each formed the moment its depth tick is whole (depth and IR
    of one frame number), with the newest colour frame captured no more than one colour period
    before it: up to three framesets share a colour frame, and none waits for the next colour
    frame (a wait of up to two ticks that would also delay the projector's commands, which the
    window sends as each frameset arrives: with that wait the IR showed the schedule in runs of
    three ticks, quantised to the colour clock)."""

    def __init__(self, camera, **kw: Any):
        super().__init__(camera, **kw)
        rates = {p.kind: p.fps for p in camera.profiles()}
        self.color_period_ms = 1000.0 / rates[StreamKind.COLOR]
        self._ticks: dict[int, dict[StreamKind, Frame]] = {}
        self._colour: Frame | None = None
        self.dropped = 0

    def _whole(self, num: int) -> FrameSet | None:
        tick = self._ticks[num]
        if StreamKind.DEPTH not in tick or StreamKind.IR not in tick:
            return None
        del self._ticks[num]
        for old in [k for k in self._ticks if k < num]:      # a tick whose other half never came
            del self._ticks[old]
            self.dropped += 1
        t = tick[StreamKind.DEPTH].timestamp_ms
        c = self._colour
        if c is None or not 0 <= t - c.timestamp_ms < self.color_period_ms:
            self.dropped += 1
            return None
        return FrameSet({StreamKind.DEPTH: tick[StreamKind.DEPTH], StreamKind.IR: tick[StreamKind.IR],
                         StreamKind.COLOR: c}, self.matcher.extrinsics, skew_ms=t - c.timestamp_ms)

    def _complete(self, frame: Frame) -> Iterable[FrameSet]:
        if frame.stream is StreamKind.COLOR:
            self._colour = frame
            return ()
        self._ticks.setdefault(frame.frame_number, {})[frame.stream] = frame
        fs = self._whole(frame.frame_number)
        return () if fs is None else (fs,)


def pairing_rows(n: int = 30) -> list[dict]:
    import drivers
    rows = []
    for label, cls in (("sync module (FrameSetMatcher at the slowest rate)", FramesetReader),
                       ("newest colour frame per depth tick (this bench)", TickReader)):
        cam = drivers.open(f"sim://?realtime=0&seed=3&depth_mode={FAST_MODE}&color_fps={COLOR_FPS}")
        with cam:
            r = cls(cam)
            sets = list(r.take(n, timeout_s=60))
        ticks = [fs.depth.frame_number for fs in sets if fs.depth is not None]
        colours = [fs.color.frame_number for fs in sets if fs.color is not None]
        span_ms = sets[-1].depth.timestamp_ms - sets[0].depth.timestamp_ms  # type: ignore[union-attr]
        rows.append({"pairing": label, "framesets": n, "depth_ticks_spanned": ticks[-1] - ticks[0] + 1,
                     "window_ms": round(span_ms + TICK_MS, 1), "distinct_colour_frames": len(set(colours)),
                     "skew_ms_median": round(float(np.median([fs.skew_ms for fs in sets])), 1),
                     "skew_ms_max": round(max(fs.skew_ms for fs in sets), 1)})
    return rows


# -- timing (the challenges' statistics) -----------------------------------------------------------

def _late_landings(states: np.ndarray, latency: int, late_by: int, jitter: float,
                   rng: np.random.Generator) -> np.ndarray:
    """``challenge_stats._landings`` with a late edge ``late_by`` frames late (the emitter's 33 ms at
    90 fps is 3 frames), commands never overtaking each other."""
    n = len(states)
    issued = [0] + [k for k in range(1, n) if np.any(states[k] != states[k - 1])]
    eff: list[int] = []
    for k in issued:
        e = k + latency + (late_by if rng.random() < jitter else 0)
        eff.append(max(e, eff[-1]) if eff else e)
    out = np.full(n, -1)
    j = -1
    for t in range(n):
        while j + 1 < len(eff) and eff[j + 1] <= t:
            j += 1
        out[t] = issued[j] if j >= 0 else -1
    return out


def projector_genuine(models: list[cs.SessionModel], frames: int, latency: int, late_by: int, jitter: float,
                      trials: int, seed: int = 17) -> float:
    """Share of ``trials`` windows of the projector challenge alone a genuine camera passes, its
    edges landing ``latency`` frames after the command and, with chance ``jitter``, ``late_by`` more."""
    from agent.liveness.challenge import verify
    rng = np.random.default_rng(seed)
    passed = 0
    for i in range(trials):
        m = models[i % len(models)]
        ch = Challenge.from_nonce(rng.bytes(32), frames, (Kind.PROJECTOR,))
        sched = np.array(ch.schedule)
        src = _late_landings(sched, latency, late_by, jitter, rng)
        lit = np.where(src < 0, True, sched[np.maximum(src, 0)])
        e = np.where(lit, rng.choice(m.energy_on, frames), rng.choice(m.energy_off, frames))
        passed += verify(ch, e, None).passed
    return passed / trials


def timing_rows(trials: int, models: list[cs.SessionModel], genuine_trials: int) -> list[dict]:
    rows: list[dict] = []
    target = 0.03      # % (issue 15: blind pass of both challenges together)
    blind: dict[tuple[str, int], float] = {}
    for frames in WINDOWS:
        cf = colour_frames(frames)
        for kind, n in ((Kind.PROJECTOR, frames), (Kind.ILLUMINATION, cf)):
            rate = max(cs.blind_rate(kind, n, trials, s) for s in ("rhythm", "fixed"))
            blind[(kind.value, frames)] = rate
            unit = "framesets" if kind is Kind.PROJECTOR else "colour frames"
            rows.append({"name": f"90 fps window of {frames} framesets ({frames * TICK_MS:.0f} ms): blind pass, "
                                 f"{kind.value} alone ({n} {unit})",
                         "value": 100 * rate, "unit": "%", "trials": trials,
                         "upper95_pct": 100 * cs.clopper_pearson_upper(round(rate * trials), trials),
                         "bound_pct": 100 * cs.blind_bound(kind, n, 2000)})
        both = blind[("projector", frames)] * blind[("illumination", frames)]
        rows.append({"name": f"90 fps window of {frames} framesets: blind pass, both challenges (product)",
                     "value": 100 * both, "unit": "%", "reference": target, "ratio": 100 * both / target})
    # The same statistics at 30 fps, 32 framesets (today's window), for comparison.
    ref = {k.value: max(cs.blind_rate(k, 32, trials, s) for s in ("rhythm", "fixed"))
           for k in (Kind.PROJECTOR, Kind.ILLUMINATION)}
    rows.append({"name": "30 fps window of 32 framesets (1067 ms), today: blind pass per challenge and both",
                 "value": 100 * ref["projector"] * ref["illumination"], "unit": "%", "reference": target,
                 "projector_pct": 100 * ref["projector"], "illumination_pct": 100 * ref["illumination"]})
    if not models:
        return rows
    lat90 = ms_to_ticks(LATENCY_MS, FAST_FPS)
    for camera, jitter in (("d435", 0.05), ("d415", 0.10), ("gemini335", 0.15), ("issue 15 bench", 0.20)):
        for frames, fps, latency, late_by in ((32, 30, 1, 1), (32, 90, lat90, lat90), (48, 90, lat90, lat90)):
            g = projector_genuine(models, frames, latency, late_by, jitter, genuine_trials)
            rows.append({"name": f"genuine pass, projector alone, {camera} emitter (33 ms, {jitter:.0%} chance of "
                                 f"33 ms more) at {fps} fps, {frames} framesets",
                         "value": 100 * g, "unit": "%", "reference": 99.5, "ratio": 100 * g / 99.5,
                         "trials": genuine_trials, "latency_frames": latency, "late_by_frames": late_by,
                         "lower95_pct": 100 * cs.clopper_pearson_lower(round(g * genuine_trials), genuine_trials)})
    # Issue 15's second condition: 2 frames of latency at 30 fps (67 ms: 6 frames at 90 fps).
    for frames, fps, latency in ((32, 30, 2), (32, 90, 2 * lat90), (48, 90, 2 * lat90)):
        g = projector_genuine(models, frames, latency, latency // 2, 0.0, genuine_trials)
        rows.append({"name": f"genuine pass, projector alone, 67 ms latency, no jitter, {fps} fps, {frames} framesets",
                     "value": 100 * g, "unit": "%", "reference": 99.5, "ratio": 100 * g / 99.5,
                     "trials": genuine_trials, "latency_frames": latency,
                     "lower95_pct": 100 * cs.clopper_pearson_lower(round(g * genuine_trials), genuine_trials)})
    # Sensitivity: an emitter whose late edge is one 90 fps frame late (11 ms), not a 30 fps one.
    for frames in WINDOWS:
        g = projector_genuine(models, frames, lat90, 1, 0.05, genuine_trials)
        rows.append({"name": f"genuine pass, projector alone, 33 ms latency, 5 % chance of 11 ms more, 90 fps, "
                             f"{frames} framesets (sensitivity)", "value": 100 * g, "unit": "%",
                     "trials": genuine_trials,
                     "lower95_pct": 100 * cs.clopper_pearson_lower(round(g * genuine_trials), genuine_trials)})
    for fps, frames, n in ((30, 32, 32), *((FAST_FPS, f, colour_frames(f)) for f in WINDOWS)):
        for sl, sj in ((1, 0.0), (2, 0.2), (3, 0.2)):
            got = cs.genuine_rate(models, n, 0, 0.0, genuine_trials, screen_lag=sl, screen_jitter=sj,
                                  kinds=(Kind.ILLUMINATION,))
            g = got["illumination"]
            rows.append({"name": f"genuine pass, illumination alone, screen {sl} colour frames jitter {sj:.0%}, "
                                 f"{fps} fps window of {frames} framesets ({n} colour frames)",
                         "value": 100 * g, "unit": "%", "reference": 99.5, "trials": genuine_trials,
                         "lower95_pct": 100 * cs.clopper_pearson_lower(round(g * genuine_trials), genuine_trials)})
    return rows


def illumination_genuine(models: list[cs.SessionModel], frames: int, lag: int, late_by: int, jitter: float,
                         trials: int, seed: int = 17) -> float:
    """Share of ``trials`` windows of the illumination challenge alone (``frames`` colour frames) a
    genuine screen passes: each step shows ``lag`` colour frames after its command and, with chance
    ``jitter``, ``late_by`` more (``challenge_stats.genuine_trial``'s model with a late edge of more
    than one frame). The face's response and its own light are the 30 fps sessions'."""
    from agent.liveness.challenge import verify
    rng = np.random.default_rng(seed)
    passed = 0
    for i in range(trials):
        m = models[i % len(models)]
        ch = Challenge.from_nonce(rng.bytes(32), frames, (Kind.ILLUMINATION,))
        x = ch.colours()
        src = _late_landings(x, lag, late_by, jitter, rng)
        shown = np.where((src < 0)[:, None], 0.0, x[np.maximum(src, 0)])
        own = m.base[cs._ping_pong(np.arange(frames) + int(rng.integers(0, 2 * len(m.base))), len(m.base))]
        passed += verify(ch, None, own + shown @ m.response.T).passed
    return passed / trials


def colour60_rows(trials: int, models: list[cs.SessionModel], genuine_trials: int) -> list[dict]:
    """The colour camera at 60 fps for the window (a D435/D415 offers 640x480 and 848x480 colour at
    60): the illumination challenge on 60 fps colour frames, the screen's lag kept in ms (a panel one
    30 fps frame late is two 60 fps frames late)."""
    rows: list[dict] = []
    for frames in WINDOWS:
        n = colour_frames(frames, FAST_FPS, 60)
        rate = max(cs.blind_rate(Kind.ILLUMINATION, n, trials, s) for s in ("rhythm", "fixed"))
        rows.append({"name": f"90 fps window of {frames} framesets, colour at 60 fps: blind pass, illumination alone "
                             f"({n} colour frames)", "value": 100 * rate, "unit": "%", "trials": trials,
                     "upper95_pct": 100 * cs.clopper_pearson_upper(round(rate * trials), trials)})
        for lag30, jitter in ((1, 0.0), (2, 0.2), (3, 0.2)):
            g = illumination_genuine(models, n, 2 * lag30, 2, jitter, genuine_trials)
            rows.append({"name": f"genuine pass, illumination alone, screen {lag30 * 33.3:.0f} ms late, {jitter:.0%} "
                                 f"chance of 33 ms more, colour at 60 fps, {frames} framesets ({n} colour frames)",
                         "value": 100 * g, "unit": "%", "reference": 99.5, "trials": genuine_trials,
                         "lower95_pct": 100 * cs.clopper_pearson_lower(round(g * genuine_trials), genuine_trials)})
    return rows


def measured_models(n: int) -> list[cs.SessionModel]:
    """Rendered 30 fps sessions' energies and face colours (``challenge_stats``'s genuine models)."""
    from agent.quality import QualityGate
    gate = QualityGate()
    models = []
    for i in range(n):
        q = cs.scene(i, seed=1)
        r, ch = cs.run_session(q, 32, gate)
        m = cs.model_from_evidence(q, r.evidence, ch, cs.challenge_result(r, ch)) if r.evidence else None
        if m is not None:
            models.append(m)
    return models


# -- rendered sessions, train family ---------------------------------------------------------------

def capture(cam, n: int, challenge: Challenge, gate, reader: FramesetReader, per_colour_frame: int = 1
            ) -> list[FrameSet]:
    """``agent.session.offline.capture``'s steps with a given challenge and reader: the pre-roll
    (metering, projector power, IR exposure plan; ``per_colour_frame`` times as many framesets, so
    that the colour auto-exposure gets the same colour frames as at 30 fps), then the window."""
    import itertools

    from agent.quality.metering import FaceMetering
    from agent.session import offline
    from agent.session.projector import ExposurePlan, Projector
    from agent.session.window import collect
    projector = Projector(cam)
    exposure = ExposurePlan(cam, projector)
    metering = FaceMetering(cam)
    projector.begin()
    try:
        pre = offline.PREROLL_MAX * per_colour_frame
        offline.quality_phase(reader, gate, projector, metering, pre, exposure)
        if projector.plans_power:
            projector.wait_applied(itertools.islice(reader.stream(timeout_s=60, per_frameset=True),
                                                    pre))
        planned = exposure.setting
        if planned is not None and exposure.auto is not None:
            exposure.wait_applied(itertools.islice(reader.stream(timeout_s=60, per_frameset=True),
                                                   pre))
        return collect(reader, n, challenge, projector, timeout_s=60, per_frameset=True, ir_exposure=planned)
    finally:
        metering.end()
        exposure.end()
        projector.end()


SCORED = ("depth_geometry", "cross_modal", "material", "motion", "eye_region", "life_signs")
CUES = ("motion_snr", "nonrigid_peak", "blink_drop", "projector_speckle", "projector_sharpness",
        "nose_prominence_mm", "projector_pairs")


def judge_session(query: str, fps: int, frames: int, gate) -> dict[str, Any]:
    """One train-family presentation judged with the projector challenge alone (the illumination
    challenge lives on the colour clock; its figures are the ``timing`` part's)."""
    import hashlib

    import drivers
    from agent.liveness.fusion import VerdictThresholds
    from agent.liveness.judge import judge
    if fps == FAST_FPS:
        uri = (f"sim://?{query}&depth_mode={FAST_MODE}&color_fps={COLOR_FPS}"
               f"&projector_latency={ms_to_ticks(LATENCY_MS, FAST_FPS)}&projector_jitter=0")
    else:
        uri = f"sim://?{query}"
    nonce = hashlib.sha256(b"capture-agent/bench/fast90\0" + query.encode()).digest()
    ch = Challenge.from_nonce(nonce, frames, (Kind.PROJECTOR,))
    cam = drivers.open(uri)
    with cam:
        reader = TickReader(cam) if fps == FAST_FPS else FramesetReader(cam)
        sets = capture(cam, frames, ch, gate, reader, FAST_FPS // COLOR_FPS if fps == FAST_FPS else 1)
    r = judge(sets, gate, VerdictThresholds(), challenge=ch)
    v = r.verdict
    c = (v.challenge or {}).get("projector") or {}
    span = (sets[-1].depth.timestamp_ms - sets[0].depth.timestamp_ms) if sets else 0.0  # type: ignore[union-attr]
    row = {"fps": fps, "frames": frames, "window_ms": round(span + 1000.0 / fps, 1), "verdict": v.verdict,
            "score": round(v.score, 4), "detectors": {k: round(v.detectors[k], 4) for k in SCORED if k in v.detectors},
            "cues": {k: (round(float(v.cues[k]), 4) if k in v.cues and np.isfinite(v.cues[k]) else None) for k in CUES},
            "challenge_passed": bool(c.get("passed")), "lag_frames": c.get("lag_frames"),
            "separation": c.get("separation"),
            "cpu_per_frameset_ms": round(r.timing_ms.get("cpu_per_frameset", 0.0), 2),
            "distinct_colour_frames": len({fs.color.frame_number for fs in sets if fs.color is not None})}
    if fps == FAST_FPS:
        # The same window judged on one frameset per colour frame (a 30 fps subset, no challenge):
        # the cues that come from the colour image (landmarks: motion, blinks) without the frames
        # that repeat a colour image, whose landmarks are the same and so read as no jitter at all.
        firsts: dict[int, FrameSet] = {}
        for fs in sets:
            if fs.color is not None:
                firsts.setdefault(fs.color.frame_number, fs)
        subset = list(firsts.values())
        s = judge(subset, gate, VerdictThresholds(), challenge=None).verdict
        row["colour_subset"] = {"framesets": len(subset), "verdict": s.verdict, "score": round(s.score, 4),
                                "detectors": {k: round(s.detectors[k], 4) for k in SCORED if k in s.detectors},
                                "cues": {k: (round(float(s.cues[k]), 4) if k in s.cues and np.isfinite(s.cues[k])
                                             else None) for k in CUES[:3]}}
    return row


def train_presentations(live: int, attacks: int) -> list[tuple[str, str]]:
    from drivers.sim.families import presentation_query
    out = []
    for species, n in (("live", live), ("head_model", attacks), ("mask", attacks), ("print", attacks)):
        for i in range(n):
            q = presentation_query("train", species, i)
            out.append((species, "&".join(f"{k}={v}" for k, v in q.items())))
    return out


def summary(lines: list[str]) -> list[dict]:
    """Per species and rate: verdicts, each detector's lowest and highest score, the motion cues'
    medians and ranges (the whole window and its one-frameset-per-colour-frame subset), and the CPU
    per frameset, from the ``judge`` part's JSON lines."""
    rows = [json.loads(x) for x in lines if x.strip()]
    out = []
    for species in dict.fromkeys(r["species"] for r in rows):
        for fps, frames in sorted({(r["fps"], r["frames"]) for r in rows if r["species"] == species}):
            got = [r for r in rows if r["species"] == species and r["fps"] == fps and r["frames"] == frames
                   and "verdict" in r]
            if not got:
                continue
            verdicts: dict[str, int] = {}
            for r in got:
                verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
            row: dict[str, Any] = {"species": species, "fps": fps, "frames": frames, "sessions": len(got),
                                   "verdicts": verdicts,
                                   "challenge_passed": sum(r["challenge_passed"] for r in got)}
            for d in SCORED:
                v = [r["detectors"][d] for r in got if d in r["detectors"]]
                if v:
                    row[d] = [round(min(v), 3), round(max(v), 3)]
            for c in ("motion_snr", "nonrigid_peak", "blink_drop"):
                v = [r["cues"][c] for r in got if r["cues"].get(c) is not None]
                if v:
                    row[c] = [round(min(v), 4), round(float(np.median(v)), 4), round(max(v), 4)]
            sub = [r["colour_subset"] for r in got if "colour_subset" in r]
            if sub:
                v = [x["cues"]["motion_snr"] for x in sub if x["cues"].get("motion_snr") is not None]
                m = [x["detectors"]["motion"] for x in sub]
                row["subset_motion_snr"] = [round(min(v), 3), round(float(np.median(v)), 3), round(max(v), 3)]
                row["subset_motion"] = [round(min(m), 3), round(max(m), 3)]
            row["cpu_per_frameset_ms_median"] = round(float(np.median([r["cpu_per_frameset_ms"] for r in got])), 1)
            out.append(row)
    return out


# The judge part's rates and windows (fps, framesets) unless ``at=`` names others.
JUDGE_AT = ((30, 32), (FAST_FPS, 32), (FAST_FPS, 48))


def _rate_frames(text: str) -> tuple[int, int]:
    """``30x24`` -> (30, 24): a rate (30 or ``FAST_FPS``) and a window in framesets."""
    fps, frames = (int(x) for x in text.split("x", 1))
    if fps not in (30, FAST_FPS) or frames < 1:
        raise SystemExit(f"at=: a rate of 30 or {FAST_FPS} fps and a window of framesets, not {text!r}")
    return fps, frames


def _main(argv: list[str]) -> int:
    part = argv[0] if argv else "timing"
    n = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else None
    t0 = time.time()

    def out(row: dict) -> None:
        print(json.dumps({**row, "elapsed_s": round(time.time() - t0, 1)}), flush=True)
    if part == "pairing":
        for row in pairing_rows():
            out(row)
        return 0
    if part == "timing":
        trials = n or 20000
        models = measured_models(cs.env_int("BENCH_GENUINE_MODELS", 8))
        out({"name": "genuine models (30 fps rendered sessions, both challenges passed)", "value": len(models)})
        for row in timing_rows(trials, models, max(trials // 5, 200)):
            out(row)
        return 0
    if part == "summary":
        with open(argv[1]) as fh:
            for row in summary(fh.readlines()):
                print(json.dumps(row))
        return 0
    if part == "colour60":
        trials = n or 20000
        models = measured_models(cs.env_int("BENCH_GENUINE_MODELS", 8))
        for row in colour60_rows(trials, models, max(trials // 5, 200)):
            out(row)
        return 0
    if part == "judge":
        from agent.quality import QualityGate
        gate = QualityGate()
        live = n or 8
        opts = dict(a.split("=", 1) for a in argv[2:] if "=" in a)
        at = tuple(_rate_frames(x) for x in opts["at"].split(",")) if "at" in opts else JUDGE_AT
        attacks = int(opts.get("attacks", max(live // 2, 1)))
        species_set = opts["species"].split(",") if "species" in opts else None
        for species, q in train_presentations(live, attacks):
            if species_set is not None and species not in species_set:
                continue
            for fps, frames in at:
                try:
                    row = judge_session(q, fps, frames, gate)
                except Exception as exc:      # a refused session is a figure too: its code
                    row = {"fps": fps, "frames": frames, "error": getattr(exc, "code", type(exc).__name__),
                           "detail": str(exc)[:200]}
                out({"species": species, "query": q, **row})
        return 0
    raise SystemExit(f"unknown part {part!r}")


if __name__ == "__main__":
    import sys
    raise SystemExit(_main(sys.argv[1:]))
