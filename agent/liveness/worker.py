"""The liveness worker: a separate OS process that judges framesets and can reach nothing else.

Started by :class:`agent.liveness.supervisor.LivenessSupervisor` as
``python -m agent.liveness.worker --ctrl-fd N --ring-fd M --slots S --slot-bytes B --parent-pid P --read DIR ...``
with only those two descriptors (and /dev/null on 0–2) open, an environment without secrets, and
``/`` as its working directory. The order matters (``agent/security/sandbox.py`` says why). First
of all it dies with the daemon (``PR_SET_PDEATHSIG`` SIGKILL, set again after each change of
credentials; and at once on EOF of its control channel), so a daemon killed by SIGKILL leaves no
worker holding face data:

1. first, while the process has one thread and before anything that starts threads is imported
   (numpy's BLAS pool would): a new network namespace (with a user namespace when unprivileged),
   non-dumpable, Landlock (read-only beneath the interpreter, the packages, the ``--read`` dirs and
   a few system files; nothing writable), then the ``start`` seccomp filter (no sockets, no exec,
   no processes, no writes, no ptrace, ...);
2. load and verify the face models, map the frame ring read-only, and run one warm-up session on
   synthetic framesets (``warmup.py``: no camera, no simulator), so every module and interpreter a
   session needs is loaded;
3. as root, drop to ``nobody``; resource limits (no cores, no file growth, bounded descriptors,
   address space and tasks); the ``serve`` seccomp filter (no set*id any more).

Each start phase is reported as it completes (``starting``: ``sandbox`` after step 1, ``models``,
then the warm-up's ``warm_threads``, ``warm_judge`` and ``warm_quality``), and ``hello`` after step
3: the supervisor times the start out when no phase completes for ``start_stall_s``, however long
the whole start takes on a loaded machine.

Then it serves the control protocol (see ``wire.py``): ``quality`` (a session's quality loop
begins: the daemon's quality settings and channel) and ``assess`` (one frameset of it, pixels in a
ring slot: aligned, through the quality gate, answered with an ``assessment``: prompt, progress,
face box, the IR skin's bright end; the daemon runs no face model itself), ``begin`` a challenge
window, ``frameset`` (pixels in a ring slot; acknowledged once copied out; when ``begin`` asked
for it, the frameset the probe would come from so far is sent as ``best`` each time a fold changes
it), ``judge`` (verdict, bound to SHA-256 digests of the frames it judged), ``selftest`` (reports its sandbox and any
module imported since the warm-up or of the simulator's, and tries what it must not be able to
do), ``quit``. A sandbox step that fails is reported as ``LIV_SANDBOX_FAILED`` and the worker
exits.
"""

from __future__ import annotations

import argparse
import errno
import functools
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any


def sandbox_start(read_paths: list[str], parent_pid: int | None = None) -> dict[str, Any]:
    """Step 1 (see the module docstring). Imports nothing that starts a thread."""
    from agent.security import sandbox
    state: dict[str, Any] = dict(sandbox.enter_namespaces())
    if parent_pid is not None:
        sandbox.die_with_parent(parent_pid)      # again: a new user namespace's credentials may clear it
    sandbox.set_nondumpable()
    state["landlock_abi"] = sandbox.restrict_filesystem(sandbox.worker_read_paths(read_paths))
    sandbox.load_seccomp("start")
    return state


def sandbox_serve(state: dict[str, Any], parent_pid: int | None = None) -> dict[str, Any]:
    """Step 3: after everything is loaded, before the first frame."""
    from agent.security import sandbox
    sandbox.drop_to_nobody()
    sandbox.set_nondumpable()                    # a change of credentials may reset it
    if parent_pid is not None:
        sandbox.die_with_parent(parent_pid)      # so does it reset this
    limits = sandbox.limit_resources(own_user_namespace=bool(state["userns"]))
    sandbox.load_seccomp("serve")
    return {**state, "limits": limits, "uid": os.getuid(), "gid": os.getgid(), "seccomp": sandbox.seccomp_mode(),
            "no_new_privs": sandbox.no_new_privs(), "dumpable": sandbox.dumpable(),
            "parent_death_signal": sandbox.parent_death_signal()}


def _attempt(fn) -> str:
    """``allowed`` or ``refused: ERRNO`` for one thing the sandbox must stop."""
    try:
        fn()
        return "allowed"
    except OSError as exc:
        return f"refused: {errno.errorcode.get(exc.errno or 0, exc.errno)}"
    except RuntimeError as exc:                # threading: "can't start new thread"
        return f"refused: {exc}"
    except Exception as exc:                   # anything else is not the sandbox speaking
        return f"error: {type(exc).__name__}: {exc}"[:200]


def selftest(sandbox_state: dict[str, Any], probes: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's state, and what happens when the worker tries what it must not do. ``probes``
    (from the supervisor): ``tcp_port`` (a listener on 127.0.0.1), ``unix_path`` (a filesystem
    socket), ``read_path`` (a file the worker's uid could read without Landlock)."""
    import threading

    out = dict(sandbox_state)
    fds = {}
    for x in os.listdir("/proc/self/fd"):
        try:
            fds[int(x)] = os.readlink(f"/proc/self/fd/{x}")
        except OSError:
            pass                                   # the listing's own descriptor, already closed
    out["open_fds"] = fds
    out["netns_inode"] = os.readlink("/proc/self/ns/net")
    out["environ"] = sorted(os.environ)
    out["simulator_modules"] = simulator_modules()
    out["imported_after_warm_up"] = sorted(set(sys.modules) - _WARM_MODULES)[:50]
    out["file_write"] = _attempt(lambda: open(f"/tmp/capture-agent-worker-probe-{os.getpid()}", "w").close())
    out["socket"] = _attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close())
    out["exec"] = _attempt(lambda: os.execv("/bin/true", ["true"]))
    out["fork"] = _attempt(lambda: os._exit(0) if os.fork() == 0 else None)
    out["signal_parent"] = _attempt(lambda: os.kill(os.getppid(), 0))

    def many_threads() -> None:                    # RLIMIT_NPROC: more tasks than the limit allows
        # Every thread lives until the last has been tried: threads that ended while a loaded
        # machine was still starting the others would let the count stay under the limit.
        started, done = [], threading.Event()
        try:
            for _ in range(int(out["limits"]["RLIMIT_NPROC"]) + 1):
                t = threading.Thread(target=done.wait, args=(30,), daemon=True)
                t.start()
                started.append(t)
        finally:
            done.set()
            for t in started:
                t.join()
    out["threads_beyond_nproc"] = _attempt(many_threads)
    if probes.get("tcp_port") is not None:
        def tcp() -> None:                         # no name lookup: the address is numeric
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect(("127.0.0.1", int(probes["tcp_port"])))
        out["network"] = _attempt(tcp)
    if probes.get("unix_path"):
        def unix() -> None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(str(probes["unix_path"]))
        out["unix_connect"] = _attempt(unix)
    if probes.get("read_path"):
        out["read_file"] = _attempt(lambda: open(str(probes["read_path"]), "rb").close())
    return out


def quality_summary(gate, report) -> dict[str, Any]:
    """The capture is good when the gate collected its required good framesets (not just the last)."""
    return {"ok": gate.complete, "prompts": [] if gate.complete else (report.prompts if report else ["NO_FACE"]),
            "progress": gate.progress, "metrics": report.to_dict()["metrics"] if report else {}}


MAX_QUALITY_GATES = 4      # quality loops' gates kept (one per channel and settings the daemon uses)


def quality_settings(msg: dict[str, Any]):
    """The daemon's ``[quality]`` settings for a quality loop, as ``quality`` sends them: checked
    here like the configuration is (``QualitySettings``: known channels and thresholds, numbers)."""
    from agent.liveness.wire import WireError
    from agent.quality import QualitySettings

    channel, settings = msg.get("channel"), msg.get("settings")
    if not isinstance(channel, str) or not isinstance(settings, dict):
        raise WireError("quality needs a channel and settings")
    parts = {k: settings.get(k, {}) for k in ("thresholds", "channels", "lux_calibration")}
    if set(settings) - set(parts) or not all(isinstance(v, dict) for v in parts.values()):
        raise WireError("quality settings are thresholds, channels and lux_calibration, each a mapping")
    lux = parts["lux_calibration"]
    if not all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
               for k, v in lux.items()):
        raise WireError("a lux calibration maps a camera to a number")
    if not all(isinstance(v, dict) for v in parts["channels"].values()):
        raise WireError("per-channel thresholds must be mappings")
    return QualitySettings(channel=channel, **parts)       # ConfigError on unknown names or bad values


def quality_key(msg: dict[str, Any]) -> str:
    import json
    return json.dumps([msg.get("channel"), msg.get("settings")], sort_keys=True)


def assess(gate, fs, face_metered: bool) -> dict[str, Any]:
    """One frameset of the daemon's quality loop: aligned, through the gate, and the IR skin's
    bright end for the projector's and the IR exposure's planning. What goes back is what the
    daemon acts on, nothing of the face but its box: the prompt, progress, whether the gate has
    its framesets, how many faces it found and the face's illuminance where the camera has a lux
    calibration (``supervisor.check_assessment`` checks it)."""
    from agent.pipeline.align import align_frameset
    from agent.session.projector import skin_bright_end

    t0 = time.perf_counter()
    aligned = align_frameset(fs)
    gate.face_metered = face_metered
    report = gate.evaluate(aligned)
    face = report.face
    bright = skin_bright_end(aligned, face) if face is not None and fs.ir is not None else None
    lux = report.metrics.get("lux") if face is not None else None      # NaN without a lux calibration
    return {"op": "assessment", "ok": bool(report.ok), "complete": bool(gate.complete),
            "progress": int(report.progress), "prompt": report.prompt.code if report.prompt else None,
            "prompts": list(report.prompts), "faces_found": int(report.faces_found),
            "face": None if face is None else {"bbox": [round(float(v), 2) for v in face.bbox]},
            "ir_bright_end": None if bright is None else round(float(bright), 3),
            "lux": round(float(lux), 1) if lux is not None and math.isfinite(lux) and 0 <= lux <= 1e6 else None,
            "timing_ms": round((time.perf_counter() - t0) * 1000, 3)}


def best_face(r) -> dict[str, Any] | None:
    """Where the probe's crops come from: frameset index, face box and landmarks (colour pixels,
    rounded to 0.01 as ``round`` does, ``wire.rounded``; the landmarks packed, ``wire.pack_floats``:
    the same values as the lists they were)."""
    from agent.liveness.wire import pack_floats, rounded
    if r.best_index is None or r.best_face is None:
        return None
    f = r.best_face
    return {"index": r.best_index, "bbox": [round(float(v), 2) for v in f.detection.bbox],
            "landmarks": pack_floats(rounded(f.mesh.landmarks, 2))}


def pack_evidence(ev: dict[str, Any] | None) -> dict[str, Any] | None:
    """The judge's challenge evidence as the verdict carries it: each frame's fields but its face
    grid, ``grid`` saying whether it has one, and the grids of the frames that have one packed in
    their order as one array (``wire.pack_floats``, rows of 48: the same float64 values as the lists
    the judge made). ``supervisor.unpack_evidence`` rebuilds the judge's dict from it."""
    import numpy as np

    from agent.liveness.wire import FACE_GRID_VALUES, pack_floats
    if ev is None:
        return None
    frames, rows = [], []
    for f in ev["frames"]:
        grid = f["face_grid"]
        if grid:
            rows.append(grid)
        frames.append({k: v for k, v in f.items() if k != "face_grid"} | {"grid": bool(grid)})
    return {"challenges": ev["challenges"], "face_box": ev["face_box"], "frames": frames,
            "grids": pack_floats(np.asarray(rows, dtype=np.float64).reshape(len(rows), FACE_GRID_VALUES))}


def report_best_so_far(reply: Callable[[dict[str, Any]], None]) -> Callable[[int], None]:
    """A judge's ``on_best`` for a session that asked for it (``begin`` with ``best``): the index of
    the frameset the probe's crops would come from so far, sent as ``best`` each time it changes
    near the window's end (at most once per frameset folded, always before the verdict). The daemon aligns that frameset
    while the capture goes on; the verdict's ``best`` still names the one it takes."""
    return lambda index: reply({"op": "best", "index": int(index)})


def serve(ctrl: socket.socket, ring, gate, state: dict[str, Any], dot_reference=None) -> None:
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
                # The daemon closed its end or died: nothing will ask for this worker's work again,
                # so it ends now, not after the judge's queue (a task may be slow or stuck) with the
                # session's frames in memory; the kernel frees them (os._exit: no atexit, no joins).
                os._exit(0)
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
                del fs                            # this thread keeps no frameset until the next one
            elif msg["op"] == "assess":           # the quality loop's: answered with its assessment
                try:
                    work.put(("assess", (ring.read(msg), msg)))
                except WireError as exc:
                    work.put(("error", exc))
            else:
                if msg["op"] in ("begin", "abort"):
                    generation[0] += 1
                work.put((msg["op"], msg))
            if msg["op"] == "quit":
                return

    threading.Thread(target=reader, name="liveness-reader", daemon=True).start()
    # When a session ends, the ring lets go of the frame copies it kept to lend again (its pool:
    # the quality loop's, and the first of a window's); copies the judge holds go with the judge.
    judge_loop(work, reply, gate, state, generation, forget=ring.buffers.clear, dot_reference=dot_reference)


# How long a session's end waits for its judge tasks that are running (one frameset's alignment and
# measurement each, well under a second); one that runs on past it makes the worker end (``JudgeStuck``).
JUDGE_CLOSE_TIMEOUT_S = 5.0


class JudgeStuck(Exception):
    """A judge task of a session that ended did not stop within ``JUDGE_CLOSE_TIMEOUT_S``: it still
    holds the session's frames and would keep alignment temporaries after they were let go. Nothing
    can stop a thread, so the worker ends; the supervisor starts a fresh one."""


def judge_loop(work, reply, gate, state: dict[str, Any], generation: list[int], *,
               forget: Callable[[], None] = lambda: None, dot_reference=None) -> None:
    """The worker's requests in order (``serve``'s judge thread). ``dot_reference``: the camera's
    projector pattern (``dotref.DotReference``, from ``read_dot_reference``) every session's judge
    tests the on-off pairs against; None: the daemon configured none."""
    from agent import allocator
    from agent.liveness.challenge import Challenge
    from agent.liveness.fusion import VerdictThresholds
    from agent.liveness.judge import Judge, judge_pool, wipe_face_models
    from agent.liveness.wire import WireError
    from agent.pipeline.align import release_scratch
    from agent.quality import QualityGate, QualitySettings
    from agent.quality.settings import CHANNELS
    from drivers.errors import CaptureAgentError

    gates = {"kiosk": gate}
    quality: QualityGate | None = None    # the quality loop's gate, from ``quality`` on (its own state)
    quality_gates: dict[str, QualityGate] = {}
    current: Judge | None = None          # the judge of the session now running
    session = 0                           # which ``begin`` made it: its measurements' fold events carry it
    failed = False                                # a session that went wrong takes no more frames

    def wipe_models() -> None:
        # The face models' inputs still hold the last face crop each judge thread saw: overwritten
        # on the judge threads (~13 ms of two threads), queued ahead of any next session's work and
        # not waited for (at a verdict, after its reply).
        wipe_face_models(JUDGE_CLOSE_TIMEOUT_S)

    def end_session() -> None:
        """Nothing of the session now ending stays (a verdict, an abort, an error, a new session in
        its place): its judge's tasks that no thread has started never run and the running ones are
        waited for, so none makes alignment temporaries or pooled results after they are dropped
        here; the ring's pool lets go of its frame copies; every gate forgets its history."""
        nonlocal current
        ending, current = current, None
        if ending is not None and not ending.close(JUDGE_CLOSE_TIMEOUT_S):
            raise JudgeStuck(f"a judge task ran on {JUDGE_CLOSE_TIMEOUT_S:g} s after its session ended")
        del ending
        release_scratch()                           # its alignment temporaries and aligned results
        forget()
        # The gates' history of the session (the depth window's completeness and the eyelid
        # openings: numbers measured on the face) and prompt state go now, not at the next
        # session's reset. The quality loop's gate too: the daemon ends its loop with ``abort``.
        for g in (*gates.values(), *quality_gates.values()):
            g.reset()
        wipe_models()

    while True:
        op, msg = work.get()
        try:
            if op == "error":
                failed = True
                raise msg
            if op == "begin":
                if current is not None:
                    end_session()                   # a session replaced before its verdict
                failed = False
                channel = str(msg.get("channel", "kiosk"))
                if channel not in CHANNELS:
                    raise WireError(f"unknown channel {channel[:32]!r}")
                if channel not in gates:          # interpreters are shared: no model loading here
                    gates[channel] = QualityGate(QualitySettings(channel=channel))
                gate = gates[channel]
                nonce = bytes.fromhex(msg["nonce"]) if msg.get("nonce") else None
                kinds = msg.get("kinds") or ["projector"]
                if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                    raise WireError("kinds must be a list of challenge names")
                challenge = Challenge.from_nonce(nonce, frames=int(msg["frames"]), kinds=kinds) if nonce else None
                # A measured frameset is folded as soon as it is done (its share of the fusion with
                # it), so that when the window ends only the last one is left to fold. The fold event
                # names its session: a measurement that finishes (or is cancelled) as its session
                # ends puts one on the queue behind the next session's ``begin``, and that one is
                # dropped, not folded by the next session's judge.
                report_best = msg.get("best", False)
                if not isinstance(report_best, bool):
                    raise WireError("best must be true or false")
                session += 1
                current = Judge(gate, VerdictThresholds(float(msg["live_min"]), float(msg["attack_max"])),
                                challenge=challenge, notes=[str(n) for n in msg.get("notes", [])][:16],
                                pool=judge_pool(), on_measured=functools.partial(work.put, ("fold", session)),
                                on_best=report_best_so_far(reply) if report_best else None,
                                dot_reference=dot_reference)
                reply({"op": "ready"})
            elif op == "frameset":
                if msg[0] != generation[0]:
                    continue                          # from a session that was aborted or replaced
                if current is None:
                    if not failed:
                        raise WireError("frameset before begin")
                    continue
                current.add(msg[1])
            elif op == "quality":
                quality = None
                key = quality_key(msg)
                if key not in quality_gates:      # interpreters are shared: no model loading here
                    if len(quality_gates) >= MAX_QUALITY_GATES:
                        quality_gates.clear()
                    quality_gates[key] = QualityGate(quality_settings(msg), channel=msg["channel"])
                quality = quality_gates[key]
                quality.reset()
                reply({"op": "ready"})
            elif op == "assess":
                req = msg[1]                      # the frameset (msg[0]) bound to no name: see ``finally``
                if quality is None:
                    raise WireError("assess before quality")
                face_metered = req.get("face_metered", False)
                if not isinstance(face_metered, bool):
                    raise WireError("face_metered must be true or false")
                # On a judge thread: its face-model interpreters exist already (the main thread's
                # would be a third set, 14 MiB); no window is judged while the quality loop runs.
                reply(judge_pool().submit(assess, quality, msg[0], face_metered).result())
            elif op == "fold":
                if current is not None and msg == session:      # not one of an earlier session's
                    current.fold_ready()
            elif op == "abort":
                end_session()
                failed = False                      # the daemon knows its session ended: later requests are answered
                allocator.trim()                    # its peak too, as after a verdict
            elif op == "judge":
                if current is None:
                    if failed:
                        continue                    # its session's error was the answer (below)
                    raise WireError("judge before begin")
                t0 = time.perf_counter()
                r = current.finish()
                verdict = {"op": "verdict", "liveness": r.verdict.to_dict(),
                           "quality": quality_summary(current.gate, r.quality),
                           "max_skew_ms": r.max_skew_ms if r.max_skew_ms == r.max_skew_ms else None,
                           "timing_ms": {k: round(v, 3) for k, v in r.timing_ms.items()},
                           "worker_ms": round(r.timing_ms["total"], 3),
                           "finish_ms": round((time.perf_counter() - t0) * 1000, 3),
                           "framesets": r.framesets, "best": best_face(r), "evidence": pack_evidence(r.evidence)}
                del r
                # The verdict goes out first, then nothing of the session outlives it: its judge
                # (framesets, aligned results), the alignment temporaries and the ring's frame copies
                # are dropped before this loop takes the daemon's next request, so that request finds
                # none of it, while the daemon seals its probe. Dropped before the reply, their
                # freeing (munmap of ~100 MB: several ms of CPU) delayed every verdict.
                reply(verdict)
                del verdict
                end_session()                       # then the face models' inputs wiped
                allocator.trim()                    # its peak: free pages back to the kernel
            elif op == "selftest":
                reply({"op": "selftest", **selftest(state, msg.get("probes") or {})})
            elif op == "quit":
                return
            else:
                raise WireError(f"unknown op {op!r}")
        except (CaptureAgentError, KeyError, TypeError, ValueError) as exc:
            # Every typed error (the wire's, the challenge's, the configuration's, a frameset the
            # alignment refuses: SYN_ALIGN_INPUT) is the request's failure, answered with its code;
            # it used to end the worker when it was not one of the first three.
            end_session()                         # a failed request ends the session
            if op in ("begin", "frameset", "fold", "judge"):
                # The session's failure is answered once. Its framesets and its ``judge`` already on
                # their way (the daemon reads replies only when it needs a slot or the verdict) are
                # dropped until the next ``begin`` or ``abort``, not answered with an error each
                # ("frameset before begin"): one reply more than the daemon reads for the session was
                # read by the next session's ``begin`` (LIV_VERDICT_UNBOUND, the worker killed).
                failed = True
            code = getattr(exc, "code", "LIV_WIRE_INVALID")
            reply({"op": "error", "code": code, "message": str(exc)[:500]})
            if op in ("quality", "assess"):
                quality = None                    # the loop starts again with ``quality``
        finally:
            msg = None                            # no frameset of it kept while the next is awaited


# Every module the worker had once warm-up ended: a session that imports more found a code path the
# warm-up missed (an import that may fail after the privilege drop). ``selftest`` reports the difference.
_WARM_MODULES: frozenset[str] = frozenset()


def simulator_modules() -> list[str]:
    """The simulator's modules (and SciPy, which only it uses) loaded in this process: none in the
    worker, which warms up on synthetic framesets (``agent.liveness.warmup``)."""
    return sorted(m for m in sys.modules if m == "drivers.sim" or m.startswith("drivers.sim.")
                  or m == "scipy" or m.startswith("scipy."))


def warm_up(gate, done: Callable[[str], None] = lambda phase: None) -> None:
    """Import every module and start every model interpreter a session touches, while files can
    still be read: after the privilege drop the interpreter's own library may be unreadable (and
    should be). On synthetic framesets, not the simulator (``agent.liveness.warmup`` says why).
    ``done`` hears each of its start phases as it completes (``START_PHASES``' ``warm_*``)."""
    global _WARM_MODULES
    import gc
    import hmac  # noqa: F401
    import traceback  # noqa: F401

    from agent import allocator
    from agent.pipeline.align import forget_calibrations, keep_scratch, release_scratch
    keep_scratch(True)                # every frameset of a session aligned in the same temporaries
    _warm_session(gate, done)
    forget_calibrations()             # the synthetic camera's alignment table: sessions bring their own
    release_scratch()                 # and the temporaries of its size
    gc.collect()
    allocator.trim()                  # the warm-up's framesets are gone: their pages too
    _WARM_MODULES = frozenset(sys.modules)


def _warm_session(gate, done: Callable[[str], None]) -> None:
    import threading

    from agent.liveness import warmup
    from agent.liveness.challenge import Challenge
    from agent.liveness.fusion import VerdictThresholds
    from agent.liveness.judge import JUDGE_THREADS, judge, judge_pool
    from agent.pipeline.align import align_frameset
    from agent.quality import QualityGate
    challenge = Challenge.from_nonce(warmup.NONCE, 8, kinds=("projector", "illumination"))
    sets = warmup.framesets(challenge, challenge.frames)
    warm_gate = QualityGate(gate.settings, detector=warmup.WarmUpDetector())
    # Every judge thread measures a frameset once now (its own face interpreters, every code path),
    # held at a barrier so that each thread of the pool takes one.
    pool = judge_pool()
    barrier = threading.Barrier(JUDGE_THREADS)

    def warm(fs):
        barrier.wait(timeout=30)
        return warm_gate.measure(align_frameset(fs))
    for f in [pool.submit(warm, sets[1 + k % (len(sets) - 1)]) for k in range(JUDGE_THREADS)]:
        f.result()
    done("warm_threads")
    judge(sets, warm_gate, VerdictThresholds(), challenge=challenge)      # challenged, as a kiosk session
    judge(sets, warm_gate, VerdictThresholds(), challenge=None)           # and without a challenge
    done("warm_judge")
    quality_settings({"channel": "kiosk", "settings": {}})                  # the daemon's quality loop
    warm_gate.reset()
    for fs in sets[:2]:                                                     # where sessions assess: a judge thread
        pool.submit(assess, warm_gate, fs, False).result()
    gate.reset()
    done("warm_quality")


def read_dot_reference(ring, spec: str | None):
    """The camera's dot reference as the daemon left it in ring slot 0 before the start
    (``--dot-reference BYTES:SHA256``; ``supervisor.LivenessSupervisor``): its bytes copied out of
    the shared memory, their SHA-256 checked against the command line's, and parsed as strictly as
    the daemon parsed the file (``DotReference.parse``), before the warm-up, so what parsing imports
    is loaded while files can still be read. The worker opens no file for it. None without ``spec``.
    ``LIV_DOT_REFERENCE_INVALID`` when the bytes are not what the daemon said or not a reference."""
    import hashlib

    from agent.liveness.dotref import MAX_FILE_BYTES, DotReference, ReferenceInvalid
    if spec is None:
        return None
    size, _, digest = spec.partition(":")
    if not (size.isascii() and size.isdigit()) or not 0 < int(size) <= MAX_FILE_BYTES or len(digest) != 64:
        raise ReferenceInvalid(f"--dot-reference must be BYTES:SHA256 of at most {MAX_FILE_BYTES} bytes")
    raw = ring.read_bytes(0, int(size))
    if hashlib.sha256(raw).hexdigest() != digest:
        raise ReferenceInvalid("the dot reference in the ring is not the one the daemon named")
    return DotReference.parse(raw, "the daemon's dot reference")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="capture-agent-liveness-worker")
    ap.add_argument("--ctrl-fd", type=int, required=True)
    ap.add_argument("--ring-fd", type=int, required=True)
    ap.add_argument("--slots", type=int, required=True)
    ap.add_argument("--slot-bytes", type=int, required=True)
    ap.add_argument("--read", action="append", default=[], help="a directory the worker may read (models)")
    ap.add_argument("--parent-pid", type=int, default=None,
                    help="the daemon's pid: the worker dies with it (PR_SET_PDEATHSIG)")
    ap.add_argument("--dot-reference", default=None, metavar="BYTES:SHA256",
                    help="the camera's dot reference file, that many bytes at the start of ring slot 0")
    args = ap.parse_args(argv)
    if args.parent_pid is not None:
        # First: a daemon killed (SIGKILL included) while the worker starts or serves takes it along.
        from agent.security.sandbox import die_with_parent
        die_with_parent(args.parent_pid)
    ctrl = socket.socket(fileno=args.ctrl_fd)         # inherited: the worker can make no socket itself
    from agent.security.sandbox import SandboxError
    try:
        state = sandbox_start(args.read, args.parent_pid)
    except SandboxError as exc:
        from agent.liveness.wire import send
        send(ctrl, {"op": "error", "code": exc.code, "message": exc.message[:500]})
        return 3
    from agent.liveness.wire import Ring, send
    from drivers.errors import CaptureAgentError

    def done(phase: str) -> None:
        # Each start phase as it completes: the supervisor's bound on the start is on the time
        # between them (``SupervisorSettings.start_stall_s``), not on the whole start.
        send(ctrl, {"op": "starting", "phase": phase})
    done("sandbox")
    from agent.quality import QualityGate
    ring = Ring(args.slots, args.slot_bytes, fd=args.ring_fd, writable=False)
    try:
        dot_reference = read_dot_reference(ring, args.dot_reference)
    except CaptureAgentError as exc:
        send(ctrl, {"op": "error", "code": exc.code, "message": str(exc)[:500]})
        return 3
    state["dot_reference_sha256"] = dot_reference.digest if dot_reference is not None else None
    gate = QualityGate()                             # loads and verifies the face models
    done("models")
    warm_up(gate, done)
    try:
        state = sandbox_serve(state, args.parent_pid)
    except SandboxError as exc:
        send(ctrl, {"op": "error", "code": exc.code, "message": exc.message[:500]})
        return 3
    send(ctrl, {"op": "hello", "pid": os.getpid(), **state})
    try:
        serve(ctrl, ring, gate, state, dot_reference)
    except JudgeStuck:
        # At once: an interpreter's exit joins the judge threads, and one of them does not end.
        # The daemon sees the channel close (LIV_WORKER_CRASHED) or starts a fresh worker.
        os._exit(4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
