"""``python -m bench store_wait``: what ``WAIT 1 <ms>`` after a charge would cost (issues 15-19 leftover
5, sec19). Redis replicates asynchronously: a failover to a replica that had not received the last
charges loses them (a partial loss, which keeps the store's epoch, so no quarantine). ``WAIT`` after
the nonce's script, on the same connection, returns once a replica has acknowledged every write that
connection sent, which closes that gap at the price measured here.

A real primary and replica on this host (``hil/redisproc.py``: the primary also on a TCP port of
127.0.0.1 with a random password, since a replica dials its primary over TCP; both ``appendonly
yes`` in a private directory). ``issue_nonce`` with a charge on three keys, as ``BeginCapture``
charges: as the server does by default (the reference), and with ``store_wait_replicas = 1``
(``RedisStore.wait_replicas``: the script and ``WAIT 1 1000`` pipelined on one connection).
Alternating batches, the medians per call. On one host the replication round trip is a loopback's:
on a network add the round trip time between the primary and its replica.
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from hil.ingest.redis_store import RedisStore
from hil.ingest.store import Charge, NonceRecord
from hil.redisproc import start_redis

BATCH, ROUNDS = 200, 15


def _wait_for(probe, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except redis.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {timeout_s:g} s")


def _batch(store: RedisStore, wait: bool) -> float:
    store.wait_replicas = 1 if wait else 0
    t0 = time.perf_counter()
    for i in range(BATCH):
        now = int(time.time() * 1000)
        terminal = f"kiosk-{i % 50}"
        charge = Charge((f"terminal:{terminal}", f"subject:{'ab' * 32}", f"subject:{'ab' * 32}:terminal:{terminal}"),
                        (64, 64, 64), 600_000, store_clock=True)
        store.issue_nonce(os.urandom(32), NonceRecord(terminal, os.urandom(8).hex(), 1, "k1", now, now + 60_000), now,
                          charge, os.urandom(32))          # (a charge the replica did not ack: StoreUnavailable)
    return (time.perf_counter() - t0) / BATCH * 1000


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-store-wait-") as d:
        password = secrets.token_hex(16)
        primary = start_redis(Path(d) / "primary", password=password, tcp=True,
                              extra=("--repl-diskless-sync-delay", "0"))
        replica = start_redis(Path(d) / "replica", extra=("--replicaof", "127.0.0.1", str(primary.port),
                                                          "--masterauth", password))
        follower = redis.Redis(unix_socket_path=str(replica.socket))
        store = RedisStore(redis.Redis(unix_socket_path=str(primary.socket), password=password), prefix="wait:")
        store.wait_ms = 1000
        try:
            _wait_for(lambda: follower.info("replication").get("master_link_status") == "up",
                      "the replica did not link to the primary")
            _batch(store, True)                                      # warm-up (the scripts loaded)
            alone, waited = [], []
            for _ in range(ROUNDS):
                alone.append(_batch(store, False))
                waited.append(_batch(store, True))
        finally:
            store.close()
            follower.close()
            replica.stop()
            primary.stop()
    ref, with_wait = statistics.median(alone), statistics.median(waited)
    return [{"name": "issue_nonce, store_wait_replicas 1 (median per call)", "value": with_wait, "unit": "ms",
             "reference": ref, "ratio": with_wait / ref}]
