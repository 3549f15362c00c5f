"""A fake ``uhubctl`` (2.5 command line) over a hub described in a JSON file: USB port power where
there is no USB bus.

``install(bin_dir, state, hubs)`` writes an executable ``uhubctl`` into ``bin_dir`` (put it first on
PATH) and the hub description into ``state``; the executable runs this module. It behaves as the
real one does where our controller depends on it:

* no options: ``Current status for hub LOC [DESC]`` and one ``  Port N: SSSS ...`` line per port;
* ``-a off|on|cycle|toggle`` (or ``0..3``): the status, ``Sent power off request``, ``New status for
  hub ...`` and the ports again; ``cycle`` waits ``-d`` seconds between off and on;
* ``-l LOC`` that matches no hub: ``No compatible devices detected at location LOC!`` on stderr,
  exit 1 (without hubs at all: ``No compatible devices detected!``); unknown options: exit 1;
* ports beyond the hub's count are ignored, as the real one's port mask does.

A port may carry ``marker_dir``: the device behind it, in the fake-bus layout of
``hil/fakes/usbcam.py`` and the simulated rig's camera (``plugged`` present while powered,
``enumeration`` bumped at each power-on), so cutting the port's power really unplugs that camera.
"""

from __future__ import annotations

import getopt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ENV = "FAKE_UHUBCTL_STATE"
LONG = {"--location": "l", "--level": "L", "--vendor": "n", "--search": "s", "--ports": "p", "--action": "a",
        "--delay": "d", "--repeat": "r", "--wait": "w", "--help": "h", "--version": "v", "--exact": "e",
        "--force": "f", "--nodesc": "N", "--nosysfs": "S", "--reset": "R"}
USAGE = """uhubctl: utility to control USB port power for smart hubs.
Usage: uhubctl [options]
Without options, show status for all smart hubs.
"""


def install(bin_dir: str | os.PathLike[str], state: str | os.PathLike[str], hubs: list[dict[str, Any]]) -> Path:
    """Write the fake executable and its hubs. ``hubs``: ``[{"location": "1-1", "description": "...",
    "ports": {"2": {"power": true, "device": "8086:0b07 ...", "marker_dir": "/..."}}, "nports": 4}]``."""
    Path(state).write_text(json.dumps({"hubs": hubs}, indent=1))
    exe = Path(bin_dir) / "uhubctl"
    exe.write_text(f"#!/bin/sh\n{ENV}={json.dumps(str(state))} exec {json.dumps(sys.executable)} "
                   f"-m hil.fakes.uhubctl \"$@\"\n")
    exe.chmod(0o755)
    return exe


def _ports(spec: str | None, nports: int) -> list[int]:
    if spec is None:
        return list(range(1, nports + 1))
    out: set[int] = set()
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.update(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return sorted(p for p in out if 1 <= p <= nports)


def _status(port: dict[str, Any]) -> str:
    if not port.get("power", True):
        return "0000 off"
    dev = port.get("device")
    return f"0503 power highspeed enable connect [{dev}]" if dev else "0100 power"


def _print_hub(hub: dict[str, Any], ports: list[int], head: str) -> None:
    print(f"{head} for hub {hub['location']} [{hub['description']}]")
    for p in ports:
        print(f"  Port {p}: {_status(hub['ports'].setdefault(str(p), {'power': True}))}")


def _switch(port: dict[str, Any], on: bool) -> None:
    was = port.get("power", True)
    port["power"] = on
    marker = port.get("marker_dir")
    if marker and was != on:
        d = Path(marker)
        if on:
            enum = d / "enumeration"
            n = int(enum.read_text() or "0") + 1 if enum.exists() else 1
            tmp = d / f".enumeration.{os.getpid()}"
            tmp.write_text(str(n))
            os.replace(tmp, enum)
            (d / "plugged").touch()
        else:
            (d / "plugged").unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    try:
        opts, _ = getopt.getopt(argv, "l:L:n:s:p:a:d:r:w:hvefNSR",
                                ["location=", "level=", "vendor=", "search=", "ports=", "action=", "delay=",
                                 "repeat=", "wait=", "help", "version", "exact", "force", "nodesc", "nosysfs",
                                 "reset"])
    except getopt.GetoptError as exc:
        print(f"uhubctl: {exc}", file=sys.stderr)
        print(USAGE, end="")
        return 1
    o = {LONG.get(k, k.lstrip("-")): v for k, v in opts}
    if "h" in o:
        print(USAGE, end="")
        return 0
    if "v" in o:
        print("2.5.0-1 (fake)")
        return 0
    actions = {"off": 0, "0": 0, "on": 1, "1": 1, "cycle": 2, "2": 2, "toggle": 3, "3": 3}
    action = None
    if "a" in o:
        if o["a"] not in actions:
            print(f"Invalid action '{o['a']}'", file=sys.stderr)
            return 1
        action = actions[o["a"]]
    state_path = Path(os.environ[ENV])
    state = json.loads(state_path.read_text())
    hubs = [h for h in state["hubs"] if "l" not in o or h["location"] == o["l"]]
    if not hubs:
        where = f" at location {o['l']}" if "l" in o else ""
        print(f"No compatible devices detected{where}!\nRun with -h to get usage info.", file=sys.stderr)
        return 1
    delay = float(o.get("d", 2))
    for hub in hubs:
        ports = _ports(o.get("p"), int(hub.get("nports", 4)))
        _print_hub(hub, ports, "Current status")
        if action is None:
            continue
        steps = [False, True] if action == 2 else [None] if action == 3 else [bool(action)]
        for k, on in enumerate(steps):
            for p in ports:
                port = hub["ports"].setdefault(str(p), {"power": True})
                _switch(port, (not port.get("power", True)) if on is None else on)
            state_path.write_text(json.dumps(state, indent=1))
            word = "on" if (on if on is not None else hub["ports"][str(ports[0])]["power"]) else "off"
            print(f"Sent power {word} request")
            _print_hub(hub, ports, "New status")
            if action == 2 and k == 0:
                time.sleep(delay)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
