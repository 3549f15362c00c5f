"""A fake USB depth camera for camera host processes: what cannot exist on a machine without a USB bus.

The "bus" is a directory that the test (or bench) and the host process both see. A device is a
sub-directory named by its serial holding ``device.json`` (identity and streams), a ``plugged``
marker, an ``enumeration`` counter and a ``faults`` file; :class:`FakeUsbDevice` is the test's hand
on it (plug, unplug, freeze, make the SDK hang or crash). The camera, ``fakeusb://SERIAL?bus=DIR``,
is opened by the real device manager through a real camera host, and behaves as the SDKs do:

* ``open`` of an absent device is ``DRV_DEVICE_NOT_FOUND``; a read from an unplugged device waits a
  little and is ``DRV_DEVICE_LOST``;
* a device has one owner: an open handle claims it (as libusb claims the interface) until it is
  stopped or its process dies, and a second open, from any process, is ``DRV_DEVICE_BUSY``; a claim
  belongs to one enumeration, so a dead handle from before a re-plug or a reset does not hold the
  device that came back;
* ``stop()`` is final: ``start()`` after it is ``DRV_STREAM_CLOSED``;
* after a re-plug or a hardware reset the device has enumerated anew: a handle opened before is
  dead (``DRV_DEVICE_LOST``) even though the device is back;
* ``hardware_reset()`` of an absent device is ``DRV_DEVICE_LOST``; a reset takes the device off
  the bus for ``reset_s``;
* faults: ``hang_read`` (a read that never returns, releasing the interpreter lock, as a blocked
  USB transfer does), ``hang_read_gil`` (one that holds it, as a C call that never returns to
  Python does), ``hang_stop`` (``stop()`` never returns: librealsense on unplug),
  ``crash_read`` (a segmentation fault inside the SDK), ``frozen`` (frames with a stuck counter),
  ``slow_start_s`` (``start()`` takes this many seconds, in every process and every handle: the
  simulator's ``prerender`` on a starved machine, redone by each new host).

``fakeusb://SERIAL?bus=DIR&inner=URI`` puts a real camera (the simulator, URL-encoded URI) behind
the fake plug: its frames, streams and controls, with the fake device's unplugs, resets and faults.

``register()`` adds the ``fakeusb`` scheme to the driver registry (the camera host pool passes it
on to its hosts).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

import drivers
from drivers import Camera, Capability, DeviceInfo, Frame, FrameMetadata, Intrinsics, PixelFormat, StreamKind
from drivers.base import (
    DepthRange,
    ExposureSetting,
    Extrinsics,
    ParsedUri,
    ProjectorPowerRange,
    StreamProfile,
    UsbIdentity,
    exposure_lock_capability,
)
from drivers.errors import (
    CapabilityUnsupported,
    DeviceBusy,
    DeviceLost,
    DeviceNotFound,
    FrameTimeout,
    InvalidUri,
    StreamClosed,
)
from drivers.frame import ClockDomain
from firmware.maintenance import try_lock

FAULTS = ("hang_read", "hang_read_gil", "hang_stop", "crash_read", "frozen", "slow_start_s")
W, H = 64, 48


class FakeUsbDevice:
    """The test's side of one fake USB camera."""

    def __init__(self, bus: str | os.PathLike[str], serial: str = "FAKE0001", *, vid: int = 0x2BC5,
                 pid: int = 0x0660, bus_path: str = "1-2", link: str = "3.2", fps: float = 30.0,
                 kinds: tuple[str, ...] = ("depth", "ir"), resettable: bool = True, projector: bool = True,
                 reset_s: float = 0.2, firmware: str = "1.0.0",
                 depth_range_m: tuple[float, float] | None = None):
        self.dir = Path(bus) / serial
        self.dir.mkdir(parents=True, exist_ok=True)
        self.serial = serial
        self.uri = f"fakeusb://{serial}?{urlencode({'bus': str(Path(bus))})}"
        (self.dir / "device.json").write_text(json.dumps({
            "vid": vid, "pid": pid, "serial": serial, "bus_path": bus_path, "link": link, "fps": fps,
            "kinds": list(kinds), "resettable": resettable, "projector": projector, "reset_s": reset_s,
            "depth_range_m": list(depth_range_m) if depth_range_m is not None else None}))
        _write(self.dir / "enumeration", "0")
        _write(self.dir / "faults", "{}")
        _write(self.dir / "firmware", firmware)
        (self.dir / "plugged").touch()

    def behind(self, inner_uri: str) -> str:
        """The URI of ``inner_uri`` (a real camera) behind this fake plug."""
        return f"{self.uri}&{urlencode({'inner': inner_uri})}"

    def unplug(self) -> None:
        (self.dir / "plugged").unlink(missing_ok=True)

    def plug(self) -> None:
        _bump(self.dir / "enumeration")
        (self.dir / "plugged").touch()

    def fault(self, **faults: bool | float) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        _write(self.dir / "faults", json.dumps({k: v for k, v in faults.items() if v}))

    def clear(self) -> None:
        self.fault()

    @property
    def firmware(self) -> str:
        """The firmware version the device runs (an update through ``hil.fakes.usbcam_fw`` changes it)."""
        return firmware_of(self.dir)

    def count(self, event: str) -> int:
        """How often ``open`` / ``reset`` / ``stop`` / ``hang`` (a read that began to hang) happened,
        from every process."""
        p = self.dir / "log"
        return p.read_text().split().count(event) if p.exists() else 0


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)                    # readers in the host never see half a file


def _bump(path: Path) -> int:
    n = int(path.read_text() or "0") + 1 if path.exists() else 1
    _write(path, str(n))
    return n


def firmware_of(dev: Path) -> str:
    try:
        return (dev / "firmware").read_text().strip()
    except OSError:
        return "1.0.0"


def claim(dev: Path, enumeration: int) -> int | None:
    """Claim the device as it is enumerated now: a descriptor holding the claim, or None when another
    handle (in any process) holds it. The kernel drops the claim of a process that dies."""
    fd = os.open(dev / f"claim.{enumeration}", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if try_lock(fd, fcntl.LOCK_EX):
            return fd
    except OSError:
        os.close(fd)
        raise
    os.close(fd)
    return None


def _log(dev: Path, event: str) -> None:
    with open(dev / "log", "a") as fh:
        fh.write(event + "\n")


class _State:
    """The device directory as the camera sees it, re-read only when a file changed."""

    def __init__(self, dev: Path):
        self.dev = dev
        self._faults_mtime = -1
        self.faults: dict[str, bool] = {}

    def plugged(self) -> bool:
        until = self.dev / "reset_until"
        if until.exists():
            try:
                if time.monotonic() < float(until.read_text()):
                    return False                 # still re-enumerating after a reset
            except ValueError:
                pass
        return (self.dev / "plugged").exists()

    def enumeration(self) -> int:
        try:
            return int((self.dev / "enumeration").read_text())
        except (OSError, ValueError):
            return -1

    def fault(self, name: str) -> bool:
        p = self.dev / "faults"
        try:
            m = p.stat().st_mtime_ns
            if m != self._faults_mtime:
                self.faults = json.loads(p.read_text() or "{}")
                self._faults_mtime = m
        except (OSError, ValueError):
            pass
        return bool(self.faults.get(name))

    def seconds(self, name: str) -> float:
        """A fault that is a duration (``slow_start_s``): 0 when it is not set."""
        self.fault(name)
        v = self.faults.get(name)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else 0.0


class FakeUsbCamera(Camera):
    def __init__(self, parsed: ParsedUri):
        bus = parsed.query.get("bus")
        if not bus or not parsed.target:
            raise InvalidUri("fakeusb://SERIAL?bus=DIR")
        self.uri = parsed.raw
        self.dev = Path(bus) / parsed.target.strip("/")
        self.state = _State(self.dev)
        if not (self.dev / "device.json").exists() or not self.state.plugged():
            raise DeviceNotFound(f"fakeusb: no device {parsed.target!r} on the bus")
        cfg: dict[str, Any] = json.loads((self.dev / "device.json").read_text())
        self.cfg = cfg
        self.fps = float(cfg["fps"])
        self.kinds = [StreamKind(k) for k in cfg["kinds"]]
        caps = {Capability.HARDWARE_RESET} if cfg["resettable"] else set()
        if cfg["projector"]:
            caps |= {Capability.PROJECTOR_CONTROL, Capability.PROJECTOR_POWER}
        self.capabilities = frozenset(caps)
        self._enumeration = self.state.enumeration()
        self._claim = claim(self.dev, self._enumeration)
        if self._claim is None:
            raise DeviceBusy(f"fakeusb: device {parsed.target!r} is claimed by another handle (LIBUSB_ERROR_BUSY)")
        try:
            self._setup(parsed, cfg)
        except BaseException:
            self._release()
            raise
        _log(self.dev, "open")

    def _release(self) -> None:
        fd, self._claim = getattr(self, "_claim", None), None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:                   # a handle dropped without stop(): its claim goes with it
        self._release()

    def _setup(self, parsed: ParsedUri, cfg: dict[str, Any]) -> None:
        self._firmware = firmware_of(self.dev)
        self._usb = UsbIdentity(cfg["vid"], cfg["pid"], cfg["serial"], 0x0100, cfg["bus_path"], cfg["link"])
        self._inner: Camera | None = None
        if parsed.query.get("inner"):
            self._inner = drivers.open(parsed.query["inner"])
            self.kinds = [p.kind for p in self._inner.profiles()] or self.kinds
            self.capabilities = (self._inner.capabilities - {Capability.RECORDING}) | (
                {Capability.HARDWARE_RESET} if cfg["resettable"] else set())
        self._intr = Intrinsics(W, H, 60.0, 60.0, (W - 1) / 2, (H - 1) / 2)
        self._started = self._closed = False
        self._next = 0.0
        self._n = 0
        self._k = 0
        self._projector = True
        self._power = 150.0
        self._rng = np.random.default_rng(int(self._enumeration) & 0xFFFF)

    def _gone(self) -> bool:
        return not self.state.plugged() or self.state.enumeration() != self._enumeration

    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(self.uri, "fakeusb", "Fake USB depth camera", serial=self.cfg["serial"],
                          firmware=self._firmware, usb=self._usb, streams=tuple(k.value for k in self.kinds))

    def profiles(self) -> list[StreamProfile]:
        if self._inner is not None:
            return self._inner.profiles()
        return [StreamProfile(k, W, H, self.fps, PixelFormat.Z16 if k is StreamKind.DEPTH else PixelFormat.Y8,
                              0, self._intr) for k in self.kinds]

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        if self._inner is not None:
            return self._inner.extrinsics(src, dst)
        return Extrinsics.identity()

    def start(self) -> None:
        if self._closed:
            raise StreamClosed("fakeusb: a stopped stream does not restart; open the device again")
        if self._started:
            return
        if self._gone():
            raise DeviceLost("fakeusb: device gone")
        slow = self.state.seconds("slow_start_s")
        if slow:
            _log(self.dev, "slow_start")
            time.sleep(slow)                     # the interpreter runs on (heartbeats go out)
        if self._inner is not None:
            self._inner.start()
        self._started = True
        self._next = time.monotonic()

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._started = False
        if self._inner is not None:
            self._inner.stop()
        _log(self.dev, "stop")
        while self.state.fault("hang_stop"):
            time.sleep(0.05)                     # librealsense's stop() on a vanished device
        self._release()                          # the device is free for another owner

    @property
    def waits_for_reader(self) -> bool:  # type: ignore[override]
        """Its inner camera's (``Camera.waits_for_reader``; without one, the fake's own frames do not wait)."""
        return self._inner is not None and bool(getattr(self._inner, "waits_for_reader", False))

    def read(self, timeout_s: float = 1.0) -> Frame:
        if not self._started:
            raise StreamClosed("fakeusb: not streaming")
        if self.state.fault("crash_read"):
            ctypes.string_at(0)                  # a segmentation fault, as inside a vendor SDK
        if self.state.fault("hang_read_gil"):
            _log(self.dev, "hang")               # a test can clear the fault once this read is stuck
            ctypes.PyDLL(None).sleep(3600)       # blocks without ever giving up the interpreter lock
        if self.state.fault("hang_read"):
            _log(self.dev, "hang")
        while self.state.fault("hang_read"):
            time.sleep(0.05)                     # a blocked transfer: the interpreter runs on
        if self._inner is not None:
            if self._gone():
                time.sleep(min(timeout_s, 0.02))
                raise DeviceLost("fakeusb: device unplugged")
            return self._inner.read(timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            if self._gone():
                time.sleep(min(timeout_s, 0.02))
                raise DeviceLost("fakeusb: device unplugged")
            now = time.monotonic()
            if now >= self._next:
                break
            if now >= deadline:
                raise FrameTimeout("fakeusb: no frame yet")
            time.sleep(min(self._next, deadline) - now)
        kind = self.kinds[self._k % len(self.kinds)]
        self._k += 1
        if self._k % len(self.kinds) == 0:
            self._next += 1.0 / self.fps
        if kind is self.kinds[0] and not self.state.fault("frozen"):
            self._n += 1
        noise = self._rng.integers(0, 4, (H, W))
        if kind is StreamKind.DEPTH:
            px, fmt, scale = (500 + noise).astype(np.uint16), PixelFormat.Z16, 0.001
        else:
            px, fmt, scale = (80 + noise).astype(np.uint8), PixelFormat.Y8, 0.0
        md = FrameMetadata(frame_counter=self._n, projector_on=self._projector if self.cfg["projector"] else None,
                           projector_power_mw=self._power if self.cfg["projector"] else None)
        rng = self.depth_range()
        if kind is StreamKind.DEPTH and rng is not None:
            md = rng.stamp(md)
        return Frame(kind, px, fmt, self._n * 1000.0 / self.fps, ClockDomain.HARDWARE, time.monotonic_ns(), self._n,
                     self._intr, device_serial=self.cfg["serial"], depth_scale=scale, metadata=md)

    def hardware_reset(self) -> None:
        if Capability.HARDWARE_RESET not in self.capabilities:
            raise CapabilityUnsupported("fakeusb: this model has no hardware reset")
        if self._gone():
            raise DeviceLost("fakeusb: cannot reset a device that is not there")
        _log(self.dev, "reset")
        _write(self.dev / "reset_until", str(time.monotonic() + float(self.cfg["reset_s"])))
        _bump(self.dev / "enumeration")

    def set_projector(self, on: bool) -> None:
        if self._inner is not None:
            return self._inner.set_projector(on)
        if Capability.PROJECTOR_CONTROL not in self.capabilities:
            raise CapabilityUnsupported("fakeusb: no projector")
        self._projector = bool(on)

    def projector_power_range(self) -> ProjectorPowerRange:
        if self._inner is not None:
            return self._inner.projector_power_range()
        if Capability.PROJECTOR_POWER not in self.capabilities:
            raise CapabilityUnsupported("fakeusb: no projector")
        return ProjectorPowerRange(0.0, 360.0, 30.0, 150.0)

    def depth_range(self) -> DepthRange | None:
        """The inner camera's, or the range ``device.json`` states (its model's datasheet); None
        when it states none, as an SDK that does not report one."""
        if self._inner is not None:
            return self._inner.depth_range()
        r = self.cfg.get("depth_range_m")
        return DepthRange(float(r[0]), float(r[1]), "fake device's profile") if r else None

    def set_illumination(self, level: Any, luminance: Any = 1.0) -> None:
        if self._inner is None:
            raise CapabilityUnsupported("fakeusb: no illumination")
        self._inner.set_illumination(level, luminance)

    def set_projector_power(self, mw: float) -> float:
        if self._inner is not None:
            return self._inner.set_projector_power(mw)
        self._power = self.projector_power_range().snap(mw)
        return self._power

    # The inner camera's exposure controls, as claimed from it (a device without one claims none).
    def _inner_for(self, cap: Capability) -> Camera:
        if self._inner is None or cap not in self.capabilities:
            raise CapabilityUnsupported(f"fakeusb: no {cap.value}")
        return self._inner

    def lock_exposure(self, stream: StreamKind, setting: ExposureSetting | None = None) -> ExposureSetting:
        return self._inner_for(exposure_lock_capability(stream)).lock_exposure(stream, setting)

    def unlock_exposure(self, stream: StreamKind) -> None:
        self._inner_for(exposure_lock_capability(stream)).unlock_exposure(stream)

    def set_exposure_region(self, stream: StreamKind, region: tuple[int, int, int, int] | None) -> None:
        self._inner_for(Capability.EXPOSURE_REGION).set_exposure_region(stream, region)


def open_camera(parsed: ParsedUri) -> Camera:
    return FakeUsbCamera(parsed)


def list_devices() -> list[DeviceInfo]:
    return []


def register() -> None:
    drivers.register_backend("fakeusb", "hil.fakes.usbcam", ("fakeusb",),
                             "fake USB depth camera (tests and benches only: no USB bus here)")
