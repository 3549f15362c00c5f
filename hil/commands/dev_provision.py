"""``capture-agent dev-provision DIR``: a development CA, reference server and terminal, with configs
(see ``hil/provision.py``). Not for production: a bank issues certificates and keys from its PKI."""

from __future__ import annotations

import json

from agent.errors import UsageError
from hil.provision import provision_dev


def register(sub) -> None:
    p = sub.add_parser("dev-provision", help="write a development CA, server and terminal keys and configs")
    p.add_argument("dir")
    p.add_argument("--terminal-id", default="kiosk-dev-0001")
    p.add_argument("--port", type=int, default=8443, help="the reference server's port on 127.0.0.1")
    p.add_argument("--camera", default="sim://?subject=live&lux=300&distance_mm=500", help="the terminal's camera URI")
    p.add_argument("--suite", default="x25519", choices=["x25519", "mlkem768-x25519"])
    p.add_argument("--force", action="store_true", help="replace an existing, non-empty DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        p = provision_dev(args.dir, terminal_id=args.terminal_id, port=args.port, camera_uri=args.camera,
                          suite=args.suite, overwrite=args.force)
    except FileExistsError as exc:
        raise UsageError(str(exc)) from None
    out = {"server_config": str(p.server_config), "agent_config": str(p.agent_config), "socket": str(p.socket),
           "audit": str(p.audit), "terminal_id": p.terminal_id}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"capture-agent server --config {p.server_config}")
        print(f"capture-agent run --config {p.agent_config}")
        print(f"capture-agent capture --socket {p.socket} --purpose verify --consent CONSENT-REF")
    return 0
