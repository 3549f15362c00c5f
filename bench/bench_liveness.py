"""Liveness cost per frameset (budget 10 ms): cue extraction + detectors + fusion, measured apart from
alignment and the quality gate, on a challenged sim session."""

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


def blind_challenge_pass_rate(frames: int, trials: int = 4000, seed: int = 11) -> float:
    """How often a stream that does not know the nonce passes ``verify``: its projector runs of
    2-4 frames (the schedule's own structure, the best a blind injector can do) against fresh
    nonces, energies cleanly two-level as a physical camera's would be. This is the challenge's
    false-accept rate against injection on its own, before any other signal."""
    import os

    import numpy as np

    from agent.liveness.challenge import Challenge, verify

    rng = np.random.default_rng(seed)
    passed = 0
    for _ in range(trials):
        ch = Challenge.from_nonce(os.urandom(32), frames=frames)
        states: list[bool] = []
        s = bool(rng.integers(2))
        while len(states) < frames:
            states += [s] * int(rng.integers(2, 5))
            s = not s
        e = np.where(np.array(states[:frames]), 10.0, 4.0) + rng.normal(0, 0.2, frames)
        passed += verify(ch, list(e)).passed
    return passed / trials


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
        wr = sup.judge(sets, nonce=ch.nonce)
        transfer = sorted(wr.transfer_ms)
        worker_ms = wr.worker_ms / len(sets)
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
    return [
        {"name": "frames to worker per frameset (ring write + ack), median", "value": transfer[len(transfer) // 2],
         "unit": "ms"},
        {"name": "frames to worker per frameset, max", "value": transfer[-1], "unit": "ms"},
        {"name": "worker judge per frameset (align + quality + liveness)", "value": worker_ms, "unit": "ms",
         "reference": whole_ms, "ratio": worker_ms / whole_ms},
        {"name": "worker start (models + warm-up + sandbox)", "value": start_ms, "unit": "ms"},
        {"name": "worker crash (SIGKILL) detected", "value": crash_detect_ms, "unit": "ms"},
        {"name": "worker restart after crash", "value": crash_restart_ms, "unit": "ms"},
        {"name": "worker hang (SIGSTOP) detected, deadline 1000 ms", "value": hang_detect_ms, "unit": "ms"},
        {"name": "worker restart after hang", "value": hang_restart_ms, "unit": "ms"},
        {"name": "liveness cues per frameset", "value": cues_ms, "unit": "ms", "reference": 10.0,
         "ratio": cues_ms / 10.0},
        {"name": "align + quality + liveness per frameset (session)", "value": whole_ms, "unit": "ms"},
        *({"name": f"blind stream passes a {n}-frame challenge (false accept, 4000 nonces)",
           "value": 100 * blind_challenge_pass_rate(n), "unit": "%"} for n in (16, 24, 32, 48)),
        {"name": "session verdict (sanity: 1 = live)", "value": 1.0 if result.verdict.verdict == "live" else 0.0,
         "unit": ""},
    ]
