"""The isolated liveness worker: same verdict as in-process, bound to the frames, sandboxed, and a
supervisor that turns crashes, hangs and tampering into typed errors and recovers."""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest

import drivers
from agent import allocator
from agent.liveness import wire
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
from agent.security import sandbox
from agent.session.projector import Projector
from agent.session.window import collect
from tests.helpers.users import ROOT, WORKER_USER, ensure_user, run_as, shared_tmp

NONCE = bytes.fromhex("a11ce5" * 10 + "0000")


@pytest.fixture(scope="module")
def sets():
    cam = drivers.open("sim://?realtime=0&seed=21&identity=3&lux=150")
    with cam:
        # A whole window (32 framesets, the server's default): the verdict thresholds are fitted on it.
        return collect(FramesetReader(cam), 32, Challenge.from_nonce(NONCE, 32), Projector(cam), per_frameset=True)


@pytest.fixture(scope="module")
def sup():
    s = LivenessSupervisor(SupervisorSettings(frame_timeout_s=5.0))
    s.start()
    yield s
    s.stop()


def test_worker_verdict_equals_in_process_and_is_bound_to_the_frames(sup, sets):
    r = sup.judge(sets, nonce=NONCE)
    whole = judge(sets, QualityGate(), VerdictThresholds(), challenge=Challenge.from_nonce(NONCE, 32))
    ref = whole.verdict
    assert r.verdict.verdict == ref.verdict == "live"
    assert r.verdict.score == pytest.approx(ref.score, abs=1e-4)          # the wire carries 4 decimals
    assert r.verdict.detectors == pytest.approx(ref.detectors, abs=1e-4)
    assert r.verdict.challenge_used and r.verdict.challenge["passed"]
    assert r.verdict.frame_digests == [frameset_digest(fs) for fs in sets]
    assert len(r.transfer_ms) == len(sets)
    # The evidence and the probe's face, packed on the wire, come through as the judge made them
    # and as JSON lists carried them before: the same fields, order and numbers to the bit.
    assert json.dumps(r.evidence) == json.dumps(json.loads(json.dumps(whole.evidence)))
    assert whole.best_face is not None and r.best is not None
    assert json.dumps(r.best) == json.dumps({
        "index": whole.best_index, "bbox": [round(float(v), 2) for v in whole.best_face.detection.bbox],
        "landmarks": [[round(float(v), 2) for v in p] for p in whole.best_face.mesh.landmarks]})


def test_the_worker_never_imports_the_simulator_and_a_session_imports_nothing_after_warm_up(sup, sets):
    # The worker warms up on synthetic framesets (agent/liveness/warmup.py), not the simulator: no
    # drivers.sim and no SciPy in it; and sessions with and without a challenge reach no module the
    # warm-up did not load (one they did would be a code path the warm-up missed, whose import may
    # fail once the worker runs as nobody).
    assert sup.judge(sets, nonce=NONCE).verdict.verdict == "live"
    sup.judge(sets[:8], nonce=None)
    st = sup.selftest()
    assert st["simulator_modules"] == []
    assert st["imported_after_warm_up"] == []


@pytest.fixture
def probes():
    """What the worker must not reach: a TCP listener, a filesystem Unix socket anyone may use (as
    /dev/log is), and a 0600 file of the user the worker runs as (nobody under root)."""
    d = shared_tmp("ca-worker-")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(d / "log.sock"))
    os.chmod(d / "log.sock", 0o666)
    unix.listen()
    yield d, {"tcp_port": listener.getsockname()[1], "unix_path": str(d / "log.sock")}
    listener.close()
    unix.close()
    shutil.rmtree(d, ignore_errors=True)


def secret_of(d, uid: int, gid: int) -> str:
    p = d / "secret"
    p.write_text("the daemon's key")
    os.chown(p, uid, gid)
    os.chmod(p, 0o600)
    return str(p)


def check_sandboxed(st: dict, *, uid: int, daemon_netns: str, userns: bool) -> None:
    assert (st["uid"], st["userns"], st["netns"]) == (uid, userns, True)
    assert st["netns_inode"] != daemon_netns                      # an empty network namespace of its own
    assert st["seccomp"] == 2 and st["no_new_privs"] is True and st["dumpable"] is False
    assert st["landlock_abi"] >= 1 or sandbox.landlock_abi() == 0
    for what in ("network", "unix_connect", "socket", "file_write", "exec", "fork", "signal_parent"):
        assert st[what] == "refused: EPERM", (what, st[what])
    if st["landlock_abi"]:
        assert st["read_file"] == "refused: EACCES"            # its own uid's 0600 file: Landlock
    assert st["threads_beyond_nproc"] == "refused: can't start new thread"
    assert st["limits"]["RLIMIT_CORE"] == 0 and st["limits"]["RLIMIT_FSIZE"] == 0
    assert not [k for k in st["environ"] if k.startswith("CAPTURE_AGENT_") and k != "CAPTURE_AGENT_MODELS"]
    assert st["simulator_modules"] == [] and st["imported_after_warm_up"] == []
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


@pytest.mark.skipif(os.geteuid() != 0, reason="the daemon side runs as root here")
def test_worker_started_by_root_is_sandboxed_and_runs_as_nobody(sup, probes):
    d, pr = probes
    st = sup.selftest(**pr, read_path=secret_of(d, 65534, 65534))
    check_sandboxed(st, uid=65534, daemon_netns=os.readlink("/proc/self/ns/net"), userns=False)


@pytest.mark.slow
def test_worker_started_by_an_unprivileged_daemon_is_sandboxed_and_judges(probes):
    d, pr = probes
    user = WORKER_USER if os.geteuid() == 0 else None
    uid, gid = ensure_user(WORKER_USER) if user else (os.getuid(), os.getgid())
    out = run_as(user, [str(ROOT / "tests" / "helpers" / "worker_probe.py"),
                        json.dumps({**pr, "read_path": secret_of(d, uid, gid)})], timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["daemon_uid"] == uid != 0 and r["verdict"] == "live" and r["ring_wiped"] is True
    check_sandboxed(r["selftest"], uid=uid, daemon_netns=r["daemon_netns"], userns=True)


def test_the_worker_environment_carries_no_secrets_of_the_daemon(monkeypatch):
    monkeypatch.setenv("CAPTURE_AGENT_HSM_PIN", "123456")
    monkeypatch.setenv("CAPTURE_AGENT_OPENNI2_REDIST", "/opt/vendor")
    with LivenessSupervisor() as s:
        environ = Path(f"/proc/{s.pid}/environ").read_bytes().split(b"\0")
    names = sorted(e.split(b"=", 1)[0].decode() for e in environ if e)
    assert "CAPTURE_AGENT_HSM_PIN" not in names and "CAPTURE_AGENT_OPENNI2_REDIST" not in names
    assert set(names) <= {"LANG", "LC_ALL", "PYTHONPATH", "CAPTURE_AGENT_MODELS", "PYTHONDONTWRITEBYTECODE",
                          "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"}
    assert f"MALLOC_ARENA_MAX={allocator.ARENAS}".encode() in environ       # agent/allocator.py
    assert f"MALLOC_MMAP_THRESHOLD_={allocator.MMAP_THRESHOLD}".encode() in environ


def test_the_ring_is_wiped_after_each_session_and_read_only_for_the_worker(sup, sets):
    sup.judge(sets[:6], nonce=None)
    assert not sup._ring.map[:].strip(b"\0")                    # no face pixels left in shared memory
    seals = fcntl.fcntl(sup._ring.fd, wire.F_GET_SEALS)
    assert seals & wire.RING_SEALS == wire.RING_SEALS
    with pytest.raises(PermissionError):                          # what the worker gets: no writable map
        mmap.mmap(sup._ring.fd, sup._ring.size)
    with pytest.raises(PermissionError):
        os.pwrite(sup._ring.fd, b"x", 0)
    # An aborted session is wiped too.
    with sup.open_judge(frames=6) as j:
        j.add(sets[0])
    assert not sup._ring.map[:].strip(b"\0")


def wait_dead(s: LivenessSupervisor) -> None:
    """Until the signalled worker is dead and reaped (SIGKILL is delivered asynchronously)."""
    deadline = time.monotonic() + 30.0
    while s._proc is not None and s._proc.poll() is None:
        assert time.monotonic() < deadline, "the worker outlived SIGKILL"
        time.sleep(0.01)


def test_crash_is_a_typed_error_and_the_next_session_recovers(sets):
    # A long frame deadline: the crash is found from the dead channel, long before any deadline (the
    # bound below had been the default 2 s deadline itself, which a loaded machine can come near).
    with LivenessSupervisor(SupervisorSettings(frame_timeout_s=30.0)) as s:
        with s.open_judge(frames=len(sets), nonce=NONCE) as j:
            j.add(sets[0])
            s.kill(signal.SIGKILL)
            wait_dead(s)                                # dead mid-session, whatever the scheduler does
            t0 = time.monotonic()
            with pytest.raises(LivenessWorkerCrashed) as exc:
                for fs in sets[1:]:
                    j.add(fs)
                j.finish()
        assert exc.value.code == "LIV_WORKER_CRASHED"
        assert time.monotonic() - t0 < 10.0                # a third of the frame deadline
        assert not s.alive() and s.restarts == 1
        r = s.judge(sets, nonce=NONCE)                  # a fresh worker
        assert r.verdict.verdict == "live" and s.restarts == 1


def test_a_worker_that_died_between_sessions_is_replaced_and_counted(sets):
    with LivenessSupervisor() as s:
        first = s.pid
        s.kill(signal.SIGKILL)
        wait_dead(s)
        r = s.judge(sets, nonce=NONCE)                  # the session that finds it dead is not failed
        assert r.verdict.verdict == "live" and s.pid != first
        assert s.restarts == 1                          # the old code replaced it without counting it


def test_hang_is_detected_within_the_deadline_and_the_worker_killed(sets):
    with LivenessSupervisor(SupervisorSettings(frame_timeout_s=0.5)) as s:
        pid = s.pid
        s.kill(signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(LivenessWorkerTimeout) as exc:
            s.judge(sets, nonce=NONCE)
        took = time.monotonic() - t0
        assert exc.value.code == "LIV_WORKER_TIMEOUT"
        assert took < 0.5 + 3.0
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
    # The optional parts are input too: a reply whose cues, notes, model versions or injection signals
    # are not the shapes a verdict carries is refused as unbound, not raised as it is read (a list's
    # ``.items()``) nor passed on (a cue that is not a number).
    def reply(**extra):
        return {"op": "verdict", "liveness": {"verdict": "live", "score": 1.0, "detectors": {"x": 1.0},
                                              "frame_digests": r.verdict.frame_digests, **extra}}
    for field, bad in [("cues", ["x"]), ("cues", {"x": "soft"}), ("notes", "a note"), ("notes", [1]),
                       ("model_versions", ["v1"]), ("model_versions", {"m": 2}), ("injection", 3),
                       ("cues", {"x": float("nan")}), ("cues", {"x": float("inf")}), ("cues", {"x": True})]:
        with pytest.raises(LivenessVerdictUnbound):
            sup._check_verdict(reply(**{field: bad}), r.verdict.frame_digests)
    # A detector is a ramp in 0..1 (the worker sends NaN as None): a NaN one would pass the material
    # prompt's "every other detector live" (review26), one outside 0..1 is not the worker's own.
    for bad_detector in (float("nan"), float("inf"), -0.1, 1.5, True, "1.0"):
        with pytest.raises(LivenessVerdictUnbound):
            sup._check_verdict(reply(detectors={"x": 1.0, "material": bad_detector}), r.verdict.frame_digests)
    ok = sup._check_verdict(reply(cues={"x": 0.5, "y": None}, notes=["n"], model_versions={"m": "1"},
                                  injection={"suspicious": False}), r.verdict.frame_digests)
    assert (ok.cues, ok.notes, ok.model_versions, ok.injection) == ({"x": 0.5}, ["n"], {"m": "1"},
                                                                    {"suspicious": False})


@pytest.mark.parametrize("field, value", [
    ("timing_ms", {"total": "fast"}),          # a string where a number belongs
    ("timing_ms", {"total": float("nan")}),
    ("timing_ms", {"total": -1.0}),
    ("timing_ms", {"total": True}),
    ("timing_ms", [["total", 1.0]]),           # not a mapping
    ("timing_ms", {str(k): 1.0 for k in range(65)}),
    ("worker_ms", "12"),
    ("worker_ms", float("inf")),
    ("finish_ms", {"ms": 3}),
    ("quality", "ok"),
    ("max_skew_ms", "0.5"),
])
def test_malformed_timings_or_reports_are_refused_like_any_malformed_reply(sup, sets, monkeypatch, field, value):
    # A compromised worker's numbers must not raise outside the supervisor's own failure path
    # (TypeError/ValueError from float() or dict()): they are LIV_VERDICT_UNBOUND, the worker is
    # torn down, and the next session gets a fresh one.
    real = sup._expect

    def tampered(op, timeout_s):
        msg = real(op, timeout_s)
        return {**msg, field: value} if op == "verdict" else msg
    monkeypatch.setattr(sup, "_expect", tampered)
    restarts = sup.restarts
    with pytest.raises(LivenessVerdictUnbound) as exc:
        sup.judge(sets[:8], nonce=None)
    assert exc.value.code == "LIV_VERDICT_UNBOUND" and "malformed" in exc.value.message
    assert sup.restarts == restarts + 1 and not sup.alive()
    monkeypatch.undo()
    assert sup.judge(sets[:8], nonce=None).verdict.verdict in ("live", "attack", "inconclusive")


def test_well_formed_timings_come_through_as_numbers(sup, sets):
    r = sup.judge(sets[:8], nonce=None)
    assert r.timing_ms and all(isinstance(v, float) and v >= 0 for v in r.timing_ms.values())
    assert "worker_finish" in r.timing_ms and r.worker_ms > 0 and isinstance(r.quality, dict)


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


def test_framesets_read_from_the_ring_keep_their_own_pixels_while_held(sets):
    # The worker copies each frameset out of its slot into pooled arrays: the ones a judge holds
    # (its whole window) are never the arrays a later frameset is copied into; a dropped one is.
    ring = wire.Ring(2, 4 << 20)
    peer = wire.Ring(2, 4 << 20, fd=os.dup(ring.fd), writable=False)
    try:
        held = [peer.read(ring.write(k % 2, fs)) for k, fs in enumerate(sets[:6])]
        for fs, got in zip(sets[:6], held, strict=True):
            assert frameset_digest(got) == frameset_digest(fs)
            assert all(not f.pixels.flags.writeable for f in got.frames.values())
        assert peer.buffers.reused == 0
        del held, got
        again = peer.read(ring.write(0, sets[6]))
        assert peer.buffers.reused == len(sets[6].frames) and frameset_digest(again) == frameset_digest(sets[6])
        assert peer.buffers.kept() > 0
    finally:
        peer.close()
        ring.close()
    assert peer.buffers.kept() == 0                     # the copies kept to lend again go with the ring


def test_kill_never_signals_a_worker_pid_already_reaped(monkeypatch):
    # A worker that died and was reaped leaves its pid free for any new process on the machine
    # (pids wrap at pid_max, and threads take pids too): kill() must not signal it.
    import subprocess
    sup = LivenessSupervisor()
    sup._proc = subprocess.Popen(["true"])
    sup._proc.wait()                                       # reaped, as alive()'s poll() does
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    sup.kill(signal.SIGKILL)
    assert sent == []                                      # main: [(the reaped pid, SIGKILL)]


# A daemon in a process of its own: starts a worker from a thread that then ends (as a session's
# may), says the worker's pid and what it reported once that thread is gone, and waits (for SIGKILL).
_DAEMON = """
import json, os, sys, threading, time
from agent.liveness.supervisor import LivenessSupervisor
s = LivenessSupervisor()
t = threading.Thread(target=s.start)
t.start()
t.join()
while os.path.exists(f"/proc/self/task/{t.native_id}"):    # join returns before the task is gone
    time.sleep(0.01)
pid = s.pid
try:                                    # a worker signalled as that thread ended never answers this
    said = s.selftest().get("parent_death_signal")
except Exception as exc:
    said = type(exc).__name__
print(json.dumps({"pid": pid, "now": s.pid, "restarts": s.restarts, "signal": said}), flush=True)
sys.stdin.read()
"""


def _exits_within(pidfd: int, timeout_s: float) -> bool:
    """Whether the process of ``pidfd`` (``os.pidfd_open``: not a child of this one) ends within
    ``timeout_s``: its pidfd becomes readable when it exits (no polling of the clock)."""
    import select
    p = select.poll()
    p.register(pidfd, select.POLLIN)
    return bool(p.poll(int(timeout_s * 1000)))


def test_a_daemon_killed_by_sigkill_takes_its_worker_along():
    # misc23: killing a pytest run (or a kiosk's daemon) by SIGKILL left its liveness workers running,
    # holding the last session's face data. A worker that reads its channel ends on its EOF (as on
    # main); one that does not (stuck in a native call, or stopped: SIGSTOP here, as the hang tests
    # model a hang) lived on for good. It dies with its daemon (PR_SET_PDEATHSIG, SIGKILL), and not
    # with the thread that started it, which Linux would tie the signal to: every worker is forked
    # by the one spawner thread (drivers/spawner.py).
    import subprocess
    import sys
    daemon = subprocess.Popen([sys.executable, "-c", _DAEMON], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=str(ROOT))
    try:
        assert daemon.stdout is not None
        said = json.loads(daemon.stdout.readline())
        # The worker outlived the thread that started it (the same one answered, none restarted) and
        # says it set SIGKILL as its parent-death signal (main: None).
        assert said == {"pid": said["pid"], "now": said["pid"], "restarts": 0, "signal": int(signal.SIGKILL)}, said
        worker = said["pid"]
        fd = os.pidfd_open(worker)                          # opened before the kill: this very process
        try:
            assert not _exits_within(fd, 0.0)
            os.kill(worker, signal.SIGSTOP)                  # it reads nothing now (main: alive for good)
            daemon.kill()
            daemon.wait()
            assert _exits_within(fd, 30.0), "the worker outlived its daemon"
        finally:
            if not _exits_within(fd, 0.0):
                signal.pidfd_send_signal(fd, signal.SIGKILL)   # never leave one behind, pass or fail
            os.close(fd)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def _start_worker(monkeypatch, *phases: str, hello: bool) -> None:
    """The supervisor's next start runs ``tests/helpers/start_worker.py`` with these phases."""
    import sys

    from agent.liveness import supervisor
    helper = str(Path(__file__).resolve().parents[1] / "helpers" / "start_worker.py")
    monkeypatch.setattr(supervisor, "worker_command", lambda ctrl_fd, *_: [
        sys.executable, helper, "--ctrl-fd", str(ctrl_fd), *(["--hello"] if hello else []), *phases])


def test_the_workers_start_reports_each_phase_in_order(sup):
    # The bound on the start is on the time between these (``start_stall_s``), not on the whole start.
    from agent.liveness.supervisor import START_PHASES
    assert list(sup.start_phases) == list(START_PHASES)
    ms = list(sup.start_phases.values())
    assert ms == sorted(ms) and ms[-1] <= sup.last_start_ms


def test_a_start_that_stops_making_progress_is_killed_with_its_own_code(monkeypatch):
    # Two phases reported, then nothing: killed after start_stall_s without another phase, with a
    # stable code naming where it stopped (the old fixed 60 s bound on the whole start timed out
    # healthy starts at a load of 10 and more, and a stuck one only after the full minute).
    from agent.liveness.supervisor import LivenessWorkerStartStalled
    _start_worker(monkeypatch, "sandbox", "models", hello=False)
    s = LivenessSupervisor(SupervisorSettings(start_stall_s=0.5))
    with pytest.raises(LivenessWorkerStartStalled) as exc:
        s.start()
    assert exc.value.code == "LIV_WORKER_START_STALLED" and isinstance(exc.value, LivenessWorkerTimeout)
    # Where it stopped: the last phase it reported (a loaded machine may stall the stand-in sooner).
    assert list(s.start_phases) in (["sandbox", "models"], ["sandbox"], [])
    assert repr((list(s.start_phases) or ["spawned"])[-1]) in exc.value.message
    assert not s.alive() and s.restarts == 1


@pytest.mark.parametrize("phases", [("sandbox", "warm_judge"), ("sandbox", "models")])
def test_a_start_that_skips_or_reorders_its_phases_is_refused(monkeypatch, phases):
    # A hello before the warm-up said it was done, or a phase out of order, is not the worker's
    # start: refused like any malformed reply, and the worker killed.
    _start_worker(monkeypatch, *phases, hello=True)
    s = LivenessSupervisor(SupervisorSettings(start_stall_s=30.0))
    with pytest.raises(LivenessVerdictUnbound):
        s.start()
    assert not s.alive() and s.restarts == 1


def test_a_start_with_every_phase_says_hello(monkeypatch):
    from agent.liveness.supervisor import START_PHASES
    _start_worker(monkeypatch, *START_PHASES, hello=True)
    with LivenessSupervisor(SupervisorSettings(start_stall_s=30.0)) as s:
        assert s.alive() and list(s.start_phases) == list(START_PHASES) and s.restarts == 0
