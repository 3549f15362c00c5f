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
from drivers import Camera, Capability, DeviceInfo, Extrinsics, Frame, ProjectorPowerRange, StreamKind, StreamProfile
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

log = logging.getLogger(__name__)

HEALTH_STALE_S = 30.0      # a source loop silent this long is stuck: the daemon stops its watchdog pings
# Capabilities that follow the stream they act on (the projector lights the IR imager).
_IR_CAPABILITIES = (Capability.PROJECTOR_CONTROL, Capability.PROJECTOR_POWER, Capability.EXPOSURE_CONTROL)


class LeaseBusy(CaptureAgentError):
    """Another session holds the cameras (the local API runs one capture at a time, so this is a bug)."""

    code = "DEV_LEASE_BUSY"


class DeviceManager:
    """The configured cameras for the life of the daemon (see the module doc)."""

    def __init__(self, uris: Iterable[str], settings: DeviceSettings | None = None,
                 calibration: RigCalibration | None = None, opener: Callable[[str], Camera] | None = None,
                 on_event: Callable[[SourceEvent], None] | None = None):
        self.settings = settings or DeviceSettings()
        self.calibration = calibration or RigCalibration()
        self.pool: CameraHostPool | None = None
        if opener is None:
            if self.settings.camera_host:
                self.pool = CameraHostPool(self.settings.host_settings())
                opener = self.pool.open
            else:
                opener = drivers.open
        self.rig = CaptureRig(tuple(uris), self.settings, opener, persistent=True, on_event=on_event)
        self._lease_lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        """Open every camera. A camera that is not plugged in yet does not stop the daemon (its
        source waits for it; sessions fail with a typed error meanwhile); a wrong URI, a refused
        device or a missing SDK does."""
        self.rig.set_idle(True)
        try:
            self.rig.start(tolerate_absent=True)
        except BaseException:
            if self.pool is not None:
                self.pool.close()
            raise
        self._started = True

    def stop(self) -> None:
        self.rig.stop()
        if self.pool is not None:
            self.pool.close()
        self._started = False

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
        return self._started and all(s.thread_alive and now - s.tick < HEALTH_STALE_S for s in self.rig.sources)

    def status(self) -> dict[str, Any]:
        return {s.uri: {"state": s.state.value, "epoch": s.epoch, "frames": s.frames, "resets": s.resets,
                        "error": s.error.code if s.error else None} for s in self.rig.sources}


class RigCamera(Camera):
    """A session's lease on the rig: a :class:`drivers.Camera` whose frames come from the manager."""

    def __init__(self, manager: DeviceManager):
        self._m = manager
        self._rig = manager.rig
        self._leased = False
        self._ended = False
        self._epochs: dict[Source, int] = {}
        self._lent: list[Source] = []
        self._faults: dict[Source, CaptureAgentError] = {}     # what this session saw go wrong, by camera
        self._pending: list[tuple[Source, Frame]] = []          # first frames, read at start
        self._next = 0
        self.capabilities = self._capabilities()

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
            failed = [s for s in self._rig.sources if s.state is SourceState.FAILED]
            if failed:
                raise failed[0].error or SourceFailed(f"{failed[0].uri} failed")
            waiting = [s for s in self._rig.sources if s.state is not SourceState.ONLINE]
            if not waiting:
                return
            # The device now on a camera's port is refused (a virtual camera, one off the allowlist):
            # that, not a wait, is the session's answer.
            refused = [s.attempt_error for s in waiting if isinstance(s.attempt_error, DeviceRefused)]
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
            if s is color and Capability.EXPOSURE_REGION in have:   # the colour imager meters the face
                caps.add(Capability.EXPOSURE_REGION)
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

    def set_projector_power(self, mw: float) -> float:
        self._pending.clear()
        return self._camera_for(StreamKind.IR, Capability.PROJECTOR_POWER).set_projector_power(mw)

    def set_illumination(self, level: Any) -> None:
        self._pending.clear()
        for s in self._owning_sources():
            if s.camera is not None and Capability.ILLUMINATION_CONTROL in s.camera.capabilities:
                s.camera.set_illumination(level)
                return
        raise CapabilityUnsupported("no camera of the rig controls the illumination")

    def lock_exposure(self, stream: StreamKind) -> Any:
        cam = self._camera_for(stream, Capability.EXPOSURE_CONTROL)
        return getattr(cam, "lock_exposure")(stream)  # noqa: B009 - not every Camera declares it yet

    def unlock_exposure(self, stream: StreamKind) -> None:
        cam = self._camera_for(stream, Capability.EXPOSURE_CONTROL)
        getattr(cam, "unlock_exposure")(stream)  # noqa: B009 - not every Camera declares it yet

    def set_exposure_region(self, stream: StreamKind, region: tuple[int, int, int, int] | None) -> None:
        self._camera_for(stream, Capability.EXPOSURE_REGION).set_exposure_region(stream, region)

    def hardware_reset(self) -> None:
        raise CapabilityUnsupported("hardware resets are the device manager's (its recovery ladder), not a session's")
