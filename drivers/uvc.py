"""UVC backend: ``uvc://`` devices on V4L2 directly (``uvc_device.py``, over ``v4l2.py``) and
``uvc+file://`` video files through OpenCV (this module), one stream each (colour or IR).

``uvc+file:///path/clip.avi`` query keys: ``kind=color|ir``, ``width``/``height``/``fps`` (the file
must deliver that mode, else ``DRV_UNSUPPORTED_MODE``), ``hfov`` (default 70) or ``calibration=PATH``
(JSON ``fx fy ppx ppy`` and optionally ``model``, ``coeffs``, ``width``/``height`` of the calibrated
mode), ``serial``. The device keys are in ``uvc_device.py``.

UVC reports no intrinsics: without a calibration file they are a pinhole from ``hfov`` with the
principal point at the centre and no distortion, and ``info.note`` says so.
"""

from __future__ import annotations

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

from .base import Camera, Capability, DeviceInfo, ParsedUri, SingleStreamCamera
from .errors import InvalidUri, RecordingInvalid, StreamClosed, UnsupportedMode
from .frame import (
    ClockDomain,
    DistortionModel,
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
_KNOWN_KEYS = {"kind", "width", "height", "fps", "hfov", "calibration", "serial"}

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


class UVCFileCamera(SingleStreamCamera):
    """A video file played through OpenCV as one UVC stream (colour or IR): tests, demos, and the
    colour half of recorded rigs. Every frame, in order, on the file's own timeline."""

    def __init__(self, parsed: ParsedUri, *, capture_factory: CaptureFactory | None = None):
        q = dict(parsed.query)
        unknown = set(q) - _KNOWN_KEYS
        if unknown:
            raise InvalidUri(f"uvc: unknown query key(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(_KNOWN_KEYS))}")
        self._uri = parsed.raw
        kind = q.get("kind", "color")
        if kind not in ("color", "ir"):
            raise InvalidUri(f"uvc: kind must be color or ir, not {kind!r}")
        self._kind = StreamKind.COLOR if kind == "color" else StreamKind.IR
        self._want_w = _num(q, "width", int, 16, 8192)
        self._want_h = _num(q, "height", int, 16, 8192)
        self._want_fps = _num(q, "fps", float, 1, 1000)
        self._hfov = _num(q, "hfov", float, 10, 170) or DEFAULT_HFOV_DEG
        self._calibration = q.get("calibration")
        self._factory = capture_factory or cv2.VideoCapture
        path = Path(parsed.target)
        if not path.is_file():
            raise RecordingInvalid(f"uvc: video file {parsed.target!r} does not exist")
        self._source = parsed.target
        self._serial = q.get("serial") or path.name
        self._info = DeviceInfo(uri=parsed.raw, backend="uvc", name=path.name, serial=self._serial,
                                streams=(self._kind.value,), is_recording=True)
        self._cap: Any = None
        self._profile: StreamProfile | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._started = False
        self._number = 0
        self._last_ts = -math.inf
        self.capabilities = frozenset({Capability.RECORDING})

    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise StreamClosed("uvc: camera was stopped; open it again")
            if self._started:
                return
            cap = self._factory(self._source)
            if not cap.isOpened():
                cap.release()
                raise RecordingInvalid(f"uvc: {self._source!r} is not a readable video (corrupt or unknown codec)")
            try:
                self._profile = self._configure(cap)
            except Exception:
                cap.release()
                raise
            self._cap = cap
            self._started = True

    def _configure(self, cap: Any) -> StreamProfile:
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        if w <= 0 or h <= 0:
            raise RecordingInvalid(f"uvc: {self._uri} reports no frame size")
        if not (fps > 0 and math.isfinite(fps)):
            raise RecordingInvalid(f"uvc: {self._source!r} has no frame rate")
        want = (self._want_w or w, self._want_h or h, self._want_fps or fps)
        if (w, h) != (want[0], want[1]) or abs(fps - want[2]) > 0.5:
            raise UnsupportedMode(f"uvc: {self._uri} delivers {w}x{h} @ {fps:g} fps, not the requested "
                                  f"{want[0]}x{want[1]} @ {want[2]:g} fps")
        intr = load_calibration(self._calibration, w, h) if self._calibration else pinhole(w, h, self._hfov)
        if not self._calibration:
            self._info = replace(self._info, note=f"intrinsics: pinhole from hfov {self._hfov:g} deg, no distortion "
                                                   "(UVC reports none; pass calibration=PATH)")
        fmt = PixelFormat.BGR8 if self._kind is StreamKind.COLOR else PixelFormat.Y8
        return StreamProfile(self._kind, w, h, fps, fmt, 0, intr)

    def read(self, timeout_s: float = 1.0) -> Frame:
        with self._lock:
            if not self._started:
                raise StreamClosed("uvc: read() before start()")
            if self._closed:
                raise StreamClosed("uvc: camera stopped")
            ok, img = self._cap.read()
            host_ns = time.monotonic_ns()
            if not ok or img is None:
                raise StreamClosed(f"uvc: end of video {self._source!r} after {self._number} frames")
            prof = self._profile
            assert prof is not None
            if self._kind is StreamKind.IR:
                px = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            else:
                px = img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            if (px.shape[1], px.shape[0]) != (prof.width, prof.height):
                raise RecordingInvalid(f"uvc: frame of {px.shape[1]}x{px.shape[0]} in a "
                                       f"{prof.width}x{prof.height} video")
            pos_ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
            # The file's own timeline; frame index / fps if the container has none.
            ts = pos_ms if math.isfinite(pos_ms) and pos_ms > self._last_ts else self._number * 1000.0 / prof.fps
            self._last_ts = max(self._last_ts, ts)
            n = self._number
            self._number += 1
            intr = prof.intrinsics
            assert intr is not None              # set with the profile at start
        return Frame(stream=self._kind, pixels=px, format=prof.format, timestamp_ms=ts,
                     clock_domain=ClockDomain.HARDWARE, host_time_ns=host_ns, frame_number=n,
                     intrinsics=intr, device_serial=self._serial,
                     metadata=FrameMetadata(frame_counter=n, extra={"source": "file"}))

    def stop(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._cap is not None:
                self._cap.release()


def open_camera(parsed: ParsedUri) -> Camera:
    if parsed.scheme == "uvc+file":
        return UVCFileCamera(parsed)
    return UVCCamera(parsed)


def list_devices(sysfs: Sysfs | None = None) -> list[DeviceInfo]:
    """Every V4L2 video node with its USB identity: capture nodes as cameras (by their stable
    ``by-id`` name where udev made one), virtual cameras as refused; a UVC camera's metadata node
    (sysfs ``index`` 1 and up) is not a camera and is not listed."""
    out = []
    fs = sysfs or Sysfs()
    by_id = _by_id_names(fs)
    for node in fs.video_nodes():
        if node.index != 0:
            continue
        uri = f"uvc://{by_id.get(node.name, f'/dev/{node.name}')}"
        info = DeviceInfo(uri=uri, backend="uvc", name=node.card or node.name,
                          serial=node.usb.serial if node.usb else "", usb=node.usb,
                          note="virtual camera (refused)" if node.is_virtual else f"driver {node.driver or '-'}")
        out.append(replace(info, allowed=False) if node.is_virtual else info)
    return out


def _by_id_names(fs: Sysfs) -> dict[str, str]:
    """``{"video0": "/dev/v4l/by-id/usb-…-video-index0"}`` from udev's links under the same root."""
    d = fs.root / "dev" / "v4l" / "by-id"
    out: dict[str, str] = {}
    if d.is_dir():
        for link in sorted(d.iterdir()):
            target = os.path.basename(os.path.realpath(link))
            out.setdefault(target, "/dev/v4l/by-id/" + link.name)
    return out


from .uvc_device import UVCCamera  # noqa: E402 - the device half; it imports the helpers above
