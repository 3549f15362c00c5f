"""The verdict to the sealed probe (issue 20): the daemon's share of the overhead after the worker's
verdict, with the probe's frameset aligned while the window is captured (``agent/session/probe_ahead.py``)
against the same session's probe aligned after the verdict, as before.

Train-family live presentations (``BENCH_PROBE_SESSIONS``, default 6, from ``train:live:0``) are
captured as pad-eval captures them, then fed to the sandboxed liveness worker as the daemon's session
feeds it (``LivenessSupervisor.open_judge`` with ``on_best``: the worker names its best frameset so
far, the supervisor checks the report, ``ProbeAhead`` aligns that frameset on its own thread), one
frameset per camera interval (33 ms). At the verdict, on the session's thread: the frameset the
verdict names taken from ``ProbeAhead`` (or aligned there when it was not the one aligned ahead),
the probe's payload built (crops, landmarks, reports) and sealed (HPKE to a server key, signed). The
reference, same session, same process, right after: the same frameset aligned, built and sealed as
before (``align_frameset`` after the verdict). CPU time of the session's thread
(``time.thread_time``: on this shared machine a span is mostly waiting for a core); the two payloads'
plaintexts must be the same bytes (SHA-256), or the suite fails. Also: how often the verdict's
frameset was the one aligned ahead, and the daemon's CPU spent aligning ahead during the window
(every alignment the ``ProbeAhead`` thread made, the ones whose frameset the verdict did not name
included)."""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FRAMES = 32
FRAME_INTERVAL_S = 1 / 30


def _pct(v: list[float], q: float) -> float:
    return float(np.percentile(v, q))


def session(index: int, sup: Any, gate: Any, signer: Any, key: Any) -> dict[str, Any] | None:
    import drivers
    from agent.liveness.fusion import load_thresholds
    from agent.pipeline.align import align_frameset
    from agent.purpose import Purpose
    from agent.session.offline import capture
    from agent.session.probe_ahead import ProbeAhead
    from agent.uplink.probe import build_payload, seal_probe
    from hil.pad_presentations import Presentation, presentation_nonce, presentation_uri
    from proto.capture_agent.v1 import ingest_pb2 as pb

    p = Presentation("bona_fide", "live", "train", index, presentation_uri("train", "live", index))
    with drivers.open(p.uri) as cam:
        cap = capture(cam, FRAMES, presentation_nonce(p), gate, require_quality=True)
        device = cam.info
    if len(cap.sets) < FRAMES or cap.challenge is None:
        return None
    ch = cap.challenge
    ahead_cpu: list[float] = []

    def align_ahead(fs: Any) -> Any:
        c = time.thread_time()
        try:
            return align_frameset(fs)
        finally:
            ahead_cpu.append((time.thread_time() - c) * 1000)

    challenge = pb.Challenge(nonce=ch.nonce, expires_unix_ms=0, server_key_id=key.key_id,
                             server_public_key=key.public_bytes, hpke_suite="x25519", frames=FRAMES)

    def probe(aligned: Any, r: Any) -> tuple[bytes, Any]:
        payload = build_payload(aligned, r.best, quality=r.quality, liveness=r.verdict.to_dict(), device=device,
                                timings_ms={"liveness": 1.0}, frame_digest=r.verdict.frame_digests[r.best["index"]],
                                suite="x25519", evidence=r.evidence, calibration="")
        digest = hashlib.sha256(payload).digest()
        sealed = seal_probe(challenge, payload, terminal_id="t", session_id="s", counter=index + 1,
                            signer=signer, purpose=Purpose.VERIFY)          # wipes the payload
        return digest, sealed

    with ProbeAhead(align_ahead) as ahead:
        with sup.open_judge(frames=FRAMES, nonce=ch.nonce, thresholds=load_thresholds("kiosk"),
                            kinds=tuple(sorted(k.value for k in ch.kinds)),
                            on_best=lambda _k, fs: ahead.name(fs)) as worker:
            t_next = time.perf_counter()
            for fs in cap.sets:
                worker.add(fs)
                t_next += FRAME_INTERVAL_S
                time.sleep(max(0.0, t_next - time.perf_counter()))
            r = worker.finish()
        if r.verdict.verdict != "live" or r.best is None:
            return {"key": p.key, "verdict": r.verdict.verdict}
        chosen = cap.sets[r.best["index"]]
        t0, c0 = time.perf_counter(), time.thread_time()
        aligned = ahead.take(chosen)
        taken = aligned is not None
        if aligned is None:
            aligned = align_frameset(chosen)
        digest, _ = probe(aligned, r)
        cpu, wall = (time.thread_time() - c0) * 1000, (time.perf_counter() - t0) * 1000
        named, made = ahead.named, ahead.aligned
    del aligned
    # The reference: the same session's probe as before, aligned after the verdict.
    c1 = time.thread_time()
    digest_ref, _ = probe(align_frameset(chosen), r)
    cpu_ref = (time.thread_time() - c1) * 1000
    return {"key": p.key, "verdict": "live", "cpu_ms": cpu, "wall_ms": wall, "reference_cpu_ms": cpu_ref,
            "taken": taken, "named": named, "aligned_ahead": made, "ahead_cpu_ms": sum(ahead_cpu),
            "same_plaintext": digest == digest_ref}


def run() -> list[dict]:
    from agent.liveness.supervisor import LivenessSupervisor
    from agent.quality import QualityGate
    from agent.security.keys import generate_file_key
    from agent.uplink.seal import ServerKey
    n = max(1, int(os.environ.get("BENCH_PROBE_SESSIONS", 6)))
    gate = QualityGate()
    key = ServerKey.generate("x25519")
    with tempfile.TemporaryDirectory() as d, LivenessSupervisor() as sup:
        signer = generate_file_key(Path(d) / "terminal.pem")
        session(n, sup, gate, signer, key)           # warms the worker, the tables and the crypto
        got = [session(i, sup, gate, signer, key) for i in range(n)]
    rows = [r for r in got if r is not None and "cpu_ms" in r]
    if not rows:
        raise RuntimeError("no presentation gave a live verdict on a whole window")
    if not all(r["same_plaintext"] for r in rows):
        raise RuntimeError(f"a probe aligned ahead differs from the one aligned after the verdict: "
                           f"{[r['key'] for r in rows if not r['same_plaintext']]}")
    k = len(rows)

    def col(name: str) -> list[float]:
        return [float(r[name]) for r in rows]
    cpu, ref = col("cpu_ms"), col("reference_cpu_ms")
    med = statistics.median
    taken = sum(r["taken"] for r in rows)
    return [
        {"name": f"verdict to sealed probe, session thread CPU, median of {k} train live sessions",
         "value": med(cpu), "unit": "ms", "reference": med(ref), "ratio": med(cpu) / med(ref),
         "note": "reference: the same sessions' probes aligned after the verdict (the path before), same process"},
        {"name": "verdict to sealed probe, session thread CPU, p95", "value": _pct(cpu, 95), "unit": "ms",
         "reference": _pct(ref, 95), "ratio": _pct(cpu, 95) / _pct(ref, 95)},
        {"name": "  verdict's frameset aligned ahead (taken at the verdict)", "value": float(taken), "unit": f"of {k}"},
        {"name": "  probe plaintexts the same bytes as aligned after the verdict", "value": float(k),
         "unit": f"of {k}"},
        {"name": "  framesets named best per session (worker reports), median", "value": med(col("named")),
         "unit": ""},
        {"name": "  alignments made ahead per session, median", "value": med(col("aligned_ahead")), "unit": ""},
        {"name": "  daemon CPU aligning ahead during the window, median", "value": med(col("ahead_cpu_ms")),
         "unit": "ms"},
        {"name": "  verdict to sealed probe, wall on this machine, median", "value": med(col("wall_ms")),
         "unit": "ms"},
        {"name": "  load average during the suite (1 min)", "value": os.getloadavg()[0], "unit": ""},
    ]


if __name__ == "__main__":
    import json
    for row in run():
        print(json.dumps(row))
