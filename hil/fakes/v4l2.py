"""Fake V4L2 devices for the UVC backend: what cannot exist on a machine without ``/dev/video*``.

:class:`FakeV4L2Bus` is a root directory holding ``dev/videoN`` nodes, udev's ``dev/v4l/by-id`` and
``by-path`` links and the ``sys`` entries the backend's physical-USB check reads, for cameras
plugged into it. Its :meth:`FakeV4L2Bus.open` is the backend's node factory: it returns a
:class:`FakeV4L2Node` with :class:`drivers.v4l2.V4L2Node`'s methods, which refuses what the kernel
refuses:

* a node that is not there is ``DRV_DEVICE_NOT_FOUND``; a UVC metadata node (index 1) is not a
  capture node;
* the driver takes only the modes the camera offers (``S_FMT`` adjusts anything else, and the
  backend sees the adjustment);
* ``STREAMON`` twice is refused (``EBUSY``); after ``stop()`` the fd is closed (``EBADF``);
* after an unplug, ``DQBUF`` fails with ``ENODEV``: ``DRV_DEVICE_LOST``;
* while an old fd of an unplugged camera is still open, its minor number stays taken, so the
  re-plugged camera comes back as another ``/dev/videoN`` (the by-id link follows it);
* two buffers: a reader that falls behind sees gaps in the sequence numbers, not old frames;
* controls as uvcvideo treats them: a control the camera lacks cannot be set or read; a read-only
  one (no ``SET_CUR``) refuses writes (``EACCES``); a menu control refuses an item its camera does
  not offer (``EINVAL``; a BRIO's ``auto_exposure`` offers manual and aperture priority only); the
  exposure time is refused while the camera is in an automatic exposure mode (the UVC request
  stalls: it is settable in manual and shutter-priority modes only); an integer out of range is
  clamped into it, which only reading it back shows.

Frames are generated at the mode's rate with sensor-like noise, encoded as the mode's FOURCC
(MJPG through OpenCV's encoder, YUYV, GREY).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from drivers.errors import DeviceLost, DeviceNotFound, StreamClosed, UnsupportedMode
from drivers.v4l2 import RawBuffer, V4L2Mode

DEFAULT_MODES = (V4L2Mode("MJPG", 640, 480, 30.0), V4L2Mode("MJPG", 1280, 720, 30.0),
                 V4L2Mode("YUYV", 640, 480, 30.0), V4L2Mode("YUYV", 1280, 720, 10.0))


@dataclass
class FakeUvcCamera:
    serial: str
    vid: int = 0x046D
    pid: int = 0x085E
    port: str = "1-2"
    card: str = "Logitech BRIO"
    modes: tuple[V4L2Mode, ...] = DEFAULT_MODES
    controls: dict[str, int] = field(default_factory=lambda: {
        "power_line_frequency": 0, "exposure_dynamic_framerate": 1, "auto_exposure": 3,
        "exposure_time_absolute": 156, "gain": 0})
    # Integer controls' ranges (a BRIO's), menu controls' items, and controls without SET_CUR.
    ranges: dict[str, tuple[int, int]] = field(default_factory=lambda: {
        "power_line_frequency": (0, 2), "exposure_dynamic_framerate": (0, 1),
        "exposure_time_absolute": (3, 2047), "gain": (0, 255)})
    menus: dict[str, tuple[int, ...]] = field(default_factory=lambda: {"auto_exposure": (1, 3)})
    read_only: frozenset[str] = frozenset()
    plugged: bool = False
    minor: int | None = None          # the N of /dev/videoN while plugged
    generation: int = 0               # +1 per plug: a handle of an older plug is dead
    frozen: bool = False              # the sensor stops delivering (no new buffers)


class FakeV4L2Bus:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.cameras: dict[str, FakeUvcCamera] = {}
        self._held: dict[int, int] = {}            # minor -> open handles (a closed fd frees it)
        self._lock = threading.Lock()
        for d in ("dev/v4l/by-id", "dev/v4l/by-path", "sys/class/video4linux", "sys/bus/usb/drivers/uvcvideo"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    # -- what udev and the kernel do ---------------------------------------------------------------
    def by_id(self, cam: FakeUvcCamera) -> str:
        return str(self.root / "dev/v4l/by-id" / f"usb-{cam.card.replace(' ', '_')}_{cam.serial}-video-index0")

    def by_path(self, cam: FakeUvcCamera) -> str:
        port = cam.port.split("-", 1)[1]
        return str(self.root / "dev/v4l/by-path" / f"pci-0000:00:14.0-usb-0:{port}:1.0-video-index0")

    def node(self, cam: FakeUvcCamera) -> str:
        assert cam.minor is not None
        return str(self.root / f"dev/video{cam.minor}")

    def plug(self, cam: FakeUvcCamera) -> FakeUvcCamera:
        with self._lock:
            self.cameras[cam.serial] = cam
            taken = {c.minor for c in self.cameras.values() if c.plugged} | {m for m, n in self._held.items() if n}
            minor = next(i for i in range(0, 64, 2) if i not in taken and i + 1 not in taken)
            cam.minor, cam.plugged = minor, True
            cam.generation += 1
            usbdev = self.root / f"sys/devices/pci0000:00/0000:00:14.0/usb1/{cam.port}"
            iface = usbdev / f"{cam.port}:1.0"
            (iface / "video4linux").mkdir(parents=True, exist_ok=True)
            for k, v in {"idVendor": f"{cam.vid:04x}", "idProduct": f"{cam.pid:04x}", "serial": cam.serial,
                         "bcdDevice": "0013"}.items():
                (usbdev / k).write_text(v + "\n")
            if not (iface / "driver").exists():
                (iface / "driver").symlink_to(self.root / "sys/bus/usb/drivers/uvcvideo")
            for n, index in ((minor, 0), (minor + 1, 1)):          # video node + UVC metadata node
                cls = self.root / f"sys/class/video4linux/video{n}"
                cls.mkdir(parents=True, exist_ok=True)
                (cls / "name").write_text(cam.card + "\n")
                (cls / "index").write_text(f"{index}\n")
                if (cls / "device").is_symlink():
                    (cls / "device").unlink()
                (cls / "device").symlink_to(iface)
                (self.root / f"dev/video{n}").touch()
            for link in (self.by_id(cam), self.by_path(cam)):
                if os.path.islink(link):
                    os.unlink(link)
                os.symlink(f"../../video{minor}", link)
            return cam

    def unplug(self, cam: FakeUvcCamera) -> None:
        with self._lock:
            cam.plugged = False
            minor = cam.minor
            for link in (self.by_id(cam), self.by_path(cam)):
                if os.path.islink(link):
                    os.unlink(link)
            if minor is not None:
                for n in (minor, minor + 1):
                    (self.root / f"dev/video{n}").unlink(missing_ok=True)
                    cls = self.root / f"sys/class/video4linux/video{n}"
                    for f in ("name", "index", "device"):
                        (cls / f).unlink(missing_ok=True)
                    cls.rmdir()
            cam.minor = None

    # -- the backend's node factory -------------------------------------------------------------------
    def open(self, path: str) -> FakeV4L2Node:
        real = os.path.realpath(path)
        with self._lock:
            for cam in self.cameras.values():
                if not cam.plugged or cam.minor is None:
                    continue
                if real in (self.node(cam), str(self.root / f"dev/video{cam.minor + 1}")):
                    if real != self.node(cam):
                        raise UnsupportedMode(f"v4l2: {path} is not a video capture node (a UVC metadata node?)")
                    self._held[cam.minor] = self._held.get(cam.minor, 0) + 1
                    return FakeV4L2Node(self, cam, path)
        raise DeviceNotFound(f"v4l2: {path} does not exist (unplugged or never present)")

    def _release(self, minor: int) -> None:
        with self._lock:
            self._held[minor] = max(0, self._held.get(minor, 0) - 1)


class FakeV4L2Node:
    """:class:`drivers.v4l2.V4L2Node`'s interface over a :class:`FakeUvcCamera`."""

    def __init__(self, bus: FakeV4L2Bus, cam: FakeUvcCamera, path: str):
        self.bus, self.cam, self.path = bus, cam, path
        self.card, self.driver = cam.card, "uvcvideo"
        self._minor = cam.minor
        self._generation = cam.generation
        self._mode = cam.modes[0]
        self._streaming = False
        self._closed = False
        self.buffers = 0
        self._seq = -1
        self._t0 = 0.0
        self._rng = np.random.default_rng(cam.generation)

    def _gone(self) -> bool:
        return not self.cam.plugged or self.cam.generation != self._generation

    def _check(self) -> None:
        if self._closed:
            raise StreamClosed(f"v4l2: {self.path} is closed")       # EBADF
        if self._gone():
            raise DeviceLost(f"v4l2: {self.path} is gone (ENODEV)")

    def modes(self) -> list[V4L2Mode]:
        self._check()
        return list(self.cam.modes)

    def configure(self, mode: V4L2Mode) -> V4L2Mode:
        self._check()
        if self._streaming:
            raise UnsupportedMode(f"v4l2: {self.path}: S_FMT while streaming (EBUSY)")
        same = [m for m in self.cam.modes if m.fourcc == mode.fourcc] or list(self.cam.modes)
        size = [m for m in same if (m.width, m.height) == (mode.width, mode.height)] or same[:1]
        rate = [m for m in size if abs(m.fps - mode.fps) < 0.5] or size[:1]
        self._mode = rate[0]                      # the driver adjusts to what it has
        return self._mode

    def has_control(self, key: str) -> bool:
        return key in self.cam.controls

    def get_control(self, key: str) -> int | None:
        self._check()
        return self.cam.controls.get(key)

    def set_control(self, key: str, value: int) -> bool:
        self._check()
        c = self.cam
        if key not in c.controls or key in c.read_only:
            return False                                       # EINVAL / EACCES
        value = int(value)
        if key in c.menus and value not in c.menus[key]:
            return False                                       # EINVAL: not an item of this camera's menu
        if key == "exposure_time_absolute" and c.controls.get("auto_exposure", 1) not in (1, 2):
            return False                                       # the camera stalls the request in an auto mode
        if key in c.ranges:
            lo, hi = c.ranges[key]
            value = min(max(value, lo), hi)                    # uvcvideo clamps
        c.controls[key] = value
        return True

    def start(self, buffers: int = 2) -> None:
        self._check()
        if self._streaming:
            raise UnsupportedMode(f"v4l2: {self.path} is already streaming (EBUSY)")
        self.buffers = buffers
        self._streaming = True
        self._t0 = time.monotonic()

    def dequeue(self, timeout_s: float) -> RawBuffer | None:
        self._check()
        if not self._streaming:
            raise StreamClosed(f"v4l2: {self.path} is not streaming")
        period = 1.0 / self._mode.fps
        deadline = time.monotonic() + timeout_s
        while True:
            if self._gone():
                raise DeviceLost(f"v4l2: {self.path} is gone (DQBUF: {os.strerror(errno.ENODEV)})")
            if self._closed:
                raise StreamClosed(f"v4l2: {self.path} is closed")
            # Frames the sensor has finished; with ``buffers`` buffers the driver keeps the oldest
            # queued ones and drops what it had no buffer for.
            done = int((time.monotonic() - self._t0) / period) - 1
            if not self.cam.frozen and done > self._seq:
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(period / 4, max(0.0, deadline - time.monotonic())))
        seq = max(self._seq + 1, done - self.buffers + 1)
        self._seq = seq
        ts_ns = int((self._t0 + (seq + 1) * period) * 1e9)
        return RawBuffer(self._encode(seq), seq, ts_ns, True, False)

    def _encode(self, seq: int) -> bytes:
        m = self._mode
        y = (90 + self._rng.integers(0, 8, (m.height, m.width)) + (seq % 50)).astype(np.uint8)
        if m.fourcc == "GREY":
            return y.tobytes()
        if m.fourcc == "YUYV":
            out = np.empty((m.height, m.width, 2), np.uint8)
            out[:, :, 0] = y
            out[:, :, 1] = 128
            return out.tobytes()
        if m.fourcc == "MJPG":
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(y, cv2.COLOR_GRAY2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
            return jpg.tobytes()
        raise UnsupportedMode(f"fake v4l2: cannot produce {m.fourcc}")

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._streaming = False
        if self._minor is not None:
            self.bus._release(self._minor)
