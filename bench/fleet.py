"""The server tier under a fleet: N terminals (each its own client certificate and signing key,
the agent's uplink code, real mutual TLS gRPC on loopback) against the reference ingest server
(``capture-agent server`` in its own process) with its store in a private ``redis-server``.

``make bench`` runs N = 10 and 100 (``bench/bench_fleet.py``); any N on request::

    python -m bench fleet --terminals 10,100,1000 [--seconds 10] [--procs 4]

The terminals are played by ``--procs`` load processes (``hil.fleet.FleetProcesses``; default: one
per 250 terminals, at least one), each terminal with its own certificate and key, so the load
generator is not one interpreter's GIL. On a machine with few cores the generator and the server
still share them: the rows say how busy each was.

For each N, in order:

1. cold start: every terminal connects (TLS handshake) and has one probe accepted;
2. saturation: every terminal probes back to back for ``--seconds``; probes/s, and probes per
   second of server CPU (``/proc/PID/stat`` of the server process: "per server core"), and the
   same for Redis; latency here is queueing (Little's law), stated for completeness;
3. paced: the fleet at half the saturation rate (each terminal pauses an exponentially distributed
   time between probes), for ``--seconds``; probe latency p50/p99 (BeginCapture, seal and sign,
   SubmitProbe, receipt), the figure a kiosk user sees of the server tier;
4. restart: the server is stopped (SIGTERM, in-flight calls finish), every terminal starts a probe
   at once and keeps retrying (the client's own retries, then a jittered backoff between probes),
   the server comes back after ``--outage`` seconds; recovery is the time from its ready line until
   every terminal's probe has succeeded. Nonces issued before the restart live on in Redis;
5. store: Redis's key count and memory after the run. Each terminal's nonce records (used ones
   with their receipts) are capped at ``nonces_per_terminal`` (8), the oldest evicted, so the
   store grows with N, not with the number of probes.

Nothing here asserts a time: the rows are measurements (``bench/__init__.py``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hil.fleet import (
    FleetProcesses,
    FleetServer,
    ProbeResult,
    cpu_seconds,
    provision_fleet,
    recovery,
)
from hil.redisproc import start_redis


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _window(results: list[ProbeResult], t0: float, t1: float) -> list[ProbeResult]:
    return [r for r in results if t0 <= r.ended <= t1]


# The server's cost per probe before it re-verified the challenge evidence (4.3 ms, docs/uplink.md):
# the evidence check is to cost no more than that again in total, about 250 probes per core-second.
TARGET_CPU_MS = 4.0


def default_procs(n: int) -> int:
    return max(1, min(8, -(-n // 250)))


def _cpu(pids: Sequence[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)


def fleet_rows(n: int, seconds: float = 10.0, outage_s: float = 2.0, procs: int | None = None) -> list[dict]:
    import redis

    rows: list[dict] = []
    tag = f"N={n}"
    procs = procs or default_procs(n)
    with tempfile.TemporaryDirectory(prefix="fleet-") as d:
        tmp = Path(d)
        rp = start_redis(tmp / "redis")
        server: FleetServer | None = None
        fleet: FleetProcesses | None = None
        try:
            t_prov = time.monotonic()
            files = provision_fleet(tmp / "fleet", n, store_url=rp.url)
            server = FleetServer(files)
            server.start()
            fleet = FleetProcesses(files, procs)
            prov_s = time.monotonic() - t_prov
            ids = fleet.terminal_ids

            # 1. cold start
            t0 = time.monotonic()
            cold = recovery(fleet.run_until_each_succeeds(120.0), ids, t0)
            rows.append({"name": f"fleet {tag}: cold start, every terminal connected and accepted",
                         "value": cold.seconds_all if cold.seconds_all is not None else float("nan"), "unit": "s"})

            # 2. saturation
            cpu0, rcpu0, gcpu0 = cpu_seconds(server.pid), cpu_seconds(rp.proc.pid), _cpu(fleet.pids)
            t0 = time.monotonic()
            sat = fleet.run_load(seconds)
            wall = time.monotonic() - t0
            cpu, rcpu = cpu_seconds(server.pid) - cpu0, cpu_seconds(rp.proc.pid) - rcpu0
            gcpu = _cpu(fleet.pids) - gcpu0
            ok = sum(r.ok for r in sat)
            rate = ok / wall
            lo, hi = _rate_bounds(ok, wall)
            rows += [
                {"name": f"fleet {tag}: load processes", "value": float(procs), "unit": "procs"},
                {"name": f"fleet {tag}: saturated, probes accepted per second", "value": rate, "unit": "probes/s",
                 "low": lo, "high": hi},
                {"name": f"fleet {tag}: saturated, probes per server CPU-second (per core)", "value": ok / cpu,
                 "unit": "probes/s"},
                {"name": f"fleet {tag}: saturated, server CPU per probe (target {TARGET_CPU_MS:g} ms)",
                 "value": 1000 * cpu / max(ok, 1), "unit": "ms", "reference": TARGET_CPU_MS,
                 "ratio": 1000 * cpu / max(ok, 1) / TARGET_CPU_MS},
                {"name": f"fleet {tag}: saturated, server cores busy", "value": cpu / wall, "unit": "cores"},
                {"name": f"fleet {tag}: saturated, load generator cores busy", "value": gcpu / wall, "unit": "cores"},
                {"name": f"fleet {tag}: saturated, Redis CPU per probe", "value": 1000 * rcpu / max(ok, 1),
                 "unit": "ms"},
                {"name": f"fleet {tag}: saturated, latency p50 (queueing)",
                 "value": _pct([r.latency_ms for r in sat if r.ok], 50), "unit": "ms"},
                {"name": f"fleet {tag}: saturated, failed probes", "value": float(len(sat) - ok), "unit": "probes"},
            ]

            # 3. paced at half the saturated rate
            think = n / max(rate / 2, 1e-3)
            cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
            paced = fleet.run_load(seconds, think_s=think)
            wall = time.monotonic() - t0
            cpu = cpu_seconds(server.pid) - cpu0
            okp = [r for r in paced if r.ok]
            lat = [r.latency_ms for r in okp]
            rows += [
                {"name": f"fleet {tag}: paced, probes accepted per second", "value": len(okp) / wall,
                 "unit": "probes/s"},
                {"name": f"fleet {tag}: paced, probe latency p50", "value": _pct(lat, 50), "unit": "ms"},
                {"name": f"fleet {tag}: paced, probe latency p99", "value": _pct(lat, 99), "unit": "ms"},
                {"name": f"fleet {tag}: paced, server CPU per probe", "value": 1000 * cpu / max(len(okp), 1),
                 "unit": "ms"},
                {"name": f"fleet {tag}: paced, failed probes", "value": float(len(paced) - len(okp)),
                 "unit": "probes"},
            ]

            # 4. restart with every terminal reconnecting at once
            server.stop()
            got: list[ProbeResult] = []
            fleet.start_until_each_succeeds(120.0 + outage_s)
            time.sleep(outage_s)
            ready = server.start()
            got.extend(fleet.collect())
            rec = recovery([r for r in got if r.ended >= ready], ids, ready)
            rows += [
                {"name": f"fleet {tag}: restart ({outage_s:g} s down), until every terminal's probe succeeds",
                 "value": rec.seconds_all if rec.seconds_all is not None else float("nan"), "unit": "s"},
                {"name": f"fleet {tag}: restart, median terminal's wait", "value": rec.seconds_p50 or float("nan"),
                 "unit": "s"},
                {"name": f"fleet {tag}: restart, failed probes while down or coming back",
                 "value": float(sum(1 for r in got if not r.ok)), "unit": "probes"},
                {"name": f"fleet {tag}: restart, terminals never recovered", "value": float(n - rec.recovered),
                 "unit": "terminals"},
            ]

            # 5. the store
            r = redis.Redis(unix_socket_path=str(rp.socket))
            info = r.info("memory")
            rows += [
                {"name": f"fleet {tag}: Redis keys after the run", "value": float(r.dbsize()), "unit": "keys"},
                {"name": f"fleet {tag}: Redis memory after the run", "value": info["used_memory"] / 2**20,
                 "unit": "MiB"},
                {"name": f"fleet {tag}: Redis keys per terminal", "value": r.dbsize() / n, "unit": "keys"},
                {"name": f"fleet {tag}: probe payload size", "value": fleet.payload_size / 1024,
                 "unit": "KiB"},
                {"name": f"fleet {tag}: provisioning (CA, certificates, keys, server start; setup)",
                 "value": prov_s, "unit": "s"},
            ]
            r.close()
        finally:
            if fleet is not None:
                fleet.close()
            if server is not None:
                server.stop()
            rp.stop()
    return rows


def _rate_bounds(count: int, seconds: float) -> tuple[float, float]:
    """95 % bounds of a Poisson count over ``seconds`` (normal approximation; probes are many)."""
    half = 1.96 * np.sqrt(max(count, 1))
    return max(count - half, 0.0) / seconds, (count + half) / seconds


def run_fleet(terminals: Sequence[int] = (10, 100), seconds: float = 10.0, outage_s: float = 2.0,
              procs: int | None = None) -> list[dict]:
    rows: list[dict] = []
    for n in terminals:
        rows += fleet_rows(n, seconds, outage_s, procs)
    return rows


def main(argv: list[str]) -> int:
    from bench.__main__ import write_results

    p = argparse.ArgumentParser(prog="python -m bench fleet", description=__doc__.split("\n\n")[0])
    p.add_argument("--terminals", default="10,100", help="comma-separated fleet sizes (default 10,100)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the saturated and paced runs")
    p.add_argument("--outage", type=float, default=2.0, help="seconds the server is down in the restart")
    p.add_argument("--procs", type=int, default=0,
                   help="load processes the terminals are split across (default: one per 250 terminals)")
    a = p.parse_args(argv)
    sizes = [int(x) for x in a.terminals.split(",") if x.strip()]
    if not sizes or any(not 1 <= x <= 10_000 for x in sizes):
        p.error("--terminals: sizes from 1 to 10000")
    if a.procs and not 1 <= a.procs <= min(sizes):
        p.error("--procs: from 1 to the smallest fleet size")
    t0 = time.perf_counter()
    rows = [{"suite": "fleet", **r} for r in run_fleet(sizes, a.seconds, a.outage, a.procs or None)]
    print(f"[fleet: {time.perf_counter() - t0:.1f} s]", file=sys.stderr)
    return write_results(rows, [])
