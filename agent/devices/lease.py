"""The daemon's cameras: opened once, kept alive between sessions, lent to one session at a time.

:class:`DeviceManager` owns the configured rig (one or several URIs, each camera's SDK in a camera
host process, ``drivers/host``) for the life of the daemon. Its sources keep streaming and their
watchdogs keep working between sessions, so a camera unplugged at night is back before the morning's
first customer, and a session never pays for opening a device.

A session asks for :meth:`DeviceManager.lease` and gets a :class:`RigCamera`: a
:class:`drivers.Camera` over the rig, so the session's code (``FramesetReader``, the projector's
owner) is the same as for a single camera. ``start()`` begins the lease (frames queued before it are
dropped; a reconnecting camera is waited for, ``lease_wait_s``), ``stop()`` ends it and leaves the
cameras running. If a source reconnects during the lease, the lease's next read is
``DRV_DEVICE_LOST``: frames before and after a re-open are not one timeline, and the new handle has
its projector at its defaults, so a challenge cannot continue across it.

Capabilities are the devices' own, probed per device at open: the projector's (control, power) are
those of the camera that owns the IR stream, so a D405-like camera without a projector says so and
the session runs the challenges it can (the illumination challenge), instead of aborting.

Firmware updates (``firmware/maintenance.py``): a USB camera has one owner at a time, so a firmware
update (a separate process) asks the daemon for the camera. The manager's maintenance watch looks
every ``maintenance_poll_s`` for the update's request (a ``stat``, and an ``flock`` probe once there
is one); while the update holds the maintenance lock exclusively, the manager closes every camera
and its camera host processes, drops the holder lock the update waits on, and reports
``maintenance``. Once the lock is free again it opens every camera afresh (the device re-enumerated:
new handles, new hosts) and runs the firmware gate on the version it finds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import drivers
from agent.devices.calibration import RigCalibration
from agent.devices.manager import CaptureRig, RigIncomplete, Source, SourceEvent, SourceFailed, SourceState
from agent.devices.policy import DeviceSettings
from agent.security.audit import MAX_STRING
from drivers import (
    Camera,
    Capability,
    DepthRange,
    DeviceInfo,
    ExposureSetting,
    Extrinsics,
    Frame,
    ProjectorPowerRange,
    StreamKind,
    StreamProfile,
)
from drivers.base import exposure_lock_capability
from drivers.errors import (
    CapabilityUnsupported,
    CaptureAgentError,
    DeviceLost,
    DeviceRefused,
    DriverError,
    FrameTimeout,
    StreamClosed,
    UnsupportedMode,
)
from drivers.host import CameraHostPool
from drivers.update import FirmwareError
from firmware.errors import MaintenanceActive
from firmware.maintenance import CameraHold, MaintenanceLock
from firmware.policy import FirmwareGate

log = logging.getLogger(__name__)

HEALTH_STALE_S = 30.0      # a source loop silent this long is stuck: the daemon stops its watchdog pings
HOLD_WAIT_S = 2.0          # an update probes the holder lock for an instant; taking it waits out the probe
# Capabilities that follow the stream they act on (the projector lights the IR imager; each exposure
# lock holds one imager): the rig has one only if the camera that owns that stream has it.
_IR_CAPABILITIES = (Capability.PROJECTOR_CONTROL, Capability.PROJECTOR_POWER, Capability.EXPOSURE_LOCK_IR)
_COLOR_CAPABILITIES = (Capability.EXPOSURE_REGION, Capability.EXPOSURE_LOCK_COLOR)


class DeviceManagerBusy(CaptureAgentError):
    """The camera holder lock is held exclusively by someone else for longer than any update probes it."""

    code = "DEV_HOLDER_LOCKED"


class LeaseBusy(CaptureAgentError):
    """Another session holds the cameras (the local API runs one capture at a time, so this is a bug)."""

    code = "DEV_LEASE_BUSY"


class DeviceManager:
    """The configured cameras for the life of the daemon (see the module doc)."""

    def __init__(self, uris: Iterable[str], settings: DeviceSettings | None = None,
                 calibration: RigCalibration | None = None, opener: Callable[[str], Camera] | None = None,
                 on_event: Callable[[SourceEvent], None] | None = None, *,
                 maintenance: MaintenanceLock | None = None, firmware: FirmwareGate | None = None,
                 on_maintenance: Callable[..., object] | None = None):
        self.settings = settings or DeviceSettings()
        self.calibration = calibration or RigCalibration()
        self.uris = tuple(uris)
        self.pool: CameraHostPool | None = None
        self._own_pool = opener is None and self.settings.camera_host
        if opener is None:
            opener = self._host_open if self._own_pool else drivers.open
        self._opener = opener
        self._on_event = on_event
        self.firmware = firmware
        self.rig = self._new_rig()
        self._lease_lock = threading.Lock()
        self._started = False
        # The hand-over to firmware updates (None: no state directory, nothing to watch).
        self.maintenance = maintenance
        self._on_maintenance = on_maintenance
        self._hold: CameraHold | None = None
        self.in_maintenance = False
        self.maintenance_error: CaptureAgentError | None = None   # why the cameras could not be reopened
        self._watch_stop = threading.Event()
        self._watch: threading.Thread | None = None
        self.watch_tick = time.monotonic()
        self.handovers = 0

    def _new_rig(self) -> CaptureRig:
        if self._own_pool:
            self.pool = CameraHostPool(self.settings.host_settings())
        # No frames kept: a lease lends the cameras and the session reads them itself.
        return CaptureRig(self.uris, self.settings, self._opener, persistent=True, on_event=self._on_event,
                          firmware=self.firmware, keep_frames=False)

    def _host_open(self, uri: str) -> Camera:
        if self.pool is None:
            raise StreamClosed("the camera hosts are closed (firmware maintenance)")
        return self.pool.open(uri)

    def _close_pool(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.close()

    def start(self) -> None:
        """Open every camera. A camera that is not plugged in yet does not stop the daemon (its
        source waits for it; sessions fail with a typed error meanwhile); a wrong URI, a refused
        device or a missing SDK does. A firmware update running now keeps the cameras closed until
        it ends."""
        request = None
        if self.maintenance is not None:
            # The holder lock first, the request second: an update that writes its request after
            # this look waits on the holder lock until the watch has seen the request.
            self._hold = self._take_hold()
            request = self.maintenance.handover_requested()
        try:
            if request is not None:
                self._enter_maintenance(request, stop_rig=False)
            else:
                self.rig.set_idle(True)
                self.rig.start(tolerate_absent=True)
        except BaseException:
            self._close_pool()
            self._release_hold()
            raise
        self._started = True
        if self.maintenance is not None:
            self._watch_stop.clear()
            self._watch = threading.Thread(target=self._watch_loop, name="maintenance-watch", daemon=True)
            self._watch.start()

    def stop(self) -> None:
        self._watch_stop.set()
        if self._watch is not None:
            self._watch.join(self.settings.maintenance_poll_s + 10.0)
            self._watch = None
        self.rig.stop()
        self._close_pool()
        self._release_hold()
        self._started = False

    # -- the hand-over to a firmware update ---------------------------------------------------------------
    def _take_hold(self) -> CameraHold:
        assert self.maintenance is not None
        deadline = time.monotonic() + HOLD_WAIT_S
        while True:
            hold = self.maintenance.hold_cameras()
            if hold is not None:
                return hold
            if time.monotonic() >= deadline:
                raise DeviceManagerBusy(f"{self.maintenance.holder_path} stayed locked exclusively for "
                                        f"{HOLD_WAIT_S:g} s: another program holds the camera holder lock")
            time.sleep(0.01)

    def _release_hold(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            hold.release()

    def _watch_loop(self) -> None:
        """Every ``maintenance_poll_s``: hand the cameras over while an update asks for them, take
        them back when it has ended (or died: the kernel dropped its lock)."""
        assert self.maintenance is not None
        while not self._watch_stop.wait(self.settings.maintenance_poll_s):
            self.watch_tick = time.monotonic()
            try:
                request = self.maintenance.handover_requested()
                if request is not None and not self.in_maintenance:
                    self._release_for_update(request)
                elif request is None and self.in_maintenance:
                    self._reopen_after_update()
            except Exception:            # never a dead watch: the next poll tries again
                log.exception("maintenance watch")

    def _release_for_update(self, request: dict[str, Any]) -> None:
        # No session can run now (a session holds the maintenance lock shared, the update holds it
        # exclusively); a lease that is not a session's (a tool) is waited out, bounded.
        if not self._lease_lock.acquire(timeout=self.settings.lease_wait_s):
            log.warning("firmware update asks for the cameras, but they are leased: not released yet")
            return
        try:
            self._enter_maintenance(request, stop_rig=True)
        finally:
            self._lease_lock.release()

    def _enter_maintenance(self, request: dict[str, Any], *, stop_rig: bool) -> None:
        t0 = time.monotonic()
        self.in_maintenance = True        # a lease from now on is refused (FW_MAINTENANCE)
        if stop_rig:
            self.rig.stop()               # every camera closed (stop() is final: new handles later)
        self._close_pool()                # and the camera hosts gone: nothing of ours holds a device
        for src in self.rig.sources:
            src._set(SourceState.MAINTENANCE, "firmware update")
        self._release_hold()              # the update waits for this
        self.handovers += 1
        log.info("cameras released to a firmware update of %s (pid %s) in %.3f s", request.get("device"),
                 request.get("pid"), time.monotonic() - t0)
        self._tell("camera_released_for_update", device=str(request.get("device", ""))[:200],
                   update_pid=request.get("pid") if isinstance(request.get("pid"), int) else None,
                   release_ms=round((time.monotonic() - t0) * 1000, 1))

    def _reopen_after_update(self) -> None:
        # No lease can begin meanwhile: it waits while ``in_maintenance`` holds, which turns false
        # only once the new rig is in place.
        t0 = time.monotonic()
        hold = self.maintenance.hold_cameras() if self.maintenance is not None else None
        if hold is None:
            return                        # an update probing right now: next poll
        if self.maintenance is not None and self.maintenance.handover_requested() is not None:
            hold.release()                # a new update began in between: stay handed over
            return
        self._hold = hold
        rig = self._new_rig()
        rig.set_idle(True)
        try:
            rig.start(tolerate_absent=True)   # fresh handles; the firmware gate on the new version
        except BaseException as exc:
            # Not the camera configured before (the USB policy refuses it, a stream is missing), or a
            # bug: stay closed and let go of the holder lock (an update must never wait on a leak),
            # say why, try again at the next poll.
            self._close_pool()
            self._release_hold()
            if not isinstance(exc, CaptureAgentError):
                raise
            if self.maintenance_error is None or self.maintenance_error.code != exc.code:
                log.error("cameras not reopened after the firmware update: %s: %s", exc.code, exc.message)
                self._tell("camera_reopen_failed", code=exc.code, message=exc.message[:200])
            self.maintenance_error = exc
            return
        self.rig = rig
        self.maintenance_error = None
        self.in_maintenance = False
        self._tell("camera_reopened_after_update", reopen_ms=round((time.monotonic() - t0) * 1000, 1),
                   # Cut to what the audit log records (a longer string is refused: review26).
                   states=" ".join(f"{s.uri[:80]}={s.state.value}" for s in rig.sources)[:MAX_STRING],
                   firmware=" ".join(s.info.firmware[:64] for s in rig.sources if s.info is not None)[:200] or None)

    def _tell(self, event: str, **data: Any) -> None:
        if self._on_maintenance is None:
            return
        try:
            self._on_maintenance(event, **data)
        except Exception:
            log.exception("maintenance observer failed on %s", event)

    def lease(self) -> RigCamera:
        """The cameras as one :class:`drivers.Camera` for one session (start it to begin)."""
        if not self._started:
            raise StreamClosed("the device manager is not running")
        return RigCamera(self)

    # -- health, for the daemon's watchdog ---------------------------------------------------------------
    def healthy(self) -> bool:
        """Every source's thread runs and has shown life recently (all its waits are bounded, so a
        silent one is stuck: better the daemon be restarted by systemd than sit there)."""
        now = time.monotonic()
        if self._watch is not None and not (self._watch.is_alive() and now - self.watch_tick < HEALTH_STALE_S):
            return False
        if self.in_maintenance:           # cameras closed on purpose: the watch is what must live
            return self._started
        return self._started and all(s.thread_alive and now - s.tick < HEALTH_STALE_S for s in self.rig.sources)

    def status(self) -> dict[str, Any]:
        """Each camera's state and its recovery (``recovery()``), by URI: what health's log lines and
        the metrics show."""
        now = time.monotonic()
        return {s.uri: {"state": s.state.value, "epoch": s.epoch, "frames": s.frames, "resets": s.resets,
                        "error": s.error.code if s.error else None, "step": s.step or None,
                        "recovery": self.recovery(s, now)} for s in self.rig.sources}

    def recovery(self, source: Source, now: float | None = None) -> dict[str, Any]:
        """``source.recovery()`` and ``patience``: the factor on its URI's camera host warm/open/start
        deadlines (1 without a camera host pool, or while none is stretched)."""
        pool = self.pool
        return {"patience": pool.patience(source.uri) if pool is not None else 1.0, **source.recovery(now)}


class RigCamera(Camera):
    """A session's lease on the rig: a :class:`drivers.Camera` whose frames come from the manager."""

    def __init__(self, manager: DeviceManager):
        self._m = manager
        self._leased = False
        self._ended = False
        self._epochs: dict[Source, int] = {}
        self._lent: list[Source] = []
        self._faults: dict[Source, CaptureAgentError] = {}     # what this session saw go wrong, by camera
        self._pending: list[tuple[Source, Frame]] = []          # first frames, read at start
        self._next = 0
        self.capabilities = self._capabilities()

    @property
    def _rig(self) -> CaptureRig:
        return self._m.rig            # a new rig after a firmware update (never during a lease)

    # -- the lease ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._ended:
            raise StreamClosed("this lease has ended; ask the device manager for a new one")
        if self._leased:
            return
        if not self._m._lease_lock.acquire(blocking=False):
            raise LeaseBusy("the cameras are leased to another session")
        try:
            for attempt in (1, 2):
                # The second time a camera has just been found lost: its re-open step gets its time.
                self._wait_online(0.0 if attempt == 1 else self._m.settings.restart_timeout_s)
                missing = self._rig.missing_streams()
                if missing:
                    raise RigIncomplete(f"no camera provides {', '.join(missing)} "
                                        f"(have {', '.join(k.value for k in self._rig.owners) or 'nothing'})")
                self._rig.set_idle(False)
                lost: dict[Source, CaptureAgentError] = {}
                for s in self._owning_sources():
                    try:
                        s.lend()          # the session reads the cameras itself: nothing read ahead
                        self._lent.append(s)
                    except CaptureAgentError as exc:     # it left `online` since we looked
                        lost[s] = exc
                self._rig.drain()
                self._epochs = {s: s.epoch for s in self._lent}
                # A camera lost since its source last looked (between two idle reads: unplugged, or
                # another device on its port) is found now, not in the session's first read: it is
                # given back to recover, and the lease waits for it once more (or for its refusal).
                if not lost:
                    lost = self._first_frames()
                if not lost:
                    break
                self._give_back(lost)
                if attempt == 2:
                    raise next(iter(lost.values()))
            self.capabilities = self._capabilities()
        except BaseException:
            self._give_back()
            self._m._lease_lock.release()
            raise
        self._leased = True

    def _first_frames(self) -> dict[Source, CaptureAgentError]:
        """One frame from each lent camera (kept for ``read``), or what went wrong, by camera."""
        lost: dict[Source, CaptureAgentError] = {}
        for src in self._lent:
            cam = src.camera
            try:
                if cam is None:
                    raise DeviceLost(f"camera {src.uri} is not open")
                self._pending.append((src, cam.read(self._m.settings.lease_wait_s)))
            except FrameTimeout:
                continue                  # slow to deliver is the session's stage deadline's business
            except CaptureAgentError as exc:
                lost[src] = exc
        if lost:
            self._pending.clear()
        return lost

    def _give_back(self, faults: dict[Source, CaptureAgentError] | None = None) -> None:
        for s in self._lent:
            s.give_back((faults or {}).get(s))
        self._lent = []

    def _wait_online(self, extra_s: float = 0.0) -> None:
        deadline = time.monotonic() + self._m.settings.lease_wait_s + extra_s
        while True:
            m = self._m
            if m.in_maintenance:
                running = m.maintenance is None or m.maintenance.update_running()
                if m.maintenance_error is not None and not running:
                    raise m.maintenance_error      # the update is over; its camera would not reopen
                if running or time.monotonic() >= deadline:
                    raise MaintenanceActive("the cameras are handed over to a firmware update: captures are "
                                            "refused until it ends")
                time.sleep(0.02)                   # the update has ended: the manager is reopening
                continue
            failed = [s for s in self._rig.sources if s.state is SourceState.FAILED]
            if failed:
                raise failed[0].error or SourceFailed(f"{failed[0].uri} failed")
            waiting = [s for s in self._rig.sources if s.state is not SourceState.ONLINE]
            if not waiting:
                return
            # The device now on a camera's port is refused (a virtual camera, one off the allowlist):
            # that, not a wait, is the session's answer.
            refused = [s.attempt_error for s in waiting
                       if isinstance(s.attempt_error, (DeviceRefused, FirmwareError))]
            if refused:
                raise refused[0]
            if time.monotonic() >= deadline:
                s = waiting[0]
                if isinstance(s.attempt_error, DriverError):
                    raise s.attempt_error          # what its last re-open met: not found, refused, ...
                raise DeviceLost(f"camera {s.uri} is {s.state.value}"
                                 + (f" ({s.error.code})" if s.error else "") + "; try again shortly")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._leased and not self._ended:
            self._rig.set_idle(True)
            self._give_back(self._faults)
            self._m._lease_lock.release()
        self._ended = True
        self._leased = False

    def read(self, timeout_s: float = 1.0) -> Frame:
        if not self._leased:
            raise StreamClosed("read() outside a lease (start() first)")
        self._check_sources()
        while self._pending:
            src, f = self._pending.pop(0)
            if self._rig.owners.get(f.stream) is src:
                return f
        deadline = time.monotonic() + max(0.0, timeout_s)
        sources = self._lent
        while True:
            self._next = (self._next + 1) % len(sources)
            src = sources[self._next]
            cam = src.camera
            if cam is None:
                raise DeviceLost(f"camera {src.uri} is not open")
            left = deadline - time.monotonic()
            # One camera: wait on it. Several: short turns, so none waits behind another.
            turn = max(0.0, left) if len(sources) == 1 else min(max(0.0, left), 0.02)
            try:
                f = cam.read(turn)
            except FrameTimeout:
                if time.monotonic() >= deadline:
                    self._check_sources()
                    raise FrameTimeout(f"no frame within {timeout_s:g} s from "
                                       f"{', '.join(s.uri for s in sources)}") from None
                continue
            except CaptureAgentError as exc:
                self._faults[src] = exc               # the source recovers once the lease ends
                raise
            if self._rig.owners.get(f.stream) is src:
                return f

    def _check_sources(self) -> None:
        for s, epoch in self._epochs.items():
            if s.epoch != epoch or s.state is not SourceState.ONLINE:
                raise DeviceLost(f"camera {s.uri} was {'re-opened' if s.epoch != epoch else s.state.value} "
                                 "during the session" + (f" ({s.error.code})" if s.error else ""))

    # -- what the rig is ---------------------------------------------------------------------------------
    def _owning_sources(self) -> list[Source]:
        return list(dict.fromkeys(self._rig.owners.values()))

    def _owner(self, kind: StreamKind) -> Source | None:
        return self._rig.owners.get(kind)

    def _primary(self) -> Source:
        return self._owner(StreamKind.DEPTH) or self._owner(StreamKind.IR) or self._rig.sources[0]

    def _capabilities(self) -> frozenset[Capability]:
        caps: set[Capability] = set()
        ir = self._owner(StreamKind.IR) or self._owner(StreamKind.DEPTH)
        color = self._owner(StreamKind.COLOR)
        for s in self._owning_sources():
            have = s.camera.capabilities if s.camera is not None else s._caps
            caps |= {c for c in have if c in (Capability.RECORDING, Capability.ILLUMINATION_CONTROL)}
            if s is ir:
                caps |= {c for c in have if c in _IR_CAPABILITIES}
            if s is color:                       # the colour imager meters the face, holds its exposure
                caps |= {c for c in have if c in _COLOR_CAPABILITIES}
        return frozenset(caps)

    @property
    def info(self) -> DeviceInfo:
        src = self._primary()
        info = src.info or DeviceInfo(uri=src.uri, backend="rig", name="camera (not open)")
        if len(self._rig.sources) == 1:
            return info
        parts = ", ".join(f"{k.value}: {s.uri}" for k, s in sorted(self._rig.owners.items(), key=lambda i: i[0].value))
        note = f"rig of {len(self._rig.sources)} cameras ({parts})"
        if self._m.calibration.digest:
            note += f"; calibration sha256 {self._m.calibration.digest[:16]}"
        return replace(info, streams=tuple(k.value for k in self._rig.owners),
                       is_recording=any(s.info is not None and s.info.is_recording for s in self._rig.sources),
                       note="; ".join(x for x in (info.note, note) if x))

    @property
    def waits_for_reader(self) -> bool:  # type: ignore[override]
        """Whether every camera the session reads waits for its reader (``Camera.waits_for_reader``: the
        simulator unless ``stream=N``, also behind a camera host): only then does no command land late
        behind a slow reader. One camera that streams on its own clock (every device), or one not open,
        and the window's lateness check applies (late29: the lease said False for every camera, so the
        daemon's waiting simulators were ended ``SES_WINDOW_LATE`` under load)."""
        cams = [s.camera for s in self._owning_sources()]
        return bool(cams) and all(c is not None and getattr(c, "waits_for_reader", False) is True for c in cams)

    def profiles(self) -> list[StreamProfile]:
        return [p for s in self._owning_sources() for p in s.profiles if self._owner(p.kind) is s]

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        if src == dst:
            return Extrinsics.identity()
        a, b = self._owner(src), self._owner(dst)
        if a is not None and a is b:
            e = a.extrinsics.get((src, dst))
            if e is not None:
                return e
            if (dst, src) in a.extrinsics:
                return a.extrinsics[(dst, src)].inverse()
        else:
            e = self._m.calibration.between(src, dst)
            if e is not None:
                return e
        raise UnsupportedMode(f"no calibration between {src.value} and {dst.value}"
                              + ("" if a is b else " (different cameras: add them to [camera] calibration)"))

    def all_extrinsics(self) -> dict[tuple[StreamKind, StreamKind], Extrinsics]:
        out = {}
        kinds = sorted(self._rig.owners, key=lambda k: k.value)
        for i, a in enumerate(kinds):
            for b in kinds[i + 1:]:
                try:
                    out[(a, b)] = self.extrinsics(a, b)
                except UnsupportedMode:
                    pass               # align then says what it lacks, by the pair it needs
        return out

    # -- capabilities, forwarded to the camera that has them ------------------------------------------
    def _camera_for(self, kind: StreamKind, capability: Capability) -> Camera:
        if capability not in self.capabilities:
            raise CapabilityUnsupported(f"the camera that owns the {kind.value} stream has no {capability.value}")
        if capability in _IR_CAPABILITIES:     # from the camera the rig took them from
            src = self._owner(StreamKind.IR) or self._owner(StreamKind.DEPTH)
        else:
            src = self._owner(kind) or self._owner(StreamKind.DEPTH)
        cam = src.camera if src is not None else None
        if cam is None:
            raise DeviceLost(f"the {kind.value} camera is not open")
        return cam

    def set_projector(self, on: bool) -> None:
        self._pending.clear()                 # frames taken before a control change are not handed out
        self._camera_for(StreamKind.IR, Capability.PROJECTOR_CONTROL).set_projector(on)

    def projector_power_range(self) -> ProjectorPowerRange:
        return self._camera_for(StreamKind.IR, Capability.PROJECTOR_POWER).projector_power_range()

    def depth_range(self) -> DepthRange | None:
        src = self._owner(StreamKind.DEPTH)
        return src.camera.depth_range() if src is not None and src.camera is not None else None

    def set_projector_power(self, mw: float) -> float:
        self._pending.clear()
        return self._camera_for(StreamKind.IR, Capability.PROJECTOR_POWER).set_projector_power(mw)

    def set_illumination(self, level: Any, luminance: Any = 1.0) -> None:
        self._pending.clear()
        for s in self._owning_sources():
            if s.camera is not None and Capability.ILLUMINATION_CONTROL in s.camera.capabilities:
                s.camera.set_illumination(level, luminance)
                return
        raise CapabilityUnsupported("no camera of the rig controls the illumination")

    def lock_exposure(self, stream: StreamKind, setting: ExposureSetting | None = None) -> ExposureSetting:
        return self._camera_for(stream, exposure_lock_capability(stream)).lock_exposure(stream, setting)

    def unlock_exposure(self, stream: StreamKind) -> None:
        self._camera_for(stream, exposure_lock_capability(stream)).unlock_exposure(stream)

    def set_exposure_region(self, stream: StreamKind, region: tuple[int, int, int, int] | None) -> None:
        self._camera_for(stream, Capability.EXPOSURE_REGION).set_exposure_region(stream, region)

    def hardware_reset(self) -> None:
        raise CapabilityUnsupported("hardware resets are the device manager's (its recovery ladder), not a session's")
