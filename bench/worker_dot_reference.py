"""The liveness worker's start and memory with the camera's dot reference and without (issue 14, dotref31).

The daemon hands ``[camera] dot_reference`` to the worker in ring slot 0 (``agent/liveness/supervisor.py``);
the worker parses it before its warm-up and keeps it for every session's judge. This starts the worker
alternately without and with a reference (a train sim camera's enrolled one, ``hil.pad_enrolment``), in this
one process, and reports per start: the spawn-to-hello time (``LivenessSupervisor.last_start_ms``) and the
worker's resident memory after its hello (``VmRSS``), then the medians' ratios with/without. Wall-clock
times on a loaded machine: read the ratio, not the milliseconds. No face data.

    echo 19 > /proc/self/autogroup
    PYTHONPATH=$PWD timeout 900 /work/main/.venv/bin/python -m bench.worker_dot_reference --starts 3
"""

from __future__ import annotations

import argparse
import json
import statistics

from agent.liveness.supervisor import LivenessSupervisor, SupervisorSettings


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def one_start(dot_reference: bytes) -> dict[str, float]:
    with LivenessSupervisor(SupervisorSettings(dot_reference=dot_reference)) as sup:
        assert sup.pid is not None
        return {"start_ms": sup.last_start_ms, "rss_kib": float(rss_kib(sup.pid))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.worker_dot_reference")
    ap.add_argument("--starts", type=int, default=3, help="starts of each kind, alternated")
    ap.add_argument("--uri", default="sim://?family=train&realtime=0", help="the camera whose reference is enrolled")
    args = ap.parse_args(argv)
    from hil.pad_enrolment import dot_reference_for
    raw = dot_reference_for(args.uri).to_bytes()
    runs: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    for _ in range(args.starts):
        for kind, ref in (("without", b""), ("with", raw)):
            r = one_start(ref)
            runs[kind].append(r)
            print(json.dumps({"kind": kind, **r}), flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("start_ms", "rss_kib")} for k, v in runs.items()}
    print(json.dumps({"reference_bytes": len(raw), "median": med,
                      "ratio_start": round(med["with"]["start_ms"] / med["without"]["start_ms"], 3),
                      "ratio_rss": round(med["with"]["rss_kib"] / med["without"]["rss_kib"], 3),
                      "rss_added_kib": med["with"]["rss_kib"] - med["without"]["rss_kib"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
