"""The ingest server's gRPC health: SERVING only while it could answer a probe now.

Readiness is its store answering (a Redis store can be down while the process runs: every
``BeginCapture`` would then be ``UNAVAILABLE``), a Redis store being the one that passed the
server's checks (``config.StoreWatch``: not restarted or failed over since, or checked again) and a
current HPKE key to offer. The statuses are
computed on each ``Check`` (at most twice a second; ``agent/observe/health.py``), so a load
balancer's health check over mutual TLS sees a store outage within its own check interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2_grpc

from agent.observe.health import NOT_SERVING, SERVING, ReadinessHealth, Status
from hil.ingest.store import StoreUnavailable

if TYPE_CHECKING:
    from hil.ingest.server import ServerState

PROBE_TERMINAL = "health-probe"       # a read of a counter no terminal has: costs the store one lookup


def ingest_statuses(state: ServerState, service: str) -> dict[str, Status]:
    try:
        state.store.last_counter(PROBE_TERMINAL)
        ok = state.current_key_id in state.keys
        # A Redis store must also be the Redis that passed the server's checks (sec18): one that
        # restarted or failed over since, or was never checked, is checked again here (rate-limited)
        # and is NOT_SERVING until it passes: its charges would be refused.
        if ok and state.store_watch is not None:
            ok = state.store_watch.ready(state.now_ms())
    except StoreUnavailable:
        ok = False
    status = SERVING if ok else NOT_SERVING
    return {"": status, service: status}


def add_health(server: grpc.Server, state: ServerState, service: str) -> ReadinessHealth:
    hs = ReadinessHealth(lambda: ingest_statuses(state, service))
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    return hs
