"""``capture-agent devices``: what can be opened on this machine, with USB identity and allowlist status."""

from __future__ import annotations

import json

from agent import config
from agent.devices.policy import inventory


def register(sub) -> None:
    p = sub.add_parser("devices", help="list cameras and recordings every backend can open")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--config", default=None, help="settings file (for the [devices] USB allowlist)")
    p.set_defaults(func=run)


def run(args) -> int:
    settings = config.load(args.config)
    found, problems = inventory(settings.devices)
    if args.json:
        print(json.dumps({"devices": [d.to_dict() for d in found], "unavailable_backends": problems}, indent=2))
        return 0
    print(f"{'URI':<40} {'BACKEND':<10} {'NAME':<36} {'SERIAL':<16} ALLOWED")
    for d in found:
        allowed = {True: "yes", False: "NO", None: "-"}[d.allowed]
        print(f"{d.uri:<40} {d.backend:<10} {d.name:<36} {d.serial or '-':<16} {allowed}")
        if d.usb is not None:
            print(f"{'':<40} usb {d.usb.describe()}")
        if d.note:
            print(f"{'':<40} {d.note}")
    for name, why in sorted(problems.items()):
        print(f"(backend {name} unavailable: {why})")
    return 0
