"""One V4L2 capture node, natively (linuxpy's ioctl bindings), for the UVC backend.

Why not ``cv2.VideoCapture``: it hides the driver's sequence numbers (a host-side counter instead),
queues up to four buffers (four frames of latency), and cannot set the controls a kiosk needs. Here:

* the node is opened non-blocking and checked to be a *video capture* node with streaming I/O (a UVC
  camera also exposes a metadata node, ``/dev/videoN+1``, which is not a camera);
* two mmap buffers: the driver drops frames when the reader is behind (visible as gaps in the
  sequence numbers) instead of the reader seeing old frames;
* each buffer's sequence number and ``CLOCK_MONOTONIC`` timestamp come from the driver;
* ``dequeue`` waits in ``select`` with a timeout: it never blocks longer than asked;
* an unplug shows as ``ENODEV``/``EIO`` from the driver: :class:`~drivers.errors.DeviceLost`.

:class:`V4L2Node` is the seam the UVC backend uses; tests give the backend a fake node with the
same methods that refuses what the kernel refuses (``hil/fakes/v4l2.py``).
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import select
from dataclasses import dataclass
from typing import Any

from .errors import BackendUnavailable, DeviceLost, DeviceNotFound, StreamClosed, UnsupportedMode

try:
    from linuxpy.video import device as lvd  # type: ignore[import-untyped]
    from linuxpy.video import raw
except ImportError as exc:  # guarded: a missing linuxpy disables device nodes, not the backend's files
    lvd = raw = None
    _IMPORT_ERROR: str = str(exc)
else:
    _IMPORT_ERROR = ""

BUFFERS = 2
_GONE = (errno.ENODEV, errno.EIO, errno.ENXIO, errno.ESHUTDOWN)
# V4L2 controls by the names the kiosk needs (normalised from the driver's control names).
POWER_LINE_50HZ = 1                 # power_line_frequency menu: 0 disabled, 1 50 Hz, 2 60 Hz
POWER_LINE = {"50": 1, "60": 2, "off": 0}


@dataclass(frozen=True)
class V4L2Mode:
    fourcc: str
    width: int
    height: int
    fps: float


@dataclass(frozen=True)
class RawBuffer:
    data: bytes
    sequence: int
    timestamp_ns: int               # CLOCK_MONOTONIC, when ``monotonic``; else 0
    monotonic: bool
    error: bool                     # the driver flagged the buffer as corrupt


def control_key(name: str) -> str:
    """``"Exposure, Dynamic Framerate"`` → ``"exposure_dynamic_framerate"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _fourcc(code: int) -> str:
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))


class V4L2Node:
    """A V4L2 video capture node (see the module doc)."""

    def __init__(self, path: str):
        if lvd is None:
            raise BackendUnavailable(f"linuxpy is not installed: {_IMPORT_ERROR}")
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise DeviceNotFound(f"v4l2: {path} does not exist (unplugged or never present)") from None
        except OSError as exc:
            raise DeviceNotFound(f"v4l2: cannot open {path}: {exc.strerror}") from None
        self._maps: list[mmap.mmap] = []
        self._streaming = False
        self._closed = False
        try:
            caps = lvd.read_capabilities(self.fd)
            have = caps.device_caps if caps.capabilities & raw.Capability.DEVICE_CAPS else caps.capabilities
            if not have & raw.Capability.VIDEO_CAPTURE:
                raise UnsupportedMode(f"v4l2: {path} is not a video capture node (a UVC metadata node?)")
            if not have & raw.Capability.STREAMING:
                raise UnsupportedMode(f"v4l2: {path} has no streaming I/O")
            self.card = bytes(caps.card).split(b"\0", 1)[0].decode(errors="replace")
            self.driver = bytes(caps.driver).split(b"\0", 1)[0].decode(errors="replace")
            self._controls = {control_key(c.name.decode(errors="replace")): c.id
                              for c in lvd.iter_read_controls(self.fd)}
        except OSError as exc:
            self._close_fd()
            raise self._error(exc, "query") from None
        except BaseException:
            self._close_fd()
            raise

    def _error(self, exc: OSError, what: str) -> Exception:
        if exc.errno in _GONE:
            return DeviceLost(f"v4l2: {self.path} is gone ({what}: {exc.strerror})")
        if exc.errno == errno.EBADF:
            return StreamClosed(f"v4l2: {self.path} is closed")
        return UnsupportedMode(f"v4l2: {self.path}: {what} failed: {exc.strerror}")

    def _check(self) -> None:
        if self._closed:
            raise StreamClosed(f"v4l2: {self.path} is closed")

    def modes(self) -> list[V4L2Mode]:
        """Every discrete (format, size, rate) the node offers."""
        self._check()
        out = []
        try:
            fmts = [f.pixel_format for f in lvd.iter_read_formats(self.fd, raw.BufType.VIDEO_CAPTURE)]
            for fi in lvd.iter_read_pixel_formats_frame_intervals(self.fd, fmts):
                out.append(V4L2Mode(_fourcc(int(fi.pixel_format)), int(fi.width), int(fi.height),
                                    round(float(fi.max_fps), 3)))
        except OSError as exc:
            raise self._error(exc, "ENUM_FMT") from None
        return out

    def configure(self, mode: V4L2Mode) -> V4L2Mode:
        """Set format and rate; returns what the driver took (it may adjust either)."""
        self._check()
        try:
            lvd.set_format(self.fd, raw.BufType.VIDEO_CAPTURE, mode.width, mode.height, mode.fourcc)
            lvd.set_fps(self.fd, raw.BufType.VIDEO_CAPTURE, mode.fps)
            f = lvd.get_format(self.fd, raw.BufType.VIDEO_CAPTURE)
            fps = lvd.get_fps(self.fd, raw.BufType.VIDEO_CAPTURE)
        except OSError as exc:
            raise self._error(exc, "S_FMT") from None
        return V4L2Mode(_fourcc(int(f.pixel_format)), int(f.width), int(f.height), float(fps))

    def has_control(self, key: str) -> bool:
        return key in self._controls

    def get_control(self, key: str) -> int | None:
        """A control's current value as the driver reports it; None when the device has no such
        control or does not let it be read."""
        self._check()
        cid = self._controls.get(key)
        if cid is None:
            return None
        try:
            return int(lvd.get_control(self.fd, cid))
        except OSError as exc:
            if exc.errno in _GONE:
                raise self._error(exc, f"G_CTRL {key}") from None
            return None

    def set_control(self, key: str, value: int) -> bool:
        """Set a control by its normalised name; False when the device has no such control or
        refuses the write (uvcvideo clamps an integer into the control's range instead: read the
        value back with :meth:`get_control`)."""
        self._check()
        cid = self._controls.get(key)
        if cid is None:
            return False
        try:
            lvd.set_control(self.fd, cid, int(value))
        except OSError as exc:
            if exc.errno in _GONE:
                raise self._error(exc, f"S_CTRL {key}") from None
            return False                   # read-only now (e.g. exposure while auto), or out of range
        return True

    def start(self, buffers: int = BUFFERS) -> None:
        self._check()
        if self._streaming:
            raise UnsupportedMode(f"v4l2: {self.path} is already streaming")
        try:
            self._maps = lvd.create_mmap_buffers(self.fd, raw.BufType.VIDEO_CAPTURE, raw.Memory.MMAP, buffers)
            lvd.enqueue_buffers(self.fd, raw.BufType.VIDEO_CAPTURE, raw.Memory.MMAP, buffers)
            lvd.stream_on(self.fd, raw.BufType.VIDEO_CAPTURE)
        except OSError as exc:
            raise self._error(exc, "STREAMON") from None
        self._streaming = True

    def dequeue(self, timeout_s: float) -> RawBuffer | None:
        """The next filled buffer, copied out and handed back to the driver; None after ``timeout_s``."""
        self._check()
        if not self._streaming:
            raise StreamClosed(f"v4l2: {self.path} is not streaming")
        try:
            r, _, x = select.select([self.fd], [], [self.fd], max(0.0, timeout_s))
        except (OSError, ValueError) as exc:
            raise StreamClosed(f"v4l2: {self.path}: select failed: {exc}") from None
        if not r and not x:
            return None
        try:
            buf = lvd.dequeue_buffer(self.fd, raw.BufType.VIDEO_CAPTURE, raw.Memory.MMAP)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return None
            raise self._error(exc, "DQBUF") from None
        data = bytes(self._maps[buf.index][: buf.bytesused])
        flags = int(buf.flags)
        ts = buf.timestamp.secs * 1_000_000_000 + buf.timestamp.usecs * 1000
        try:
            lvd.enqueue_buffer(self.fd, raw.BufType.VIDEO_CAPTURE, raw.Memory.MMAP, 0, buf.index)
        except OSError as exc:
            raise self._error(exc, "QBUF") from None
        monotonic = flags & 0xE000 == 0x2000           # V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC
        return RawBuffer(data, int(buf.sequence), ts if monotonic else 0, monotonic, bool(flags & 0x0040))

    def stop(self) -> None:
        """Stream off, free the buffers, close the node. Idempotent; never raises for a gone device."""
        if self._closed:
            return
        if self._streaming:
            try:
                lvd.stream_off(self.fd, raw.BufType.VIDEO_CAPTURE)
            except OSError:
                pass
            self._streaming = False
        for m in self._maps:
            try:
                m.close()
            except (BufferError, ValueError):
                pass
        self._maps = []
        self._close_fd()

    def _close_fd(self) -> None:
        self._closed = True
        try:
            os.close(self.fd)
        except OSError:
            pass


@dataclass(frozen=True)
class KioskControls:
    """What :func:`controls_for_kiosk` left the device at: notes for what it could not do, and the
    manual exposure (µs) and gain the device took, read back from it (None when not asked, refused
    or unreadable): frames are stamped with these, never with what was asked."""
    notes: list[str]
    exposure_us: float | None = None
    gain: float | None = None


def controls_for_kiosk(node: Any, power_line: str, exposure_us: float | None, gain: float | None) -> KioskControls:
    """Apply the controls a kiosk camera needs.

    * power-line frequency (50 Hz in China): the anti-flicker filter that stops mains-lit banding;
    * exposure priority off (``exposure_dynamic_framerate = 0``): in dim light the camera lengthens
      exposure by dropping the frame rate otherwise, and the sync and challenge timing break;
    * manual exposure and gain when asked (V4L2 units: exposure in 100 µs). A manual exposure the
      device refuses leaves its auto-exposure mode as it was, not manual at a stale value.
    """
    notes = []
    if power_line != "keep" and not node.set_control("power_line_frequency", POWER_LINE[power_line]):
        notes.append(f"power-line frequency {power_line} not settable (banding possible under mains light)")
    if node.has_control("exposure_dynamic_framerate") and not node.set_control("exposure_dynamic_framerate", 0):
        notes.append("exposure priority could not be switched off (the frame rate may drop in dim light)")
    took_exposure = took_gain = None
    if exposure_us is not None:
        mode = node.get_control("auto_exposure")
        if node.set_control("auto_exposure", 1) and node.set_control("exposure_time_absolute",
                                                                     round(exposure_us / 100)):
            took_exposure = _read_back(node, "exposure_time_absolute", 100.0, exposure_us, "exposure", "us", notes)
        else:
            notes.append("manual exposure not settable")
            if mode is not None and mode != 1:
                node.set_control("auto_exposure", mode)        # back to the device's own exposure
    if gain is not None:
        if node.set_control("gain", round(gain)):
            took_gain = _read_back(node, "gain", 1.0, gain, "gain", "", notes)
        else:
            notes.append("gain not settable")
    return KioskControls(notes, took_exposure, took_gain)


def _read_back(node: Any, key: str, unit: float, asked: float, what: str, suffix: str,
               notes: list[str]) -> float | None:
    """The value the device holds after a write it accepted (uvcvideo clamps into the control's
    range and step), in the caller's units; None, with a note, when it cannot be read."""
    got = node.get_control(key)
    if got is None:
        notes.append(f"{what} set but not readable back (frames do not state it)")
        return None
    value = float(got) * unit
    if abs(value - asked) >= unit:
        notes.append(f"{what} {asked:g}{suffix} asked, the device took {value:g}{suffix}")
    return value
