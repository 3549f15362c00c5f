"""Orbbec cameras on Orbbec SDK v2 (``pyorbbecsdk2``): Gemini 330/2, Femto, Astra 2, and the
OpenNI-protocol models the SDK supports; ``orbbec://SERIAL`` and ``orbbec+file:///path/rec.bag``.

Query keys (all optional): ``streams=depth,ir,color`` (default all three), ``d2c=hw|off`` (default
``hw``: the device registers depth to colour itself, where it can), ``distance_m``/``ipd_px`` (the
colour mode must keep ``ipd_px`` between the eyes at ``distance_m``, as for RealSense:
``drivers/modes.py``), ``global_time=0|1`` (default 1 where the device supports it).

* Opened by serial (``query_devices().get_device_by_serial_number``), never by bus address, which
  changes on re-plug.
* Modes: depth per §7.5 h, IR at depth's mode, colour chosen for the face at depth's rate; with
  hardware D2C the depth profile is one the SDK lists for that colour profile
  (``get_d2c_depth_profile_list``), so depth and colour are the same size.
* Factory intrinsics *and distortion* per stream profile (``get_intrinsic``/``get_distortion``), the
  extrinsics between profiles from the device (``get_extrinsic_to``); with hardware D2C depth is in
  colour's geometry (colour's intrinsics, identity extrinsics).
* Projector: ``OB_PROP_LASER_CONTROL_INT`` (Gemini 330: 0 off, 1 on) or ``OB_PROP_LASER_BOOL``,
  whichever the device has; power is offered in device levels, not mW, so it is not exposed as
  ``projector_power`` (that capability is in mW).
* Capabilities are asked of the device's property list; a model without a switchable projector says so.
* Metadata: exposure, gain, projector state and the sensor's frame number where the frame carries them.
* Device removal: the SDK's device-changed callback marks the camera lost.
* ``hardware_reset`` reboots the device (it enumerates again, by the same serial).

What runs on this machine (no USB bus): the SDK loads, enumerates no device, refuses an unknown
serial and unreadable recordings with its own errors (tests/drivers/test_orbbec_sdk.py). Streaming,
D2C, properties and recordings need a device: ``RecordDevice`` records only from one.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import modes
from .base import Camera, Capability, DeviceInfo, ParsedUri, UsbIdentity
from .errors import (
    BackendUnavailable,
    CapabilityUnsupported,
    DeviceLost,
    DeviceNotFound,
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
)


def _import_quietly() -> Any:
    """The SDK prints "load extensions from ..." on stdout from C when loaded, which would corrupt
    ``capture-agent devices --json``: fd 1 points at /dev/null for the import."""
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        import pyorbbecsdk  # type: ignore[import-untyped]
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    return pyorbbecsdk


try:
    ob: Any = _import_quietly()
except (ImportError, OSError) as exc:      # guarded: a missing SDK disables this backend only
    raise BackendUnavailable(f"Orbbec SDK v2 (pyorbbecsdk2) cannot be loaded: {exc}") from None
# By default the SDK writes ./Log/OrbbecSDK.log.txt into the working directory: nothing may be
# written to disk behind the daemon's back. Its messages that matter reach us as errors.
ob.Context.set_logger_to_file(ob.OBLogLevel.NONE, "")

ORBBEC_VID = 0x2BC5
_KEYS = frozenset({"streams", "d2c", "distance_m", "ipd_px", "global_time"})
_SENSORS = {StreamKind.DEPTH: ob.OBSensorType.DEPTH_SENSOR, StreamKind.COLOR: ob.OBSensorType.COLOR_SENSOR,
            StreamKind.IR: ob.OBSensorType.IR_SENSOR}
_IR_FALLBACK = ob.OBSensorType.LEFT_IR_SENSOR          # Gemini 330 and other stereo models
_DISTORTION = {ob.OBCameraDistortionModel.NONE: DistortionModel.NONE,
               ob.OBCameraDistortionModel.BROWN_CONRADY: DistortionModel.BROWN_CONRADY,
               ob.OBCameraDistortionModel.BROWN_CONRADY_K6: DistortionModel.BROWN_CONRADY,
               ob.OBCameraDistortionModel.INVERSE_BROWN_CONRADY: DistortionModel.INVERSE_BROWN_CONRADY,
               ob.OBCameraDistortionModel.MODIFIED_BROWN_CONRADY: DistortionModel.MODIFIED_BROWN_CONRADY,
               ob.OBCameraDistortionModel.KANNALA_BRANDT4: DistortionModel.KANNALA_BRANDT4}
_FORMAT_NAMES = {ob.OBFormat.Y16: "z16", ob.OBFormat.Z16: "z16", ob.OBFormat.Y8: "y8", ob.OBFormat.RGB: "rgb8",
                 ob.OBFormat.BGR: "bgr8", ob.OBFormat.YUYV: "yuyv", ob.OBFormat.YUY2: "yuyv", ob.OBFormat.MJPG: "mjpg"}
_P = ob.OBPropertyID
# Nominal horizontal colour fields of view (degrees), used only when a profile reports no intrinsics.
# A device name takes the longest key it contains (``color_hfov_deg``): "Orbbec Gemini 336L" is the
# long-baseline model's own 94°, not the 330 series' short-baseline 86°. Sources: Orbbec's Gemini
# 335Lg specification table (RGB sensor FOV 94° x 68° ±3°, global shutter, up to 1280x800 @ 60 fps)
# as reproduced in public repositories, and the same 94° x 68° for the Gemini 335L/336L in Orbbec's
# Gemini 330 Series Datasheet as quoted by retailers (OpenELAB, MyBotShop); the Gemini 335/336
# "Official RGB FOV H86 x V55"; the Gemini 305: Seeed Studio wiki "Orbbec Gemini 305 3D Camera"
# (wiki.seeedstudio.com/orbbec_gemini305), colour field H 94° x V 68° ±3°, up to 1280x800 @ 60 fps.
# The Astra Mini S Pro (the SDK names PID 0x065e "Astra Mini S Pro": src/device/openni/
# OpenNIDeviceInfo.cpp): 63°, recalled, not read in a datasheet (none reachable from here; the
# simulator's ASTRA_MINI_S profile uses the same lens), but nearer than the 70° default.
COLOR_HFOV = {"Gemini 335L": 94.0, "Gemini 336L": 94.0, "Gemini 305": 94.0, "Gemini 33": 86.0,
              "Gemini 2": 86.0, "Astra 2": 79.0, "Astra Mini S": 63.0, "Femto": 80.0}
DEFAULT_COLOR_HFOV = 70.0


def color_hfov_deg(name: str) -> float:
    """The nominal colour field of a device called ``name``: the longest ``COLOR_HFOV`` key it contains
    (the most specific model), else ``DEFAULT_COLOR_HFOV``."""
    keys = sorted((k for k in COLOR_HFOV if k in name), key=len, reverse=True)
    return COLOR_HFOV[keys[0]] if keys else DEFAULT_COLOR_HFOV

_ctx_lock = threading.Lock()
_ctx: Any = None


def context() -> Any:
    """One SDK context per process (the camera host's), with its device-changed callback."""
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            _ctx = ob.Context()
            _ctx.set_device_changed_callback(_devices_changed)
        return _ctx


_watch_lock = threading.Lock()
_watched: dict[str, set[OrbbecCamera]] = {}


def _devices_changed(removed: Any, added: Any) -> None:
    try:
        gone = {removed.get_device_serial_number_by_index(i) for i in range(removed.get_count())}
    except Exception:
        return
    with _watch_lock:
        cams = [c for s in gone for c in _watched.get(s, ())]
    for c in cams:
        c._lost = "the Orbbec SDK reported the device removed"


def intrinsics_from(intr: Any, dist: Any | None) -> Intrinsics:
    """Our intrinsics from the SDK's ``OBCameraIntrinsic`` and ``OBCameraDistortion`` (k1 k2 p1 p2 k3;
    the rational model's k4-k6 are dropped, with the model recorded as Brown-Conrady)."""
    if dist is None:
        model, coeffs = DistortionModel.NONE, (0.0, 0.0, 0.0, 0.0, 0.0)
    else:
        model = _DISTORTION.get(dist.model, DistortionModel.NONE)
        coeffs = (float(dist.k1), float(dist.k2), float(dist.p1), float(dist.p2), float(dist.k3))
    return Intrinsics(int(intr.width), int(intr.height), float(intr.fx), float(intr.fy), float(intr.cx),
                      float(intr.cy), model, coeffs)


def extrinsics_from(e: Any) -> Extrinsics:
    """``OBExtrinsic``: a 3×3 rotation (``p_to = R p_from + t``) and a translation in millimetres."""
    rotation = np.asarray(e.rot, float).reshape(3, 3)
    return Extrinsics.from_arrays(rotation, np.asarray(e.transform, float).reshape(3) / 1000.0)


def _streams(parsed: ParsedUri) -> tuple[StreamKind, ...]:
    if "streams" not in parsed.query:
        return (StreamKind.DEPTH, StreamKind.IR, StreamKind.COLOR)
    try:
        return tuple(StreamKind(s.strip().lower()) for s in parsed.query["streams"].split(","))
    except ValueError:
        raise InvalidUri(f"orbbec: streams must be depth, ir, color in {parsed.raw!r}") from None


def _number(parsed: ParsedUri, key: str, default: float, lo: float, hi: float) -> float:
    if key not in parsed.query:
        return default
    try:
        v = float(parsed.query[key])
    except ValueError:
        raise InvalidUri(f"orbbec: {key}={parsed.query[key]!r} is not a number") from None
    if not lo <= v <= hi:
        raise InvalidUri(f"orbbec: {key} must be within {lo:g}..{hi:g}")
    return v


class OrbbecCamera(Camera):
    def __init__(self, parsed: ParsedUri):
        unknown = set(parsed.query) - _KEYS
        if unknown:
            raise InvalidUri(f"orbbec: unknown query key(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(_KEYS))}")
        self._parsed = parsed
        self._recording = parsed.scheme == "orbbec+file"
        self._want = _streams(parsed)
        d2c = parsed.query.get("d2c", "hw")
        if d2c not in ("hw", "off"):
            raise InvalidUri("orbbec: d2c must be hw or off")
        self._d2c = d2c == "hw"
        self._distance = _number(parsed, "distance_m", modes.WORKING_DISTANCE_M, 0.15, 3.0)
        self._ipd = _number(parsed, "ipd_px", modes.MIN_IPD_PX, 10.0, 400.0)
        gt = parsed.query.get("global_time", "1")
        if gt not in ("0", "1"):
            raise InvalidUri("orbbec: global_time must be 0 or 1")
        self._global = gt == "1"
        self._notes: list[str] = []
        self._lost: str | None = None
        self._closed = False
        self._pipeline: Any = None
        self._sdk_profiles: dict[StreamKind, Any] = {}
        self._profiles: dict[StreamKind, StreamProfile] = {}
        self._registered = False
        self._queue: list[Frame] = []
        self._lock = threading.Lock()
        self._device = self._open_device()
        info = self._device.get_device_info()
        self._serial = str(info.get_serial_number())
        self._name = str(info.get_name())
        self._firmware = str(info.get_firmware_version())
        self._usb: UsbIdentity | None = None
        if not self._recording:
            try:
                link = str(info.get_connection_type())               # "USB3.2", "USB2.0", "Ethernet"
            except Exception:
                link = ""
            if link.upper().startswith("USB"):
                # The SDK gives no bus path: the device manager ties VID/PID/serial to the enumerated
                # USB device before the allowlist decides.
                self._usb = UsbIdentity(int(info.get_vid()) or ORBBEC_VID, int(info.get_pid()), self._serial, 0, "",
                                        link[3:])
        self.capabilities = frozenset({Capability.RECORDING}) if self._recording else self._probe()
        if not self._recording and (note := self._settable_note()) is not None:
            self._notes.append(note)

    # -- opening ----------------------------------------------------------------------------------------
    def _open_device(self) -> Any:
        target = self._parsed.target
        if self._recording:
            path = Path(target)
            if not path.is_file():
                raise RecordingInvalid(f"Orbbec recording {path} does not exist")
            with path.open("rb") as fh:
                head = fh.read(13)
            if head != b"#ROSBAG V2.0\n":      # checked before the SDK parses it
                raise RecordingInvalid(f"{path} is not an Orbbec recording (not a ROS bag v2)")
            try:
                return ob.PlaybackDevice(str(path))
            except (RuntimeError, ob.OBError) as exc:
                raise RecordingInvalid(f"Orbbec SDK cannot play {path}: {exc}") from None
        serial = target.strip("/")
        if not serial:
            raise InvalidUri("orbbec:// needs a serial number, e.g. orbbec://CP1E54200025")
        try:
            return context().query_devices().get_device_by_serial_number(serial)
        except (RuntimeError, ob.OBError) as exc:
            raise DeviceNotFound(f"no Orbbec device with serial {serial!r}: {exc}") from None

    def _has(self, prop: Any) -> bool:
        try:
            return bool(self._device.is_property_supported(prop, ob.OBPermissionType.PERMISSION_READ_WRITE))
        except Exception:
            return False

    def _probe(self) -> frozenset[Capability]:
        caps = {Capability.HARDWARE_RESET}
        if self._has(_P.OB_PROP_LASER_CONTROL_INT) or self._has(_P.OB_PROP_LASER_BOOL):
            caps.add(Capability.PROJECTOR_CONTROL)
        # No exposure lock (EXPOSURE_LOCK_IR): the SDK has IR/depth auto-exposure, exposure and gain properties, but
        # this backend does not lock them yet (their units per model are unchecked), and a claim it
        # cannot keep would tell the server the challenge window runs at a held exposure
        # (``_settable_note`` says what the device allows all the same).
        return frozenset(caps)

    def _settable_note(self) -> str | None:
        """What the device allows that this backend does not take (issue 14, the sixth family): on the
        OpenNI-protocol models (the Astra Mini S Pro among them) the SDK registers
        OB_PROP_DEPTH_EXPOSURE_INT read-write and aliases OB_PROP_IR_EXPOSURE_INT to it
        (src/device/openni/OpenNIDeviceBase.cpp, ``initProperties``), so the IR exposure is the host's
        to set; an operator reading ``devices`` learns that a lock is possible on this device, not yet
        taken by this backend."""
        if self._has(_P.OB_PROP_IR_EXPOSURE_INT):
            return ("IR exposure settable on the device (OB_PROP_IR_EXPOSURE_INT), not locked by this "
                    "backend: its units are unchecked, so the IR exposure plan does not run")
        return None

    # -- Camera ----------------------------------------------------------------------------------------
    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(uri=self._parsed.raw, backend="orbbec", name=self._name, serial=self._serial,
                          firmware=self._firmware, usb=self._usb, streams=tuple(k.value for k in self._profiles),
                          is_recording=self._recording, note="; ".join(self._notes))

    def profiles(self) -> list[StreamProfile]:
        return list(self._profiles.values())

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        if src == dst or (self._registered and {src, dst} <= {StreamKind.DEPTH, StreamKind.COLOR}):
            return Extrinsics.identity()
        try:
            return extrinsics_from(self._sdk_profiles[src].get_extrinsic_to(self._sdk_profiles[dst]))
        except (KeyError, RuntimeError, ob.OBError) as exc:
            raise UnsupportedMode(f"orbbec: no extrinsics from {src.value} to {dst.value}: {exc}") from None

    def _sensor_profiles(self, kind: StreamKind) -> Any:
        sensors = [_SENSORS[kind]] + ([_IR_FALLBACK] if kind is StreamKind.IR else [])
        for s in sensors:
            try:
                return self._pipeline.get_stream_profile_list(s)
            except (RuntimeError, ob.OBError):
                continue
        raise UnsupportedMode(f"orbbec: {self._name} has no {kind.value} sensor")

    def _modes(self, kind: StreamKind, plist: Any) -> list[tuple[modes.Mode, Any]]:
        out = []
        for i in range(plist.get_count()):
            p = plist.get_stream_profile_by_index(i)
            if not p.is_video_stream_profile():
                continue
            v = p.as_video_stream_profile()
            fmt = _FORMAT_NAMES.get(v.get_format())
            if fmt is None:
                continue
            fx = 0.0
            if kind is StreamKind.COLOR:
                try:
                    fx = float(v.get_intrinsic().fx)
                except Exception:
                    fx = 0.0
            out.append((modes.Mode(kind, v.get_width(), v.get_height(), int(v.get_fps()), fmt, 0, fx), v))
        return out

    def start(self) -> None:
        if self._closed:
            raise StreamClosed("orbbec: camera was stopped; open it again")
        if self._pipeline is not None:
            return
        try:
            self._pipeline = ob.Pipeline(self._device)
            cfg = ob.Config()
            if self._recording:
                cfg.enable_all_stream()
            else:
                self._configure(cfg)
                if self._global and self._device.is_global_timestamp_supported():
                    self._device.enable_global_timestamp(True)
            self._pipeline.start(cfg)
        except (RuntimeError, ob.OBError) as exc:
            self._pipeline = None
            if self._recording:
                raise RecordingInvalid(f"Orbbec SDK cannot play {self._parsed.target}: {exc}") from None
            raise UnsupportedMode(f"orbbec: {self._name} cannot stream {[k.value for k in self._want]}: {exc}") \
                from None
        for kind, v in self._sdk_profiles.items():
            self._profiles[kind] = self._profile(kind, v)
        if not self._recording:
            with _watch_lock:
                _watched.setdefault(self._serial, set()).add(self)

    def _configure(self, cfg: Any) -> None:
        lists = {k: self._sensor_profiles(k) for k in self._want}
        offered = [m for k, pl in lists.items() for m in self._modes(k, pl)]
        usb2 = self._usb is not None and self._usb.link.startswith("2")
        hfov = color_hfov_deg(self._name)
        choice = modes.choose_modes([m for m, _ in offered], usb2=usb2, color_hfov_deg=hfov,
                                    distance_m=self._distance, ipd_px=self._ipd,
                                    want_color=StreamKind.COLOR in self._want, want_ir=StreamKind.IR in self._want)
        if choice.note:
            self._notes.append(choice.note)
        chosen = {m.kind: m for m in (choice.depth, choice.ir, choice.color) if m is not None}
        for kind, m in chosen.items():
            self._sdk_profiles[kind] = next(v for mm, v in offered if mm == m)
        if self._d2c and StreamKind.COLOR in chosen:
            try:
                d2c = self._pipeline.get_d2c_depth_profile_list(self._sdk_profiles[StreamKind.COLOR],
                                                                ob.OBAlignMode.HW_MODE)
                if d2c.get_count() > 0:
                    self._sdk_profiles[StreamKind.DEPTH] = d2c.get_stream_profile_by_index(0).as_video_stream_profile()
                    cfg.set_align_mode(ob.OBAlignMode.HW_MODE)
                    self._registered = True
                else:
                    self._notes.append("hardware D2C not offered for this colour mode: depth stays in its own geometry")
            except (RuntimeError, ob.OBError) as exc:
                self._notes.append(f"hardware D2C unavailable: {exc}")
        for v in self._sdk_profiles.values():
            cfg.enable_stream(v)

    def _profile(self, kind: StreamKind, v: Any) -> StreamProfile:
        src = self._sdk_profiles[StreamKind.COLOR] if (self._registered and kind is StreamKind.DEPTH) else v
        try:
            intr = intrinsics_from(src.get_intrinsic(), src.get_distortion())
        except Exception as exc:
            raise UnsupportedMode(f"orbbec: {kind.value} reports no intrinsics: {exc}") from None
        fmt = {"z16": PixelFormat.Z16, "y8": PixelFormat.Y8}.get(_FORMAT_NAMES.get(v.get_format(), ""),
                                                                  PixelFormat.BGR8)
        if kind is StreamKind.IR and v.get_format() == ob.OBFormat.Y16:
            fmt = PixelFormat.Y16
        return StreamProfile(kind, int(v.get_width()), int(v.get_height()), float(v.get_fps()), fmt, 0, intr)

    def read(self, timeout_s: float = 1.0) -> Frame:
        with self._lock:
            if self._closed or self._pipeline is None:
                raise StreamClosed("orbbec: camera is not streaming")
            if self._lost:
                raise DeviceLost(f"orbbec {self._serial}: {self._lost}")
            if self._queue:
                return self._queue.pop(0)
            pipeline = self._pipeline
        try:
            fs = pipeline.wait_for_frames(max(1, int(timeout_s * 1000)))
        except (RuntimeError, ob.OBError) as exc:
            raise DeviceLost(f"orbbec {self._serial}: wait_for_frames failed: {exc}") from None
        if fs is None:
            if self._lost:
                raise DeviceLost(f"orbbec {self._serial}: {self._lost}")
            if self._recording:
                raise StreamClosed(f"end of Orbbec recording {self._parsed.target}")
            raise FrameTimeout(f"no Orbbec frame within {timeout_s:.3f} s")
        frames = [f for f in (self._convert(k, g(fs)) for k, g in (
            (StreamKind.DEPTH, lambda s: s.get_depth_frame()), (StreamKind.IR, lambda s: s.get_ir_frame()),
            (StreamKind.COLOR, lambda s: s.get_color_frame()))) if f is not None]
        with self._lock:
            self._queue.extend(frames[1:])
        if not frames:
            raise FrameTimeout("orbbec: frameset carried no stream we use")
        return frames[0]

    def _convert(self, kind: StreamKind, f: Any) -> Frame | None:
        if f is None or kind not in self._profiles:
            return None
        prof = self._profiles[kind]
        w, h = int(f.get_width()), int(f.get_height())
        data = np.asarray(f.get_data())
        scale = 0.0
        px: np.ndarray
        if prof.format is PixelFormat.Z16:
            px = data.view(np.uint16).reshape(h, w).copy()
            scale = float(f.as_depth_frame().get_depth_scale()) / 1000.0      # SDK: mm per unit
        elif prof.format in (PixelFormat.Y8, PixelFormat.Y16):
            dt = np.uint8 if prof.format is PixelFormat.Y8 else np.uint16
            px = data.view(dt).reshape(h, w).copy()
        else:
            px = _colour(data, f.get_format(), w, h)
        ts_us = f.get_global_timestamp_us() if self._global else f.get_timestamp_us()
        domain = ClockDomain.GLOBAL if self._global and ts_us else ClockDomain.HARDWARE
        if not ts_us:
            ts_us = f.get_timestamp_us()
        return Frame(stream=kind, pixels=px, format=prof.format, timestamp_ms=ts_us / 1000.0, clock_domain=domain,
                     host_time_ns=time.monotonic_ns(), frame_number=int(f.get_index()),
                     intrinsics=prof.intrinsics or _pinhole(w, h), device_serial=self._serial,
                     depth_scale=scale, metadata=_metadata(f))

    def stop(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pipeline, self._pipeline = self._pipeline, None
            self._queue.clear()
        with _watch_lock:
            _watched.get(self._serial, set()).discard(self)
        if pipeline is not None:
            try:
                pipeline.stop()
            except (RuntimeError, ob.OBError):
                pass

    # -- capabilities ------------------------------------------------------------------------------------
    def set_projector(self, on: bool) -> None:
        if Capability.PROJECTOR_CONTROL not in self.capabilities:
            raise CapabilityUnsupported(f"orbbec: {self._name} has no switchable projector")
        try:
            if self._has(_P.OB_PROP_LASER_CONTROL_INT):
                self._device.set_int_property(_P.OB_PROP_LASER_CONTROL_INT, 1 if on else 0)
            else:
                self._device.set_bool_property(_P.OB_PROP_LASER_BOOL, bool(on))
        except (RuntimeError, ob.OBError) as exc:
            raise CapabilityUnsupported(f"orbbec: the device refused to switch its projector: {exc}") from None

    def hardware_reset(self) -> None:
        if self._recording:
            raise CapabilityUnsupported("a recording has no hardware to reset")
        try:
            self._device.reboot()
        except (RuntimeError, ob.OBError) as exc:
            raise DeviceLost(f"orbbec {self._serial}: reboot failed: {exc}") from None


def _pinhole(w: int, h: int) -> Intrinsics:
    return Intrinsics(w, h, w * 0.8, w * 0.8, (w - 1) / 2, (h - 1) / 2)


def _colour(data: np.ndarray, fmt: Any, w: int, h: int) -> np.ndarray:
    raw = data.reshape(-1).view(np.uint8)
    if fmt == ob.OBFormat.RGB:
        return raw.reshape(h, w, 3)[:, :, ::-1].copy()
    if fmt == ob.OBFormat.BGR:
        return raw.reshape(h, w, 3).copy()
    if fmt in (ob.OBFormat.YUYV, ob.OBFormat.YUY2):
        return cv2.cvtColor(raw.reshape(h, w, 2), cv2.COLOR_YUV2BGR_YUYV)
    if fmt == ob.OBFormat.MJPG:
        img = cv2.imdecode(raw, cv2.IMREAD_COLOR)
        if img is None or img.shape[:2] != (h, w):
            raise FrameTimeout("orbbec: a colour frame did not decode (torn MJPEG)")
        return img
    raise UnsupportedMode(f"orbbec: colour format {fmt} is not supported")


def _metadata(f: Any) -> FrameMetadata:
    M = ob.OBFrameMetadataType

    def md(key: Any) -> int | None:
        try:
            return int(f.get_metadata_value(key)) if f.has_metadata(key) else None
        except Exception:
            return None
    laser = md(M.LASER_STATUS)
    return FrameMetadata(exposure_us=md(M.EXPOSURE), gain=md(M.GAIN),
                         projector_on=None if laser is None else bool(laser), frame_counter=md(M.FRAME_NUMBER),
                         sensor_timestamp_us=md(M.SENSOR_TIMESTAMP))


def open_camera(parsed: ParsedUri) -> Camera:
    return OrbbecCamera(parsed)


def list_devices() -> list[DeviceInfo]:
    dl = context().query_devices()
    out = []
    for i in range(dl.get_count()):
        serial = str(dl.get_device_serial_number_by_index(i))
        usb = UsbIdentity(int(dl.get_device_vid_by_index(i)), int(dl.get_device_pid_by_index(i)), serial)
        out.append(DeviceInfo(uri=f"orbbec://{serial}", backend="orbbec", name=str(dl.get_device_name_by_index(i)),
                              serial=serial, usb=usb, note=str(dl.get_device_connection_type_by_index(i))))
    return out
