"""What the window's end costs the thread that waits for the verdict (issue 20): train-family live
presentations captured as pad-eval captures them, each fed to a judge on its threads as a camera
delivers it (each frameset measured and folded before the next comes), the last one followed at once
by ``finish``, as the worker does. Per session: the caller's thread CPU in ``finish`` (the last
frameset's fold and the fusion; ``time.thread_time``), the same without the fold, the process's CPU
from the last frameset to the verdict (every thread: the last measurement, whatever the judge
threads work out beside it, and the fusion), the judge's own ``finish`` span, and the verdict (its
result, score, detectors and cues as JSON, to compare two trees' verdicts to the bit).

    nice -n 19 python -m bench.finish_cpu OUT.json 0 22     # train:live:0 .. train:live:21

Run it in two trees on the same presentations and compare ``OUT.json``s; no face data is written.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def session(index: int, gate: Any, thresholds: Any) -> dict[str, Any]:
    import drivers
    from agent.liveness.judge import Judge, judge_pool
    from agent.session.offline import capture
    from hil.padeval import Presentation, dot_reference_for, presentation_nonce, presentation_uri
    p = Presentation("bona_fide", "live", "train", index, presentation_uri("train", "live", index))
    ref = dot_reference_for(p.uri)
    with drivers.open(p.uri) as cam:
        cap = capture(cam, 32, presentation_nonce(p), gate, require_quality=True)
    if len(cap.sets) < 32:
        return {"key": p.key, "outcome": "no window"}
    j = Judge(gate, thresholds, challenge=cap.challenge, notes=cap.notes, pool=judge_pool(), dot_reference=ref)
    drained: list[float] = []
    drain = j._drain

    def timed_drain(block: bool) -> None:
        c = time.thread_time()
        drain(block)
        if block:
            drained.append((time.thread_time() - c) * 1000)
    j._drain = timed_drain                          # type: ignore[method-assign]
    for fs in cap.sets[:-1]:
        j.add(fs)
        j._submitted[-1][1].result()
        j.fold_ready()
    j.add(cap.sets[-1])
    t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
    r = j.finish()
    wall, cpu = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
    proc = (time.process_time() - p0) * 1000
    v = r.verdict
    return {"key": p.key, "verdict": v.verdict, "score": repr(v.score),
            "detectors": json.dumps(v.detectors, sort_keys=True), "cues": json.dumps(v.cues, sort_keys=True),
            "notes": v.notes, "caller_cpu_ms": cpu, "caller_cpu_after_drain_ms": cpu - sum(drained),
            "process_cpu_ms": proc, "wall_ms": wall, "judge_finish_ms": r.timing_ms["finish"],
            "judge_cpu_finish_ms": r.timing_ms.get("cpu_finish")}


def main(argv: list[str]) -> None:
    from agent.liveness.fusion import load_thresholds
    from agent.quality import QualityGate
    out, first, stop = Path(argv[0]), int(argv[1]), int(argv[2])
    gate, thresholds = QualityGate(), load_thresholds("kiosk", challenged=True)
    rows = []
    for i in range(first, stop):
        row = session(i, gate, thresholds)
        rows.append(row)
        print(json.dumps({k: row.get(k) for k in ("key", "verdict", "caller_cpu_after_drain_ms", "process_cpu_ms")}),
              flush=True)
    out.write_text(json.dumps(rows, indent=1))
    done = [r for r in rows if "caller_cpu_ms" in r]
    for name in ("caller_cpu_ms", "caller_cpu_after_drain_ms", "process_cpu_ms", "wall_ms", "judge_finish_ms"):
        v = [r[name] for r in done]
        print(f"{name:28} median {statistics.median(v):7.2f}  p95 {np.percentile(v, 95):7.2f}  (n={len(v)})")


if __name__ == "__main__":
    main(sys.argv[1:])
