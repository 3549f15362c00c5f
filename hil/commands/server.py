"""``capture-agent server --config FILE``: the reference probe ingest server (tests, demo, HIL rigs).

It checks, in order, what a bank's server must check (``hil/ingest/server.py``, ``docs/uplink.md``).
Prints ``ingest server: ready on HOST:PORT`` when listening. SIGHUP re-reads the config (terminals,
pins, signing keys, revocations, HPKE keys; the subject keys only as a rotation the store accepts,
``hil/ingest/config.py`` ``reload``) without dropping a connection; SIGTERM or SIGINT stop it. A
reload that cannot apply says ``reload refused, still running the previous config: error[CODE]``.
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


def keys_said(state) -> str:
    """The subject key as the start and reload lines say it: its id (never the key) and, during a
    rotation, the previous key's."""
    keys = state.subject_keys
    prev = f" (rotating from {keys.previous.key_id})" if keys.previous is not None else ""
    return f"subject key {keys.current.key_id}{prev}"


def run(args) -> int:
    cfg, base = load_server_config(args.config)
    state, tls = build_state(cfg, base)
    server, port = serve(state, tls, cfg.listen, cfg.transport)
    host = cfg.listen.rsplit(":", 1)[0]
    print(f"ingest server: ready on {host}:{port}; {len(state.registry.terminals)} terminal(s); "
          f"suite {cfg.current_suite}; store {cfg.store.split('://')[0]}; {keys_said(state)}; {limits_said(cfg)}",
          flush=True)
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
                print(f"ingest server: reloaded; {len(state.registry.terminals)} terminal(s); {keys_said(state)}; "
                      f"{limits_said(new)}", flush=True)
            except CaptureAgentError as exc:
                print(f"ingest server: reload refused, still running the previous config: "
                      f"error[{exc.code}]: {exc.message}", flush=True)
    server.stop(args.grace).wait(args.grace + 1)
    state.store.close()
    print(f"ingest server: stopped ({why})", flush=True)
    return 0
