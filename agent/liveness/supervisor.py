"""The daemon's side of the liveness worker: start it, feed it, watch it, restart it.

The worker does all of a session's face work: the quality loop's (``open_quality``: each frameset
aligned and through the quality gate, an :class:`Assessment` back) and the challenge window's
(``open_judge``). The daemon loads no face model, no alignment table and no OpenCV of its own.

Every exchange has a deadline. A worker that dies (EOF on the channel, or its process gone) is a
``LIV_WORKER_CRASHED``; one that misses a deadline is killed and is a ``LIV_WORKER_TIMEOUT``
(``LIV_WORKER_START_STALLED`` when its start makes no progress: no start phase completed within
``start_stall_s``, however long the whole start takes); one
whose verdict is malformed or not bound to the frames sent is killed and is a
``LIV_VERDICT_UNBOUND``. The session fails with that typed error; there is never a default pass.
The next session starts a fresh worker.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import allocator
from agent.face.models import models_dir
from agent.liveness.fusion import LivenessVerdict, VerdictThresholds
from agent.liveness.wire import (
    FACE_GRID_VALUES,
    LANDMARKS,
    Ring,
    WireError,
    frameset_digest,
    recv,
    send,
    unpack_floats,
)
from agent.quality.prompts import BY_CODE, Prompt
from agent.quality.settings import QualitySettings
from drivers import spawner
from drivers.errors import CaptureAgentError
from drivers.frame import FrameSet

VERDICTS = ("live", "attack", "inconclusive")
# The worker's start phases, in the order it reports them (``starting``) before its ``hello``.
START_PHASES = ("sandbox", "models", "warm_threads", "warm_judge", "warm_quality")


class LivenessWorkerError(CaptureAgentError):
    code = "LIV_WORKER_ERROR"


class LivenessWorkerCrashed(LivenessWorkerError):
    code = "LIV_WORKER_CRASHED"


class LivenessWorkerTimeout(LivenessWorkerError):
    code = "LIV_WORKER_TIMEOUT"


# The least a verdict is waited for after the window, whatever the nonce has left (``RemoteJudge.finish``): a
# verdict takes ~0.4 s after the last frameset on this machine's worst sessions (perf34).
VERDICT_FLOOR_S = 2.0


class LivenessVerdictPastNonce(LivenessWorkerTimeout):
    """The verdict did not come before the challenge's nonce would be too old to submit the probe under
    (``RemoteJudge.finish``'s ``not_after``, earlier than the worker's own deadline): the worker is killed, as
    at its own deadline; a verdict after it could only be refused by the server (perf34)."""

    code = "LIV_VERDICT_PAST_NONCE"


class LivenessWorkerStartStalled(LivenessWorkerTimeout):
    """The worker's start made no progress: no start phase (``START_PHASES``, then its hello)
    completed within ``SupervisorSettings.start_stall_s`` of the one before (the worker is killed)."""

    code = "LIV_WORKER_START_STALLED"


class LivenessVerdictUnbound(LivenessWorkerError):
    code = "LIV_VERDICT_UNBOUND"


class LivenessBestInvalid(LivenessWorkerError):
    """The worker's report of the best frameset so far (``best``) is malformed, names a frameset this
    session did not send, repeats the one it named last or comes more often than framesets were
    sent (the worker is killed): it must not make the daemon align anything but the session's own
    framesets, nor keep it aligning."""

    code = "LIV_BEST_INVALID"


class LivenessQualityInvalid(LivenessWorkerError):
    """The worker's assessment of a quality-loop frameset is malformed (the worker is killed)."""

    code = "LIV_QUALITY_INVALID"


@dataclass(frozen=True)
class FaceBox:
    """The main face's box in the colour frame (pixels), as the worker's gate found it."""

    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class Assessment:
    """One quality-loop frameset as the worker's gate judged it: what the daemon acts on (the
    prompt and progress for the person, the face box for metering, the IR skin's bright end for the
    projector's power and the IR exposure), checked by :func:`check_assessment`."""

    ok: bool
    complete: bool                  # the gate has its good framesets: the loop ends
    progress: int                   # 0..100
    prompt: Prompt | None           # the one prompt to show now (the gate's hysteresis)
    prompts: list[str]              # every failing prompt code
    faces_found: int
    face: FaceBox | None
    ir_bright_end: float | None     # DN of the IR imager; None without a face on it
    timing_ms: float
    # The face's illuminance (lux) as the gate estimated it: None without a face, or on a camera without
    # a lux calibration (the screen's luminance for the window is planned from it: ``window.screen_luminance``).
    lux: float | None = None


@dataclass
class WorkerResult:
    verdict: LivenessVerdict
    quality: dict[str, Any] | None
    max_skew_ms: float | None
    timing_ms: dict[str, float]
    transfer_ms: list[float] = field(default_factory=list)   # per frameset: write to ring + worker's ack
    worker_ms: float = 0.0
    best: dict[str, Any] | None = None      # {"index", "bbox", "landmarks"} of the best frameset
    evidence: dict[str, Any] | None = None  # per-frame challenge measurements (``check_evidence``)


@dataclass
class SupervisorSettings:
    slots: int = 4
    slot_bytes: int = 16 << 20            # 1920x1080 BGR + 1280x800 Z16 + 1280x800 Y8 fit with room
    # The worker's start (spawn, sandbox, face models, warm-up, privilege drop) is bounded per phase:
    # killed when no phase completes within this (``LIV_WORKER_START_STALLED``). Its whole length
    # grows with the machine's load (a bound on it timed out tests at a load of 10 and more).
    start_stall_s: float = 60.0
    frame_timeout_s: float = 2.0           # per frameset acknowledgement
    judge_timeout_s: float = 10.0          # plus judge_per_frameset_s per frameset
    judge_per_frameset_s: float = 0.5
    assess_timeout_s: float = 5.0          # one quality-loop frameset (the first builds an alignment table)
    # The camera's dot reference file's bytes (``agent.liveness.dotref``, ``[camera] dot_reference``),
    # checked by the daemon (``daemon.load_dot_reference``); empty: the worker's judge has none. It
    # reaches the worker in ring slot 0 at each start (the worker opens no file), wiped after its hello.
    dot_reference: bytes = b""


def worker_environment() -> dict[str, str]:
    """The worker's whole environment: locale, the import path, where the face models are and the
    allocator's arena cap and fixed mmap threshold (``agent/allocator.py``; glibc reads them at start-up,
    before any thread).
    No ``CAPTURE_AGENT_*`` variable of the daemon's (an HSM PIN may be one) and nothing else."""
    env = {k: os.environ[k] for k in ("LANG", "LC_ALL", "PYTHONPATH") if k in os.environ}
    env["CAPTURE_AGENT_MODELS"] = str(models_dir().resolve())
    env["PYTHONDONTWRITEBYTECODE"] = "1"            # it could not write them anyway
    env.update(allocator.ARENA_ENV)
    return env


def worker_read_dirs() -> list[str]:
    """Beyond the interpreter and its import path: the face models and this project's packages
    (an editable install finds them outside sys.path)."""
    import agent
    import drivers
    import proto
    dirs = [str(models_dir().resolve())]
    for pkg in (agent, drivers, proto):
        dirs += [str(Path(p).resolve()) for p in pkg.__path__]
    return dirs


def _start_stalled(timeout_s: float, *, after: str) -> LivenessWorkerError:
    return LivenessWorkerStartStalled(f"liveness worker's start made no progress for {timeout_s:g} s after "
                                      f"{after!r}; killed, it will be restarted")


def worker_command(ctrl_fd: int, ring_fd: int, slots: int, slot_bytes: int, dot_reference: bytes = b"") -> list[str]:
    """The worker's command line: its control socket and frame ring by descriptor, what it may read,
    and the size and SHA-256 of the dot reference left in ring slot 0, if any."""
    cmd = [sys.executable, "-m", "agent.liveness.worker", "--ctrl-fd", str(ctrl_fd), "--ring-fd", str(ring_fd),
           "--slots", str(slots), "--slot-bytes", str(slot_bytes), "--parent-pid", str(os.getpid())]
    if dot_reference:
        cmd += ["--dot-reference", f"{len(dot_reference)}:{hashlib.sha256(dot_reference).hexdigest()}"]
    for d in worker_read_dirs():
        cmd += ["--read", d]
    return cmd


def _shaped(lv: dict[str, Any], key: str, kind: type, ok: Callable[[Any], bool]) -> bool:
    """Whether the worker's optional ``lv[key]`` is absent or a ``kind`` (dict: its values; list: its
    items) each passing ``ok``: a malformed reply is refused as unbound, never raised as it is read."""
    v = lv.get(key)
    if v is None:
        return True
    if isinstance(v, dict) and kind is dict:
        return all(ok(x) for x in v.values())
    return isinstance(v, list) and kind is list and all(ok(x) for x in v)


def _number(v: Any, lo: float = -math.inf, hi: float = math.inf) -> bool:
    """A finite number in [lo, hi], not a bool: the worker sends every NaN or infinity as ``None``
    (``LivenessVerdict.to_dict``), so a reply holding one is not the worker's own."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi


class LivenessSupervisor:
    def __init__(self, settings: SupervisorSettings | None = None):
        self.s = settings or SupervisorSettings()
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._ring: Ring | None = None
        self._lock = threading.Lock()
        self.hello: dict[str, Any] = {}
        self.restarts = 0
        self.last_start_ms = 0.0
        # The last start's phases as they completed: ms from the spawn (``START_PHASES``).
        self.start_phases: dict[str, float] = {}
        # ``best`` reports an abandoned judge session may still have on the channel (its framesets
        # folded before the worker took the ``abort``): skipped, at most this many, by the next reads.
        self._stale_bests = 0

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def dot_reference_sha256(self) -> str | None:
        """The SHA-256 (hex) of the dot reference every worker this supervisor starts judges with (its hello must
        name it, or it is refused: ``_start_locked``); None: none. A probe's liveness report carries it (pin34), for
        the server to check against the reference registered for the camera."""
        return hashlib.sha256(self.s.dot_reference).hexdigest() if self.s.dot_reference else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self.alive() and self._sock is not None:
            return
        if self._proc is not None:
            # It died between sessions (killed, out of memory): found now, counted like a death
            # found mid-session, and replaced without failing the session that found it.
            self.restarts += 1
        self._teardown()
        t0 = time.perf_counter()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ring = Ring(self.s.slots, self.s.slot_bytes)
        if self.s.dot_reference:
            ring.write_bytes(0, self.s.dot_reference)
        cmd = worker_command(child.fileno(), ring.fd, self.s.slots, self.s.slot_bytes, self.s.dot_reference)
        try:
            # Forked from the one spawner thread: the worker dies with the daemon (PR_SET_PDEATHSIG,
            # which Linux ties to the forking thread; the worker sets it on itself, ``--parent-pid``).
            proc = spawner.popen(cmd, pass_fds=(child.fileno(), ring.fd), close_fds=True,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=(None if os.environ.get("CAPTURE_AGENT_WORKER_STDERR")
                                         else subprocess.DEVNULL),
                                 env=worker_environment(), cwd="/")
        finally:
            child.close()
        self._proc, self._sock, self._ring = proc, parent, ring
        try:
            hello = self._await_hello(t0)
        except LivenessWorkerError as exc:
            if self._proc is None:                      # already torn down and counted (``_next``)
                raise
            raise self._fail(exc) from None             # e.g. LIV_SANDBOX_FAILED: it never serves
        ring.wipe()                                     # the dot reference, copied out by now
        want = hashlib.sha256(self.s.dot_reference).hexdigest() if self.s.dot_reference else None
        if hello.get("dot_reference_sha256") != want:
            # A worker judging with another reference than the daemon's, or with one it was not given.
            raise self._fail(LivenessVerdictUnbound(
                f"liveness worker's dot reference {str(hello.get('dot_reference_sha256'))[:64]!r} is not the "
                f"daemon's {want!r}"))
        self.hello = hello
        self.last_start_ms = (time.perf_counter() - t0) * 1000

    def _await_hello(self, t0: float) -> dict[str, Any]:
        """The worker's ``hello``, each of its start phases (``START_PHASES``, in order) on the way,
        each within ``start_stall_s`` of the one before."""
        self.start_phases = {}
        last = "spawned"
        while True:
            msg = self._next(("starting", "hello"), self.s.start_stall_s,
                             timed_out=functools.partial(_start_stalled, after=last))
            want = START_PHASES[len(self.start_phases)] if len(self.start_phases) < len(START_PHASES) else "hello"
            got = msg["op"] if msg["op"] == "hello" else msg.get("phase")
            if got != want:
                raise self._fail(LivenessVerdictUnbound(
                    f"liveness worker reported start phase {str(got)[:40]!r}, expected {want!r}"))
            if got == "hello":
                return msg
            last = want
            self.start_phases[want] = (time.perf_counter() - t0) * 1000

    def stop(self) -> None:
        with self._lock:
            if self._sock is not None and self._proc is not None and self.alive():
                try:
                    send(self._sock, {"op": "quit"})
                    self._proc.wait(timeout=2)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self._teardown()

    def _teardown(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self._sock is not None:
            self._sock.close()
        if self._ring is not None:
            self._ring.close()
        self._proc = self._sock = self._ring = None
        self._stale_bests = 0

    def __enter__(self) -> LivenessSupervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- exchanges -----------------------------------------------------------------------------------
    def _fail(self, exc: LivenessWorkerError) -> LivenessWorkerError:
        self._teardown()
        self.restarts += 1
        return exc

    def _expect(self, op: str, timeout_s: float) -> dict[str, Any]:
        """The worker's next message, which must be ``op``, within ``timeout_s``."""
        return self._next((op,), timeout_s)

    def _next(self, ops: tuple[str, ...], timeout_s: float, *,
              timed_out: Callable[[float], LivenessWorkerError] | None = None) -> dict[str, Any]:
        """The worker's next message, one of ``ops``; ``timed_out(timeout_s)``: the error when none
        comes within ``timeout_s`` (default ``LivenessWorkerTimeout``)."""
        assert self._sock is not None
        self._sock.settimeout(timeout_s)
        try:
            msg = recv(self._sock)
            while msg["op"] == "best" and "best" not in ops and self._stale_bests > 0:
                self._stale_bests -= 1              # an abandoned session's report (``RemoteJudge``)
                msg = recv(self._sock)
        except TimeoutError:
            raise self._fail(timed_out(timeout_s) if timed_out is not None else LivenessWorkerTimeout(
                f"liveness worker did not answer within {timeout_s:g} s; killed, it will be restarted")) from None
        except (EOFError, ConnectionError, OSError) as exc:
            code = self._proc.poll() if self._proc is not None else None
            raise self._fail(LivenessWorkerCrashed(
                f"liveness worker died (exit status {code}): {exc}; it will be restarted")) from None
        except WireError as exc:
            raise self._fail(LivenessVerdictUnbound(f"liveness worker sent garbage: {exc.message}")) from None
        if msg["op"] == "error":
            raise LivenessWorkerError(f"liveness worker refused the request: {msg.get('message', '')}",
                                      code=str(msg.get("code", "LIV_WORKER_ERROR"))[:64])
        if msg["op"] not in ops:
            expected = " or ".join(repr(o) for o in ops)
            raise self._fail(LivenessVerdictUnbound(f"liveness worker answered {msg['op']!r}, expected {expected}"))
        return msg

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            if self._sock is None:
                raise OSError("not connected")
            send(self._sock, msg)
        except (OSError, AttributeError) as exc:
            raise self._fail(LivenessWorkerCrashed(f"liveness worker is gone: {exc}")) from None

    def selftest(self, **probes: Any) -> dict[str, Any]:
        """The worker's sandbox report, and what it got when it tried what it must not do (see
        ``agent.liveness.worker.selftest`` for ``probes``)."""
        with self._lock:
            self._start_locked()
            self._send({"op": "selftest", "probes": probes})
            return self._expect("selftest", self.s.frame_timeout_s + 5.0)

    def open_judge(self, *, frames: int, nonce: bytes | None = None, thresholds: VerdictThresholds | None = None,
                   notes: list[str] | None = None, channel: str = "kiosk",
                   kinds: tuple[str, ...] = ("projector",),
                   on_best: Callable[[int, FrameSet], None] | None = None) -> RemoteJudge:
        """Open a session in the worker; feed it with ``add`` as frames arrive, then ``finish``.
        Use it as a context manager: the worker is exclusively this session's until it exits.
        ``kinds``: the challenges the window ran under ``nonce``. ``on_best``: called on the caller's
        thread, while it feeds or waits for the verdict, with each frameset the worker names best so
        far (its index and the very frameset this session sent there), once the report is checked."""
        return RemoteJudge(self, frames, nonce, thresholds or VerdictThresholds(), list(notes or []), channel,
                           tuple(kinds), on_best)

    def open_quality(self, channel: str, settings: QualitySettings | None = None) -> RemoteGate:
        """Open a session's quality loop in the worker: ``evaluate`` each frameset. Use it as a
        context manager: the worker is this session's until it exits (the ring is wiped then)."""
        return RemoteGate(self, channel, settings or QualitySettings())

    def judge(self, sets: list[FrameSet], *, nonce: bytes | None = None, thresholds: VerdictThresholds | None = None,
              notes: list[str] | None = None, channel: str = "kiosk",
              kinds: tuple[str, ...] = ("projector",)) -> WorkerResult:
        """Judge ``sets`` in the worker. ``nonce``: the challenge the frames were captured under."""
        with self.open_judge(frames=len(sets), nonce=nonce, thresholds=thresholds, notes=notes, channel=channel,
                             kinds=kinds) as s:
            for fs in sets:
                s.add(fs)
            return s.finish()

    def _check_verdict(self, msg: dict[str, Any], digests: list[str]) -> LivenessVerdict:
        lv = msg.get("liveness")
        if not isinstance(lv, dict):
            raise self._fail(LivenessVerdictUnbound("liveness worker returned a malformed verdict"))
        try:
            verdict, score = lv["verdict"], lv["score"]
            # Detectors are ramps (0..1, ``detectors.ramp``): a NaN one would pass every ``min`` and
            # ``<`` test downstream (the material prompt's "every other detector live"), so it is refused.
            ok = (verdict in VERDICTS and _number(score, 0.0, 1.0)
                  and isinstance(lv["detectors"], dict)
                  and all(v is None or _number(v, 0.0, 1.0) for v in lv["detectors"].values())
                  and _shaped(lv, "cues", dict, lambda v: v is None or _number(v))
                  and _shaped(lv, "model_versions", dict, lambda v: isinstance(v, str))
                  and _shaped(lv, "injection", dict, lambda v: True)
                  and _shaped(lv, "notes", list, lambda v: isinstance(v, str)))
        except (KeyError, TypeError):
            ok = False
        if not ok:
            raise self._fail(LivenessVerdictUnbound("liveness worker returned a malformed verdict"))
        if lv.get("frame_digests") != digests:
            raise self._fail(LivenessVerdictUnbound(
                "liveness verdict is not bound to the frames sent (frame digests differ)"))
        detectors = {k: float(v) for k, v in lv["detectors"].items() if v is not None}
        return LivenessVerdict(verdict, float(score), detectors,
                               list(digests), dict(lv.get("model_versions") or {}), bool(lv.get("challenge_used")),
                               lv.get("challenge"), dict(lv.get("injection") or {}), list(lv.get("notes") or []),
                               {k: v for k, v in (lv.get("cues") or {}).items() if v is not None})

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the worker (tests and `doctor` use this to prove recovery). A worker already reaped
        is not signalled: its pid may belong to another process by now (``Popen.send_signal``
        checks; a bare ``os.kill`` of the remembered pid did not)."""
        if self._proc is not None:
            self._proc.send_signal(sig)


class RemoteGate:
    """A session's quality loop in the worker: each frameset goes into ring slot 0, the worker
    aligns it and runs the quality gate, and its assessment comes back before the next one is sent
    (the person's prompt follows each frameset)."""

    def __init__(self, sup: LivenessSupervisor, channel: str, settings: QualitySettings):
        self.sup, self.channel, self.settings = sup, channel, settings

    def __enter__(self) -> RemoteGate:
        sup = self.sup
        sup._lock.acquire()
        try:
            sup._start_locked()
            s = self.settings
            sup._send({"op": "quality", "channel": self.channel,
                       "settings": {"thresholds": dict(s.thresholds), "channels": {k: dict(v) for k, v in
                                                                                s.channels.items()},
                                    "lux_calibration": dict(s.lux_calibration)}})
            sup._expect("ready", sup.s.frame_timeout_s)
            sup._stale_bests = 0                        # an earlier session's reports all came before it
        except BaseException:
            sup._lock.release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.sup._sock is not None:
                # The worker lets go of the loop's frame copies, aligned results and alignment
                # temporaries now, not at the next session's verdict: a session can end in its
                # quality loop (timeout, the person walks away, a camera error) and never send
                # ``judge``. Every ``assess`` was answered, so no alignment is still running.
                try:
                    self.sup._send({"op": "abort"})
                except LivenessWorkerError:
                    pass                                # already torn down by _fail
        finally:
            try:
                if self.sup._ring is not None:
                    self.sup._ring.wipe()               # no face pixels stay in shared memory
            finally:
                self.sup._lock.release()

    def evaluate(self, fs: FrameSet, *, face_metered: bool = False) -> Assessment:
        """``fs`` through the worker's gate. ``face_metered``: the colour camera's auto-exposure
        meters the face now (exposure prompts are read accordingly)."""
        sup = self.sup
        if sup._ring is None:
            raise sup._fail(LivenessWorkerCrashed("liveness worker is gone"))
        desc = sup._ring.write(0, fs)
        sup._send({"op": "assess", "face_metered": bool(face_metered), **desc})
        msg = sup._expect("assessment", sup.s.assess_timeout_s)
        color = fs.color
        a = check_assessment(msg, color.width if color is not None else 0, color.height if color is not None else 0)
        if a is None:
            raise sup._fail(LivenessQualityInvalid("liveness worker returned a malformed quality assessment"))
        return a


def check_assessment(msg: dict[str, Any], width: int, height: int) -> Assessment | None:
    """The worker's ``assessment`` of a frameset whose colour frame is ``width`` x ``height``, or
    None when any part of it is not what the worker's gate makes: the worker's output is checked
    like any input (it sees faces; it must not steer the daemon beyond the fields it owns)."""
    def flag(v: Any) -> bool:
        return isinstance(v, bool)

    def integer(v: Any, lo: int, hi: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

    def number(v: Any, lo: float, hi: float) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi

    if not (flag(msg.get("ok")) and flag(msg.get("complete")) and integer(msg.get("progress"), 0, 100)
            and integer(msg.get("faces_found"), 0, 1024) and number(msg.get("timing_ms"), 0.0, 3.6e6)):
        return None
    prompt, prompts = msg.get("prompt"), msg.get("prompts")
    if not (prompt is None or (isinstance(prompt, str) and prompt in BY_CODE)):
        return None
    if not (isinstance(prompts, list) and len(prompts) <= len(BY_CODE) and len(set(prompts)) == len(prompts)
            and all(isinstance(p, str) and p in BY_CODE for p in prompts)):
        return None
    face, bright = msg.get("face"), msg.get("ir_bright_end")
    box: FaceBox | None = None
    if face is not None:
        bbox = face.get("bbox") if isinstance(face, dict) and len(face) == 1 else None
        # A box may reach past the frame's edges a little (a face at the edge), never by more than the frame.
        if not (isinstance(bbox, list) and len(bbox) == 4 and width > 0 and height > 0
                and all(number(v, -max(width, height), 2 * max(width, height)) for v in bbox)
                and bbox[0] < bbox[2] and bbox[1] < bbox[3]):
            return None
        box = FaceBox((float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])))
    if not (bright is None or (box is not None and number(bright, 0.0, 65535.0))):
        return None
    lux = msg.get("lux")
    if not (lux is None or (box is not None and number(lux, 0.0, 1e6))):
        return None
    if msg["ok"] and (prompt is not None or box is None):
        return None                                     # a good frameset has a face and nothing to say
    return Assessment(msg["ok"], msg["complete"], msg["progress"], BY_CODE[prompt] if prompt else None,
                      list(prompts), msg["faces_found"], box, None if bright is None else float(bright),
                      float(msg["timing_ms"]), None if lux is None else float(lux))


class RemoteJudge:
    """One session in the worker, fed frame by frame. Framesets go into the ring's slots in turn; a
    slot is written again only after the worker acknowledged copying its previous frameset out, so
    the daemon waits for an acknowledgement only when it is ``slots`` framesets ahead. Meanwhile
    the worker judges each frameset as it comes."""

    def __init__(self, sup: LivenessSupervisor, frames: int, nonce: bytes | None, thresholds: VerdictThresholds,
                 notes: list[str], channel: str, kinds: tuple[str, ...] = ("projector",),
                 on_best: Callable[[int, FrameSet], None] | None = None):
        self.sup, self.frames, self.nonce, self.thresholds = sup, frames, nonce, thresholds
        self.notes, self.channel, self.kinds = notes, channel, kinds
        self.on_best = on_best
        self.sent = self.acked = 0
        self.digests: list[str] = []
        self.transfer_ms: list[float] = []
        self.done = False
        # With ``on_best``: the framesets sent, in order (the session's own; no copies), which the
        # worker's ``best`` reports index; how many reports came and the frameset named last.
        self.sets: list[FrameSet] = []
        self.bests = 0
        self.best_index: int | None = None

    def __enter__(self) -> RemoteJudge:
        sup = self.sup
        sup._lock.acquire()
        try:
            sup._start_locked()
            sup._send({"op": "begin", "nonce": self.nonce.hex() if self.nonce else None, "frames": self.frames,
                       "live_min": self.thresholds.live_min, "attack_max": self.thresholds.attack_max,
                       "notes": self.notes, "channel": self.channel, "kinds": list(self.kinds),
                       **({"best": True} if self.on_best is not None else {})})
            sup._expect("ready", sup.s.frame_timeout_s)
            sup._stale_bests = 0                        # an earlier session's reports all came before it
        except BaseException:
            sup._lock.release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self.done and self.sup._sock is not None:
                # Abandoned mid-session (camera error, cancel): collect the outstanding
                # acknowledgements, then tell the worker to drop what it has. Reports of the best
                # frameset it folds before it takes the ``abort`` are skipped by the next reads: at
                # most one per frameset sent, less those read.
                try:
                    self._await_acks(self.sent)
                    self.sup._send({"op": "abort"})
                except LivenessWorkerError:
                    pass                                # already torn down by _fail
                finally:
                    if self.on_best is not None and self.sup._sock is not None:
                        self.sup._stale_bests = self.sent - self.bests
        finally:
            self.sets = []                              # the session's framesets are not kept here
            try:
                if self.sup._ring is not None:
                    self.sup._ring.wipe()               # no face pixels stay in shared memory
            finally:
                self.sup._lock.release()

    def _read(self, op: str, timeout_s: float,
              timed_out: Callable[[float], LivenessWorkerError] | None = None) -> dict[str, Any]:
        """The worker's next ``op`` within ``timeout_s`` in all; with ``on_best``, its ``best`` reports
        before it are taken (within the same deadline: a report does not restart it). ``timed_out``: the
        error when none comes (``LivenessWorkerTimeout`` by default)."""
        sup = self.sup
        if self.on_best is None:
            return sup._expect(op, timeout_s) if timed_out is None else sup._next((op,), timeout_s, timed_out=timed_out)

        def late(_remaining_s: float = 0.0) -> LivenessWorkerError:
            return timed_out(timeout_s) if timed_out is not None else LivenessWorkerTimeout(
                f"liveness worker did not answer within {timeout_s:g} s; killed, it will be restarted")
        deadline, remaining = time.monotonic() + timeout_s, timeout_s
        while True:
            msg = sup._next((op, "best"), remaining, timed_out=late)
            if msg["op"] == op:
                return msg
            self._best(msg)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise sup._fail(late())

    def _best(self, msg: dict[str, Any]) -> None:
        """One ``best`` report, checked (``LivenessBestInvalid``), then handed to ``on_best`` with the
        frameset this session sent at that index."""
        sup, k = self.sup, msg.get("index")
        if not (len(msg) == 2 and isinstance(k, int) and not isinstance(k, bool) and 0 <= k < self.sent
                and k != self.best_index and self.bests < self.sent and self.on_best is not None):
            raise sup._fail(LivenessBestInvalid(
                "liveness worker's report of the best frameset so far is malformed, names a frameset not "
                "sent, repeats itself or comes more often than framesets were sent"))
        self.bests += 1
        self.best_index = k
        self.on_best(k, self.sets[k])

    def _ack(self, ack: dict[str, Any]) -> None:
        sup = self.sup
        if ack.get("slot") != self.acked % sup.s.slots:
            raise sup._fail(LivenessVerdictUnbound("liveness worker acknowledged the wrong slot"))
        self.acked += 1

    def _await_acks(self, upto: int) -> None:
        while self.acked < upto:
            self._ack(self._read("ack", self.sup.s.frame_timeout_s))

    def _poll(self) -> None:
        """With ``on_best``: every message already on the channel (acknowledgements and reports),
        not waiting for any, so a report is acted on while the capture goes on, not only when a
        slot is needed. At most one report and one acknowledgement per frameset sent."""
        sup = self.sup
        while sup._sock is not None and select.select([sup._sock], [], [], 0)[0]:
            msg = sup._next(("ack", "best"), sup.s.frame_timeout_s)
            if msg["op"] == "ack":
                if self.acked >= self.sent:
                    raise sup._fail(LivenessVerdictUnbound("liveness worker acknowledged a frameset not sent"))
                self._ack(msg)
            else:
                self._best(msg)

    def add(self, fs: FrameSet) -> None:
        sup = self.sup
        if self.sent >= sup.s.slots:
            self._await_acks(self.sent - sup.s.slots + 1)   # the slot we are about to reuse is free
        t0 = time.perf_counter()
        assert sup._ring is not None
        desc = sup._ring.write(self.sent % sup.s.slots, fs)
        sup._send({"op": "frameset", **desc})
        self.transfer_ms.append((time.perf_counter() - t0) * 1000)
        self.sent += 1
        self.digests.append(frameset_digest(fs))
        if self.on_best is not None:
            self.sets.append(fs)
            self._poll()

    def finish(self, not_after: float | None = None) -> WorkerResult:
        """The worker's verdict on the framesets sent. Its deadline is ``judge_timeout_s`` plus
        ``judge_per_frameset_s`` a frameset sent, bounded by ``not_after`` (a ``time.monotonic()``: the last
        moment a verdict is of use, the challenge's nonce then just long enough alive to submit under):
        missed, the worker is killed, ``LIV_WORKER_TIMEOUT``, or ``LIV_VERDICT_PAST_NONCE`` when the
        bound was ``not_after``'s."""
        sup = self.sup
        self._await_acks(self.sent)
        own_s = sup.s.judge_timeout_s + sup.s.judge_per_frameset_s * self.sent
        # The worker is always asked and always given VERDICT_FLOOR_S (review34c): the time spent before this
        # call is partly the camera link's (exposure locks, the screen's first step, the projector's reset and the
        # stop, each held just under its call timeout), so a bound already spent must not turn a window that is
        # going badly into a failure without a strike. A refused verdict after the bound still strikes; a live one
        # simply cannot be submitted (the server refuses the old nonce).
        left_s = math.inf if not_after is None else not_after - time.monotonic()
        wait_s = min(own_s, max(left_s, VERDICT_FLOOR_S))
        timed_out = None
        if wait_s < own_s:
            def timed_out(t: float) -> LivenessWorkerError:
                return LivenessVerdictPastNonce(
                    f"liveness worker gave no verdict within the {t:.2f} s left before the challenge's nonce is "
                    f"too old to submit under ({left_s:.2f} s, at least {VERDICT_FLOOR_S:g} s; its own deadline "
                    f"{own_s:g} s); killed, it will be restarted")
        sup._send({"op": "judge"})
        msg = self._read("verdict", wait_s, timed_out)
        self.done = True
        verdict = sup._check_verdict(msg, self.digests)
        best = msg.get("best")
        if best is not None and (best := unpack_best(best, self.sent)) is None:
            raise sup._fail(LivenessVerdictUnbound("liveness worker named a frameset that was not sent, or its "
                                                   "face box or landmarks are malformed"))
        evidence = msg.get("evidence")
        if evidence is not None and (evidence := unpack_evidence(evidence, self.digests)) is None:
            raise sup._fail(LivenessVerdictUnbound("liveness worker returned challenge evidence that is malformed "
                                                   "or not bound to the frames sent"))
        timing, worker_ms, finish_ms = (check_timings(msg.get("timing_ms")), msg.get("worker_ms"),
                                        msg.get("finish_ms"))
        quality, skew = msg.get("quality"), msg.get("max_skew_ms")
        if (timing is None or not _optional_ms(worker_ms) or not _optional_ms(finish_ms)
                or not (quality is None or isinstance(quality, dict)) or not (skew is None or _ms(skew))):
            raise sup._fail(LivenessVerdictUnbound("liveness worker returned malformed timings or reports"))
        if finish_ms is not None:
            timing["worker_finish"] = float(finish_ms)
        return WorkerResult(verdict, quality, None if skew is None else float(skew), timing, self.transfer_ms,
                            float(worker_ms or 0.0), best, evidence)


MAX_TIMINGS = 64          # the worker times a handful of stages; a reply with more is not the worker's


def _ms(v: Any) -> bool:
    """A duration in milliseconds: a finite number, not negative (a bool is not a number here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def _optional_ms(v: Any) -> bool:
    return v is None or _ms(v)


def check_timings(v: Any) -> dict[str, float] | None:
    """The worker's stage timings as it sends them (``{"stage": ms}``; absent is none), or None when
    they are anything else: the worker's output is checked like any input."""
    if v is None:
        return {}
    if not isinstance(v, dict) or len(v) > MAX_TIMINGS:
        return None
    if not all(isinstance(k, str) and 0 < len(k) <= 64 and _ms(x) for k, x in v.items()):
        return None
    return {k: float(x) for k, x in v.items()}


def _check_evidence_head(ev: Any, digests: list[str]) -> bool:
    """The evidence's challenges and face box, and one frame entry per frameset sent."""
    if not isinstance(ev, dict) or not isinstance(ev.get("frames"), list) or len(ev["frames"]) != len(digests):
        return False
    if not isinstance(ev.get("challenges"), list) or not all(isinstance(k, str) for k in ev["challenges"]):
        return False
    box = ev.get("face_box")
    return isinstance(box, list) and len(box) in (0, 4) and all(isinstance(v, int) for v in box)


def _check_frame(f: Any, digest: str) -> bool:
    """One frame's entry but its face grid: bound to its frameset's digest, every number finite."""
    if not isinstance(f, dict) or f.get("digest") != digest or not isinstance(f.get("face"), bool):
        return False
    nums = [f.get(k) for k in ("timestamp_ms", "color_timestamp_ms", "ir_energy")]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in nums):
        return False
    return all(isinstance(f.get(k), int) and f[k] >= 0 for k in ("frame_counter", "color_frame_counter"))


def check_evidence(ev: Any, digests: list[str]) -> bool:
    """Challenge evidence as ``Judge`` makes it: one entry per frameset sent, in order, each bound to
    that frameset's digest, every number finite (the worker's output is checked like any input)."""
    if not _check_evidence_head(ev, digests):
        return False
    for f, d in zip(ev["frames"], digests, strict=True):
        if not _check_frame(f, d):
            return False
        grid = f.get("face_grid")
        if not isinstance(grid, list) or len(grid) not in (0, FACE_GRID_VALUES) or not all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in grid):
            return False
    return True


# A frame's entry in the evidence as the judge makes it, in its order: what the verdict's packed
# form carries (``worker.pack_evidence``: each of these but the grid, and ``grid``) is rebuilt so.
_FRAME_FIELDS = ("frame_counter", "timestamp_ms", "color_frame_counter", "color_timestamp_ms", "ir_energy")
_WIRE_FRAME_KEYS = frozenset(_FRAME_FIELDS) | {"grid", "digest", "face"}


def unpack_evidence(ev: Any, digests: list[str]) -> dict[str, Any] | None:
    """The challenge evidence as the verdict carries it (``worker.pack_evidence``), checked as
    :func:`check_evidence` checks the judge's own, and rebuilt as that: the same fields in the same
    order, each face grid the same 48 floats a list. None when any part of it is not so: a frame
    with a field more or less, ``grid`` not a bool, the packed grids not one row of 48 finite
    float64 per frame that says it has one (``wire.unpack_floats``: dtype, shape, length, size)."""
    if not _check_evidence_head(ev, digests) or ev.keys() != {"challenges", "face_box", "frames", "grids"}:
        return None
    frames = ev["frames"]
    if not all(isinstance(f, dict) and f.keys() == _WIRE_FRAME_KEYS and isinstance(f["grid"], bool)
               and _check_frame(f, d) for f, d in zip(frames, digests, strict=True)):
        return None
    try:
        grids = unpack_floats(ev["grids"], (sum(f["grid"] for f in frames), FACE_GRID_VALUES)).tolist()
    except WireError:
        return None
    rows = iter(grids)
    return {"challenges": list(ev["challenges"]), "face_box": list(ev["face_box"]),
            "frames": [{**{k: f[k] for k in _FRAME_FIELDS}, "face_grid": next(rows) if f["grid"] else [],
                        "digest": f["digest"], "face": f["face"]} for f in frames]}


def unpack_best(best: Any, sent: int) -> dict[str, Any] | None:
    """The verdict's ``best`` (``worker.best_face``): the index of a frameset sent, the face box
    (four finite numbers) and the packed landmarks (``LANDMARKS`` x 3 finite float64), rebuilt as the
    worker made them (the landmarks nested lists); None when it is anything else."""
    if not (isinstance(best, dict) and best.keys() == {"index", "bbox", "landmarks"}):
        return None
    k, box = best["index"], best["bbox"]
    if not (isinstance(k, int) and not isinstance(k, bool) and 0 <= k < sent):
        return None
    if not (isinstance(box, list) and len(box) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)):
        return None
    try:
        landmarks = unpack_floats(best["landmarks"], (LANDMARKS, 3)).tolist()
    except WireError:
        return None
    return {"index": k, "bbox": box, "landmarks": landmarks}
