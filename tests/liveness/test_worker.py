"""The isolated liveness worker: same verdict as in-process, bound to the frames, sandboxed, and a
supervisor that turns crashes, hangs and tampering into typed errors and recovers."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

import drivers
from agent.liveness.challenge import Challenge
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import frameset_digest, judge
from agent.liveness.supervisor import (
    LivenessSupervisor,
    LivenessVerdictUnbound,
    LivenessWorkerCrashed,
    LivenessWorkerError,
    LivenessWorkerTimeout,
    SupervisorSettings,
)
from agent.pipeline.frames import FramesetReader
from agent.quality import QualityGate
from agent.session.projector import Projector
from agent.session.window import collect

NONCE = bytes.fromhex("a11ce5" * 10 + "0000")


@pytest.fixture(scope="module")
def sets():
    cam = drivers.open("sim://?realtime=0&seed=21&identity=3&lux=150")
    with cam:
        return collect(FramesetReader(cam), 12, Challenge.from_nonce(NONCE, 12), Projector(cam))


@pytest.fixture(scope="module")
def sup():
    s = LivenessSupervisor(SupervisorSettings(frame_timeout_s=5.0))
    s.start()
    yield s
    s.stop()


def test_worker_verdict_equals_in_process_and_is_bound_to_the_frames(sup, sets):
    r = sup.judge(sets, nonce=NONCE)
    ref = judge(sets, QualityGate(), VerdictThresholds(), challenge=Challenge.from_nonce(NONCE, 12)).verdict
    assert r.verdict.verdict == ref.verdict == "live"
    assert r.verdict.score == pytest.approx(ref.score, abs=1e-4)          # the wire carries 4 decimals
    assert r.verdict.detectors == pytest.approx(ref.detectors, abs=1e-4)
    assert r.verdict.challenge_used and r.verdict.challenge["passed"]
    assert r.verdict.frame_digests == [frameset_digest(fs) for fs in sets]
    assert len(r.transfer_ms) == len(sets)


def test_worker_is_sandboxed(sup):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        st = sup.selftest(probe_port=listener.getsockname()[1])
    finally:
        listener.close()
    assert st["network"].startswith("refused")
    assert st["sockets_refused"] is True
    assert st["file_write"].startswith("refused")
    assert st["limits"]["RLIMIT_CORE"] == 0 and st["limits"]["RLIMIT_FSIZE"] == 0
    assert st["no_new_privs"] is True
    if os.geteuid() == 0:
        assert st["netns"] is True                       # root can unshare the network namespace
        assert (st["uid"], st["gid"]) == (65534, 65534)  # and drops to nobody
    # No inherited descriptors: /dev/null on 0-2, the control socket, the frame ring (and mmap's dup).
    kinds = set()
    for fd, target in st["open_fds"].items():
        if int(fd) <= 2:
            assert target == "/dev/null"
        elif target.startswith("socket:"):
            kinds.add("socket")
        elif "capture-agent-liveness-ring" in target:
            kinds.add("ring")
        else:
            pytest.fail(f"unexpected descriptor {fd} -> {target} in the worker")
    assert kinds == {"socket", "ring"}


def test_crash_is_a_typed_error_and_the_next_session_recovers(sets):
    with LivenessSupervisor() as s:
        s.kill(signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(LivenessWorkerCrashed) as exc:
            s.judge(sets, nonce=NONCE)
        assert exc.value.code == "LIV_WORKER_CRASHED"
        assert time.monotonic() - t0 < 2.0
        assert not s.alive()
        r = s.judge(sets, nonce=NONCE)                  # a fresh worker
        assert r.verdict.verdict == "live" and s.restarts == 1


def test_hang_is_detected_within_the_deadline_and_the_worker_killed(sets):
    with LivenessSupervisor(SupervisorSettings(frame_timeout_s=0.5)) as s:
        pid = s.pid
        s.kill(signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(LivenessWorkerTimeout) as exc:
            s.judge(sets, nonce=NONCE)
        took = time.monotonic() - t0
        assert exc.value.code == "LIV_WORKER_TIMEOUT"
        assert took < 0.5 + 1.5
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)                              # killed and reaped
        assert s.judge(sets, nonce=NONCE).verdict.verdict == "live"


def test_verdict_not_bound_to_the_frames_is_refused(sup, sets):
    r = sup.judge(sets[:6], nonce=None)
    forged = {"op": "verdict", "liveness": {"verdict": "live", "score": 1.0, "detectors": {"x": 1.0},
                                            "frame_digests": ["0" * 64] * 6}}
    with pytest.raises(LivenessVerdictUnbound):
        sup._check_verdict(forged, r.verdict.frame_digests)
    malformed = {"op": "verdict", "liveness": {"verdict": "probably", "score": 7, "detectors": {},
                                               "frame_digests": r.verdict.frame_digests}}
    with pytest.raises(LivenessVerdictUnbound):
        sup._check_verdict(malformed, r.verdict.frame_digests)


def test_bad_frame_description_is_refused_by_the_worker_which_survives(sup, sets):
    sup.start()
    sup._send({"op": "begin", "nonce": None, "frames": 1, "live_min": 0.5, "attack_max": 0.2})
    sup._expect("ready", 5)
    desc = sup._ring.write(0, sets[0])
    desc["frames"][0]["offset"] = sup.s.slot_bytes - 10      # points outside its slot
    sup._send({"op": "frameset", **desc})
    with pytest.raises(LivenessWorkerError) as exc:
        sup._expect("ack", 5)
    assert exc.value.code == "LIV_WIRE_INVALID"
    assert sup.alive()
    assert sup.judge(sets, nonce=NONCE).verdict.verdict == "live"
