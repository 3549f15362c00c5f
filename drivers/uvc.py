"""UVC backend (plain USB Video Class RGB and IR modules) over OpenCV's ``VideoCapture``.

URIs:

* ``uvc://0`` — V4L2 device by index (``/dev/video0``); ``uvc:///dev/video2`` — by node path.
* ``uvc+file:///path/clip.avi`` — a video file played back through the same code (tests, demos).

Query keys (all optional): ``kind=color|ir`` (default color; ``ir`` delivers Y8),
``width``/``height``/``fps`` (the mode wanted; a device or file that does not deliver it raises
``DRV_UNSUPPORTED_MODE``), ``fourcc`` (``MJPG``, ``YUYV``, ``GREY``…), ``exposure``/``gain``
(V4L2 units, written as manual exposure), ``hfov`` (degrees, default 70) or ``calibration=PATH``
(JSON with ``fx fy ppx ppy`` and optionally ``model`` and ``coeffs``), ``stale_frames`` (see below),
``serial`` (names the camera when sysfs has none).

UVC reports no intrinsics: without a calibration file they are a pinhole from ``hfov`` with the
principal point at the centre and no distortion, and ``info.note`` says so.

Stale frames. After an unplug OpenCV's ``grab()``/``read()`` can keep returning ``True`` with the
last buffer. A physical sensor never delivers the same pixels twice in a row (shot noise alone
changes them), so ``stale_frames`` consecutive frames (default 3 on devices; 0 = off, the default for
files, whose content may legitimately repeat) that are byte-identical *and* carry no newer buffer
timestamp end the stream with ``DRV_DEVICE_LOST``. The device node vanishing, or the capture
reporting failure, ends it the same way.

Reading is done by a thread per camera, so ``read(timeout_s)`` is bounded even when the driver
blocks inside ``VideoCapture.read`` (it does, for seconds, on a USB hiccup).
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .base import Camera, Capability, DeviceInfo, ParsedUri
from .errors import (
    DeviceLost,
    DeviceNotFound,
    DeviceRefused,
    FrameTimeout,
    InvalidUri,
    RecordingInvalid,
    StreamClosed,
    UnsupportedMode,
)
from .frame import (
    ClockDomain,
    DistortionModel,
    Extrinsics,
    Frame,
    FrameMetadata,
    Intrinsics,
    PixelFormat,
    StreamKind,
    StreamProfile,
    distortion_coeffs,
)
from .usb import Sysfs

DEFAULT_HFOV_DEG = 70.0
DEFAULT_STALE_FRAMES = 3
_QUEUE_DEPTH = 4
_NODE_CHECK_S = 0.25              # how often the reader checks that the device node still exists
_KNOWN_KEYS = {"kind", "width", "height", "fps", "fourcc", "exposure", "gain", "hfov", "calibration",
               "stale_frames", "serial"}

CaptureFactory = Callable[..., Any]   # cv2.VideoCapture or anything with its interface


def _num(q: dict[str, str], key: str, cast=float, lo: float | None = None, hi: float | None = None):
    if key not in q:
        return None
    try:
        v = cast(q[key])
    except ValueError:
        raise InvalidUri(f"uvc: {key}={q[key]!r} is not a number") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi) or (isinstance(v, float) and not math.isfinite(v)):
        raise InvalidUri(f"uvc: {key}={q[key]!r} is out of range [{lo}, {hi}]")
    return v


def load_calibration(path: str, width: int, height: int) -> Intrinsics:
    """Intrinsics from a JSON calibration file (``fx fy ppx ppy``, optional ``model``, ``coeffs``,
    ``width``/``height`` of the calibrated mode, scaled to the mode in use)."""
    try:
        data = json.loads(Path(path).read_text())
        cw, ch = int(data.get("width", width)), int(data.get("height", height))
        model = DistortionModel(data.get("model", "none"))
        coeffs = distortion_coeffs(data.get("coeffs", (0, 0, 0, 0, 0)))
        intr = Intrinsics(cw, ch, float(data["fx"]), float(data["fy"]), float(data["ppx"]), float(data["ppy"]),
                          model, coeffs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidUri(f"uvc: calibration file {path!r} is unusable: {exc}") from None
    return intr if (cw, ch) == (width, height) else intr.scaled(width, height)


def pinhole(width: int, height: int, hfov_deg: float) -> Intrinsics:
    fx = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
    return Intrinsics(width, height, fx, fx, (width - 1) / 2, (height - 1) / 2)


def _fingerprint(img: np.ndarray) -> bytes:
    # Every 4th pixel of every 4th row: enough to see sensor noise, cheap at 30 fps.
    return hashlib.blake2b(np.ascontiguousarray(img[::4, ::4]).tobytes(), digest_size=16).digest()


class UVCCamera(Camera):
    """One UVC stream (color or IR) from a V4L2 device or a video file."""

    def __init__(self, parsed: ParsedUri, *, capture_factory: CaptureFactory | None = None,
                 sysfs: Sysfs | None = None, node_exists: Callable[[str], bool] | None = None):
        q = dict(parsed.query)
        unknown = set(q) - _KNOWN_KEYS
        if unknown:
            raise InvalidUri(f"uvc: unknown query key(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(_KNOWN_KEYS))}")
        self._uri = parsed.raw
        self._is_file = parsed.scheme == "uvc+file"
        kind = q.get("kind", "color")
        if kind not in ("color", "ir"):
            raise InvalidUri(f"uvc: kind must be color or ir, not {kind!r}")
        self._kind = StreamKind.COLOR if kind == "color" else StreamKind.IR
        self._want_w = _num(q, "width", int, 16, 8192)
        self._want_h = _num(q, "height", int, 16, 8192)
        self._want_fps = _num(q, "fps", float, 1, 1000)
        self._fourcc = q.get("fourcc")
        if self._fourcc is not None and len(self._fourcc) != 4:
            raise InvalidUri(f"uvc: fourcc must be 4 characters, not {self._fourcc!r}")
        self._exposure = _num(q, "exposure", float, 0, 1e7)
        self._gain = _num(q, "gain", float, 0, 1e4)
        self._hfov = _num(q, "hfov", float, 10, 170) or DEFAULT_HFOV_DEG
        self._calibration = q.get("calibration")
        stale = _num(q, "stale_frames", int, 0, 1000)
        self._stale_frames = stale if stale is not None else (0 if self._is_file else DEFAULT_STALE_FRAMES)
        self._factory = capture_factory or cv2.VideoCapture
        self._node_exists = node_exists or os.path.exists
        self._node: str | None = None
        usb = None
        name = "UVC camera"
        if self._is_file:
            self._source: Any = parsed.target
            path = Path(parsed.target)
            if not path.is_file():
                raise RecordingInvalid(f"uvc: video file {parsed.target!r} does not exist")
            name = path.name
        else:
            target = parsed.target
            if target.isdigit():
                self._source, self._node = int(target), f"/dev/video{int(target)}"
            elif target.startswith("/dev/video") and target[len("/dev/video"):].isdigit():
                self._source, self._node = target, target
            else:
                raise InvalidUri(f"uvc: expected uvc://INDEX or uvc:///dev/videoN, got {parsed.raw!r}")
            if not self._node_exists(self._node):
                raise DeviceNotFound(f"uvc: {self._node} does not exist (camera unplugged or never present)")
            # Prove it is a physical USB camera: v4l2loopback/OBS have no USB parent.
            node = (sysfs or Sysfs()).video_node(self._node)
            if node.is_virtual:
                raise DeviceRefused(f"uvc: {self._node} ({node.card or 'unnamed'}) is a virtual camera "
                                    f"({node.driver or 'no physical USB parent'}); refused")
            usb, name = node.usb, node.card or name
        self._serial = q.get("serial") or (usb.serial if usb is not None and usb.serial
                                           else os.path.basename(str(self._source)))
        self._info = DeviceInfo(uri=parsed.raw, backend="uvc", name=name, serial=self._serial, usb=usb,
                                streams=(self._kind.value,), is_recording=self._is_file)
        self._cap: Any = None
        self._profile: StreamProfile | None = None
        self._queue: collections.deque = collections.deque(maxlen=_QUEUE_DEPTH)
        self._cv = threading.Condition()
        self._end: Exception | None = None     # set by the reader: why no more frames will come
        self._closed = False
        self._started = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.capabilities = frozenset({Capability.RECORDING} if self._is_file else {Capability.EXPOSURE_CONTROL})

    # --- Camera contract ------------------------------------------------------------------------
    @property
    def info(self) -> DeviceInfo:
        return self._info

    def profiles(self) -> list[StreamProfile]:
        return [self._profile] if self._profile is not None else []

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        if src == dst == self._kind:
            return Extrinsics.identity()
        raise UnsupportedMode(f"uvc: a single-stream camera has no {src.value}->{dst.value} extrinsics; "
                              "a rig's calibration provides them")

    def start(self) -> None:
        if self._started:
            return
        if self._closed:
            raise StreamClosed("uvc: camera was stopped; open it again")
        cap = self._open_capture()
        self._cap = cap
        try:
            self._configure(cap)
        except Exception:
            cap.release()
            raise
        self._started = True
        self._thread = threading.Thread(target=self._reader, name=f"uvc-{self._serial}", daemon=True)
        self._thread.start()

    def read(self, timeout_s: float = 1.0) -> Frame:
        if not self._started:
            raise StreamClosed("uvc: read() before start()")
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cv:
            while True:
                if self._queue:
                    return self._queue.popleft()
                if self._closed:
                    raise StreamClosed("uvc: camera stopped")
                if self._end is not None:
                    raise self._end
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FrameTimeout(f"uvc: no frame from {self._uri} within {timeout_s:g} s")
                self._cv.wait(min(left, _NODE_CHECK_S))
                if self._node is not None and not self._node_exists(self._node):
                    self._end = DeviceLost(f"uvc: {self._node} disappeared (unplugged)")

    def stop(self) -> None:
        with self._cv:
            if self._closed:
                return
            self._closed = True
            self._cv.notify_all()
        t = self._thread
        if t is not None:
            # The reader may be stuck inside the driver; never wait on it for long.
            t.join(timeout=1.0)
        if self._cap is not None and (t is None or not t.is_alive()):
            self._cap.release()
        # else: the stuck reader releases the capture itself when (if) the driver returns.

    # --- internals ------------------------------------------------------------------------------
    def _open_capture(self):
        if self._is_file:
            cap = self._factory(self._source)
        else:
            cap = self._factory(self._source, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            if self._is_file:
                raise RecordingInvalid(f"uvc: {self._source!r} is not a readable video (corrupt or unknown codec)")
            raise DeviceNotFound(f"uvc: cannot open {self._node} (busy, no permission, or not a capture device)")
        return cap

    def _configure(self, cap) -> None:
        if not self._is_file:
            if self._fourcc:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self._fourcc))
            if self._want_w:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._want_w)
            if self._want_h:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._want_h)
            if self._want_fps:
                cap.set(cv2.CAP_PROP_FPS, self._want_fps)
            if self._exposure is not None:
                cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)     # V4L2: 1 = manual
                cap.set(cv2.CAP_PROP_EXPOSURE, self._exposure)
            if self._gain is not None:
                cap.set(cv2.CAP_PROP_GAIN, self._gain)
            if self._kind is StreamKind.IR and self._fourcc in ("GREY", "Y8  ", "Y16 "):
                cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        if w <= 0 or h <= 0:
            raise (RecordingInvalid if self._is_file else UnsupportedMode)(
                f"uvc: {self._uri} reports no frame size")
        if not (fps > 0 and math.isfinite(fps)):
            if self._is_file:
                raise RecordingInvalid(f"uvc: {self._source!r} has no frame rate")
            fps = self._want_fps or 30.0
        got = (w, h, fps)
        want = (self._want_w or w, self._want_h or h, self._want_fps or fps)
        if (got[0], got[1]) != (want[0], want[1]) or abs(got[2] - want[2]) > 0.5:
            raise UnsupportedMode(f"uvc: {self._uri} delivers {w}x{h} @ {fps:g} fps, not the requested "
                                  f"{want[0]}x{want[1]} @ {want[2]:g} fps")
        intr = load_calibration(self._calibration, w, h) if self._calibration else pinhole(w, h, self._hfov)
        if not self._calibration:
            self._info = replace(self._info, note=f"intrinsics: pinhole from hfov {self._hfov:g} deg, no distortion "
                                                   "(UVC reports none; pass calibration=PATH)")
        fmt = PixelFormat.BGR8 if self._kind is StreamKind.COLOR else PixelFormat.Y8
        self._profile = StreamProfile(self._kind, w, h, fps, fmt, 0, intr)

    def _finish(self, exc: Exception) -> None:
        with self._cv:
            if self._end is None:
                self._end = exc
            self._cv.notify_all()

    def _reader(self) -> None:
        cap, prof = self._cap, self._profile
        assert cap is not None and prof is not None
        number = 0
        last_fp: bytes | None = None
        last_ts = -math.inf
        repeats = 0
        last_node_check = time.monotonic()
        try:
            while not self._closed:
                ok, img = cap.read()
                host_ns = time.monotonic_ns()
                if self._closed:
                    break
                if not ok or img is None:
                    if self._is_file:
                        self._finish(StreamClosed(f"uvc: end of video {self._source!r} after {number} frames"))
                    else:
                        self._finish(DeviceLost(f"uvc: {self._node} stopped delivering frames (read failed)"))
                    return
                if self._node is not None and time.monotonic() - last_node_check > _NODE_CHECK_S:
                    last_node_check = time.monotonic()
                    if not self._node_exists(self._node):
                        self._finish(DeviceLost(f"uvc: {self._node} disappeared (unplugged)"))
                        return
                pos_ms = float(cap.get(cv2.CAP_PROP_POS_MSEC))
                if self._stale_frames:
                    fp = _fingerprint(img)
                    same = fp == last_fp and not (math.isfinite(pos_ms) and pos_ms > last_ts)
                    repeats = repeats + 1 if same else 0
                    last_fp = fp
                    if repeats >= self._stale_frames:
                        self._finish(DeviceLost(
                            f"uvc: {self._node or self._source} returns stale frames ({repeats + 1} identical, "
                            "no new buffer): the camera was unplugged or stopped"))
                        return
                frame = self._make_frame(img, prof, number, pos_ms, last_ts, host_ns)
                last_ts = max(last_ts, pos_ms) if math.isfinite(pos_ms) else last_ts
                number += 1
                with self._cv:
                    if len(self._queue) == self._queue.maxlen:
                        self.dropped += 1          # the consumer is behind: keep the newest frames
                    self._queue.append(frame)
                    self._cv.notify_all()
        except Exception as exc:   # a driver error must end the stream, never kill silently
            self._finish(DeviceLost(f"uvc: capture failed: {type(exc).__name__}: {exc}"))
        finally:
            if self._closed:
                try:
                    cap.release()
                except Exception:
                    pass

    def _make_frame(self, img: np.ndarray, prof: StreamProfile, number: int, pos_ms: float, last_ts: float,
                    host_ns: int) -> Frame:
        if self._kind is StreamKind.IR:
            px = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            if px.dtype != np.uint8:
                px = np.right_shift(px, 8).astype(np.uint8) if px.dtype == np.uint16 else px.astype(np.uint8)
        else:
            px = img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        h, w = px.shape[:2]
        if (w, h) != (prof.width, prof.height):
            raise UnsupportedMode(f"uvc: frame of {w}x{h} in a {prof.width}x{prof.height} stream")
        if self._is_file:
            # The file's own timeline; fall back to frame index / fps if the container has none.
            ts = pos_ms if math.isfinite(pos_ms) and pos_ms > last_ts else number * 1000.0 / prof.fps
            domain = ClockDomain.HARDWARE
        else:
            # V4L2 buffer timestamps are CLOCK_MONOTONIC, the host clock.
            ts = pos_ms if math.isfinite(pos_ms) and pos_ms > 0 else host_ns / 1e6
            domain = ClockDomain.SYSTEM
        meta = FrameMetadata(frame_counter=number, extra={"source": "file" if self._is_file else "v4l2"})
        if not self._is_file and self._cap is not None:
            exp, gain = float(self._cap.get(cv2.CAP_PROP_EXPOSURE)), float(self._cap.get(cv2.CAP_PROP_GAIN))
            meta = FrameMetadata(exposure_us=exp * 100.0 if exp > 0 else None,   # V4L2: 100 µs units
                                 gain=gain if gain > 0 else None, frame_counter=number, extra={"source": "v4l2"})
        assert prof.intrinsics is not None          # the stream's profile is made with them (_configure)
        return Frame(stream=self._kind, pixels=px, format=prof.format, timestamp_ms=ts, clock_domain=domain,
                     host_time_ns=host_ns, frame_number=number, intrinsics=prof.intrinsics,
                     device_serial=self._serial, metadata=meta)


def open_camera(parsed: ParsedUri) -> Camera:
    return UVCCamera(parsed)


def list_devices(sysfs: Sysfs | None = None) -> list[DeviceInfo]:
    """Every V4L2 capture node with its USB identity; virtual cameras are listed as refused."""
    out = []
    for node in (sysfs or Sysfs()).video_nodes():
        info = DeviceInfo(uri=f"uvc:///dev/{node.name}", backend="uvc", name=node.card or node.name,
                          serial=node.usb.serial if node.usb else "", usb=node.usb,
                          note="virtual camera (refused)" if node.is_virtual else f"driver {node.driver or '-'}")
        out.append(replace(info, allowed=False) if node.is_virtual else info)
    return out
