"""Liveness cost per frameset (budget 10 ms): cue extraction + detectors + fusion, measured apart from
alignment and the quality gate, on a challenged sim session."""

from __future__ import annotations

import os
import time

import drivers
from agent.align import align_frameset
from agent.liveness.challenge import Challenge
from agent.liveness.session import collect, judge
from agent.liveness.features import frame_cues
from agent.liveness.fusion import Thresholds
from agent.quality import QualityGate


def run() -> list[dict]:
    gate = QualityGate()
    cam = drivers.open("sim://?realtime=0&seed=12")
    with cam:
        ch = Challenge.from_nonce(os.urandom(32), 24)
        sets = collect(cam, 24, ch)
    aligned = [align_frameset(fs) for fs in sets]
    reports = [gate.evaluate(a) for a in aligned]
    t0 = time.perf_counter()
    for _ in range(3):
        for a, r in zip(aligned, reports):
            frame_cues(a, r.face)
    cues_ms = (time.perf_counter() - t0) * 1000 / (3 * len(aligned))
    t0 = time.perf_counter()
    result = judge(sets, gate, Thresholds(), challenge=ch)
    whole_ms = (time.perf_counter() - t0) * 1000 / len(sets)
    return [
        {"name": "liveness cues per frameset", "value": cues_ms, "unit": "ms", "reference": 10.0, "ratio": cues_ms / 10.0},
        {"name": "align + quality + liveness per frameset (session)", "value": whole_ms, "unit": "ms"},
        {"name": "session verdict (sanity: 1 = live)", "value": 1.0 if result.verdict.verdict == "live" else 0.0, "unit": ""},
    ]
