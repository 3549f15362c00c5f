"""Probe sealing and the whole verification, end to end.

* seal + sign of one probe (budget 2 ms): HPKE to the server key and the terminal's signature, per
  suite and signature algorithm, on a real probe payload (crops, landmarks, reports);
* verification latency with the sim camera at 30 fps: the daemon's session code (agent/session/capture.py)
  against the reference server over loopback mutual TLS, liveness in the sandboxed worker. The
  camera is ``prerender=60``: its pixels are rendered before the run, so the camera costs the host
  what a real camera does (nothing), and it delivers a true 30 fps;
* the agent's overhead from the last frame it needs to the server's receipt (budget 100 ms p95).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import drivers
from agent.config import SessionSettings
from agent.devices.policy import DeviceSettings
from agent.liveness.challenge import Challenge
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import frameset_digest, judge
from agent.liveness.supervisor import LivenessSupervisor
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from agent.purpose import Purpose
from agent.quality import QualityGate
from agent.security.keys import generate_file_key
from agent.session.capture import SessionDeps, run_capture
from agent.session.events import Error, Result
from agent.session.projector import Projector
from agent.session.request import CaptureRequest
from agent.session.window import collect
from agent.uplink.probe import build_payload, seal_probe
from agent.uplink.seal import ServerKey
from bench import local_terminal
from bench.targets import issue20
from drivers.sim import SIM_CHALLENGE_WINDOW_S
from hil.ingest.limits import FailureLimits
from proto.capture_agent.v1 import ingest_pb2 as pb

# Skin type III: the prerendered colour frames keep the picture-metered exposure they were rendered
# with (the face-metered exposure cannot act on them), and this identity's own type VI skin then
# stays under the gray band (FACE_TOO_DARK: every session timed out in the quality loop).
CAMERA = "sim://?seed=21&identity=3&skin=3&lux=150&prerender=60"
SESSIONS = 10
MAX_WINDOW_TIMEOUTS = 5


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def seal_rows(tmp: Path) -> list[dict]:
    cam = drivers.open("sim://?realtime=0&seed=21&identity=3&lux=150")
    nonce = bytes(range(32))
    with cam:
        sets = collect(FramesetReader(cam), 12, Challenge.from_nonce(nonce, 12), Projector(cam))
    r = judge(sets, QualityGate(), VerdictThresholds(), challenge=Challenge.from_nonce(nonce, 12))
    assert r.best_index is not None and r.best_face is not None      # the sim subject is in view
    best = {"index": r.best_index, "bbox": list(r.best_face.detection.bbox),
            "landmarks": r.best_face.mesh.landmarks.tolist()}
    fs = sets[r.best_index]
    liveness, digest = r.verdict.to_dict(), frameset_digest(fs)
    t0 = time.perf_counter()
    for _ in range(20):
        payload = build_payload(align_frameset(fs), best, quality={"ok": True}, liveness=liveness, device=cam.info,
                                timings_ms={"x": 1.0}, frame_digest=digest)
    build_ms = (time.perf_counter() - t0) * 1000 / 20
    rows = [{"name": "build probe payload (align best frameset, crops, reports)", "value": build_ms, "unit": "ms"},
            {"name": "probe payload size", "value": len(payload) / 1024, "unit": "KiB"}]
    signers = {"ed25519": generate_file_key(tmp / "ed.pem"),
               "ecdsa-p256": generate_file_key(tmp / "p256.pem", "ecdsa-p256-sha256")}
    for suite in ("x25519", "mlkem768-x25519"):
        key = ServerKey.generate(suite)
        ch = pb.Challenge(nonce=nonce, expires_unix_ms=0, server_key_id=key.key_id, server_public_key=key.public_bytes,
                          hpke_suite=suite, frames=12)
        for alg, signer in signers.items():
            times = []
            for i in range(100):
                buf = bytearray(payload)
                t0 = time.perf_counter()
                seal_probe(ch, buf, terminal_id="t", session_id="s", counter=i, signer=signer, purpose=Purpose.VERIFY)
                times.append((time.perf_counter() - t0) * 1000)
            rows.append({"name": f"seal + sign one probe ({suite}, {alg}), median", "value": statistics.median(times),
                         "unit": "ms", "reference": 2.0, "ratio": statistics.median(times) / 2.0})
    return rows


def e2e_rows(tmp: Path) -> list[dict]:
    # The server's default window (32 framesets). A missed window (retried below, up to
    # MAX_WINDOW_TIMEOUTS) keeps its challenge's charge at the server, an honest strike: the bench's
    # own bound ends the run, not the server's default limit of 5.
    t = local_terminal.start(tmp, limits=FailureLimits(max_failures=0))
    t0 = time.perf_counter()
    warm = drivers.open(CAMERA)
    warm.start()                                   # renders the 60 ticks once for this process
    warm.stop()
    prerender_s = time.perf_counter() - t0
    results: list[dict[str, float]] = []
    window_timeouts = 0
    warmed = False
    try:
        with LivenessSupervisor() as sup:
            deps = SessionDeps(terminal_id=local_terminal.TERMINAL_ID, camera_uri=CAMERA, uplink=t.uplink,
                               signer=t.signer, supervisor=sup, devices=DeviceSettings(allow_development_cameras=True),
                               # The illumination challenge's lit screen is rendered live (not
                               # prerendered): the window needs the simulator's time.
                               settings=SessionSettings(challenge_window_s=SIM_CHALLENGE_WINDOW_S))
            i = 0
            while len(results) < SESSIONS:
                req = CaptureRequest(Purpose.VERIFY, "kiosk", f"CONSENT-BENCH-{i:04d}")
                last = list(run_capture(deps, req))[-1]
                i += 1
                if isinstance(last, Error) and last.code == "SES_STAGE_TIMEOUT" and "challenge window" in last.message:
                    # The simulator renders the lit window live; on a loaded machine it can miss even
                    # its own window. Not the agent's overhead: counted and reported, then retried.
                    window_timeouts += 1
                    if window_timeouts > MAX_WINDOW_TIMEOUTS:
                        raise RuntimeError(f"{window_timeouts} sessions missed the challenge window: {last}")
                    continue
                if not isinstance(last, Result) or not last.accepted:
                    raise RuntimeError(f"bench session {i - 1} was not accepted: {last}")
                if warmed:                              # the first one warms caches and the worker
                    results.append(last.timings_ms)
                warmed = True
    finally:
        t.close()
    total = [t["total"] for t in results]
    after = [t["after_last_frame"] for t in results]
    # No reference runs in this process: issue 20's targets (500 ms, 30 ms), and beside them the spec's
    # limit (§7.2: 2,000 ms) and the agent's own budget (100 ms), neither a reference nor a target.
    limit = {"limit": 2000.0, "limit_source": "§7.2"}
    budget = {"limit": 100.0, "limit_source": "the agent's budget"}
    rows = [
        {"name": f"verify end to end, sim 30 fps, p50 ({SESSIONS} sessions)", "value": _pct(total, 50), "unit": "ms",
         **limit},
        issue20({"name": "verify end to end, sim 30 fps, p95", "value": _pct(total, 95), "unit": "ms", **limit},
                "verify"),
        {"name": "agent overhead, last frame to receipt, p50", "value": _pct(after, 50), "unit": "ms", **budget},
        issue20({"name": "agent overhead, last frame to receipt, p95", "value": _pct(after, 95), "unit": "ms",
                 **budget}, "overhead"),
    ]
    for stage in ("challenge", "camera_open", "quality", "challenge_window", "liveness", "probe", "seal", "submit"):
        row = {"name": f"  stage {stage}, median", "value": statistics.median(t[stage] for t in results),
               "unit": "ms"}
        # The issue's "quality stage" row: the stage waits for the gate's good framesets at the camera's
        # rate, so it is bounded below by camera time (the gate per frameset: bench quality).
        rows.append(issue20(row, "quality") if stage == "quality" else row)
    # Where the overhead goes: the camera stopped and the projector given back (the rest of the
    # window's stage after its last frame), the worker's wait for its last measurements and its
    # fusion, the ring/socket/checks around them, the probe (the best frameset's alignment, made
    # during the window when the worker named it before its verdict, else now; crops, reports), the
    # seal (with the audit anchor) and the submit's round trip to the server.
    parts = {
        "stop camera and projector": [t["after_last_frame"] - sum(t[k] for k in ("liveness", "probe", "seal", "submit"))
                                      for t in results],
        "worker: last measurements": [t.get("liveness_drain", float("nan")) for t in results],
        "worker: fusion": [t.get("liveness_fusion", float("nan")) for t in results],
        "worker: ring, socket, checks": [t["liveness"] - t.get("liveness_drain", 0.0) - t.get("liveness_fusion", 0.0)
                                         for t in results],
        "probe": [t["probe"] for t in results],
        "seal": [t["seal"] for t in results],
        "submit (server round trip)": [t["submit"] for t in results],
    }
    for part, values in parts.items():
        rows.append({"name": f"  after last frame: {part}, p50", "value": _pct(values, 50), "unit": "ms"})
        rows.append({"name": f"  after last frame: {part}, p95", "value": _pct(values, 95), "unit": "ms"})
    rows.append({"name": "sessions retried: the simulator missed the challenge window", "value": window_timeouts,
                 "unit": "sessions"})
    rows.append({"name": "sim prerender of 60 ticks (setup, not in the figures above)", "value": prerender_s * 1000,
                 "unit": "ms"})
    return rows


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        return seal_rows(tmp) + e2e_rows(tmp)
