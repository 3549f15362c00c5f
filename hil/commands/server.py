"""``capture-agent server --config FILE``: the reference probe ingest server (tests, demo, HIL rigs).

It checks, in order, what a bank's server must check (``hil/ingest/server.py``, ``docs/uplink.md``).
Prints ``ingest server: ready on HOST:PORT`` when listening. SIGHUP re-reads the config (terminals,
pins, signing keys, revocations, HPKE keys) without dropping a connection; SIGTERM or SIGINT stop it.
"""

from __future__ import annotations

import signal
import threading

from drivers.errors import CaptureAgentError
from hil.ingest.config import build_state, load_server_config, reload
from hil.ingest.server import serve


def register(sub) -> None:
    p = sub.add_parser("server", help="run the reference ingest server (mutual TLS gRPC)")
    p.add_argument("--config", required=True, help="server TOML (see hil/ingest/config.py)")
    p.add_argument("--grace", type=float, default=2.0)
    p.set_defaults(func=run)


def limits_said(cfg) -> str:
    """The failure limits as the start and reload lines say them: off is said loudly (0 is for load
    generators and HIL runs; a bank's server must never run without them), and so is a key not counted."""
    return cfg.failure_limits().said()


def run(args) -> int:
    cfg, base = load_server_config(args.config)
    state, tls = build_state(cfg, base)
    server, port = serve(state, tls, cfg.listen, cfg.transport)
    host = cfg.listen.rsplit(":", 1)[0]
    print(f"ingest server: ready on {host}:{port}; {len(state.registry.terminals)} terminal(s); "
          f"suite {cfg.current_suite}; store {cfg.store.split('://')[0]}; {limits_said(cfg)}", flush=True)
    wake = threading.Event()
    got: list[str] = []

    def handler(signum, _frame):
        got.append(signal.Signals(signum).name)
        wake.set()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, handler)
    why = ""
    while not why:
        wake.wait(0.5)
        wake.clear()
        while got:
            name = got.pop(0)
            if name != "SIGHUP":
                why = name
                break
            try:
                new = reload(state, args.config)
                print(f"ingest server: reloaded; {len(state.registry.terminals)} terminal(s); {limits_said(new)}",
                      flush=True)
            except CaptureAgentError as exc:
                print(f"ingest server: reload refused, still running the previous config: "
                      f"error[{exc.code}]: {exc.message}", flush=True)
    server.stop(args.grace).wait(args.grace + 1)
    state.store.close()
    print(f"ingest server: stopped ({why})", flush=True)
    return 0
