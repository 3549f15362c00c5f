"""Observation costs (issue 21), each against a reference in the same process:

- one session's events into the metrics (``AgentMetrics.observe``) against writing the same events
  to the audit log (which every session does anyway);
- the reader's stream counting (``ReaderStats``) against matching the same frames into framesets;
- one scrape of the metrics endpoint's text;
- the diagnostics page's live view per frameset: drawing and JPEG-encoding the three views against
  the quality gate's own evaluation of the frameset, and the live view's rate on the sim camera.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import drivers
from agent.observe.live import LiveView
from agent.observe.metrics import AgentMetrics
from agent.observe.overlay import color_view, depth_view, ir_view, jpeg
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader, ReaderStats
from agent.pipeline.sync import FrameSetMatcher
from agent.quality import QualityGate
from agent.security.audit import AuditLog
from agent.security.keys import generate_file_key

CAMERA = "sim://?seed=21&identity=0&lux=300&subject=live"


def _median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def _session_events(i: int) -> list[tuple[str, dict]]:
    sid = f"bench-{i}"
    return [("session_start", {"session_id": sid, "purpose": "verify", "channel": "kiosk", "subject": "subj:x"}),
            ("consent", {"session_id": sid, "consent_ref": "consent:y"}),
            ("result", {"session_id": sid, "accepted": True, "reason": "OK", "verdict": "live", "score": 0.9,
                        "total_ms": 1500.0, "within_budget": True}),
            ("session_end", {"session_id": sid, "stage": "submit", "elapsed_ms": 1501.0, "camera_open_ms": 50.0,
                             "quality_ms": 400.0, "challenge_ms": 20.0, "challenge_window_ms": 500.0,
                             "liveness_ms": 40.0, "probe_ms": 5.0, "seal_ms": 3.0, "submit_ms": 15.0,
                             "after_last_frame_ms": 63.0, "total_ms": 1500.0})]


def run() -> list[dict]:
    rows: list[dict] = []
    m = AgentMetrics()
    with tempfile.TemporaryDirectory() as d:
        log = AuditLog(Path(d) / "audit.jsonl", generate_file_key(Path(d) / "k.pem"), checkpoint_every=10_000)
        n = [0]

        def audit() -> None:
            n[0] += 1
            for ev, data in _session_events(n[0]):
                log.record(ev, **data)

        def observe() -> None:
            n[0] += 1
            for ev, data in _session_events(n[0]):
                m.observe(ev, data)
            m.observe("session_streams", {"session_id": f"bench-{n[0]}", "framesets": 40, "skew_max_ms": 4.0,
                                          "skew_mean_ms": 2.0, "streams": {
                                              k: {"fps": 30.0, "frames": 41, "dropped": 0} for k in
                                              ("color", "depth", "ir")}})
        ref = _median_ms(audit, 200)
        val = _median_ms(observe, 200)
        log.close()
    rows.append({"name": "metrics: one session's events observed, median", "value": val, "unit": "ms",
                 "reference": ref, "ratio": val / ref})
    rows.append({"name": "metrics: one scrape (text exposition), median", "value": _median_ms(m.exposition, 50),
                 "unit": "ms"})

    cam = drivers.open(CAMERA + "&realtime=0")
    with cam:
        frames = [cam.read(2.0) for _ in range(90)]
        kinds = [p.kind for p in cam.profiles()]
        fps = min(p.fps for p in cam.profiles())
        extr = cam.all_extrinsics()
        sets = list(FramesetReader(cam).take(10))

    def match() -> None:
        mt = FrameSetMatcher(kinds, fps, extrinsics=extr)
        for f in frames:
            list(mt.push(f))

    def match_and_count() -> None:
        mt = FrameSetMatcher(kinds, fps, extrinsics=extr)
        st = ReaderStats()
        for f in frames:
            st.add_frame(f)
            for fs in mt.push(f):
                st.add_frameset(fs)
    ref = _median_ms(match, 20)
    val = _median_ms(match_and_count, 20)
    rows.append({"name": "reader: matching 90 frames with stream counting, median", "value": val, "unit": "ms",
                 "reference": ref, "ratio": val / ref})

    gate = QualityGate()
    aligned = [align_frameset(fs) for fs in sets]
    reports = [gate.evaluate(a) for a in aligned]
    k = [0]

    def evaluate() -> None:
        k[0] = (k[0] + 1) % len(aligned)
        gate.evaluate(aligned[k[0]])

    def draw() -> None:
        k[0] = (k[0] + 1) % len(aligned)
        a, r = aligned[k[0]], reports[k[0]]
        for view in (color_view, depth_view, ir_view):
            jpeg(view(a, r))
    ref = _median_ms(evaluate, 20)
    val = _median_ms(draw, 20)
    rows.append({"name": "live view: three views drawn and JPEG-encoded per frameset, median", "value": val,
                 "unit": "ms", "reference": ref, "ratio": val / ref})

    live = LiveView(lambda: drivers.open(CAMERA), max_fps=30.0)
    live.start()
    try:
        snap = live.wait_next(0, 120.0)
        assert snap is not None
        t0, first = time.monotonic(), snap.seq
        while time.monotonic() - t0 < 10.0:
            snap = live.wait_next(snap.seq, 5.0) or snap
        rate = (snap.seq - first) / (time.monotonic() - t0)
    finally:
        live.stop()
    rows.append({"name": "live view on the sim camera (30 fps, rendered live), snapshots/s", "value": rate,
                 "unit": "1/s", "reference": 30.0, "ratio": rate / 30.0})
    return rows
