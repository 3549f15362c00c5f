"""The daemon's side of the camera host processes: spawn, talk, watch, kill.

:class:`CameraHost` is one host process. Every command has a deadline; a receiver thread takes the
host's messages and kills the process (SIGKILL, which also ends a SIGSTOPped one) when

* no message at all arrives for ``heartbeat_timeout_s`` (a hang that holds the interpreter inside
  a C call, or a stopped process),
* a heartbeat reports the SDK inside one read for more than ``read_hang_s``,
* a command gets no answer within its deadline (``stop()`` hanging on unplug, say),
* the host sends anything malformed.

Then every user of that host sees a typed ``DRV_HOST_HUNG`` / ``DRV_HOST_CRASHED`` /
``DRV_HOST_PROTOCOL`` (all :class:`~drivers.errors.DeviceLost`), never a stuck call.

:class:`HostedCamera` is a :class:`~drivers.Camera` backed by a host, with the same contract as an
in-process camera, including what the real SDKs refuse: ``stop()`` is final, ``start()`` after it is
``StreamClosed``; a new handle comes from :meth:`CameraHostPool.open`.

:class:`CameraHostPool` keeps one host per URI, reuses it while it lives (a re-open in a live host
keeps the SDK loaded: fast), and keeps a warm spare per URI (a started interpreter with the backend
imported) so a killed host is replaced in about the time the device itself needs to open.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import base, errors, spawner
from ..base import Camera, DepthRange, DeviceInfo, ExposureSetting, ProjectorPowerRange
from ..errors import (
    CameraHostCrashed,
    CameraHostHung,
    CameraHostProtocol,
    CaptureAgentError,
    DeviceLost,
    DeviceNotFound,
    DriverError,
    FrameTimeout,
    StreamClosed,
)
from ..frame import Extrinsics, Frame, FrameHeader, StreamKind, StreamProfile
from . import codec
from .channel import Channel, finite, socketpair
from .ring import FrameRing

_T = TypeVar("_T")

log = logging.getLogger(__name__)
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{2,47}$")


@dataclass(frozen=True)
class HostSettings:
    """Deadlines of the camera host processes. Seconds, monotonic clock."""

    heartbeat_interval_s: float = 0.1
    heartbeat_timeout_s: float = 1.0      # no message for this long: the host is hung (or stopped)
    read_hang_s: float = 1.5              # one SDK read may take this long (the host reads in 0.2 s slices)
    call_timeout_s: float = 2.0           # an option call (projector, power, exposure, reset)
    open_timeout_s: float = 10.0          # open or start a device (SDK load, firmware handshake)
    stop_timeout_s: float = 3.0
    spawn_timeout_s: float = 30.0         # interpreter start and imports, on a loaded kiosk
    slots: int = 8
    slot_bytes: int = 8 << 20             # 1920x1080 BGR8 (6.2 MB) fits one slot
    spare: bool = True                    # keep a warm spare host per URI
    # A host killed because ``warm``/``open``/``start`` missed its deadline is replaced by one whose
    # deadlines for them are twice as long, up to this factor; back to 1 once a camera starts. A start
    # that costs more than its deadline (the simulator's prerender on a starved machine) was otherwise
    # killed and begun again from nothing on every attempt, forever (growth31's run E, session 193 on).
    patience_max: float = 8.0

    def __post_init__(self) -> None:
        for name in ("heartbeat_interval_s", "heartbeat_timeout_s", "read_hang_s", "call_timeout_s",
                     "open_timeout_s", "stop_timeout_s", "spawn_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.heartbeat_timeout_s <= 2 * self.heartbeat_interval_s:
            raise ValueError("heartbeat_timeout_s must exceed two heartbeat intervals")
        if not 2 <= self.slots <= 64:
            raise ValueError("slots must be 2-64")
        if not self.patience_max >= 1:
            raise ValueError("patience_max must be 1 or more")

    def patient(self, factor: float) -> HostSettings:
        """These settings with the deadlines of the patient commands (``spawn_timeout_s`` for the
        interpreter and ``warm``, ``open_timeout_s`` for ``open`` and ``start``) times ``factor``."""
        if factor == 1:
            return self
        return dataclasses.replace(self, spawn_timeout_s=self.spawn_timeout_s * factor,
                                   open_timeout_s=self.open_timeout_s * factor)


def error_from(code: Any, message: Any) -> CaptureAgentError:
    """The typed error a host reported, by its stable code (unknown codes stay codes)."""
    code = code if isinstance(code, str) and _CODE.match(code) else DriverError.code
    message = message[:1000] if isinstance(message, str) else ""
    cls = _ERRORS.get(code)
    return cls(message) if cls is not None else DriverError(message, code=code)


_ERRORS: dict[str, type[CaptureAgentError]] = {
    c.code: c for c in vars(errors).values()
    if isinstance(c, type) and issubclass(c, CaptureAgentError) and c.__module__ == errors.__name__}


# What a camera host inherits from the daemon's environment, and nothing else: the host runs vendor
# code, and the daemon's environment may hold secrets (a PKCS#11 PIN named by ``pin-env``, say).
HOST_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR", "XDG_RUNTIME_DIR",
            "LD_LIBRARY_PATH", "CAPTURE_AGENT_OPENNI2_REDIST", "CAPTURE_AGENT_HOST_STDERR")


def host_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in HOST_ENV}


# Hosts are forked from the process's one spawner thread (``drivers.spawner``): a host dies with the
# daemon through ``PR_SET_PDEATHSIG``, which Linux ties to the *thread* that forked it.


# Commands during which the SDK may hold the interpreter lock for a while (opening a device):
# the heartbeat deadline waits for their own. Any other command (``stop``, option calls) does not
# suspend it: a host stopped or hung under them is killed at the heartbeat deadline. ``register`` is
# not one (review31c): it fills the host's backend table and imports nothing (``warm`` imports, after
# it), so a host that misses its deadline was starved or stopped, as under an option call; counting it
# doubled the URI's open/start deadlines and withheld the warm spare for a camera whose start was fine.
_PATIENT = frozenset({"open", "start", "warm"})


class _Pending:
    __slots__ = ("done", "value", "error", "deadline")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.done = threading.Event()
        self.value: Any = None
        self.error: CaptureAgentError | None = None


class CameraHost:
    """One camera host process and its control channel."""

    def __init__(self, settings: HostSettings | None = None, label: str = ""):
        self.s = settings or HostSettings()
        self.label = label
        self.dead: CaptureAgentError | None = None
        self.overran = ""             # the patient command (warm, open, start) this host was killed in
        self.last_heartbeat: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._ring_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._sink: HostedCamera | None = None
        self._closed = False
        self._closing = False
        parent, child = socketpair()
        self.ring = FrameRing(self.s.slots, self.s.slot_bytes)
        cmd = [sys.executable, "-m", "drivers.host", "--ctrl-fd", str(child.fileno()), "--ring-fd", str(self.ring.fd),
               "--slots", str(self.s.slots), "--slot-bytes", str(self.s.slot_bytes),
               "--parent-pid", str(os.getpid()), "--heartbeat", str(self.s.heartbeat_interval_s)]
        t0 = time.monotonic()
        try:
            self.proc = spawner.popen(
                cmd, pass_fds=(child.fileno(), self.ring.fd), close_fds=True, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, env=host_environment(),
                stderr=None if os.environ.get("CAPTURE_AGENT_HOST_STDERR") else subprocess.DEVNULL)
        except OSError:
            parent.close()
            self.ring.close()
            raise
        finally:
            child.close()
        self.chan = Channel(parent)
        try:
            hello = self.chan.recv(self.s.spawn_timeout_s)
            if hello.get("op") != "hello":
                raise CameraHostProtocol(f"camera host greeted with {hello.get('op')!r}")
        except (TimeoutError, EOFError, OSError, CameraHostProtocol) as exc:
            self._kill_now()
            self._release_resources()
            raise CameraHostCrashed(f"camera host for {label or 'a camera'} did not start: "
                                    f"{type(exc).__name__}: {exc}") from None
        self.spawn_s = time.monotonic() - t0
        self._receiver = threading.Thread(target=self._receive, name=f"camera-host:{label}", daemon=True)
        self._receiver.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.dead is None and not self._closed

    # -- commands -----------------------------------------------------------------------------------
    def call(self, op: str, timeout_s: float, **fields: Any) -> Any:
        """Send a command and wait for its answer; a missed deadline kills the host."""
        if self.dead is not None:
            raise self.dead
        ident = next(self._ids)
        p = _Pending(time.monotonic() + timeout_s if op in _PATIENT else 0.0)
        with self._lock:
            self._pending[ident] = p
        try:
            try:
                self.chan.send({"op": op, "id": ident, **fields})
            except OSError as exc:
                raise self.kill(CameraHostCrashed(f"camera host for {self.label} is gone: {exc}")) from None
            if not p.done.wait(timeout_s):
                if op in _PATIENT and self.dead is None:
                    self.overran = op
                raise self.kill(CameraHostHung(f"camera host for {self.label}: {op} did not return within "
                                               f"{timeout_s:g} s; killed"))
        finally:
            with self._lock:
                self._pending.pop(ident, None)
        if p.error is not None:
            raise p.error
        return p.value

    def free(self, slot: int) -> None:
        if self.dead is None:
            try:
                self.chan.send({"op": "free", "slot": slot})
            except OSError:
                pass

    def want(self) -> None:
        """Ask for one frame (demand mode)."""
        if self.dead is None:
            try:
                self.chan.send({"op": "want"})
            except OSError:
                pass

    def attach(self, sink: HostedCamera | None) -> None:
        with self._lock:
            self._sink = sink

    def read_frame(self, desc: dict[str, Any]) -> Frame:
        with self._ring_lock:
            if self._closed:
                raise StreamClosed("camera host closed")
            return self.ring.read(desc)

    def read_header(self, desc: dict[str, Any]) -> FrameHeader:
        """The frame's header from its description; its pixels stay in the ring."""
        with self._ring_lock:
            if self._closed:
                raise StreamClosed("camera host closed")
            return self.ring.read_header(desc)

    # -- life and death -------------------------------------------------------------------------------
    def kill(self, why: DeviceLost) -> CaptureAgentError:
        """Kill the process (once) and fail everything waiting on it with ``why``; returns the error
        the host's users see (the first one, when several threads notice at once)."""
        with self._lock:
            if self.dead is None:
                self.dead = why
                log.warning("camera host %s (pid %d): %s", self.label, self.proc.pid, why.message)
            dead = self.dead
            pending = list(self._pending.values())
            sink = self._sink
        self._kill_now()
        self._reap(0.5)                          # no zombie left behind (unless stuck in the kernel)
        for p in pending:
            p.error = dead
            p.done.set()
        if sink is not None:
            sink._host_died(dead)
        return dead

    def _kill_now(self) -> None:
        try:
            self.proc.send_signal(signal.SIGKILL)
        except OSError:
            pass

    def close(self) -> None:
        """Ask the host to leave, kill it if it does not, and release the channel and the ring."""
        if self._closed:
            return
        self._closing = True
        if self.dead is None:
            try:
                self.chan.send({"op": "quit"})
                self.proc.wait(timeout=self.s.stop_timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                pass
            with self._lock:
                if self.dead is None:
                    self.dead = StreamClosed(f"camera host for {self.label} closed")
        self._kill_now()
        self._reap(self.s.stop_timeout_s)
        self._receiver.join(timeout=self.s.heartbeat_timeout_s + 1.0)
        self._release_resources()

    def _reap(self, timeout_s: float) -> None:
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:      # stuck in the kernel (a USB call in D state)
            log.error("camera host %s (pid %d) did not exit after SIGKILL", self.label, self.proc.pid)

    def _release_resources(self) -> None:
        with self._ring_lock:
            if self._closed:
                return
            self._closed = True
            self.chan.close()
            self.ring.close()

    # -- receiver ---------------------------------------------------------------------------------------
    def _receive(self) -> None:
        s = self.s
        while self.dead is None:
            try:
                msg = self.chan.recv(s.heartbeat_timeout_s)
            except TimeoutError:
                # SDK calls such as opening a device may hold the interpreter lock for a second or
                # more (Orbbec's Context() does): while a command is within its own deadline, that
                # deadline is the one that counts.
                with self._lock:
                    waiting = any(p.deadline > time.monotonic() for p in self._pending.values())
                if waiting:
                    continue
                self.kill(CameraHostHung(f"camera host for {self.label}: no heartbeat for "
                                         f"{s.heartbeat_timeout_s:g} s; killed"))
                break
            except (EOFError, OSError):
                if self.dead is None and not self._closing:
                    status = self.proc.poll()
                    if status is None:
                        self._reap(0.5)
                        status = self.proc.poll()
                    self.kill(CameraHostCrashed(f"camera host for {self.label} died (exit status {status})"))
                break
            except CameraHostProtocol as exc:
                self.kill(exc)
                break
            try:
                self._dispatch(msg)
            except CameraHostProtocol as exc:
                self.kill(exc)
                break
        self._reap(s.stop_timeout_s)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        op = msg["op"]
        if op == "hb":
            self.last_heartbeat = msg
            read_s = msg.get("read_s")
            if read_s is not None and finite(read_s, "read_s") > self.s.read_hang_s:
                self.kill(CameraHostHung(f"camera host for {self.label}: the SDK has been inside one read for "
                                         f"{read_s:.1f} s (limit {self.s.read_hang_s:g} s); killed"))
            return
        if op in ("result", "error"):
            ident = msg.get("id")
            with self._lock:
                p = self._pending.get(ident) if isinstance(ident, int) else None
            if p is None:
                return                             # answer to a call that already timed out
            if op == "error":
                p.error = error_from(msg.get("code"), msg.get("message"))
            else:
                p.value = msg.get("value")
            p.done.set()
            return
        if op in ("frame", "end"):
            with self._lock:
                sink = self._sink
            gen = codec.integer(msg.get("gen"), "gen", 0)
            if op == "frame":
                slot = codec.integer(msg.get("slot"), "slot", 0, self.s.slots - 1)
                if sink is None or not sink._offer(gen, slot, msg):
                    self.free(slot)               # nobody wants it (an old handle's frame)
            elif sink is not None:
                sink._offer_end(gen, error_from(msg.get("code"), msg.get("message")))
            return
        raise CameraHostProtocol(f"camera host sent an unknown message {op!r}")


class HostedCamera(Camera):
    """A camera opened in a host process (see the module doc)."""

    read_may_hang = False        # the host's heartbeat bounds every read (a hung host is replaced)

    def __init__(self, host: CameraHost, uri: str, settings: HostSettings | None = None,
                 on_started: Callable[[], None] | None = None):
        self._host = host
        self._s = settings or host.s
        self._on_started = on_started             # the pool's: this URI's deadlines are kept again
        self.uri = uri
        v = host.call("open", self._s.open_timeout_s, uri=uri)
        self._cv = threading.Condition()
        self._queue: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()
        self._end: CaptureAgentError | None = None
        self._started = False
        self._closed = False
        self._profiles: list[StreamProfile] = []
        self._extrinsics: dict[tuple[StreamKind, StreamKind], Extrinsics] = {}
        self.dropped = 0
        self._demand = False
        self._asked = False
        self._apply(v)
        host.attach(self)

    def _apply(self, v: Any) -> None:
        if not isinstance(v, dict):
            raise self._host.kill(CameraHostProtocol("camera host answered open/start without a description"))
        try:
            self._gen = codec.integer(v.get("gen"), "gen", 0)
            self._info = codec.info_from(v.get("info"))
            self.capabilities = codec.capabilities_from(v.get("capabilities"))
            # A camera whose clock waits for its reader (the simulator unless ``stream=N``) waits for it
            # whichever process reads it: the window's lateness check asks (``Camera.waits_for_reader``).
            # Only ``true`` counts; anything else is a device's ``false``.
            self.waits_for_reader = v.get("waits_for_reader") is True
            if "profiles" in v:
                profiles = v["profiles"]
                if not isinstance(profiles, list) or len(profiles) > 8:
                    raise CameraHostProtocol("profiles must be a short list")
                self._profiles = [codec.profile_from(p) for p in profiles]
                self._extrinsics = {}
                for item in v.get("extrinsics") or []:
                    a, b, e = item
                    self._extrinsics[(codec.member(StreamKind, a, "stream"), codec.member(StreamKind, b, "stream"))] = \
                        codec.extrinsics_from(e)
        except CameraHostProtocol as exc:
            raise self._host.kill(exc) from None
        except (TypeError, ValueError) as exc:
            raise self._host.kill(CameraHostProtocol(f"bad camera description: {exc}")) from None

    # -- what the host tells us -------------------------------------------------------------------------
    @property
    def host_pid(self) -> int:
        return self._host.pid

    @property
    def host(self) -> CameraHost:
        return self._host

    def _offer(self, gen: int, slot: int, desc: dict[str, Any]) -> bool:
        with self._cv:
            if gen != self._gen or self._closed:
                return False
            live = base.Capability.RECORDING not in self.capabilities
            if live and len(self._queue) >= max(1, self._s.slots // 2):
                old, _ = self._queue.popleft()     # the reader is behind: keep the newest frames
                self._host.free(old)
                self.dropped += 1
            self._queue.append((slot, desc))
            self._asked = False
            self._cv.notify_all()
            return True

    def _offer_end(self, gen: int, exc: CaptureAgentError) -> None:
        with self._cv:
            if gen == self._gen and self._end is None:
                self._end = exc
                self._cv.notify_all()

    def _host_died(self, exc: CaptureAgentError) -> None:
        with self._cv:
            if self._end is None:
                self._end = exc
            self._cv.notify_all()

    # -- Camera -------------------------------------------------------------------------------------------
    @property
    def info(self) -> DeviceInfo:
        return self._info

    def profiles(self) -> list[StreamProfile]:
        return list(self._profiles)

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        if src == dst:
            return Extrinsics.identity()
        if (src, dst) in self._extrinsics:
            return self._extrinsics[(src, dst)]
        if (dst, src) in self._extrinsics:
            return self._extrinsics[(dst, src)].inverse()
        raise errors.UnsupportedMode(f"no extrinsics from {src.value} to {dst.value}")

    def all_extrinsics(self) -> dict[tuple[StreamKind, StreamKind], Extrinsics]:
        return dict(self._extrinsics)

    def start(self) -> None:
        if self._closed:
            raise StreamClosed("camera was stopped; open it again (a stopped stream does not restart)")
        if self._started:
            return
        self._apply(self._host.call("start", self._s.open_timeout_s))
        self._started = True
        if self._on_started is not None:
            self._on_started()

    def read(self, timeout_s: float = 1.0) -> Frame:
        return self._take(timeout_s, self._host.read_frame)

    def read_header(self, timeout_s: float = 1.0) -> FrameHeader:
        """As ``read``, but the frame's pixels are never copied out of the ring: only its description
        is read (and validated as ``read`` validates it), and the slot is given back."""
        return self._take(timeout_s, self._host.read_header)

    def _take(self, timeout_s: float, take: Callable[[dict[str, Any]], _T]) -> _T:
        """``take`` on the next queued frame's description; its slot is given back whatever happens,
        and a frame that breaks the protocol ends the host."""
        slot, desc = self._next(timeout_s)
        try:
            return take(desc)
        except CameraHostProtocol as exc:
            raise self._host.kill(exc) from None
        finally:
            self._host.free(slot)

    def _next(self, timeout_s: float) -> tuple[int, dict[str, Any]]:
        """The next queued frame's slot and description (asking for one in demand mode)."""
        if not self._started:
            raise StreamClosed("read() before start()")
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cv:
            while True:
                if self._closed:
                    raise StreamClosed("camera stopped")
                if self._queue:
                    return self._queue.popleft()
                if self._end is not None:
                    raise self._end
                if self._demand and not self._asked:
                    self._asked = True
                    self._host.want()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FrameTimeout(f"no frame from {self.uri} within {timeout_s:g} s")
                self._cv.wait(left)

    def stop(self) -> None:
        with self._cv:
            if self._closed:
                return
            self._closed = True
            held = [slot for slot, _ in self._queue]
            self._queue.clear()
            self._cv.notify_all()
        for slot in held:
            self._host.free(slot)
        if self._host.alive:
            try:
                self._host.call("stop", self._s.stop_timeout_s)
            except CaptureAgentError as exc:          # hung: the host was killed, which stops it too
                log.info("camera %s: stop: %s", self.uri, exc.code)
        self._host.attach(None)

    def forget_frames(self) -> None:
        """The ring lets go of the frame copies it kept to lend again, without a word to the host
        (which may be dead): frames somebody still holds stay theirs."""
        self._host.ring.buffers.clear()

    def pace(self, idle_period_s: float | None, *, demand: bool = False) -> None:
        """How the host reads. Between sessions (``idle_period_s``) one frame per stream per period
        instead of every frame; ``None``: every frame. ``demand``: one frame each time ``read`` finds
        nothing queued, none read ahead (a session's lease). The device streams on in every mode.
        Frames already queued are dropped when the mode changes, and the ring lets go of the frame
        copies it kept to lend again (the pace changes when a session's lease begins and when it
        ends): nothing of a session's frames stays between sessions; frames somebody still holds
        stay theirs."""
        self.forget_frames()
        if not self._host.alive or self._closed:
            return
        self._host.call("pace", self._s.call_timeout_s, idle_period_s=idle_period_s, demand=demand)
        with self._cv:
            self._demand = demand
            self._asked = False
            held = [slot for slot, _ in self._queue]
            self._queue.clear()
        for slot in held:
            self._host.free(slot)

    # -- forwarded capabilities ---------------------------------------------------------------------------
    def _invoke(self, method: str, *args: Any) -> Any:
        if self._closed:
            raise StreamClosed("camera stopped")
        v = self._host.call("call", self._s.call_timeout_s, method=method, args=[codec.value_to(a) for a in args])
        try:
            return codec.value_from(v)
        except CameraHostProtocol as exc:
            raise self._host.kill(exc) from None

    def set_projector(self, on: bool) -> None:
        self._invoke("set_projector", bool(on))

    def set_illumination(self, level: Any, luminance: Any = 1.0) -> None:
        self._invoke("set_illumination", level, luminance)

    def hardware_reset(self) -> None:
        self._invoke("hardware_reset")

    def projector_power_range(self) -> ProjectorPowerRange:
        v = self._invoke("projector_power_range")
        if not isinstance(v, ProjectorPowerRange):
            raise self._host.kill(CameraHostProtocol("projector_power_range answered with the wrong type"))
        return v

    def depth_range(self) -> DepthRange | None:
        v = self._invoke("depth_range")
        if v is not None and not isinstance(v, DepthRange):
            raise self._host.kill(CameraHostProtocol("depth_range answered with the wrong type"))
        return v

    def set_projector_power(self, mw: float) -> float:
        v = self._invoke("set_projector_power", mw)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self._host.kill(CameraHostProtocol("set_projector_power answered with the wrong type"))
        return float(v)

    def lock_exposure(self, stream: StreamKind, setting: ExposureSetting | None = None) -> ExposureSetting:
        v = self._invoke("lock_exposure", stream) if setting is None else self._invoke("lock_exposure", stream, setting)
        if not isinstance(v, ExposureSetting):
            raise self._host.kill(CameraHostProtocol("lock_exposure answered with the wrong type"))
        return v

    def unlock_exposure(self, stream: StreamKind) -> None:
        self._invoke("unlock_exposure", stream)

    def set_exposure_region(self, stream: StreamKind, region: tuple[int, int, int, int] | None) -> None:
        self._invoke("set_exposure_region", stream, region)


class CameraHostPool:
    """One host process per URI, reused while it lives, with a warm spare (see the module doc)."""

    def __init__(self, settings: HostSettings | None = None):
        self.s = settings or HostSettings()
        self._lock = threading.Lock()
        self._hosts: dict[str, CameraHost] = {}
        self._spares: dict[str, CameraHost] = {}
        self._spawning: dict[str, threading.Thread] = {}
        self._closed = False
        self.spawned = 0
        self.replaced = 0
        self._patience: dict[str, float] = {}       # see ``patience``
        self._noted: dict[str, CameraHost] = {}     # the last host whose overrun doubled it

    def open(self, uri: str) -> HostedCamera:
        """A new handle on ``uri`` in its host (spawned, or the spare, if the last one died)."""
        base.parse_uri(uri)                       # a malformed URI never starts a process
        with self._lock:
            if self._closed:
                raise StreamClosed("camera host pool closed")
            host = self._hosts.get(uri)
        if host is None or not host.alive:
            if host is not None:
                self.replaced += 1
                self._note_overrun(uri, host)
                host.close()
            host = self._take_spare(uri) or self._spawn(uri)
            with self._lock:
                self._hosts[uri] = host
        try:
            return HostedCamera(host, uri, self.settings_for(uri), on_started=lambda: self._started(uri))
        except DeviceNotFound:
            # The device is off the bus: what comes back has enumerated anew (a re-plug, a reset), and
            # is given the base deadlines again, so a re-plugged camera is not waited for at 8 times them.
            self._started(uri)
            raise
        except CaptureAgentError:
            self._note_overrun(uri, host)
            raise
        finally:
            # No spare while this URI's deadlines are stretched: on a starved machine it would take CPU
            # from the host being started (and is spawned with the same odds of missing its own).
            if self.s.spare and self.patience(uri) == 1:
                self._ensure_spare(uri)

    def settings_for(self, uri: str) -> HostSettings:
        """The settings a new host or handle for ``uri`` gets: its patient deadlines stretched by
        ``patience(uri)``."""
        return self.s.patient(self.patience(uri))

    def patience(self, uri: str) -> float:
        """The factor on ``uri``'s warm/open/start deadlines: doubled each time one of them was missed
        (the host killed for it), at most ``patience_max``; 1 again once a camera started."""
        with self._lock:
            return self._patience.get(uri, 1.0)

    def _note_overrun(self, uri: str, host: CameraHost) -> None:
        if not host.overran:
            return
        with self._lock:
            if self._noted.get(uri) is host:
                return                            # one host, one doubling
            self._noted[uri] = host
            self._patience[uri] = f = min(self.s.patience_max, 2.0 * self._patience.get(uri, 1.0))
        log.warning("camera host for %s was killed in %s: its next deadlines are %g times as long",
                    uri, host.overran, f)

    def _started(self, uri: str) -> None:
        """``uri``'s patience back to 1: a camera of it started, or its device is off the bus."""
        with self._lock:
            self._patience.pop(uri, None)
            self._noted.pop(uri, None)

    def host(self, uri: str) -> CameraHost | None:
        with self._lock:
            return self._hosts.get(uri)

    def _spawn(self, uri: str) -> CameraHost:
        s = self.settings_for(uri)
        host = CameraHost(s, label=uri)
        self.spawned += 1
        try:
            extra = [[b.name, b.module, list(b.schemes), b.description] for b in base._BACKENDS.values()
                     if not b.module.startswith("drivers.")]
            if extra:
                host.call("register", s.call_timeout_s, backends=extra)
            host.call("warm", s.spawn_timeout_s, scheme=base.parse_uri(uri).scheme)
        except CaptureAgentError:
            self._note_overrun(uri, host)
            host.close()
            raise
        return host

    def _take_spare(self, uri: str) -> CameraHost | None:
        with self._lock:
            t = self._spawning.get(uri)
        if t is not None:
            t.join(self.settings_for(uri).spawn_timeout_s)
        with self._lock:
            spare = self._spares.pop(uri, None)
        if spare is not None and not spare.alive:
            spare.close()
            return None
        return spare

    def _ensure_spare(self, uri: str) -> None:
        with self._lock:
            if self._closed or uri in self._spares or uri in self._spawning:
                return

            def make() -> None:
                try:
                    spare: CameraHost | None = self._spawn(uri)
                except CaptureAgentError as exc:
                    log.warning("spare camera host for %s: %s", uri, exc.message)
                    spare = None
                with self._lock:
                    self._spawning.pop(uri, None)
                    if spare is not None and not self._closed:
                        self._spares[uri] = spare
                        spare = None
                if spare is not None:
                    spare.close()

            t = threading.Thread(target=make, name=f"spare-host:{uri}", daemon=True)
            self._spawning[uri] = t
        t.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spawning = list(self._spawning.values())
        for t in spawning:
            t.join(self.s.spawn_timeout_s)
        with self._lock:
            hosts = list(self._hosts.values()) + list(self._spares.values())
            self._hosts.clear()
            self._spares.clear()
        for h in hosts:
            h.close()

    def __enter__(self) -> CameraHostPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
