"""``capture-agent server --config FILE``: the reference probe ingest server (tests, demo, HIL rigs).

It checks, in order, what a bank's server must check: the client certificate against the terminal
id, the terminal's signature, the nonce (fresh, used once, this session's), decryption with the
header bound, the payload schema, and the liveness report's binding to the probe's frames
(``agent/uplink/server.py``). Prints ``ingest server: ready on HOST:PORT`` when listening; stops
on SIGTERM.
"""

from __future__ import annotations

from agent.commands.run import wait_for_signal
from hil.ingest.config import build_state, load_server_config
from hil.ingest.server import serve


def register(sub) -> None:
    p = sub.add_parser("server", help="run the reference ingest server (mutual TLS gRPC)")
    p.add_argument("--config", required=True, help="server TOML (see agent/uplink/server_config.py)")
    p.add_argument("--grace", type=float, default=2.0)
    p.set_defaults(func=run)


def run(args) -> int:
    cfg, base = load_server_config(args.config)
    state, tls = build_state(cfg, base)
    server, port = serve(state, tls, cfg.listen, workers=cfg.workers)
    host = cfg.listen.rsplit(":", 1)[0]
    print(f"ingest server: ready on {host}:{port}; {len(state.terminals)} terminal(s); "
          f"suite {cfg.current_suite}", flush=True)
    why = wait_for_signal()
    server.stop(args.grace).wait(args.grace + 1)
    print(f"ingest server: stopped ({why})", flush=True)
    return 0
