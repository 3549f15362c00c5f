"""A stand-in for the liveness worker's start, for the supervisor's start bound (the tests put its
command in place of ``agent.liveness.supervisor.worker_command``): it reports the given start phases
on its control socket and, with ``--hello``, its hello; then it waits until the channel closes or
the supervisor kills it. Without ``--hello`` that is a start that stops making progress.

    python start_worker.py --ctrl-fd N [--hello] PHASE...
"""

from __future__ import annotations

import argparse
import os
import socket

from agent.liveness.wire import send


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctrl-fd", type=int, required=True)
    ap.add_argument("--hello", action="store_true")
    ap.add_argument("phases", nargs="*")
    a = ap.parse_args()
    ctrl = socket.socket(fileno=a.ctrl_fd)
    for phase in a.phases:
        send(ctrl, {"op": "starting", "phase": phase})
    if a.hello:
        send(ctrl, {"op": "hello", "pid": os.getpid()})
    ctrl.recv(1)                  # the supervisor's quit, or the channel closed


if __name__ == "__main__":
    main()
