"""Identical copies of one probe racing one nonce (``python -m bench copies``): how many are opened
and judged, and the server's CPU for the burst.

A terminal (or whoever holds its key) sends K byte-identical copies of one sealed probe at once.
They share one claim of the probe id (``Store.read_and_claim``: the terminal's own retry of the
same bytes must be judged), so every copy that reads the nonce before the first copy has used it
is opened and judged: one nonce buys up to K judgements of CPU (the verdict is the same each time,
so nothing is learnt, only work). The burst goes through a pool of 8 threads, the reference
server's default ``[transport] workers``, against the servicer in process (``hil/ingest/fuzz.py``'s
world: memory store, a real client certificate's auth context), the copies released together.

Rows, per K: the copies opened (``open_sealed`` calls) and the process CPU of the burst, with the
burst of K = 1 as the reference (same process, same probe builder). With ``uncapped`` the cap on
the copies one claim admits (``store.MAX_COPIES_PER_CLAIM``) is lifted for the run, as before it
existed, alternating burst by burst with the capped server.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any
from unittest import mock

from hil.ingest import server as server_mod
from hil.ingest import store as store_mod
from hil.ingest.fuzz import Aborted, World, _header, _payload, _seal, make_world

KS = (1, 2, 4, 8, 16)
ROUNDS = 30
WORKERS = 8


def _burst(w: World, pool: futures.ThreadPoolExecutor, k: int, rng: random.Random) -> tuple[int, float]:
    """K identical copies of one fresh probe at once: (copies opened, process CPU ms of the burst)."""
    ch = w.challenge()
    raw = _seal(w, ch, _header(w, ch), _payload(rng, ch).SerializeToString()).SerializeToString()
    opened = [0]
    lock = threading.Lock()
    real_open = server_mod.open_sealed
    gate = threading.Barrier(min(k, WORKERS))

    def counting_open(*a, **kw):
        with lock:
            opened[0] += 1
        return real_open(*a, **kw)

    def one(i: int) -> str:
        if i < WORKERS:
            gate.wait(timeout=30)              # the first WORKERS copies leave together
        try:
            return w.ingest._submit_raw(raw, w.peer).reason
        except Aborted as exc:                 # UNAVAILABLE: the terminal's client retries it
            return exc.details.split(":", 1)[0]
    with mock.patch.object(server_mod, "open_sealed", counting_open):
        t0 = time.process_time()
        receipts = list(pool.map(one, range(k)))
        cpu = 1000 * (time.process_time() - t0)
    reasons = set(receipts)
    if not reasons <= {"OK", "PROBE_IN_PROGRESS"} or "OK" not in reasons:
        raise RuntimeError(f"copies of a valid probe got {reasons}")
    return opened[0], cpu


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rng = random.Random(5)
    with tempfile.TemporaryDirectory(prefix="bench-copies-") as d, \
            futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        w = make_world(Path(d))
        for _ in range(5):                                         # warm-up
            _burst(w, pool, 1, rng)
        got: dict[tuple[str, int], tuple[list[int], list[float]]] = {}
        cap = getattr(store_mod, "MAX_COPIES_PER_CLAIM", None)
        for _ in range(ROUNDS):
            for k in KS:
                for label in ("capped", "uncapped"):
                    if cap is None and label == "capped":
                        continue                                   # no cap in this tree: one series
                    ctx = (mock.patch.object(store_mod, "MAX_COPIES_PER_CLAIM", 10**9)
                           if cap is not None and label == "uncapped" else contextlib.nullcontext())
                    with ctx:
                        n, cpu = _burst(w, pool, k, rng)
                    opened, cpus = got.setdefault((label, k), ([], []))
                    opened.append(n)
                    cpus.append(cpu)
        for (label, k), (opened, cpus) in sorted(got.items()):
            ref = statistics.median(got[(label, 1)][1])
            rows.append({"name": f"copies: {label}, K = {k}, copies opened (median of {ROUNDS}, max {max(opened)})",
                         "value": statistics.median(opened), "unit": "probes"})
            rows.append({"name": f"copies: {label}, K = {k}, burst CPU (median)", "value": statistics.median(cpus),
                         "unit": "ms", "reference": ref, "ratio": statistics.median(cpus) / ref})
    return rows
