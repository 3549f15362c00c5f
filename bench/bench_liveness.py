"""Liveness cost per frameset (budget 10 ms): cue extraction + detectors + fusion, measured apart from
alignment and the quality gate, on a challenged sim session; and the challenges' figures (issue 15,
``bench/challenge_stats.py``): blind pass per challenge and window, genuine pass under projector
latency and jitter, injected streams accepted.

Sizes (environment): ``BENCH_BLIND_TRIALS`` nonces per blind-pass row (default 20000),
``BENCH_GENUINE_MODELS`` rendered sessions measured for the genuine-pass simulation (8),
``BENCH_GENUINE_TRIALS`` simulated windows per condition (2000), ``BENCH_RENDERED_SESSIONS`` whole
rendered sessions per latency condition (4), ``BENCH_INJECTION_SESSIONS`` per injected species (3).
The figures in docs/liveness.md come from larger runs; the commands are written there."""

from __future__ import annotations

import os
import time

import drivers
from agent.liveness.challenge import Challenge
from agent.liveness.features import frame_cues
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import judge
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from agent.quality import QualityGate
from agent.session.projector import Projector
from agent.session.window import collect
from bench.targets import issue20

JUDGE_REPEATS = 5                 # sessions judged each way (worker, in process) for the ratio


def run() -> list[dict]:
    gate = QualityGate()
    cam = drivers.open("sim://?realtime=0&seed=12")
    with cam:
        ch = Challenge.from_nonce(os.urandom(32), 24)
        sets = collect(FramesetReader(cam), 24, ch, Projector(cam))
    aligned = [align_frameset(fs) for fs in sets]
    reports = [gate.evaluate(a) for a in aligned]
    t0 = time.perf_counter()
    for _ in range(3):
        for a, report in zip(aligned, reports, strict=True):
            assert report.face is not None          # the sim subject faces the camera in every frameset
            frame_cues(a, report.face)
    cues_ms = (time.perf_counter() - t0) * 1000 / (3 * len(aligned))
    t0 = time.perf_counter()
    result = judge(sets, gate, VerdictThresholds(), challenge=ch)
    whole_ms = (time.perf_counter() - t0) * 1000 / len(sets)
    # The same session through the sandboxed worker: frames via the shared-memory ring.
    import signal

    from agent.liveness.supervisor import (
        LivenessSupervisor,
        LivenessWorkerCrashed,
        LivenessWorkerTimeout,
        SupervisorSettings,
    )
    with LivenessSupervisor(SupervisorSettings(frame_timeout_s=1.0)) as sup:
        start_ms = sup.last_start_ms
        # Worker against in-process on the same measure: the judge's own per-stage timings (each
        # frameset's align, quality and liveness time as its judge thread measured it, plus the
        # fusion), interleaved so that both see the same machine, after one unmeasured session each.
        ours: list[dict[str, float]] = []
        theirs: list[dict[str, float]] = []
        transfer: list[float] = []
        for k in range(JUDGE_REPEATS + 1):
            mine = judge(sets, gate, VerdictThresholds(), challenge=ch).timing_ms
            wr = sup.judge(sets, nonce=ch.nonce)
            if k:
                ours.append(mine)
                theirs.append(wr.timing_ms)
                transfer += wr.transfer_ms
        transfer.sort()
        # Crash: SIGKILL, then time to the typed error, and to a fresh worker's first verdict.
        sup.kill(signal.SIGKILL)
        t0 = time.perf_counter()
        try:
            sup.judge(sets[:8], nonce=None)
        except LivenessWorkerCrashed:
            pass
        crash_detect_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        sup.start()
        crash_restart_ms = (time.perf_counter() - t0) * 1000
        sup.kill(signal.SIGSTOP)
        t0 = time.perf_counter()
        try:
            sup.judge(sets[:8], nonce=None)
        except LivenessWorkerTimeout:
            pass
        hang_detect_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        sup.start()
        hang_restart_ms = (time.perf_counter() - t0) * 1000

    def median(runs: list[dict[str, float]], stage: str) -> float:
        v = sorted(r[stage] / len(sets) for r in runs)
        return v[len(v) // 2]
    worker_ms, inproc_ms = median(theirs, "total"), median(ours, "total")
    stages = [{"name": f"worker {stage} per frameset vs in-process (median of {JUDGE_REPEATS})",
               "value": median(theirs, stage), "unit": "ms", "reference": median(ours, stage),
               "ratio": median(theirs, stage) / max(median(ours, stage), 1e-9)}
              for stage in ("align", "quality", "liveness")]
    sent_ms = transfer[len(transfer) // 2]
    return [
        # The frames' way into the worker, against the same work in process (where it costs nothing): its
        # share of the in-process judging, and the worker's judging with it (issue 20's ratio, as a cost
        # per frameset; the write overlaps the worker's judging of the frameset before).
        {"name": "frames to worker per frameset (ring write + ack), median, vs the in-process judging",
         "value": sent_ms, "unit": "ms", "reference": inproc_ms, "ratio": sent_ms / inproc_ms},
        {"name": "frames to worker per frameset, max", "value": transfer[-1], "unit": "ms"},
        issue20({"name": f"worker judge per frameset (align + quality + liveness), median of {JUDGE_REPEATS}",
                 "value": worker_ms, "unit": "ms", "reference": inproc_ms, "ratio": worker_ms / inproc_ms}, "worker"),
        issue20({"name": "worker judge + frames in (ring write + ack) per frameset vs in-process, median",
                 "value": worker_ms + sent_ms, "unit": "ms", "reference": inproc_ms,
                 "ratio": (worker_ms + sent_ms) / inproc_ms}, "worker"),
        *stages,
        {"name": "worker start (models + warm-up + sandbox)", "value": start_ms, "unit": "ms"},
        {"name": "worker crash (SIGKILL) detected", "value": crash_detect_ms, "unit": "ms"},
        {"name": "worker restart after crash", "value": crash_restart_ms, "unit": "ms"},
        {"name": "worker hang (SIGSTOP) detected, deadline 1000 ms", "value": hang_detect_ms, "unit": "ms"},
        {"name": "worker restart after hang", "value": hang_restart_ms, "unit": "ms"},
        {"name": "liveness cues per frameset", "value": cues_ms, "unit": "ms", "reference": 10.0,
         "ratio": cues_ms / 10.0},
        {"name": "align + quality + liveness per frameset (session, wall time in process)", "value": whole_ms,
         "unit": "ms"},
        {"name": "session verdict (sanity: 1 = live)", "value": 1.0 if result.verdict.verdict == "live" else 0.0,
         "unit": ""},
        *challenge_rows(),
    ]


def challenge_rows() -> list[dict]:
    """Issue 15's figures, each beside the window's length (framesets and ms at 30 fps)."""
    from agent.liveness.challenge import Kind, window_frames
    from bench import challenge_stats as cs
    rows: list[dict] = []
    trials = cs.env_int("BENCH_BLIND_TRIALS", 20000)
    target = 0.03
    blind: dict[tuple[str, int], float] = {}
    for kind in (Kind.PROJECTOR, Kind.ILLUMINATION):
        agree, n = cs.blind_agreement(kind, 24, min(400, max(trials // 10, 40)))
        rows.append({"name": f"blind {kind.value}: vectorised rule agrees with the verifier", "value": agree / n,
                     "unit": f"of {n}"})
        for frames in (16, 24, 32, 40, 48):
            rate = max(cs.blind_rate(kind, frames, trials, s) for s in ("rhythm", "fixed"))
            blind[(kind.value, frames)] = rate
            bound = cs.blind_bound(kind, frames, 2000)
            ms = frames * cs.FRAME_MS
            rows.append({"name": f"blind pass, {kind.value} alone, {frames} frames ({ms:.0f} ms)",
                         "value": 100 * rate, "unit": "%", "reference": target, "ratio": 100 * rate / target,
                         "bound_pct": 100 * bound, "upper95_pct": 100 * cs.clopper_pearson_upper(
                             round(rate * trials), trials), "trials": trials})
    # What becomes of blind projector streams that do not pass: not measurable (inconclusive, never
    # live) or contradicted (attack); the pass column is the rule above, untouched by measurability.
    outcome_trials = min(trials, 2000)
    for frames in (24, 32):
        for stream, got in cs.blind_projector_outcomes(frames, outcome_trials).items():
            rows.append({"name": f"blind projector stream {stream}, {frames} frames: passed / not measurable / "
                                 f"contradicted", "value": got["passed"], "unit": f"of {outcome_trials}",
                         "unmeasurable": got["unmeasurable"], "contradicted": got["contradicted"]})
    for frames in (16, 24, 32):
        both = blind[("projector", frames)] * blind[("illumination", frames)]
        rows.append({"name": f"blind pass, both challenges, {frames} frames ({frames * cs.FRAME_MS:.0f} ms): product",
                     "value": 100 * both, "unit": "%", "reference": target, "ratio": 100 * both / target})
    rows.append({"name": "window chosen: both challenges / illumination alone / projector alone",
                 "value": window_frames(["projector", "illumination"]), "unit": "frames",
                 "illumination_alone": window_frames(["illumination"]),
                 "projector_alone": window_frames(["projector"])})
    rows += genuine_rows(cs)
    rows += injection_rows(cs)
    return rows


def genuine_rows(cs) -> list[dict]:
    """Genuine pass: rendered sessions measured, resampled through the timing model; then whole
    rendered sessions with the simulator's latency and jitter."""
    from agent.quality import QualityGate
    gate = QualityGate()
    models = []
    for i in range(cs.env_int("BENCH_GENUINE_MODELS", 8)):
        q = cs.scene(i, seed=1)
        r, ch = cs.run_session(q, 32, gate)
        m = cs.model_from_evidence(q, r.evidence, ch, cs.challenge_result(r, ch)) if r.evidence else None
        if m is not None:
            models.append(m)
    rows: list[dict] = [{"name": "genuine pass: rendered sessions measured for the simulation", "value": len(models),
                         "unit": "sessions"}]
    if not models:
        return rows
    trials = cs.env_int("BENCH_GENUINE_TRIALS", 2000)
    for frames in (24, 32, 48):
        for latency, jitter, screen_lag, screen_jitter in ((1, 0.2, 1, 0.0), (2, 0.0, 2, 0.0), (2, 0.2, 2, 0.2),
                                                          (1, 0.2, 3, 0.2)):
            got = cs.genuine_rate(models, frames, latency, jitter, trials, screen_lag=screen_lag,
                                  screen_jitter=screen_jitter)
            for part in ("projector", "illumination", "both"):
                rows.append({"name": f"genuine pass ({part}), projector latency {latency} jitter {jitter:.0%}, "
                                     f"screen {screen_lag} jitter {screen_jitter:.0%}, {frames} frames",
                             "value": 100 * got[part], "unit": "%", "reference": 99.5,
                             "ratio": got[part] * 100 / 99.5, "trials": trials,
                             "lower95_pct": 100 * cs.clopper_pearson_lower(round(got[part] * trials), trials)})
    n = cs.env_int("BENCH_RENDERED_SESSIONS", 4)
    for label, extra in (("latency 1, jitter 20 %", "camera=d435&projector_jitter=0.2"),
                         ("latency 2", "camera=d435&projector_latency=2&projector_jitter=0")):
        passed = live = 0
        for i in range(n):
            r, ch = cs.run_session(cs.scene(i, seed=2) + "&" + extra, ch_frames := 24, gate)
            passed += bool(r.verdict.challenge and r.verdict.challenge["passed"])
            live += r.verdict.verdict == "live"
        rows.append({"name": f"genuine pass, rendered sessions, {label}, {ch_frames} frames (challenge passed)",
                     "value": 100 * passed / max(n, 1), "unit": "%", "reference": 99.5, "sessions": n,
                     "lower95_pct": 100 * cs.clopper_pearson_lower(passed, n),
                     "judged_live_pct": 100 * live / max(n, 1)})
    return rows


def injection_rows(cs) -> list[dict]:
    """Injected streams through analyze-style sessions: accepted (judged live) per species."""
    from agent.quality import QualityGate
    gate = QualityGate()
    rows = []
    n = cs.env_int("BENCH_INJECTION_SESSIONS", 3)
    for species in ("replay", "splice", "render"):
        accepted = 0
        for i in range(n):
            r, _ = cs.run_session(cs.scene(i, seed=3) + f"&inject={species}", 24, gate)
            accepted += r.verdict.verdict == "live"
        rows.append({"name": f"injection {species}: accepted", "value": accepted, "unit": f"of {n}",
                     "apcer": accepted / max(n, 1), "apcer_upper95": cs.clopper_pearson_upper(accepted, n), "n": n})
    return rows
