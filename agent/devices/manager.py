"""Device manager: open the configured cameras, compose one capture rig, keep it alive.

Each configured URI becomes a :class:`Source` with a small reconnection state machine
(ONLINE → RECONNECTING → ONLINE | FAILED) and its own reader thread. The watchdog demands that the
frame counter keeps advancing; when it stops (timeouts, a frozen counter) or the device is lost, the
source escalates, each step under its own monotonic deadline:

1. re-open: a fresh handle on the same device (never ``start()`` after ``stop()``: it is final),
2. hardware reset through a live handle (when the camera has the capability), then wait, bounded,
   for the device to enumerate again by serial and open it,
3. wait for re-plug: re-open the URI until ``replug_timeout_s`` runs out (hot-plug).

If every step fails the source is FAILED and the rig raises :class:`SourceFailed`. Nothing waits
without a deadline; every failure is a typed error.

:class:`CaptureRig` merges sources: each stream kind is owned by the first source (in config order)
that provides it, e.g. OpenNI depth+IR plus a UVC color camera.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import drivers
from agent.devices.policy import DeviceSettings, check_policy
from drivers import Camera, Capability, DeviceInfo, Extrinsics, Frame, FrameHeader, StreamKind, StreamProfile
from drivers.errors import (
    CameraHostCrashed,
    CameraHostHung,
    CameraHostProtocol,
    CaptureAgentError,
    DeviceBusy,
    DeviceLost,
    DeviceNotFound,
    DriverError,
    FrameTimeout,
    StreamClosed,
)
from drivers.update import FirmwareError
from firmware.policy import FirmwareGate

log = logging.getLogger(__name__)
FAILED_POLL_S = 1.0                 # a persistent source's re-plug poll once it has given up


# -- errors -------------------------------------------------------------------------------------
class DeviceManagerError(CaptureAgentError):
    code = "DEV_ERROR"


class SourceFailed(DeviceManagerError):
    """A source could not be recovered: restart, reset and re-plug wait all ran out."""

    code = "DEV_SOURCE_FAILED"


class RigIncomplete(DeviceManagerError):
    """The configured sources do not provide a stream the rig needs."""

    code = "DEV_RIG_INCOMPLETE"


class RigTimeout(DeviceManagerError):
    """No frame from any source within the caller's deadline (sources may be reconnecting)."""

    code = "DEV_RIG_TIMEOUT"


class SourceState(str, enum.Enum):
    STARTING = "starting"
    ONLINE = "online"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    STOPPED = "stopped"
    MAINTENANCE = "maintenance"          # closed and handed over to a firmware update (lease.py)


EVENT_HISTORY = 256                     # state changes a source remembers


@dataclass(frozen=True)
class SourceEvent:
    uri: str
    state: SourceState
    at: float                            # time.monotonic()
    step: str = ""                       # which recovery step, or why
    error: str = ""                      # error code that caused the change


class Source:
    """One camera URI with its reader thread, watchdog and reconnection state machine."""

    def __init__(self, uri: str, settings: DeviceSettings, out: queue.Queue[tuple[Source, Frame]] | None,
                 opener: Callable[[str], Camera] = drivers.open, on_event: Callable[[SourceEvent], None] | None = None,
                 usb_lookup: Callable[[], list] | None = None, persistent: bool = False,
                 firmware: FirmwareGate | None = None):
        self.uri = uri
        # The signed manifest's verdict on the running firmware, at every open (the daemon's sources:
        # after a firmware update the camera is a new device on a new version).
        self.firmware = firmware
        # A persistent source (the daemon's) keeps waiting for its device after giving up, at a slow
        # poll, so a camera re-plugged minutes later comes back without restarting the daemon.
        self.persistent = persistent
        self.profiles: list[StreamProfile] = []          # of the last handle that opened
        self.extrinsics: dict[tuple[StreamKind, StreamKind], Extrinsics] = {}
        self._usb_lookup = usb_lookup
        self.settings = settings
        self._out = out                 # None: only frame headers are read, to watch the camera
        self._opener = opener
        self._on_event = on_event
        self.state = SourceState.STARTING
        self.camera: Camera | None = None
        self.info: DeviceInfo | None = None
        self.error: CaptureAgentError | None = None
        # The latest state changes (tests, diagnostics: ``history()``); observers get every one as it
        # happens. Bounded: a daemon whose camera faults now and then for months must not keep them
        # all (issue 20). Appended by the source's thread, read by others: under a lock.
        self._events: deque[SourceEvent] = deque(maxlen=EVENT_HISTORY)
        self._events_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_counter: dict[StreamKind, int] = {}
        self._advanced_at: dict[StreamKind, float] = {}   # per stream: one dead stream is a stall too
        self._last_advance = time.monotonic()
        self.frames = 0
        self.dropped = 0
        self.resets = 0
        self.epoch = 0                      # +1 each time the source comes (back) online
        self.tick = time.monotonic()        # the loop's last sign of life (the daemon's watchdog reads it)
        self._caps: frozenset[Capability] = frozenset()
        self.idle = False                   # between sessions: the camera host reads at the idle pace
        # Lent to a session (``lend``): the session reads the camera itself, so nothing is read ahead
        # of it; this thread neither reads nor watches meanwhile. ``fault``: what the session saw
        # go wrong, recovered from once the camera is given back.
        self._lent = False
        self._read_lock = threading.Lock()
        self.fault: CaptureAgentError | None = None
        self.attempt_error: CaptureAgentError | None = None   # why the last re-open failed
        # The recovery step running now ("re-open", "hardware reset", "re-plug", "re-plug after
        # failure"), "" when none is: what a step is waiting for is not visible otherwise.
        self.step = ""
        # The wait before the next re-open after one whose camera host was killed or died (doubling up to
        # ``recovery_backoff_max_s``; 0 while none did), how many re-opens in a row cost a host, and when
        # (monotonic) the next re-open is due (None: none is waited for): ``recovery()``, which health's
        # device status and the metrics show.
        self.backoff_s = 0.0
        self.host_failures = 0
        self.next_attempt_at: float | None = None
        # Which stream kinds this source feeds into the rig (set by CaptureRig); None = all.
        self.accept: Callable[[StreamKind], bool] | None = None

    def recovery(self, now: float | None = None) -> dict[str, Any]:
        """The recovery state under stable names (health's device status, the metrics):
        ``consecutive_failures`` (re-opens in a row that cost a camera host), ``backoff_s`` (the wait in
        force after them, 0 when none) and ``next_attempt_in_s`` (seconds until the next re-open, from
        the monotonic clock; None while no re-open is waited for)."""
        now = time.monotonic() if now is None else now
        at = self.next_attempt_at
        return {"consecutive_failures": self.host_failures, "backoff_s": round(self.backoff_s, 3),
                "next_attempt_in_s": None if at is None else round(max(0.0, at - now), 3)}

    def history(self) -> list[SourceEvent]:
        """The latest state changes (at most ``EVENT_HISTORY``), oldest first: a copy, safe to iterate
        while the source's thread goes on recording."""
        with self._events_lock:
            return list(self._events)

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> None:
        """Open and start the camera in the caller's thread so configuration errors surface at once."""
        self._open_and_start()
        self._set(SourceState.ONLINE, "opened")

    def run_in_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"source:{self.uri}", daemon=True)
        self._thread.start()

    @property
    def thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:       # never a silently dead source: it is FAILED, with why
            log.exception("source %s: reader thread crashed", self.uri)
            self.error = SourceFailed(f"{self.uri}: reader crashed: {type(exc).__name__}: {exc}")
            self._set(SourceState.FAILED, "crashed")
            self._close_camera()

    def stop(self, join_timeout_s: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_timeout_s)
        self._close_camera()
        if self.state is not SourceState.FAILED:
            self._set(SourceState.STOPPED, "stopped")

    # -- internals ---------------------------------------------------------------------------
    def _set(self, state: SourceState, step: str = "", error: CaptureAgentError | None = None) -> None:
        if state is SourceState.ONLINE:
            self.epoch += 1
        self.state = state
        ev = SourceEvent(self.uri, state, time.monotonic(), step, error.code if error else "")
        with self._events_lock:
            self._events.append(ev)
        log.info("source %s: %s (%s) %s", self.uri, state.value, step, ev.error)
        if self._on_event is not None:
            self._on_event(ev)

    def _open_and_start(self) -> None:
        cam = self._opener(self.uri)
        try:
            self.info = check_policy(cam.info, self.settings, self._usb_lookup, firmware=self.firmware)
            cam.start()
        except BaseException:
            _quiet_stop(cam)
            raise
        self.camera = cam
        self._caps = cam.capabilities
        self._apply_pace(cam)
        self.profiles = cam.profiles()
        self.extrinsics = _all_extrinsics(cam)
        self._reset_watchdog()

    def set_idle(self, idle: bool) -> None:
        self.idle = idle
        cam = self.camera
        if cam is not None:
            try:
                self._apply_pace(cam)
            except CaptureAgentError as exc:   # the reader sees the same fault and recovers
                log.info("source %s: pace: %s", self.uri, exc.code)

    def _apply_pace(self, cam: Camera) -> None:
        pace = getattr(cam, "pace", None)       # camera hosts only; an in-process camera reads all
        if pace is None:
            return
        if self._lent:
            pace(None, demand=True)
        elif self.idle and self.settings.idle_period_s > 0:
            pace(min(self.settings.idle_period_s, self.settings.stall_timeout_s / 2))
        else:
            pace(None)

    def _reset_watchdog(self) -> None:
        self._last_counter.clear()
        self._advanced_at.clear()
        self._last_advance = time.monotonic()

    def _stalled_stream(self, now: float) -> StreamKind | None:
        for kind, t in self._advanced_at.items():
            if now - t >= self.settings.stall_timeout_s:
                return kind
        return None

    def _close_camera(self) -> None:
        cam, self.camera = self.camera, None
        if cam is not None:
            _quiet_stop(cam)

    def _read_once(self, timeout_s: float) -> Frame | FrameHeader:
        """Read one frame and feed the watchdog; FrameTimeout if the counter did not advance. A source
        that keeps no frames reads only their headers: a camera host then leaves the pixels in its
        ring (no copy of a whole frame a second to read its counter); an in-process camera reads the
        frame as before (``Camera.read_header``)."""
        assert self.camera is not None
        f: Frame | FrameHeader
        if self._out is None:
            f = self.camera.read_header(timeout_s)
            counter = f.counter
        else:
            f = self.camera.read(timeout_s)
            counter = FrameHeader.of(f).counter
        prev = self._last_counter.get(f.stream)
        if prev is None or counter > prev:
            self._last_counter[f.stream] = counter
            self._last_advance = self._advanced_at[f.stream] = time.monotonic()
            return f
        raise FrameTimeout(f"{self.uri}: {f.stream.value} frame counter stuck at {counter}")

    def _deliver(self, f: Frame | FrameHeader) -> None:
        self.frames += 1
        if self._out is None or not isinstance(f, Frame):
            return          # a rig that keeps no frames (the daemon's: sessions read the cameras)
        if self.accept is not None and not self.accept(f.stream):
            return          # another source owns this stream; keep the queue for useful frames
        try:
            self._out.put_nowait((self, f))
        except queue.Full:          # a slow consumer loses the oldest frames, never blocks capture
            try:
                self._out.get_nowait()
                self.dropped += 1
            except queue.Empty:
                pass
            self._out.put_nowait((self, f))

    def _loop(self) -> None:
        s = self.settings
        if self.camera is None and not self._recover(DeviceNotFound(f"{self.uri} was not there at start")):
            return
        while not self._stop.is_set():
            self.tick = time.monotonic()
            if self._lent:
                self._stop.wait(0.05)
                continue
            with self._read_lock:
                if self._lent:
                    continue
                cause = self._step(s)
            if cause is None:
                continue
            if self._stop.is_set():
                return
            if not self._recover(cause):
                return

    def _step(self, s: DeviceSettings) -> DriverError | None:
        """One read and the watchdog's look at it: None while all is well, else why to recover."""
        fault, self.fault = self.fault, None
        if fault is not None:                    # seen by the session that had the camera
            return fault if isinstance(fault, DriverError) else DeviceLost(f"{self.uri}: {fault.code}")
        try:
            self._deliver(self._read_once(s.read_timeout_s))
            dead = self._stalled_stream(time.monotonic())
            if dead is None:
                return None
            return FrameTimeout(f"{self.uri}: {dead.value} stream stopped advancing")
        except FrameTimeout as exc:
            if time.monotonic() - self._last_advance < s.stall_timeout_s:
                return None
            return exc
        except DriverError as exc:           # DeviceLost (incl. a killed camera host), StreamClosed, ...
            return exc
        except CaptureAgentError as exc:
            return DeviceLost(f"{self.uri}: {exc.code}: {exc.message}")
        except Exception as exc:             # a backend bug must not silently kill the source
            log.exception("source %s: unexpected error", self.uri)
            return DeviceLost(f"{self.uri}: unexpected {type(exc).__name__}: {exc}")

    # -- lending to a session ---------------------------------------------------------------------
    def lend(self) -> Camera:
        """The camera, for a session to read itself; this thread stops reading until ``give_back``.
        Its camera host (if any) switches to reading on demand."""
        with self._read_lock:                    # waits out a read in progress (bounded)
            self._lent = True
        cam = self.camera
        if cam is None or self.state is not SourceState.ONLINE:
            self._lent = False
            raise DeviceLost(f"camera {self.uri} is {self.state.value}")
        pace = getattr(cam, "pace", None)
        if pace is not None:
            try:
                pace(None, demand=True)
            except CaptureAgentError:
                self._lent = False
                raise
        return cam

    def give_back(self, fault: CaptureAgentError | None = None) -> None:
        """The session is done; ``fault`` is what it saw go wrong with this camera, if anything."""
        if fault is not None:
            self.fault = fault
            # Seen as reconnecting from now on: the next session must not get the dead handle.
            self._set(SourceState.RECONNECTING, "lost during a session",
                      fault if isinstance(fault, CaptureAgentError) else None)
        # No longer lent before the pace is set: ``_apply_pace`` keeps a lent camera's host reading on
        # demand, so setting the pace first left it there after every session (the idle pace never
        # came back between sessions).
        self._reset_watchdog()
        self._lent = False
        cam = self.camera
        if cam is None:
            return
        if fault is not None:
            # No pace change on a camera that failed (recovery replaces it), but its host's ring lets
            # go of the session's frame copies now, not when the camera is opened again.
            forget = getattr(cam, "forget_frames", None)
            if forget is not None:
                forget()
            return
        try:
            self._apply_pace(cam)                # which lets go of them too
        except CaptureAgentError as exc:
            self.fault = exc

    def _wait_for_frame(self, deadline: float) -> bool:
        """True once the (re)started camera shows an advancing counter before ``deadline``.

        The first frame of each stream after a restart is only a baseline (a stuck device can
        still hand out one stale frame); a second, later counter on the same stream proves it lives.
        """
        seen: dict[StreamKind, int] = {}
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.tick = time.monotonic()
            try:
                f = self._read_once(min(left, self.settings.read_timeout_s))
            except FrameTimeout:
                continue
            except CaptureAgentError:
                return False
            self._deliver(f)
            seen[f.stream] = seen.get(f.stream, 0) + 1
            if seen[f.stream] >= 2:
                return True
        return False

    def _recover(self, cause: DriverError) -> bool:
        """The recovery ladder. A stopped handle is never started again (``stop()`` is final on
        RealSense and OpenNI, and the camera host contract makes it final everywhere): each step
        opens a fresh handle. In a live camera host that re-open keeps the SDK loaded; a host that was
        killed for a hang is replaced by the opener. ``step`` names the step running meanwhile."""
        if self.state is not SourceState.RECONNECTING:
            self._set(SourceState.RECONNECTING, "stalled" if isinstance(cause, FrameTimeout) else "lost", cause)
        if self.camera is not None:
            self._caps = self.camera.capabilities
        self._close_camera()
        try:
            return self._climb(cause)
        finally:
            self.step = ""

    def _climb(self, cause: DriverError) -> bool:
        s = self.settings
        # 1. re-open the same device (a new handle; the stream restarts).
        self.step = "re-open"
        if self._reopen_until(time.monotonic() + s.restart_timeout_s):
            self._set(SourceState.ONLINE, "re-open")
            return True
        # 2. hardware reset through a live handle, then wait (bounded) for the device to enumerate
        #    again by its serial (the URI names it) and open it.
        if Capability.HARDWARE_RESET in self._caps and not self._stop.is_set():
            self.step = "hardware reset"
            self._reset_once()
            if self._reopen_until(time.monotonic() + s.reset_timeout_s):
                self._set(SourceState.ONLINE, "hardware reset")
                return True
        # 3. wait for re-plug.
        self.step = "re-plug"
        if self._reopen_until(time.monotonic() + s.replug_timeout_s):
            self._set(SourceState.ONLINE, "re-plug")
            return True
        if self._stop.is_set():
            return False
        self.error = SourceFailed(f"{self.uri} did not recover within re-open {s.restart_timeout_s:g} s, "
                                  f"reset {s.reset_timeout_s:g} s and re-plug {s.replug_timeout_s:g} s "
                                  f"(cause: {cause.code}: {cause.message})")
        self._set(SourceState.FAILED, "gave up", cause)
        if not self.persistent:
            return False
        # Sessions fail fast with DEV_SOURCE_FAILED meanwhile; the device may still come back.
        self.step = "re-plug after failure"
        if self._reopen_until(float("inf"), poll_s=max(s.replug_poll_s, FAILED_POLL_S)):
            self.error = None
            self._set(SourceState.ONLINE, "re-plug after failure")
            return True
        return False

    def _reset_once(self) -> None:
        """Open a handle (not streaming) and reset the device through it. Any failure is noted and
        the ladder goes on: a device that is gone cannot be reset, and must come back by itself."""
        cam: Camera | None = None
        try:
            cam = self._opener(self.uri)
            cam.hardware_reset()
            self.resets += 1
        except CaptureAgentError as exc:
            log.info("source %s: hardware reset not possible: %s", self.uri, exc.code)
        except Exception:
            log.exception("source %s: unexpected error in hardware reset", self.uri)
        finally:
            if cam is not None:
                _quiet_stop(cam)

    def _reopen_until(self, deadline: float, poll_s: float | None = None) -> bool:
        poll = poll_s or self.settings.replug_poll_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.tick = time.monotonic()
            try:
                self._open_and_start()
                if self._wait_for_frame(deadline):
                    self.attempt_error = None
                    self.backoff_s = 0.0
                    self.host_failures = 0
                    return True
                self._close_camera()
            except CaptureAgentError as exc:
                # Not there yet, or refused (a different device on the port never counts as back).
                self.attempt_error = exc
                self._close_camera()
            except Exception:
                log.exception("source %s: unexpected error while re-opening", self.uri)
                self._close_camera()
            wait = min(self._next_wait(poll), max(0.0, deadline - time.monotonic()))
            self.next_attempt_at = time.monotonic() + wait
            try:
                self._stop.wait(wait)
            finally:
                self.next_attempt_at = None
        return False

    def _next_wait(self, poll_s: float) -> float:
        """The wait before the next re-open: ``poll_s``, unless the last one cost a camera host (killed
        for a missed deadline, crashed, garbled): then twice the last such wait, from ``poll_s`` up to
        ``recovery_backoff_max_s``. Every attempt on a starved machine spawning a host at once, each
        killed before it was ready, was what kept growth31's run E from ever recovering. A re-open that
        found no device (``DRV_DEVICE_NOT_FOUND``: it left the bus) ends the backoff: what comes back has
        enumerated anew, and a re-plugged camera is tried at ``poll_s`` (the pool forgets the URI's
        patience for the same reason)."""
        if isinstance(self.attempt_error, DeviceNotFound):
            self.backoff_s = 0.0
            self.host_failures = 0
        if not isinstance(self.attempt_error, HOST_FAILURES):
            return poll_s
        self.host_failures += 1
        top = max(poll_s, self.settings.recovery_backoff_max_s)
        self.backoff_s = min(top, 2.0 * self.backoff_s) if self.backoff_s > 0 else poll_s
        log.info("source %s: %s; next re-open in %.1f s", self.uri, self.attempt_error.code, self.backoff_s)
        return self.backoff_s


HOST_FAILURES = (CameraHostHung, CameraHostCrashed, CameraHostProtocol)


def _all_extrinsics(cam: Camera) -> dict[tuple[StreamKind, StreamKind], Extrinsics]:
    try:
        return dict(cam.all_extrinsics())
    except CaptureAgentError:       # a single-stream camera, or one without calibration between streams
        return {}


def _quiet_stop(cam: Camera) -> None:
    try:
        cam.stop()
    except Exception:   # stopping a vanished device may fail; it must not mask the real error
        pass


@dataclass
class RigStatus:
    sources: dict[str, SourceState] = field(default_factory=dict)
    owners: dict[StreamKind, str] = field(default_factory=dict)


class CaptureRig:
    """One logical camera from several sources. Not a :class:`drivers.Camera`: it may be degraded.

    ``keep_frames=False`` (the daemon's ``DeviceManager``): the sources read only to watch their
    cameras (watchdog, recovery) and let each frame go at once; nothing is queued, and ``read`` is
    refused. A session there reads the lent cameras itself, so queued frames would only hold
    ``queue_frames`` images of whoever stood in front of the kiosk between sessions (issue 20: about
    40 MiB of the idle daemon's memory)."""

    def __init__(self, uris: tuple[str, ...] | list[str], settings: DeviceSettings | None = None,
                 opener: Callable[[str], Camera] = drivers.open, usb_lookup: Callable[[], list] | None = None,
                 persistent: bool = False, on_event: Callable[[SourceEvent], None] | None = None,
                 firmware: FirmwareGate | None = None, keep_frames: bool = True):
        if not uris:
            raise RigIncomplete("no camera URIs configured")
        self._listener = on_event                  # the daemon's observers (metrics, health)
        self.settings = settings or DeviceSettings()
        self._queue: queue.Queue[tuple[Source, Frame]] | None = (
            queue.Queue(maxsize=self.settings.queue_frames) if keep_frames else None)
        self.sources = [Source(u, self.settings, self._queue, opener, on_event=self._on_event,
                               usb_lookup=usb_lookup, persistent=persistent, firmware=firmware) for u in uris]
        self.owners: dict[StreamKind, Source] = {}
        self._started = False

    def _on_event(self, ev: SourceEvent) -> None:
        if ev.state is SourceState.ONLINE:
            self._update_owners()
        if self._listener is not None:
            self._listener(ev)

    def _update_owners(self) -> None:
        # Each stream kind belongs to the first source, in config order, whose device provides it.
        owners: dict[StreamKind, Source] = {}
        for src in self.sources:
            for p in src.profiles:
                owners.setdefault(p.kind, src)
        self.owners = owners

    def missing_streams(self) -> list[str]:
        return [k for k in self.settings.required_streams if StreamKind(k) not in self.owners]

    def start(self, *, tolerate_absent: bool = False) -> None:
        """Open every source. With ``tolerate_absent`` (the daemon), a device that is not there yet
        (``DRV_DEVICE_NOT_FOUND``, ``DRV_DEVICE_LOST``, a camera host that died), still claimed by
        another program (``DRV_DEVICE_BUSY``: a firmware update finishing) or on firmware the manifest
        refuses (``FW_*``: sessions get that code at once) does not stop the start: its source waits
        for it like a re-plug. Configuration errors (a bad URI, an unknown scheme, a device the USB
        policy refuses, a missing SDK) always raise."""
        opened: list[Source] = []
        try:
            for src in self.sources:
                try:
                    src.open()
                    opened.append(src)
                except (DeviceNotFound, DeviceLost, DeviceBusy, FrameTimeout, FirmwareError) as exc:
                    if not tolerate_absent:
                        raise
                    src.error = src.attempt_error = exc
                    src._set(SourceState.RECONNECTING, "absent at start", exc)
            self._update_owners()
            missing = self.missing_streams()
            if missing and len(opened) == len(self.sources):
                raise RigIncomplete(f"no configured camera provides {', '.join(missing)} "
                                    f"(have {', '.join(k.value for k in self.owners) or 'nothing'})")
        except BaseException:
            for src in opened:
                src.stop()
            raise
        for src in self.sources:
            src.accept = (lambda kind, _src=src: self.owners.get(kind) is _src)
            src.run_in_thread()
        self._started = True

    def set_idle(self, idle: bool) -> None:
        for src in self.sources:
            src.set_idle(idle)

    def drain(self) -> int:
        """Drop every queued frame (a session's lease starts with the frames taken after it)."""
        n = 0
        while self._queue is not None:
            try:
                self._queue.get_nowait()
                n += 1
            except queue.Empty:
                break
        return n

    def read(self, timeout_s: float = 1.0) -> Frame:
        """Next frame of an owned stream from any source; SourceFailed once a source is given up."""
        if not self._started:
            raise StreamClosed("capture rig is not started")
        if self._queue is None:
            raise StreamClosed("this rig keeps no frames: its cameras are read through a lease")
        deadline = time.monotonic() + timeout_s
        while True:
            for src in self.sources:
                if src.state is SourceState.FAILED:
                    raise src.error or SourceFailed(f"{src.uri} failed")
            left = deadline - time.monotonic()
            if left <= 0:
                states = ", ".join(f"{s.uri}={s.state.value}" for s in self.sources)
                raise RigTimeout(f"no frame within {timeout_s:g} s ({states})")
            try:
                src, f = self._queue.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            if self.owners.get(f.stream) is src:
                return f

    def status(self) -> RigStatus:
        return RigStatus({s.uri: s.state for s in self.sources}, {k: s.uri for k, s in self.owners.items()})

    def stop(self) -> None:
        for src in self.sources:
            src.stop()
        self._started = False

    def __enter__(self) -> CaptureRig:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
