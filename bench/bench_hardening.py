"""What the hardening of issue 16 costs, each against a reference in this process:

* serializing a probe payload straight into one wiped bytearray (``agent/uplink/plaintext.py``)
  against the protobuf way it replaced (``tobytes()`` crops in a message, ``SerializeToString()``,
  ``bytearray(...)``), on the same aligned frameset;
* wiping the frame ring after a session (``Ring.wipe``: memset of every byte written) against
  writing that session's framesets into it;
* the liveness worker's start (sandbox included: namespaces, Landlock, seccomp, then model loading
  and warm-up) and a session judged in it, against the same judging in-process.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time

import numpy as np

import drivers
from agent.liveness.challenge import Challenge
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import judge
from agent.liveness.supervisor import LivenessSupervisor
from agent.liveness.wire import Ring
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from agent.quality import QualityGate
from agent.session.projector import Projector
from agent.session.window import collect
from agent.uplink.plaintext import wipe
from agent.uplink.probe import attestation, build_payload, crop_box
from proto.capture_agent.v1 import ingest_pb2 as pb

NONCE = bytes.fromhex("a11ce5" * 10 + "0000")


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _protobuf_payload(a, best, info) -> bytearray:
    """The serialization this replaced, for reference only (it leaves copies of the face)."""
    h, w = a.depth_m.shape
    x0, y0, x1, y1 = box = crop_box(best["bbox"], w, h)

    def crop(arr, fmt, scale=0.0):
        px = np.ascontiguousarray(arr[y0:y1, x0:x1]).tobytes()
        return pb.Crop(width=x1 - x0, height=y1 - y0, format=fmt, pixels=px, x=x0, y=y0,
                       sha256=hashlib.sha256(px).digest(), depth_scale=scale)
    lm = (np.asarray(best["landmarks"], dtype=np.float32) - np.array([box[0], box[1], 0], np.float32)).reshape(-1)
    p = pb.ProbePayload(color=crop(a.color.pixels, "bgr8"), depth=crop(a.depth_u16, "z16", a.depth_scale),
                        ir=crop(a.ir, "y8"), landmarks=lm.tolist(), quality_json="{}",
                        liveness_json=json.dumps({"verdict": "live"}), device=attestation(info),
                        timings_ms={"total": 1.0}, frame_digest="0" * 64)
    out = bytearray(p.SerializeToString())
    p.Clear()
    return out


def run() -> list[dict]:
    rows: list[dict] = []
    cam = drivers.open("sim://?realtime=0&seed=21&identity=3&lux=150")
    with cam:
        ch = Challenge.from_nonce(NONCE, 12)
        sets = collect(FramesetReader(cam), 12, ch, Projector(cam))
    a = align_frameset(sets[0])
    h, w = a.depth_m.shape
    best = {"bbox": [w * 0.3, h * 0.2, w * 0.7, h * 0.8], "landmarks": np.zeros((468, 3)).tolist()}

    def new() -> None:
        wipe(build_payload(a, best, quality={}, liveness={"verdict": "live"}, device=cam.info,
                           timings_ms={"total": 1.0}, frame_digest="0" * 64))

    def old() -> None:
        buf = _protobuf_payload(a, best, cam.info)
        buf[:] = b"\0" * len(buf)
    ref = _median_ms(old, 30)
    val = _median_ms(new, 30)
    rows.append({"name": "probe payload into a wiped bytearray, median", "value": val, "unit": "ms",
                 "reference": ref, "ratio": val / ref})

    ring = Ring(4, 16 << 20)
    try:
        def write_session() -> None:
            for k, fs in enumerate(sets):
                ring.write(k % 4, fs)
        write_ms = _median_ms(write_session, 10)

        def write_then_wipe() -> None:
            write_session()
            ring.wipe()
        wipe_ms = _median_ms(write_then_wipe, 10) - write_ms
        rows.append({"name": f"ring wipe after a session ({len(sets)} framesets, 4 slots), median", "value": wipe_ms,
                     "unit": "ms", "reference": write_ms, "ratio": wipe_ms / write_ms})
    finally:
        ring.close()

    gate = QualityGate()
    in_process = _median_ms(lambda: judge(sets, gate, VerdictThresholds(), challenge=ch), 3)
    sup = LivenessSupervisor()
    t0 = time.perf_counter()
    sup.start()
    start_ms = (time.perf_counter() - t0) * 1000
    try:
        sandboxed = _median_ms(lambda: sup.judge(sets, nonce=NONCE), 3)
        hello = sup.hello
    finally:
        sup.stop()
    rows.append({"name": f"liveness worker start (sandbox: userns={hello.get('userns')}, "
                         f"landlock {hello.get('landlock_abi')}, seccomp {hello.get('seccomp')}; models, warm-up)",
                 "value": start_ms, "unit": "ms"})
    rows.append({"name": f"session of {len(sets)} framesets judged in the sandboxed worker, median",
                 "value": sandboxed, "unit": "ms", "reference": in_process, "ratio": sandboxed / in_process})
    return rows
