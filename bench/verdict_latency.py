"""From ``judge`` to the verdict in the daemon's hands, this tree's sandboxed worker against another
tree's, interleaved in one process (issue 20).

    nice -n 19 python -m bench.verdict_latency REFERENCE_TREE [SESSIONS]

``REFERENCE_TREE``: a checkout of the other tree (``git archive REF | tar -x -C DIR``); its worker is
started with that tree first on ``PYTHONPATH`` (its own code, judged by this tree's supervisor: the
two must speak the same protocol). Train-family live presentations (``train:live:0`` on, default 6)
are captured as pad-eval captures them and each is fed to both workers, one frameset per 33 ms, the
order alternating; before the window's last frameset the worker is let catch up (its threads'
CPU settles: on this loaded machine it falls behind); then, per worker, the daemon's wall time
from sending the last frameset to the verdict checked (``add``, ``RemoteJudge.finish``) and the CPU
the worker's judge loop (its main thread, ``/proc/PID/task/PID/schedstat``, nanoseconds) spent in
that span: the last frameset's fold, the fusion, the reply (and, on the path before, the session's
end). The verdicts of the
two must be the same, field for field, or the script fails. Prints one JSON line per session and
the medians and p95s with their ratios (this tree / the reference). A worker's CPU read just after
the verdict may include the start of what it does after replying (this tree: the session's end):
counted against this tree.

Also, over the same span, each of the worker's two judge threads' CPU (the two of its threads but
the judge loop that used the most; ``schedstat``), and the last frameset to the sealed probe as two
idle cores would see it, estimated from CPU: the busier judge thread (the window's last frameset's
measurement, and beside it the work that does not wait for it) plus the judge loop (the last fold,
the fusion, the reply) plus the daemon's probe built and sealed from the verdict (on this thread,
``build_payload`` and ``seal_probe``, the verdict's frameset aligned beforehand as
``agent/session/probe_ahead.py`` aligns it during the window; the daemon's code is this tree's for
both workers). The estimate assumes no wait between the two judge threads' parts; it is a lower
bound where the measurement waits for the other thread. The probe's plaintext built from each
worker's verdict (timings fixed) must be the same bytes (SHA-256), or the script fails."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FRAMES = 32
FRAME_INTERVAL_S = 1 / 30


def _loop_cpu_ns(pid: int) -> int:
    """CPU time of the worker's main thread (its judge loop), ns."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0])


def _process_cpu_ns(pid: int) -> int:
    """CPU time of every thread of the worker, ns."""
    return sum(int(p.read_text().split()[0]) for p in Path(f"/proc/{pid}/task").glob("*/schedstat"))


def _threads_cpu_ns(pid: int) -> dict[str, int]:
    """CPU time of each thread of the worker, ns, by thread id."""
    out = {}
    for p in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            out[p.parent.name] = int(p.read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue                                          # a thread that ended meanwhile
    return out


def _judge_threads_ms(pid: int, before: dict[str, int], after: dict[str, int]) -> tuple[float, float]:
    """The CPU the two busiest threads but the judge loop used between the two reads (ms, the
    busier first): the judge threads (the reader thread's copy of a frameset is a fraction of it)."""
    spent = sorted(((after[t] - before.get(t, 0)) / 1e6 for t in after if t != str(pid)), reverse=True)
    spent += [0.0, 0.0]
    return spent[0], spent[1]


def _quiet(pid: int, below_ms: float = 0.5, every_s: float = 0.05, limit_s: float = 120.0) -> None:
    """Return once the worker has caught up: less than ``below_ms`` of CPU over ``every_s``."""
    end = time.monotonic() + limit_s
    last = _process_cpu_ns(pid)
    while time.monotonic() < end:
        time.sleep(every_s)
        now = _process_cpu_ns(pid)
        if now - last < below_ms * 1e6:
            return
        last = now
    raise RuntimeError("the worker did not settle")


def _one(sup: Any, cap: Any, thresholds: Any) -> tuple[dict[str, Any], float, float, tuple[float, float], Any]:
    ch = cap.challenge
    with sup.open_judge(frames=FRAMES, nonce=ch.nonce, thresholds=thresholds,
                        kinds=tuple(sorted(k.value for k in ch.kinds))) as worker:
        t_next = time.perf_counter()
        for fs in cap.sets[:-1]:
            worker.add(fs)
            t_next += FRAME_INTERVAL_S
            time.sleep(max(0.0, t_next - time.perf_counter()))
        pid = sup.pid
        assert pid is not None
        # Caught up with the window but its last frameset, as a terminal on idle cores would be
        # (on this loaded machine the worker falls behind, and ``finish`` would fold a backlog).
        _quiet(pid)
        threads0 = _threads_cpu_ns(pid)
        c0, t0 = _loop_cpu_ns(pid), time.perf_counter()
        worker.add(cap.sets[-1])
        r = worker.finish()
        wall, cpu = (time.perf_counter() - t0) * 1000, (_loop_cpu_ns(pid) - c0) / 1e6
        judges = _judge_threads_ms(pid, threads0, _threads_cpu_ns(pid))
    return {"verdict": r.verdict.to_dict(), "best": r.best, "evidence": r.evidence}, wall, cpu, judges, r


class _Prober:
    """The daemon's probe from a verdict, as the session builds and seals it (``run_capture``)."""

    def __init__(self, tmp: str) -> None:
        from agent.security.keys import generate_file_key
        from agent.uplink.seal import ServerKey
        from proto.capture_agent.v1 import ingest_pb2 as pb
        self.signer = generate_file_key(Path(tmp) / "terminal.pem")
        key = ServerKey.generate("x25519")
        self.challenge = pb.Challenge(nonce=bytes(32), expires_unix_ms=0, server_key_id=key.key_id,
                                      server_public_key=key.public_bytes, hpke_suite="x25519", frames=FRAMES)
        self.counter = 0

    def probe(self, aligned: Any, r: Any, device: Any) -> tuple[str, float]:
        """The plaintext's SHA-256 (timings fixed) and the session thread's CPU to the sealed probe (ms)."""
        from agent.purpose import Purpose
        from agent.uplink.probe import build_payload, seal_probe
        self.counter += 1
        c0 = time.thread_time()
        payload = build_payload(aligned, r.best, quality=r.quality, liveness=r.verdict.to_dict(), device=device,
                                timings_ms={"liveness": 1.0}, frame_digest=r.verdict.frame_digests[r.best["index"]],
                                suite="x25519", evidence=r.evidence, calibration="")
        digest = hashlib.sha256(payload).hexdigest()
        seal_probe(self.challenge, payload, terminal_id="t", session_id="s", counter=self.counter,
                   signer=self.signer, purpose=Purpose.VERIFY)      # wipes the payload
        return digest, (time.thread_time() - c0) * 1000


def main(argv: list[str]) -> int:
    import drivers
    from agent.liveness.fusion import load_thresholds
    from agent.liveness.supervisor import LivenessSupervisor
    from agent.pipeline.align import align_frameset
    from agent.quality import QualityGate
    from agent.session.offline import capture
    from hil.pad_presentations import Presentation, presentation_nonce, presentation_uri
    ref_tree = str(Path(argv[0]).resolve())
    n = int(argv[1]) if len(argv) > 1 else 6
    own_tree = str(Path(__file__).resolve().parents[1])
    gate, thresholds = QualityGate(), load_thresholds("kiosk")
    saved = os.environ.get("PYTHONPATH")
    sups = {}
    try:
        for name, tree in (("reference", ref_tree), ("this", own_tree)):
            os.environ["PYTHONPATH"] = tree                  # the worker's import path (worker_environment)
            sups[name] = LivenessSupervisor()
            sups[name].start()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    rows = []
    tmp = tempfile.TemporaryDirectory()
    prober = _Prober(tmp.name)
    try:
        for index in range(-1, n):                           # -1: warms both workers, not counted
            k = max(index, 0)
            p = Presentation("bona_fide", "live", "train", k, presentation_uri("train", "live", k))
            with drivers.open(p.uri) as cam:
                cap = capture(cam, FRAMES, presentation_nonce(p), gate, require_quality=True)
                device = cam.info
            if len(cap.sets) < FRAMES or cap.challenge is None:
                continue
            order = ["reference", "this"] if index % 2 == 0 else ["this", "reference"]
            got = {name: _one(sups[name], cap, thresholds) for name in order}
            if json.dumps(got["this"][0], sort_keys=True) != json.dumps(got["reference"][0], sort_keys=True):
                raise RuntimeError(f"{p.key}: the two workers' verdicts differ")
            probes: dict[str, tuple[str, float]] = {}
            best = got["this"][4].best
            if best is not None:
                aligned = align_frameset(cap.sets[best["index"]])       # aligned ahead, as in the session
                for name in order:
                    probes[name] = prober.probe(aligned, got[name][4], device)
                del aligned
                if probes["this"][0] != probes["reference"][0]:
                    raise RuntimeError(f"{p.key}: the probes' plaintexts from the two workers' verdicts differ")
            if index < 0:
                continue
            row = {"key": p.key, "verdict": got["this"][0]["verdict"]["verdict"],
                   **{f"{k}_wall_ms": got[k][1] for k in got}, **{f"{k}_loop_cpu_ms": got[k][2] for k in got},
                   **{f"{k}_judge_busier_cpu_ms": got[k][3][0] for k in got},
                   **{f"{k}_judge_other_cpu_ms": got[k][3][1] for k in got},
                   **{f"{k}_probe_cpu_ms": probes[k][1] for k in probes},
                   **{f"{k}_to_sealed_est_ms": got[k][3][0] + got[k][2] + probes[k][1] for k in probes},
                   "plaintext_sha256": probes["this"][0][:16] if probes else None,
                   "load": os.getloadavg()[0]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        for s in sups.values():
            s.stop()
        tmp.cleanup()
    med = statistics.median
    for what in ("wall", "loop_cpu", "judge_busier_cpu", "judge_other_cpu", "probe_cpu", "to_sealed_est"):
        have = [r for r in rows if f"this_{what}_ms" in r]
        if not have:
            continue
        this = [r[f"this_{what}_ms"] for r in have]
        ref = [r[f"reference_{what}_ms"] for r in have]
        span = "last frameset to sealed probe" if what in ("probe_cpu", "to_sealed_est") else "last frameset to verdict"
        print(json.dumps({"row": f"{span}, {what}", "sessions": len(have),
                          "median": med(this), "reference_median": med(ref), "ratio_median": med(this) / med(ref),
                          "p95": float(np.percentile(this, 95)), "reference_p95": float(np.percentile(ref, 95)),
                          "ratio_p95": float(np.percentile(this, 95) / np.percentile(ref, 95))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
