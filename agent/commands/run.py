"""``capture-agent run --config FILE``: the daemon.

Prints ``capture-agent: ready ...`` (and notifies systemd) once the local API is up; stops
gracefully on SIGTERM or SIGINT: running captures are cancelled and report it, the audit log is
closed with a signed checkpoint, and the exit status is 0.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
from pathlib import Path

from agent import allocator, config
from agent.daemon import Daemon
from agent.security.process import harden_daemon


def register(sub) -> None:
    p = sub.add_parser("run", help="run the daemon (local API for the kiosk app, uplink to the ingest server)")
    p.add_argument("--config", required=True, help="the agent's TOML config (see capture-agent.sample.toml)")
    p.add_argument("--grace", type=float, default=5.0, help="seconds a running capture gets to finish on SIGTERM")
    p.set_defaults(func=run)


def wait_for_signal(tick=None) -> str:
    """Block until SIGTERM or SIGINT; ``tick()`` runs every half second meanwhile (the watchdog)."""
    stop = threading.Event()
    got: list[str] = []

    def handler(signum, _frame):
        got.append(signal.Signals(signum).name)
        stop.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not stop.wait(0.5):
        if tick is not None:
            tick()
    return got[0]


def run(args) -> int:
    allocator.limit_arenas()                     # before the daemon's threads allocate (agent/allocator.py)
    allocator.fix_mmap_threshold()               # frame-sized blocks mapped apart, not carved from the arenas
    hardening = harden_daemon()                  # before any key, PIN or face is in memory
    settings = config.load(args.config)
    if getattr(args, "log_level", None) is None:
        logging.getLogger().setLevel(settings.logging.level.upper())
    digest = hashlib.sha256(Path(args.config).read_bytes()).hexdigest()
    d = Daemon(settings, config_digest=digest, hardening=hardening)
    d.start()
    assert d.supervisor is not None                # start() returns only with every part up
    print(f"capture-agent: ready; terminal {settings.terminal_id}; local API on {d.socket_path}; "
          f"liveness worker pid {d.supervisor.pid}", flush=True)
    why = wait_for_signal(d.tick)
    d.stop(args.grace)
    print(f"capture-agent: stopped ({why})", flush=True)
    return 0
