"""``python -m bench store_full``: what a full Redis lets the server write past its ``maxmemory``
(sec18: the claim, the use and the failure's scripts declare ``allow-oom``, so a challenge charged
before Redis filled up is finished and settled; the nonce's script, new challenges, stays refused).

A private redis-server (``hil/redisproc.py``); 50 terminals, each with ``nonces_per_terminal`` (8)
challenges issued and charged on two keys; then ``maxmemory`` set to what Redis uses, and every
challenge finished the costliest way: ``MAX_PROBES_PER_NONCE`` claims of ``MAX_COPIES_PER_CLAIM``
holds each, a use with a 300-byte receipt that keeps its charge as the failure, and a judged
failure on both keys for each other claimed probe. The row: ``used_memory`` growth per challenge,
against the memory one challenge took when issued (the reference).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from hil.ingest.redis_store import RedisStore
from hil.ingest.store import MAX_COPIES_PER_CLAIM, MAX_PROBES_PER_NONCE, Charge, NonceRecord, Settle, failure_member
from hil.redisproc import start_redis

TERMINALS, PER_TERMINAL = 50, 8


def _keys(terminal: str) -> tuple[str, str]:
    return f"terminal:{terminal}", f"subject:{'ab' * 32}:terminal:{terminal}"


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-store-full-") as d:
        proc = start_redis(Path(d) / "redis")
        store = RedisStore.from_url(proc.url, prefix="ca:")
        admin = redis.Redis(unix_socket_path=str(proc.socket))
        try:
            now = int(time.time() * 1000)
            start = int(admin.info("memory")["used_memory"])
            made = []
            for i in range(TERMINALS * PER_TERMINAL):
                terminal, nonce = f"kiosk-{i // PER_TERMINAL:04d}", os.urandom(32)
                record = NonceRecord(terminal, f"sess-{i}", 1, "k" * 16, now, now + 60_000, subject="ab" * 32,
                                     challenges="projector,illumination", frames=24)
                store.issue_nonce(nonce, record, now, Charge(_keys(terminal), (64, 64), 600_000), os.urandom(32))
                made.append((terminal, nonce))
            full = int(admin.info("memory")["used_memory"])
            admin.config_set("maxmemory", full)                       # full from here on
            for i, (terminal, nonce) in enumerate(made):
                for j in range(MAX_PROBES_PER_NONCE):
                    digest = os.urandom(32)
                    for h in range(MAX_COPIES_PER_CLAIM):
                        store.read_and_claim(nonce, terminal, f"p{j}", digest, now + 1, hold=f"h{j}{h}")
                store.use_nonce(nonce, terminal_id=terminal, probe_id="p0", digest=b"x" * 32, counter=i + 1,
                                receipt=os.urandom(300), now_ms=now + 2,
                                settle=Settle(_keys(terminal), 600_000, refund=False))
                for _ in range(1, MAX_PROBES_PER_NONCE):
                    for key in _keys(terminal):
                        store.add_failure(key, None, 600_000, failure_member(nonce, os.urandom(32)))
            after = int(admin.info("memory")["used_memory"])
        finally:
            admin.config_set("maxmemory", 0)
            admin.close()
            store.close()
            proc.stop()
    n = len(made)
    return [{"name": "bytes past maxmemory per challenge finished (worst case)", "value": (after - full) / n,
             "unit": "B", "reference": (full - start) / n, "ratio": (after - full) / (full - start)}]
