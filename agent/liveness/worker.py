"""The liveness worker: a separate OS process that judges framesets and can reach nothing else.

Started by :class:`agent.liveness.supervisor.LivenessSupervisor` as
``python -m agent.liveness.worker --ctrl-fd N --ring-fd M --slots S --slot-bytes B`` with only
those two descriptors (and /dev/null on 0–2) open. Before it reads a single frame it:

1. loads the face models and maps the frame ring (the only files it ever needs);
2. leaves the network: a new, empty network namespace (``unshare(CLONE_NEWNET)``, root only),
   and in every case replaces Python's socket constructors so no new socket can be made;
3. sets resource limits: no core dumps, no file writes (``RLIMIT_FSIZE`` 0: face data cannot
   reach the disk), a bounded number of open files and of address space;
4. sets ``no_new_privs`` and non-dumpable, and when started as root drops to ``nobody``.

Then it serves the control protocol (see ``wire.py``): ``begin`` a session, ``frameset`` (pixels
in a ring slot; acknowledged once copied out), ``judge`` (verdict, bound to SHA-256 digests of the
frames it judged), ``selftest`` (reports its sandbox), ``quit``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import socket
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:                   # the worker imports the agent's modules late (see warm_up)
    from drivers.frame import FrameSet

CLONE_NEWNET = 0x40000000
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
NOBODY_UID = NOBODY_GID = 65534
LIMITS = {
    "RLIMIT_CORE": 0,                 # a core dump would hold face pixels
    "RLIMIT_FSIZE": 0,                # no file writes at all
    "RLIMIT_NOFILE": 64,
    "RLIMIT_AS": 8 << 30,             # the LiteRT interpreter and numpy reserve generously; bounded anyway
}


class SocketRefused(OSError):
    pass


def _refuse_sockets() -> None:
    def refused(*_a: Any, **_k: Any) -> NoReturn:
        raise SocketRefused("the liveness worker has no network access")
    import _socket
    # Replacing module functions: ``mod`` is one of two modules, typed as their common ModuleType.
    for mod in (socket, _socket):
        mod.socket = refused                      # type: ignore[attr-defined]
        if hasattr(mod, "socketpair"):
            mod.socketpair = refused              # type: ignore[attr-defined]
    socket.create_connection = refused


def sandbox() -> dict[str, Any]:
    """Apply the isolation steps that follow model loading; return what was achieved."""
    libc = ctypes.CDLL(None, use_errno=True)
    state: dict[str, Any] = {}
    state["netns"] = libc.unshare(CLONE_NEWNET) == 0
    if not state["netns"]:
        state["netns_error"] = os.strerror(ctypes.get_errno())
    _refuse_sockets()
    state["sockets_refused"] = True
    for name, value in LIMITS.items():
        res = getattr(resource, name)
        soft, hard = resource.getrlimit(res)
        new = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(res, (new, new))
    state["no_new_privs"] = libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY_GID)
        os.setuid(NOBODY_UID)
    state["uid"], state["gid"] = os.getuid(), os.getgid()
    return state


def selftest(sandbox_state: dict[str, Any], probe_port: int | None) -> dict[str, Any]:
    out = dict(sandbox_state)
    fds = {}
    for x in os.listdir("/proc/self/fd"):
        try:
            fds[int(x)] = os.readlink(f"/proc/self/fd/{x}")
        except OSError:
            pass                                   # the listing's own descriptor, already closed
    out["open_fds"] = fds
    out["limits"] = {n: resource.getrlimit(getattr(resource, n))[0] for n in LIMITS}
    probe = f"/tmp/capture-agent-worker-probe-{os.getpid()}"
    try:
        with open(probe, "w") as fh:
            fh.write("x")
            fh.flush()
        out["file_write"] = "allowed"
    except OSError as exc:
        out["file_write"] = f"refused: {exc.strerror or exc}"
    finally:
        try:
            os.unlink(probe)
        except OSError:
            pass
    if probe_port is not None:
        try:
            socket.create_connection(("127.0.0.1", probe_port), timeout=1).close()
            out["network"] = "reachable"
        except OSError as exc:
            out["network"] = f"refused: {exc}"
    return out


def quality_summary(gate, report) -> dict[str, Any]:
    """The capture is good when the gate collected its required good framesets (not just the last)."""
    return {"ok": gate.complete, "prompts": [] if gate.complete else (report.prompts if report else ["NO_FACE"]),
            "progress": gate.progress, "metrics": report.to_dict()["metrics"] if report else {}}


def best_face(r) -> dict[str, Any] | None:
    """Where the probe's crops come from: frameset index, face box and landmarks (colour pixels)."""
    if r.best_index is None or r.best_face is None:
        return None
    f = r.best_face
    return {"index": r.best_index, "bbox": [round(float(v), 2) for v in f.detection.bbox],
            "landmarks": [[round(float(v), 2) for v in p] for p in f.mesh.landmarks]}


def serve(ctrl: socket.socket, ring, gate, state: dict[str, Any]) -> None:
    """Two threads: the reader takes control messages, copies each frameset out of its ring slot
    and acknowledges it at once (the daemon may then reuse the slot); the judge works through the
    framesets in order while the capture goes on, so at ``judge`` only the last one and the fusion
    remain. Replies from both threads go out under one lock."""
    import queue
    import threading

    from agent.liveness.wire import WireError, recv, send

    out_lock = threading.Lock()
    work: queue.Queue = queue.Queue()
    # A new session (or an abort) makes every frameset still queued from the old one stale, so the
    # judge skips them instead of working through a backlog nobody will ask about.
    generation = [0]

    def reply(msg: dict[str, Any]) -> None:
        with out_lock:
            send(ctrl, msg)

    def reader() -> None:
        while True:
            try:
                msg = recv(ctrl)
            except (EOFError, OSError):
                work.put(("quit", {}))
                return
            except WireError as exc:
                work.put(("error", exc))
                continue
            if msg["op"] == "frameset":
                try:
                    fs = ring.read(msg)
                except WireError as exc:
                    work.put(("error", exc))      # refused instead of acknowledged
                    continue
                reply({"op": "ack", "slot": msg["slot"]})
                work.put(("frameset", (generation[0], fs)))
            else:
                if msg["op"] in ("begin", "abort"):
                    generation[0] += 1
                work.put((msg["op"], msg))
            if msg["op"] == "quit":
                return

    threading.Thread(target=reader, name="liveness-reader", daemon=True).start()
    judge_loop(work, reply, gate, state, generation)


def judge_loop(work, reply, gate, state: dict[str, Any], generation: list[int]) -> None:
    from agent.liveness.challenge import Challenge, ChallengeError
    from agent.liveness.fusion import VerdictThresholds
    from agent.liveness.judge import Judge, judge_pool
    from agent.liveness.wire import WireError
    from agent.quality import QualityGate, QualitySettings
    from agent.quality.settings import CHANNELS

    gates = {"kiosk": gate}
    current: Judge | None = None          # the judge of the session now running
    failed = False                                # a session that went wrong takes no more frames
    while True:
        op, msg = work.get()
        try:
            if op == "error":
                current, failed = None, True
                raise msg
            if op == "begin":
                failed = False
                channel = str(msg.get("channel", "kiosk"))
                if channel not in CHANNELS:
                    raise WireError(f"unknown channel {channel[:32]!r}")
                if channel not in gates:          # interpreters are shared: no model loading here
                    gates[channel] = QualityGate(QualitySettings(channel=channel))
                gate = gates[channel]
                nonce = bytes.fromhex(msg["nonce"]) if msg.get("nonce") else None
                challenge = Challenge.from_nonce(nonce, frames=int(msg["frames"])) if nonce else None
                current = Judge(gate, VerdictThresholds(float(msg["live_min"]), float(msg["attack_max"])),
                                challenge=challenge, notes=[str(n) for n in msg.get("notes", [])][:16],
                                pool=judge_pool())
                reply({"op": "ready"})
            elif op == "frameset":
                gen, fs = msg
                if gen != generation[0]:
                    continue                          # from a session that was aborted or replaced
                if current is None:
                    if not failed:
                        raise WireError("frameset before begin")
                    continue
                current.add(fs)
            elif op == "abort":
                current = None
            elif op == "judge":
                if current is None:
                    raise WireError("judge before begin")
                t0 = time.perf_counter()
                r = current.finish()
                reply({"op": "verdict", "liveness": r.verdict.to_dict(),
                       "quality": quality_summary(current.gate, r.quality),
                       "max_skew_ms": r.max_skew_ms if r.max_skew_ms == r.max_skew_ms else None,
                       "timing_ms": {k: round(v, 3) for k, v in r.timing_ms.items()},
                       "worker_ms": round(r.timing_ms["total"], 3),
                       "finish_ms": round((time.perf_counter() - t0) * 1000, 3),
                       "framesets": r.framesets, "best": best_face(r)})
                current = None                      # nothing of the session outlives its verdict
            elif op == "selftest":
                reply({"op": "selftest", **selftest(state, msg.get("probe_port"))})
            elif op == "quit":
                return
            else:
                raise WireError(f"unknown op {op!r}")
        except (WireError, ChallengeError, KeyError, TypeError, ValueError) as exc:
            code = getattr(exc, "code", "LIV_WIRE_INVALID")
            reply({"op": "error", "code": code, "message": str(exc)[:500]})
            current = None


def warm_up(gate) -> None:
    """Import every module and load every model a session touches, while files can still be read:
    after the privilege drop the interpreter's own library may be unreadable (and should be)."""
    import hmac  # noqa: F401
    import threading
    import traceback  # noqa: F401

    from agent.liveness.challenge import Challenge
    from agent.liveness.fusion import VerdictThresholds
    from agent.liveness.judge import JUDGE_THREADS, judge, judge_pool
    from agent.pipeline.align import align_frameset
    from agent.pipeline.frames import FramesetReader
    from drivers import open as open_camera
    challenge = Challenge.from_nonce(b"warm-up-warm-up-warm-up!", 8)
    cam = open_camera("sim://?realtime=0&seed=1")
    with cam:
        reader = FramesetReader(cam)
        sets: list[FrameSet] = []
        for on in challenge.schedule[:6]:             # lit and unlit frames: every code path
            cam.set_projector(on)
            sets += reader.take(1)
    # Every judge thread measures a frameset once now (its own face interpreters, every code path),
    # held at a barrier so that each thread of the pool takes one.
    pool = judge_pool()
    barrier = threading.Barrier(JUDGE_THREADS)

    def warm(fs):
        barrier.wait(timeout=30)
        return gate.measure(align_frameset(fs))
    for f in [pool.submit(warm, sets[k % len(sets)]) for k in range(JUDGE_THREADS)]:
        f.result()
    judge(sets, gate, VerdictThresholds(), challenge=challenge)
    gate.reset()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="capture-agent-liveness-worker")
    ap.add_argument("--ctrl-fd", type=int, required=True)
    ap.add_argument("--ring-fd", type=int, required=True)
    ap.add_argument("--slots", type=int, required=True)
    ap.add_argument("--slot-bytes", type=int, required=True)
    args = ap.parse_args(argv)
    ctrl = socket.socket(fileno=args.ctrl_fd)         # before sockets are refused
    from agent.liveness.wire import Ring
    from agent.quality import QualityGate
    ring = Ring(args.slots, args.slot_bytes, fd=args.ring_fd)
    gate = QualityGate()                             # loads and verifies the face models
    warm_up(gate)
    state = sandbox()
    from agent.liveness.wire import send
    send(ctrl, {"op": "hello", "pid": os.getpid(), **{k: v for k, v in state.items() if k != "netns_error"}})
    serve(ctrl, ring, gate, state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
