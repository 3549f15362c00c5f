"""``python -m bench copies_redis``: ``bench copies``' bursts against a real redis-server (a private
one on a Unix socket, ``hil/redisproc.py``) instead of the memory store (review 13: the cap on
identical copies, ``MAX_COPIES_PER_CLAIM``, had been measured in process only).

With a shared store the window between a copy's claim and the first copy's use is wider (the read,
the judgement and the use are round trips), so uncapped more copies are opened than with the
memory store. Rows, per K: the copies opened, capped and uncapped (``redis_store``'s cap lifted for
the burst), alternating burst by burst.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import tempfile
from concurrent import futures
from pathlib import Path
from typing import Any
from unittest import mock

from bench.bench_copies import KS, WORKERS, _burst
from hil.ingest import redis_store
from hil.ingest.fuzz import make_world
from hil.redisproc import start_redis

ROUNDS = 20


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rng = random.Random(5)
    with tempfile.TemporaryDirectory(prefix="bench-copies-redis-") as d:
        proc = start_redis(Path(d) / "redis")
        try:
            w = make_world(Path(d))
            w.state.store = redis_store.RedisStore.from_url(proc.url, prefix="copies:")
            got: dict[tuple[str, int], list[int]] = {}
            with futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
                for _ in range(5):                                     # warm-up
                    _burst(w, pool, 1, rng)
                for _ in range(ROUNDS):
                    for k in KS:
                        for label in ("capped", "uncapped"):
                            ctx = (mock.patch.object(redis_store, "MAX_COPIES_PER_CLAIM", 10**9)
                                   if label == "uncapped" else contextlib.nullcontext())
                            with ctx:
                                got.setdefault((label, k), []).append(_burst(w, pool, k, rng)[0])
            w.state.store.close()
        finally:
            proc.stop()
    for (label, k), opened in sorted(got.items()):
        rows.append({"name": f"copies on redis: {label}, K = {k}, opened (median of {ROUNDS}, max {max(opened)})",
                     "value": statistics.median(opened), "unit": "probes"})
    return rows
