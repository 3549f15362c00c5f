"""Cameras that fail on purpose: a fake cable that can be unplugged and replugged, a fake camera
behind it, and a wrapper that injects the cable's faults into any real backend (the sim, OpenNI's
Dummy). Only the act of unplugging is faked; the backends behind the wrapper are real.

The fakes refuse what the real SDKs refuse: a stopped handle does not start again (``stop()`` is
final on RealSense and OpenNI), a handle opened before an unplug or a hardware reset is dead even
after the device is back (the device enumerated anew), and a device that is not there cannot be
reset. In-process only; ``hil/fakes/usbcam.py`` is the same device for camera host processes."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from drivers import Camera, Capability, DeviceInfo, Frame, FrameMetadata, Intrinsics, PixelFormat, StreamKind
from drivers.base import CameraWrapper, Extrinsics, StreamProfile, UsbIdentity
from drivers.errors import CapabilityUnsupported, DeviceLost, DeviceNotFound, FrameTimeout, StreamClosed
from drivers.frame import ClockDomain


class FakeCable:
    """Whether the fake device is plugged in; shared by every fake camera opened on it."""

    def __init__(self) -> None:
        self.plugged = threading.Event()
        self.plugged.set()
        self.frozen = False              # frames keep arriving with a stuck counter
        self.dead_kinds: set[StreamKind] = set()  # streams that stop delivering while others go on
        self.opens = 0
        self.resets = 0
        self.enumeration = 0             # +1 per re-plug or reset: handles of an older one are dead

    def unplug(self) -> None:
        self.plugged.clear()

    def replug(self) -> None:
        self.enumeration += 1
        self.plugged.set()


class FakeCamera(Camera):
    """Fake depth camera: 64x48 Z16 frames at ``fps``; unplugging the cable makes read() lose it."""

    def __init__(self, cable: FakeCable, uri: str = "fake://depth", fps: float = 60.0, kind=StreamKind.DEPTH,
                 resettable: bool = True, usb: UsbIdentity | None = None, extra_kind=None):
        if not cable.plugged.is_set():
            raise DeviceNotFound(f"{uri}: not plugged in")
        cable.opens += 1
        self.cable, self.uri, self.fps, self.kind = cable, uri, fps, kind
        self.kinds = [kind] + ([extra_kind] if extra_kind is not None else [])
        self.capabilities = frozenset({Capability.HARDWARE_RESET}) if resettable else frozenset()
        self._usb = usb
        self._n = 0
        self._started = False
        self._closed = False
        self._next = 0.0
        self._enumeration = cable.enumeration
        self._intr = Intrinsics(64, 48, 60.0, 60.0, 31.5, 23.5)

    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(self.uri, "fake", "fake camera", usb=self._usb, streams=(self.kind.value,))

    def profiles(self):
        return [StreamProfile(k, 64, 48, self.fps, PixelFormat.Z16 if k is StreamKind.DEPTH else PixelFormat.Y8,
                              0, self._intr) for k in self.kinds]

    def extrinsics(self, src, dst):
        return Extrinsics.identity()

    def _gone(self) -> bool:
        return not self.cable.plugged.is_set() or self.cable.enumeration != self._enumeration

    def start(self):
        if self._closed:
            raise StreamClosed("stopped; a stopped stream does not restart (open the device again)")
        if self._started:
            return
        if self._gone():
            raise DeviceLost(f"{self.uri}: gone")
        self._started = True
        self._next = time.monotonic()

    def stop(self):
        self._started = False
        self._closed = True

    def hardware_reset(self):
        if Capability.HARDWARE_RESET not in self.capabilities:
            raise CapabilityUnsupported("no hardware reset")
        if self._gone():
            raise DeviceLost(f"{self.uri}: cannot reset a device that is not there")
        self.cable.resets += 1
        self.cable.enumeration += 1      # the device drops off the bus and enumerates again

    def read(self, timeout_s=1.0):
        if not self._started:
            raise StreamClosed("not started")
        deadline = time.monotonic() + timeout_s
        while True:
            if self._gone():
                raise DeviceLost(f"{self.uri}: device unplugged")
            now = time.monotonic()
            if now >= self._next:
                break
            if now >= deadline:
                raise FrameTimeout("no frame")
            time.sleep(min(self._next, deadline) - now)
        self._next += 1.0 / self.fps
        if not self.cable.frozen:
            self._n += 1
        live = [k for k in self.kinds if k not in self.cable.dead_kinds] or [None]
        kind = live[self._n % len(live)]
        if kind is None:
            raise FrameTimeout("all streams dead")
        if kind is StreamKind.DEPTH:
            px, fmt, scale = np.full((48, 64), 500, np.uint16), PixelFormat.Z16, 0.001
        else:
            px, fmt, scale = np.full((48, 64), 80, np.uint8), PixelFormat.Y8, 0.0
        return Frame(kind, px, fmt, self._n * 1000.0 / self.fps, ClockDomain.HARDWARE, time.monotonic_ns(),
                     self._n, self._intr, depth_scale=scale, metadata=FrameMetadata(frame_counter=self._n))


class FaultInjectingCamera(CameraWrapper):
    """Wraps a real camera; ``unplug()`` makes it behave as a vanished device at the backend boundary:
    reads and every control raise ``DeviceLost``, as an SDK's calls on an unplugged device do."""

    def __init__(self, inner: Camera, cable: FakeCable):
        if not cable.plugged.is_set():
            inner.stop()
            raise DeviceNotFound("device not plugged in")
        super().__init__(inner)
        self.cable = cable
        self._enumeration = cable.enumeration

    def _gone(self) -> bool:
        return not self.cable.plugged.is_set() or self.cable.enumeration != self._enumeration

    def _forward(self, name: str, *args: Any) -> Any:
        if self._gone():
            raise DeviceLost(f"{name}: device unplugged (simulated)")
        return super()._forward(name, *args)

    def start(self):
        if self._gone():
            raise DeviceLost("gone")
        self.inner.start()

    def read(self, timeout_s=1.0):
        if self._gone():
            # what a real unplug looks like: the SDK's wait returns nothing, then the device is lost
            time.sleep(min(timeout_s, 0.05))
            raise DeviceLost("device unplugged (simulated)")
        return self.inner.read(timeout_s)
