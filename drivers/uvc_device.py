"""UVC cameras (plain USB Video Class colour and IR modules) on V4L2 directly (``drivers/v4l2.py``).

URIs: ``uvc:///dev/v4l/by-id/usb-…-video-index0`` (by the camera's USB identity, stable across
re-plugs), ``uvc:///dev/v4l/by-path/…-video-index0`` (by the USB port), ``uvc://0`` and
``uvc:///dev/video2`` (by node; the number can change when the camera is re-plugged). The link is
resolved at every open, so a re-plugged camera that came back as another ``/dev/videoN`` is found
again through its ``by-id`` name.

Query keys (all optional): ``kind=color|ir``, ``width``/``height``/``fps`` (a mode the device must
offer, else ``DRV_UNSUPPORTED_MODE`` listing the offered ones; default 640×480 at the highest rate ≤ 30),
``fourcc`` (default MJPG for colour where offered, else YUYV; GREY, then Y16, then YUYV for IR),
``power_line=50|60|off|keep`` (default 50: mains flicker in China), ``exposure`` (µs) / ``gain``
(manual), ``hfov`` or ``calibration=PATH`` (intrinsics; UVC reports none), ``serial``.

Frames carry the driver's sequence number (``frame_number`` and ``metadata.frame_counter``: gaps
are frames the driver dropped) and its ``CLOCK_MONOTONIC`` buffer timestamp (clock ``system_time``).
Two buffers, so a frame is at most one frame old when read. Exposure priority is switched off so the
rate holds in dim light. Before the node is opened its sysfs entry must lead to a physical USB parent
(v4l2loopback, OBS and other virtual cameras are refused); a UVC metadata node is not a camera.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from .base import Capability, DeviceInfo, ParsedUri, SingleStreamCamera
from .errors import DeviceLost, DeviceNotFound, DeviceRefused, FrameTimeout, InvalidUri, StreamClosed, UnsupportedMode
from .frame import ClockDomain, Frame, FrameMetadata, PixelFormat, StreamKind, StreamProfile
from .usb import Sysfs
from .v4l2 import POWER_LINE, RawBuffer, V4L2Mode, V4L2Node, controls_for_kiosk

DEFAULT_HFOV_DEG = 70.0
_KNOWN_KEYS = {"kind", "width", "height", "fps", "fourcc", "exposure", "gain", "hfov", "calibration", "serial",
               "power_line"}
_NODE = re.compile(r"^/(?:.*/)?dev/(?:video\d+|v4l/by-(?:id|path)/[^/]+)$")
_COLOR_FOURCCS = ("MJPG", "YUYV")
_IR_FOURCCS = ("GREY", "Y16 ", "YUYV")
NodeFactory = Callable[[str], Any]          # V4L2Node or anything with its interface


def node_path(target: str) -> str:
    """``0`` → ``/dev/video0``; a ``/dev/videoN`` or ``/dev/v4l/by-id|by-path/…`` path as it is."""
    if target.isdigit():
        return f"/dev/video{int(target)}"
    if _NODE.match(target):
        return target
    raise InvalidUri(f"uvc: expected uvc://INDEX, uvc:///dev/videoN or uvc:///dev/v4l/by-id/NAME, got {target!r}")


def _num(q: dict[str, str], key: str, cast: Callable[[str], Any], lo: float, hi: float) -> Any:
    if key not in q:
        return None
    try:
        v = cast(q[key])
    except ValueError:
        raise InvalidUri(f"uvc: {key}={q[key]!r} is not a number") from None
    if not (lo <= v <= hi) or (isinstance(v, float) and not math.isfinite(v)):
        raise InvalidUri(f"uvc: {key}={q[key]!r} is out of range [{lo}, {hi}]")
    return v


class UVCCamera(SingleStreamCamera):
    """One UVC stream (colour or IR) from a V4L2 device."""

    def __init__(self, parsed: ParsedUri, *, node_factory: NodeFactory | None = None, sysfs: Sysfs | None = None):
        from .uvc import load_calibration, pinhole  # shared with the file backend
        q = dict(parsed.query)
        unknown = set(q) - _KNOWN_KEYS
        if unknown:
            raise InvalidUri(f"uvc: unknown query key(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(_KNOWN_KEYS))}")
        kind = q.get("kind", "color")
        if kind not in ("color", "ir"):
            raise InvalidUri(f"uvc: kind must be color or ir, not {kind!r}")
        self._kind = StreamKind.COLOR if kind == "color" else StreamKind.IR
        self._want = (_num(q, "width", int, 16, 8192), _num(q, "height", int, 16, 8192), _num(q, "fps", float, 1, 1000))
        self._fourcc = q.get("fourcc")
        if self._fourcc is not None:
            if len(self._fourcc) > 4 or not self._fourcc.strip():
                raise InvalidUri(f"uvc: fourcc must be up to 4 characters, not {self._fourcc!r}")
            self._fourcc = self._fourcc.ljust(4)
        self._power_line = q.get("power_line", "50")
        if self._power_line not in (*POWER_LINE, "keep"):
            raise InvalidUri("uvc: power_line must be 50, 60, off or keep")
        self._exposure = _num(q, "exposure", float, 1, 1e7)
        self._gain = _num(q, "gain", float, 0, 1e4)
        self._stamp_exposure: float | None = None        # what the device took, set at start
        self._stamp_gain: float | None = None
        self._hfov = _num(q, "hfov", float, 10, 170) or DEFAULT_HFOV_DEG
        self._calibration = q.get("calibration")
        cal = self._calibration
        self._intrinsics_for = (lambda w, h: load_calibration(cal, w, h)) if cal \
            else (lambda w, h: pinhole(w, h, self._hfov))
        self._uri = parsed.raw
        self._path = node_path(parsed.target)
        # Resolve by-id/by-path now: the node the name points at today (it changes on re-plug).
        self._node_path = os.path.realpath(self._path)
        if not os.path.exists(self._node_path):
            raise DeviceNotFound(f"uvc: {self._path} does not exist (camera unplugged or never present)")
        vn = (sysfs or Sysfs()).video_node(os.path.basename(self._node_path))
        if vn.is_virtual:
            raise DeviceRefused(f"uvc: {self._path} ({vn.card or 'unnamed'}) is a virtual camera "
                                f"({vn.driver or 'no physical USB parent'}); refused")
        self._node: Any = (node_factory or V4L2Node)(self._node_path)
        usb = vn.usb
        self._serial = q.get("serial") or (usb.serial if usb is not None and usb.serial
                                           else os.path.basename(self._path))
        name = vn.card or getattr(self._node, "card", "") or "UVC camera"
        self._info = DeviceInfo(uri=parsed.raw, backend="uvc", name=name, serial=self._serial, usb=usb,
                                streams=(self._kind.value,))
        self._mode: V4L2Mode | None = None
        self._profile: StreamProfile | None = None
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._last_seq: int | None = None
        self.dropped = 0
        self.corrupt = 0
        # No exposure lock (EXPOSURE_LOCK_IR/_COLOR) until the V4L2 exposure controls are locked here
        # (exposure_auto to manual at exposure_absolute): a claim without the lock would tell the
        # server the window's exposure is held.
        self.capabilities: frozenset[Capability] = frozenset()

    # --- Camera contract ----------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise StreamClosed("uvc: camera was stopped; open it again")
            if self._started:
                return
            mode = self._choose(self._node.modes())
            got = self._node.configure(mode)
            if (got.fourcc, got.width, got.height) != (mode.fourcc, mode.width, mode.height) or \
                    abs(got.fps - mode.fps) > 0.5:
                raise UnsupportedMode(f"uvc: {self._path} took {got.width}x{got.height} {got.fourcc.strip()} @ "
                                      f"{got.fps:g} fps, not the {mode.width}x{mode.height} {mode.fourcc.strip()} @ "
                                      f"{mode.fps:g} fps asked")
            took = controls_for_kiosk(self._node, self._power_line, self._exposure, self._gain)
            notes = list(took.notes)
            # Frames state the exposure and gain the device took (read back), never what the URI
            # asked: they feed the lux estimate and the quality values sent to the server.
            self._stamp_exposure, self._stamp_gain = took.exposure_us, took.gain
            self._mode = got
            intr = self._intrinsics_for(got.width, got.height)
            if not self._calibration:
                notes.append(f"intrinsics: pinhole from hfov {self._hfov:g} deg, no distortion "
                             "(UVC reports none; pass calibration=PATH)")
            fmt = PixelFormat.BGR8 if self._kind is StreamKind.COLOR else (
                PixelFormat.Y16 if got.fourcc == "Y16 " else PixelFormat.Y8)
            self._profile = StreamProfile(self._kind, got.width, got.height, got.fps, fmt, 0, intr)
            self._info = replace(self._info, note="; ".join([f"{got.fourcc.strip()} {got.width}x{got.height}"
                                                             f"@{got.fps:g}"] + notes))
            self._node.start()
            self._started = True

    def _choose(self, offered: list[V4L2Mode]) -> V4L2Mode:
        fourccs = (self._fourcc,) if self._fourcc else (
            _COLOR_FOURCCS if self._kind is StreamKind.COLOR else _IR_FOURCCS)
        w, h, fps = self._want
        fits = [m for m in offered if m.fourcc in fourccs and (w is None or m.width == w)
                and (h is None or m.height == h) and (fps is None or abs(m.fps - fps) < 0.5)]
        if w is None and h is None:
            fits = [m for m in fits if m.width >= 640 and m.height >= 480] or fits
        if fps is None:
            fits = [m for m in fits if m.fps <= 30.5] or fits
        if not fits:
            listed = ", ".join(sorted({f"{m.fourcc.strip()} {m.width}x{m.height}@{m.fps:g}" for m in offered})) \
                or "none"
            raise UnsupportedMode(f"uvc: {self._path} offers no {'/'.join(f.strip() for f in fourccs)} "
                                  f"{w or '*'}x{h or '*'}@{fps or '*'} (offered: {listed})")
        # Highest rate, smallest picture, preferred format first.
        return min(fits, key=lambda m: (-m.fps, m.width * m.height, fourccs.index(m.fourcc)))

    def read(self, timeout_s: float = 1.0) -> Frame:
        if not self._started:
            raise StreamClosed("uvc: read() before start()")
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            if self._closed:
                raise StreamClosed("uvc: camera stopped")
            left = deadline - time.monotonic()
            if left <= 0:
                raise FrameTimeout(f"uvc: no frame from {self._path} within {timeout_s:g} s")
            buf = self._node.dequeue(min(left, 0.1))
            if buf is None:
                continue
            host_ns = time.monotonic_ns()
            frame = self._frame(buf, host_ns)
            if frame is not None:
                return frame

    def stop(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._node.stop()

    # --- frames ------------------------------------------------------------------------------------
    def _frame(self, buf: RawBuffer, host_ns: int) -> Frame | None:
        assert self._mode is not None and self._profile is not None
        if self._last_seq is not None:
            if buf.sequence <= self._last_seq:
                raise DeviceLost(f"uvc: {self._path} sequence went back from {self._last_seq} to {buf.sequence}")
            self.dropped += buf.sequence - self._last_seq - 1
        self._last_seq = buf.sequence
        px = decode(buf.data, self._mode, self._kind)
        if px is None or buf.error:
            self.corrupt += 1                  # a torn MJPEG after a USB hiccup: skip it, keep going
            return None
        ts_ms = buf.timestamp_ns / 1e6 if buf.monotonic else host_ns / 1e6
        intr = self._profile.intrinsics
        assert intr is not None                  # set with the profile at start
        meta = FrameMetadata(frame_counter=buf.sequence, exposure_us=self._stamp_exposure, gain=self._stamp_gain,
                             extra={"source": "v4l2", "dropped": self.dropped})
        return Frame(stream=self._kind, pixels=px, format=self._profile.format, timestamp_ms=ts_ms,
                     clock_domain=ClockDomain.SYSTEM, host_time_ns=host_ns, frame_number=buf.sequence,
                     intrinsics=intr, device_serial=self._serial, metadata=meta)


def decode(data: bytes, mode: V4L2Mode, kind: StreamKind) -> np.ndarray | None:
    """Pixels of one buffer: BGR8 for colour, Y8/Y16 for IR; None when the buffer is not a whole image."""
    w, h = mode.width, mode.height
    raw = np.frombuffer(data, np.uint8)
    if mode.fourcc == "MJPG":
        img = cv2.imdecode(raw, cv2.IMREAD_COLOR if kind is StreamKind.COLOR else cv2.IMREAD_GRAYSCALE)
        return img if img is not None and img.shape[:2] == (h, w) else None
    if mode.fourcc == "YUYV":
        if raw.size < w * h * 2:
            return None
        yuyv = raw[: w * h * 2].reshape(h, w, 2)
        return cv2.cvtColor(yuyv, cv2.COLOR_YUV2BGR_YUYV) if kind is StreamKind.COLOR else yuyv[:, :, 0].copy()
    if mode.fourcc == "GREY":
        if raw.size < w * h:
            return None
        grey = raw[: w * h].reshape(h, w)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR) if kind is StreamKind.COLOR else grey.copy()
    if mode.fourcc == "Y16 ":
        if raw.size < w * h * 2:
            return None
        return raw[: w * h * 2].view(np.uint16).reshape(h, w).copy()
    return None
