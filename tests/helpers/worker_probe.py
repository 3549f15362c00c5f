"""Start the liveness worker from this process (run as an unprivileged user by the tests), judge a
challenged session in it, and print its verdict and its sandbox self-test as JSON.

``python worker_probe.py JSON``: the self-test's probes (``tcp_port``, ``unix_path``, ``read_path``)."""

from __future__ import annotations

import json
import os
import sys

import drivers
from agent.liveness.challenge import Challenge
from agent.liveness.supervisor import LivenessSupervisor, SupervisorSettings
from agent.pipeline.frames import FramesetReader
from agent.session.projector import Projector
from agent.session.window import collect

NONCE = bytes.fromhex("a11ce5" * 10 + "0000")


def main() -> None:
    probes = json.loads(sys.argv[1])
    cam = drivers.open("sim://?realtime=0&seed=21&identity=3&lux=150")
    with cam:
        sets = collect(FramesetReader(cam), 32, Challenge.from_nonce(NONCE, 32), Projector(cam), per_frameset=True)
    with LivenessSupervisor(SupervisorSettings(frame_timeout_s=10.0)) as sup:
        verdict = sup.judge(sets, nonce=NONCE).verdict.verdict
        st = sup.selftest(**probes)
        assert sup._ring is not None
        ring_zero = not sup._ring.map[:].strip(b"\0")    # wiped after the session
    print(json.dumps({"verdict": verdict, "selftest": st, "daemon_uid": os.getuid(),
                      "daemon_netns": os.readlink("/proc/self/ns/net"), "ring_wiped": ring_zero}))


if __name__ == "__main__":
    main()
