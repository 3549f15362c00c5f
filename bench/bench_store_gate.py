"""``python -m bench store_gate``: what the nonce's script pays for comparing Redis's ``run_id`` with
the one the server checked (sec18, ``config.StoreWatch``: ``INFO server`` read inside the script),
against a real redis-server (a private one, ``hil/redisproc.py``). ``issue_nonce`` with no keys
charged (the script's fixed cost, where the comparison weighs most), gated (``checked_run`` set)
and ungated (``None``: the comparison skipped), alternating batch by batch; the medians per batch.
The gate reads the store's epoch too (its deadline, with Redis's ``TIME``), so the bench writes one
first, as ``StoreWatch`` does (review18: without it every gated call was refused ``StoreUnchecked``,
and the bench died since the epoch was added).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.ingest.redis_store import RedisStore
from hil.ingest.store import NonceRecord
from hil.redisproc import start_redis

BATCH, ROUNDS = 200, 15


def _batch(store: RedisStore, checked: str | None) -> float:
    store.checked_run = checked
    t0 = time.perf_counter()
    for i in range(BATCH):
        now = int(time.time() * 1000)
        store.issue_nonce(os.urandom(32), NonceRecord(f"kiosk-{i % 50}", "s", 1, "k1", now, now + 60_000), now,
                          None, os.urandom(32))
    return (time.perf_counter() - t0) / BATCH * 1000


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-store-gate-") as d:
        proc = start_redis(Path(d) / "redis")
        store = RedisStore.from_url(proc.url, prefix="gate:")
        try:
            run_id = store.run_id()
            store.epoch(os.urandom(8).hex(), "", 600_000)           # a store first seen: no deadline
            _batch(store, None)                                     # warm-up (the scripts loaded)
            off, on = [], []
            for _ in range(ROUNDS):
                off.append(_batch(store, None))
                on.append(_batch(store, run_id))
        finally:
            store.close()
            proc.stop()
    ungated, gated = statistics.median(off), statistics.median(on)
    return [{"name": "issue_nonce, run_id compared (median per call)", "value": gated, "unit": "ms",
             "reference": ungated, "ratio": gated / ungated}]
