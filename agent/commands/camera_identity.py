"""``capture-agent camera-identity URI [--json]``: what the server's terminal registry pins of a
camera (serial, firmware, calibration digest), as the ``[terminals.camera]`` table of the server
config, for provisioning a terminal with the camera it will capture from."""

from __future__ import annotations

import json

import drivers
from agent.uplink.probe import camera_identity


def register(sub) -> None:
    p = sub.add_parser("camera-identity", help="print a camera's serial, firmware and calibration digest for the "
                                               "server's terminal registry")
    p.add_argument("uri", help="the camera's device URI, as in [camera] uris")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    cam = drivers.open(args.uri)
    with cam:                                   # the calibration of the modes it streams
        ident = camera_identity(cam)
    if args.json:
        print(json.dumps(ident))
    else:
        print("[terminals.camera]")
        for k, v in ident.items():
            print(f"{k} = {json.dumps(v)}")
    return 0
