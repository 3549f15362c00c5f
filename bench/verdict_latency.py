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
counted against this tree."""

from __future__ import annotations

import json
import os
import statistics
import sys
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


def _one(sup: Any, cap: Any, thresholds: Any) -> tuple[dict[str, Any], float, float]:
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
        c0, t0 = _loop_cpu_ns(pid), time.perf_counter()
        worker.add(cap.sets[-1])
        r = worker.finish()
        wall, cpu = (time.perf_counter() - t0) * 1000, (_loop_cpu_ns(pid) - c0) / 1e6
    return {"verdict": r.verdict.to_dict(), "best": r.best, "evidence": r.evidence}, wall, cpu


def main(argv: list[str]) -> int:
    import drivers
    from agent.liveness.fusion import load_thresholds
    from agent.liveness.supervisor import LivenessSupervisor
    from agent.quality import QualityGate
    from agent.session.offline import capture
    from hil.padeval import Presentation, presentation_nonce, presentation_uri
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
    try:
        for index in range(-1, n):                           # -1: warms both workers, not counted
            k = max(index, 0)
            p = Presentation("bona_fide", "live", "train", k, presentation_uri("train", "live", k))
            with drivers.open(p.uri) as cam:
                cap = capture(cam, FRAMES, presentation_nonce(p), gate, require_quality=True)
            if len(cap.sets) < FRAMES or cap.challenge is None:
                continue
            order = ["reference", "this"] if index % 2 == 0 else ["this", "reference"]
            got = {name: _one(sups[name], cap, thresholds) for name in order}
            if json.dumps(got["this"][0], sort_keys=True) != json.dumps(got["reference"][0], sort_keys=True):
                raise RuntimeError(f"{p.key}: the two workers' verdicts differ")
            if index < 0:
                continue
            row = {"key": p.key, "verdict": got["this"][0]["verdict"]["verdict"],
                   **{f"{k}_wall_ms": got[k][1] for k in got}, **{f"{k}_loop_cpu_ms": got[k][2] for k in got},
                   "load": os.getloadavg()[0]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        for s in sups.values():
            s.stop()
    med = statistics.median
    for what in ("wall", "loop_cpu"):
        this = [r[f"this_{what}_ms"] for r in rows]
        ref = [r[f"reference_{what}_ms"] for r in rows]
        print(json.dumps({"row": f"last frameset to verdict, {what}", "sessions": len(rows),
                          "median": med(this), "reference_median": med(ref), "ratio_median": med(this) / med(ref),
                          "p95": float(np.percentile(this, 95)), "reference_p95": float(np.percentile(ref, 95)),
                          "ratio_p95": float(np.percentile(this, 95) / np.percentile(ref, 95))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
