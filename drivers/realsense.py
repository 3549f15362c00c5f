"""Intel RealSense backend (pyrealsense2): live devices by serial and ``.db3`` / ``.bag`` recordings.

``realsense://SERIAL`` opens a connected device with depth, IR (left imager) and color in modes that
meet the capture spec (depth >= 640x400 at >= 10 fps). ``realsense+file:///path/rec.db3`` plays a
recording back as fast as it can be read (not in real time), with the intrinsics, extrinsics, depth
scale and metadata the recorder stored. Frames are copied out of SDK buffers at once.

A recording has no meaningful arrival times when played faster than real time, so each frame of one
SDK frameset gets the same synthetic arrival time (the frameset's recorded position): the matcher
then groups them as librealsense did.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from .base import (
    Camera,
    Capability,
    DepthRange,
    DeviceInfo,
    ExposureSetting,
    ParsedUri,
    ProjectorPowerRange,
    UsbIdentity,
)
from .errors import (
    BackendUnavailable,
    CapabilityUnsupported,
    DeviceLost,
    DeviceNotFound,
    DriverError,
    FrameTimeout,
    InvalidSetting,
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
from .modes import MIN_IPD_PX, WORKING_DISTANCE_M

try:
    import pyrealsense2 as rs
except (ImportError, OSError) as exc:  # libusb missing, or no wheel for this platform
    raise BackendUnavailable(f"pyrealsense2 cannot be loaded: {exc}") from None

from . import realsense_device as rsdev  # noqa: E402 - needs the SDK above

_MODEL = {
    rs.distortion.none: DistortionModel.NONE,
    rs.distortion.brown_conrady: DistortionModel.BROWN_CONRADY,
    rs.distortion.inverse_brown_conrady: DistortionModel.INVERSE_BROWN_CONRADY,
    rs.distortion.modified_brown_conrady: DistortionModel.MODIFIED_BROWN_CONRADY,
    rs.distortion.kannala_brandt4: DistortionModel.KANNALA_BRANDT4,
}
_DOMAIN = {
    rs.timestamp_domain.hardware_clock: ClockDomain.HARDWARE,
    rs.timestamp_domain.global_time: ClockDomain.GLOBAL,
    rs.timestamp_domain.system_time: ClockDomain.SYSTEM,
}
_KIND = {rs.stream.depth: StreamKind.DEPTH, rs.stream.color: StreamKind.COLOR, rs.stream.infrared: StreamKind.IR}
_QUERY_KEYS = frozenset({"global_time", "distance_m", "ipd_px"})
_METADATA_NOTE = ("frame metadata is not enabled (Linux: a kernel without the RealSense UVC metadata patch, "
                  "and not the RSUSB backend): no exposure, projector state or hardware timestamps per frame, "
                  "and global time falls back to host arrival")


def _intrinsics(i) -> Intrinsics:
    return Intrinsics(i.width, i.height, i.fx, i.fy, i.ppx, i.ppy, _MODEL.get(i.model, DistortionModel.NONE),
                      tuple(i.coeffs[:5]))


def _extrinsics(e) -> Extrinsics:
    return Extrinsics.from_arrays(np.array(e.rotation).reshape(3, 3).T, e.translation)   # SDK: column-major


def _metadata(f) -> FrameMetadata:
    def md(key):
        try:
            return f.get_frame_metadata(key) if f.supports_frame_metadata(key) else None
        except RuntimeError:
            return None
    M = rs.frame_metadata_value
    emitter = md(M.frame_emitter_mode)
    laser = md(M.frame_laser_power)
    return FrameMetadata(exposure_us=md(M.actual_exposure), gain=md(M.gain_level),
                         projector_on=None if emitter is None else bool(emitter),
                         projector_power_mw=None if laser is None else float(laser),
                         frame_counter=md(M.frame_counter), sensor_timestamp_us=md(M.sensor_timestamp),
                         white_balance_k=md(M.white_balance))


def _pixels(vf) -> tuple[np.ndarray, PixelFormat]:
    data = np.asanyarray(vf.get_data())
    fmt = vf.profile.format()
    if fmt == rs.format.z16:
        return data.copy(), PixelFormat.Z16
    if fmt == rs.format.y8:
        return data.copy(), PixelFormat.Y8
    if fmt == rs.format.y16:
        return data.copy(), PixelFormat.Y16
    if fmt == rs.format.bgr8:
        return data.copy(), PixelFormat.BGR8
    if fmt == rs.format.rgb8:
        return data[:, :, ::-1].copy(), PixelFormat.BGR8
    if fmt == rs.format.bgra8:
        return data[:, :, :3].copy(), PixelFormat.BGR8
    if fmt == rs.format.rgba8:
        return data[:, :, 2::-1].copy(), PixelFormat.BGR8
    if fmt == rs.format.yuyv:
        return cv2.cvtColor(data.reshape(vf.get_height(), vf.get_width(), 2), cv2.COLOR_YUV2BGR_YUYV), PixelFormat.BGR8
    raise UnsupportedMode(f"RealSense pixel format {fmt} is not supported")


class NotificationMonitor:
    """Maps librealsense sensor notifications (delivered on an SDK thread) to typed errors.

    ``hardware_error`` and any ``error``/``fatal`` severity end the stream: the next ``check()``
    raises ``DeviceLost``. ``frames_timeout`` and ``frame_corrupted`` are counted (the watchdog and
    the matcher see their effect); ``firmware_update_recommended`` and the rest become notes."""

    FATAL_CATEGORIES = frozenset({rs.notification_category.hardware_error, rs.notification_category.unknown_error})

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._error: DriverError | None = None
        self.counts: collections.Counter = collections.Counter()
        self.notes: list[str] = []

    def attach(self, sensor) -> None:
        sensor.set_notifications_callback(self.on_notification)

    def on_notification(self, n) -> None:
        category, severity = n.category, n.severity
        name = str(category).split(".")[-1]
        with self._lock:
            self.counts[name] += 1
            fatal = category in self.FATAL_CATEGORIES or severity in (rs.log_severity.error, rs.log_severity.fatal)
            if fatal and category not in (rs.notification_category.frames_timeout,
                                          rs.notification_category.frame_corrupted):
                if self._error is None:
                    self._error = DeviceLost(f"RealSense {name} ({str(severity).split('.')[-1]}): "
                                             f"{_description(n)}")
            elif category == rs.notification_category.firmware_update_recommended:
                self.notes.append("firmware update recommended by the device")

    def device_removed(self, why: str) -> None:
        with self._lock:
            if self._error is None:
                self._error = DeviceLost(why)

    def check(self) -> None:
        with self._lock:
            if self._error is not None:
                raise self._error


def _description(n) -> str:
    # pyrealsense2 can fail to decode a notification's description (seen with software sensors:
    # UnicodeDecodeError); the error must still be raised, with whatever text is readable.
    try:
        text = str(n.description)
    except (UnicodeDecodeError, RuntimeError):
        return "(description unreadable)"
    return "".join(c if c.isprintable() else "?" for c in text)[:200]


class RealSenseCamera(Camera):
    def __init__(self, parsed: ParsedUri, recording: bool):
        self._parsed = parsed
        self._recording = recording
        self._target = parsed.target if recording else parsed.target.strip("/")
        if recording:
            path = self._target
            if not os.path.isfile(path):
                raise RecordingInvalid(f"RealSense recording not found: {path}")
            if os.path.getsize(path) < 64:
                raise RecordingInvalid(f"RealSense recording is empty or truncated: {path}")
        self._pipeline = None
        self._profiles: list[StreamProfile] = []
        self._sdk_profiles: dict[StreamKind, rs.stream_profile] = {}
        self._queue: collections.deque[Frame] = collections.deque()
        self._lock = threading.Lock()
        self._closed = False
        self._depth_scale = 0.001
        self._serial = ""
        self._name = "Intel RealSense"
        self._firmware = ""
        self._sets = 0
        self._lost: str | None = None
        self._last: dict[StreamKind, tuple[int, float]] = {}
        self.monitor = NotificationMonitor()
        self._ctx = None
        self._ir_measured: ExposureSetting | None = None     # from the latest depth/IR frame's metadata
        self._ir_saved: SavedExposure | None = None          # what unlock_exposure restores
        self._depth_range: DepthRange | None = None           # asked of the depth sensor at start
        unknown = set(parsed.query) - _QUERY_KEYS
        if unknown:
            raise InvalidUri(f"realsense: unknown query key(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(_QUERY_KEYS))}")
        gt = parsed.query.get("global_time", "1")
        if gt not in ("0", "1"):
            raise InvalidUri(f"realsense: global_time must be 0 or 1, not {gt!r}")
        self._global_time = gt == "1"
        self._distance_m = _q_number(parsed, "distance_m", WORKING_DISTANCE_M, 0.15, 3.0)
        self._ipd_px = _q_number(parsed, "ipd_px", MIN_IPD_PX, 10.0, 400.0)
        self._usb: UsbIdentity | None = None
        self._notes: list[str] = []
        self._metadata: bool | None = None
        self._model = ""
        self.capabilities = frozenset({Capability.RECORDING})
        if not recording:
            # Asked of the device at open: a D405 has no projector, and a camera that is not
            # there is DRV_DEVICE_NOT_FOUND now, not at start.
            dev = _find_device(self._target)
            self._usb = rsdev.usb_identity(dev, rs)
            self.capabilities = rsdev.probe_capabilities(dev, rs)
            for key, attr in (("_serial", "serial_number"), ("_name", "name"), ("_firmware", "firmware_version")):
                value = rsdev._info(dev, rs, attr)
                if value:
                    setattr(self, key, value)
            self._model = rsdev.model_of(self._name)

    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(uri=self._parsed.raw, backend="realsense", name=self._name, serial=self._serial,
                          firmware=self._firmware, usb=self._usb, streams=tuple(p.kind.value for p in self._profiles),
                          is_recording=self._recording, note="; ".join(self._notes), metadata_enabled=self._metadata)

    def profiles(self) -> list[StreamProfile]:
        return list(self._profiles)

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        if src == dst:
            return Extrinsics.identity()
        try:
            return _extrinsics(self._sdk_profiles[src].get_extrinsics_to(self._sdk_profiles[dst]))
        except (KeyError, RuntimeError) as exc:
            raise UnsupportedMode(f"no extrinsics from {src.value} to {dst.value}: {exc}") from None

    def start(self) -> None:
        if self._pipeline is not None:
            return
        if self._closed:
            raise StreamClosed("camera was stopped; open it again")
        pipeline, cfg = rs.pipeline(), rs.config()
        try:
            if self._recording:
                cfg.enable_device_from_file(self._target, repeat_playback=False)
                cfg.enable_all_streams()
            else:
                self._configure_live(cfg)
            profile = pipeline.start(cfg)
        except RuntimeError as exc:
            if self._recording:
                raise RecordingInvalid(f"cannot play {self._target}: {exc}") from None
            raise UnsupportedMode(f"RealSense {self._target}: {exc}") from None
        dev = profile.get_device()
        try:
            self._metadata = bool(dev.is_metadata_enabled())
        except (RuntimeError, AttributeError):
            self._metadata = None
        if self._metadata is False and not self._recording:
            self._notes.append(_METADATA_NOTE)
        if self._recording:
            dev.as_playback().set_real_time(False)
        else:
            for sensor in dev.query_sensors():
                self.monitor.attach(sensor)
                # Global time maps the device clock onto the host clock inside the SDK.
                if sensor.supports(rs.option.global_time_enabled):
                    sensor.set_option(rs.option.global_time_enabled, 1.0 if self._global_time else 0.0)
        for key, attr in (("_serial", rs.camera_info.serial_number), ("_name", rs.camera_info.name),
                          ("_firmware", rs.camera_info.firmware_version)):
            try:
                if dev.supports(attr):
                    setattr(self, key, dev.get_info(attr))
            except RuntimeError:
                pass
        try:
            self._depth_scale = float(dev.first_depth_sensor().get_depth_scale())
        except RuntimeError:
            pass
        self._profiles, self._sdk_profiles = [], {}
        for sp in profile.get_streams():
            kind = _KIND.get(sp.stream_type())
            if (kind is None or (kind is StreamKind.IR and sp.stream_index() not in (0, 1))
                    or kind in self._sdk_profiles):
                continue
            v = sp.as_video_stream_profile()
            intr = _intrinsics(v.get_intrinsics())
            fmt = {rs.format.z16: PixelFormat.Z16, rs.format.y16: PixelFormat.Y16, rs.format.y8: PixelFormat.Y8}.get(
                sp.format(), PixelFormat.BGR8)
            self._sdk_profiles[kind] = sp
            self._profiles.append(StreamProfile(kind, intr.width, intr.height, float(sp.fps()), fmt,
                                                sp.stream_index(), intr))
        if StreamKind.DEPTH not in self._sdk_profiles:
            pipeline.stop()
            raise RecordingInvalid(f"{self._target}: no depth stream") if self._recording else \
                UnsupportedMode("device offers no depth stream")
        try:
            depth_sensor = dev.first_depth_sensor()
        except RuntimeError:
            depth_sensor = None
        depth_width = next(p.width for p in self._profiles if p.kind is StreamKind.DEPTH)
        self._depth_range = rsdev.depth_range_of(depth_sensor, rs, rsdev.model_of(self._name), depth_width)
        self._pipeline = pipeline

    def depth_range(self) -> DepthRange | None:
        """The depth sensor's own ``min_distance``/``max_distance`` options, or the model's
        datasheet range (``realsense_device.depth_range_of``); known once started."""
        return self._depth_range

    def _configure_live(self, cfg) -> None:
        ctx = rs.context()
        dev = _find_device(self._target, ctx)
        usb2 = rsdev.is_usb2(self._usb)
        choice = rsdev.choose_modes(rsdev.offered_modes(dev, rs), usb2=usb2, model=self._model,
                                    distance_m=self._distance_m, ipd_px=self._ipd_px)
        if choice.note:
            self._notes.append(choice.note)
        if usb2:
            self._notes.append(f"USB {self._usb.link if self._usb else '2'} link: modes limited to what USB 2 carries")
        serial = self._target

        def changed(event) -> None:
            if event.was_removed(dev):
                self.monitor.device_removed(f"RealSense {serial} was disconnected")
        ctx.set_devices_changed_callback(changed)
        self._ctx = ctx                          # keep the context (and its callback) alive
        cfg.enable_device(self._target)
        d = choice.depth
        cfg.enable_stream(rs.stream.depth, d.width, d.height, rs.format.z16, d.fps)
        if choice.ir is not None:
            cfg.enable_stream(rs.stream.infrared, 1, d.width, d.height, rs.format.y8, d.fps)
        if choice.color is not None:
            c = choice.color
            cfg.enable_stream(rs.stream.color, c.width, c.height, getattr(rs.format, c.format), c.fps)

    def read(self, timeout_s: float = 1.0) -> Frame:
        with self._lock:
            if self._closed or self._pipeline is None:
                raise StreamClosed("RealSense camera is not streaming")
            if self._lost:
                raise DeviceLost(self._lost)
            self.monitor.check()
            if self._queue:
                return self._queue.popleft()
            pipeline = self._pipeline
        ok, fs = pipeline.try_wait_for_frames(int(max(timeout_s, 0.001) * 1000))
        self.monitor.check()
        if not ok:
            if self._recording:
                raise StreamClosed(f"end of recording {self._target}")
            raise FrameTimeout(f"no RealSense frame within {timeout_s:.3f} s")
        self._enqueue(fs)
        with self._lock:
            if not self._queue:
                raise FrameTimeout("RealSense frameset carried no usable stream")
            return self._queue.popleft()

    def _enqueue(self, fs) -> None:
        self._sets += 1
        host = time.monotonic_ns()
        if self._recording:
            # One synthetic arrival time per SDK frameset (see the module docstring).
            host = int(self._sets * 1e9 / max(1.0, min(p.fps for p in self._profiles)))
        for f in fs:
            kind = _KIND.get(f.profile.stream_type())
            if (kind is None or kind not in self._sdk_profiles
                    or f.profile.unique_id() != self._sdk_profiles[kind].unique_id()):
                continue
            ident = (int(f.get_frame_number()), float(f.get_timestamp()))
            if self._last.get(kind) == ident:
                continue            # the pipeline's syncer repeats a stream's last frame in later framesets
            self._last[kind] = ident
            vf = f.as_video_frame()
            pixels, fmt = _pixels(vf)
            intr = next(p.intrinsics for p in self._profiles if p.kind is kind)
            assert intr is not None         # every profile is made with the SDK's intrinsics (start)
            md = _metadata(f)
            if kind is StreamKind.DEPTH and self._depth_range is not None:
                md = self._depth_range.stamp(md)
            if kind is not StreamKind.COLOR and md.exposure_us is not None and md.gain is not None:
                self._ir_measured = ExposureSetting(float(md.exposure_us), float(md.gain))
            frame = Frame(stream=kind, pixels=pixels, format=fmt, timestamp_ms=float(f.get_timestamp()),
                          clock_domain=_DOMAIN.get(f.get_frame_timestamp_domain(), ClockDomain.SYSTEM),
                          host_time_ns=host, frame_number=int(f.get_frame_number()), intrinsics=intr,
                          index=f.profile.stream_index(), device_serial=self._serial,
                          depth_scale=self._depth_scale if kind is StreamKind.DEPTH else 0.0,
                          metadata=md)
            with self._lock:
                self._queue.append(frame)

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            pipeline, self._pipeline = self._pipeline, None
            self._queue.clear()
        if pipeline is not None:
            try:
                pipeline.stop()
            except RuntimeError:
                pass

    def set_projector(self, on: bool) -> None:
        sensor = self._live_depth_sensor("switch its projector")
        if not sensor.supports(rs.option.emitter_enabled):
            raise CapabilityUnsupported("this RealSense model has no switchable projector")
        sensor.set_option(rs.option.emitter_enabled, 1.0 if on else 0.0)

    def _live_depth_sensor(self, what: str):
        if self._recording or self._pipeline is None:
            raise CapabilityUnsupported(f"a recording cannot {what}")
        return self._pipeline.get_active_profile().get_device().first_depth_sensor()

    def projector_power_range(self) -> ProjectorPowerRange:
        return projector_power_range(self._live_depth_sensor("set its projector's power"))

    def set_projector_power(self, mw: float) -> float:
        return set_projector_power(self._live_depth_sensor("set its projector's power"), mw)

    def lock_exposure(self, stream: StreamKind, setting: ExposureSetting | None = None) -> ExposureSetting:
        """Depth/IR: auto-exposure off at ``setting`` or, without one, at the exposure and gain the
        latest frame reports (the values the auto-exposure had reached), so the image does not jump;
        clamped and snapped to the options' ranges. Colour: not offered (the RGB sensor's exposure
        units differ by model)."""
        sensor = self._exposure_sensor(stream)
        setting, saved = lock_sensor_exposure(sensor, setting or self._ir_measured)
        if self._ir_saved is None:               # a second lock keeps the first state to restore
            self._ir_saved = saved
        return setting

    def unlock_exposure(self, stream: StreamKind) -> None:
        sensor = self._exposure_sensor(stream)
        if self._ir_saved is not None:
            restore_sensor_exposure(sensor, self._ir_saved)
            self._ir_saved = None

    def _exposure_sensor(self, stream: StreamKind):
        if stream is StreamKind.COLOR:
            raise CapabilityUnsupported("RealSense: exposure locks are offered for the depth/IR imager only")
        if not isinstance(stream, StreamKind):
            raise InvalidSetting(f"not a stream: {stream!r}")
        return self._live_depth_sensor("lock its exposure")

    def hardware_reset(self) -> None:
        """Reset the device through a handle of its own (no pipeline needed: the device manager
        resets a device whose stream is already stopped). It drops off the bus and enumerates again;
        the manager waits for it by serial."""
        if self._recording:
            raise CapabilityUnsupported("a recording has no hardware to reset")
        try:
            _find_device(self._target).hardware_reset()
        except DeviceNotFound as exc:
            raise DeviceLost(f"RealSense {self._target}: cannot reset a device that is not there ({exc.message})") \
                from None
        except RuntimeError as exc:
            raise DeviceLost(f"RealSense {self._target}: hardware reset failed: {exc}") from None


def _q_number(parsed: ParsedUri, key: str, default: float, lo: float, hi: float) -> float:
    if key not in parsed.query:
        return default
    try:
        v = float(parsed.query[key])
    except ValueError:
        raise InvalidUri(f"realsense: {key}={parsed.query[key]!r} is not a number") from None
    if not lo <= v <= hi:
        raise InvalidUri(f"realsense: {key} must be within {lo:g}..{hi:g}")
    return v


def _find_device(serial: str, ctx=None):
    """The connected device with this serial, from a context of its own (or ``ctx``)."""
    ctx = ctx or rs.context()
    try:
        devices = list(ctx.query_devices())
        serials = [d.get_info(rs.camera_info.serial_number) for d in devices]
    except RuntimeError as exc:
        raise DeviceNotFound(f"RealSense devices cannot be listed: {exc}") from None
    if serial not in serials:
        raise DeviceNotFound(f"no RealSense device with serial {serial!r} (connected: {serials or 'none'})")
    return devices[serials.index(serial)]


def open_camera(parsed: ParsedUri) -> RealSenseCamera:
    if parsed.scheme == "realsense+file":
        return RealSenseCamera(parsed, recording=True)
    if not parsed.target.strip("/"):
        raise DeviceNotFound("realsense:// needs a serial number, e.g. realsense://123456789012")
    return RealSenseCamera(parsed, recording=False)


def list_devices() -> list[DeviceInfo]:
    out = []
    for d in rs.context().query_devices():
        serial = d.get_info(rs.camera_info.serial_number)
        caps = rsdev.probe_capabilities(d, rs)
        out.append(DeviceInfo(uri=f"realsense://{serial}", backend="realsense", name=d.get_info(rs.camera_info.name),
                              serial=serial, firmware=d.get_info(rs.camera_info.firmware_version),
                              usb=rsdev.usb_identity(d, rs),
                              note="" if Capability.PROJECTOR_CONTROL in caps else "no projector control"))
    return out


def projector_power_range(sensor) -> ProjectorPowerRange:
    """The depth sensor's ``laser_power`` option as a range in mW (D4xx: 0-360 in steps of 30)."""
    if not sensor.supports(rs.option.laser_power):
        raise CapabilityUnsupported("this RealSense model cannot set its projector's power")
    r = sensor.get_option_range(rs.option.laser_power)
    return ProjectorPowerRange(float(r.min), float(r.max), float(r.step), float(r.default))


def set_projector_power(sensor, mw: float) -> float:
    """Set the projector's power, snapped into the sensor's range; returns what was applied."""
    v = projector_power_range(sensor).snap(mw)
    try:
        sensor.set_option(rs.option.laser_power, v)
    except RuntimeError as exc:
        raise CapabilityUnsupported(f"the camera refused projector power {v:g} mW: {exc}") from None
    return v


@dataclass(frozen=True)
class SavedExposure:
    """A sensor's exposure control before a lock: auto-exposure on or off, and its manual values."""
    auto_exposure: float
    exposure: float
    gain: float


def _snap(sensor, option, value: float) -> float:
    r = sensor.get_option_range(option)
    v = min(max(float(value), float(r.min)), float(r.max))
    if r.step > 0:
        v = float(r.min) + round((v - float(r.min)) / float(r.step)) * float(r.step)
    return min(v, float(r.max))


def lock_sensor_exposure(sensor, measured: ExposureSetting | None) -> tuple[ExposureSetting, SavedExposure]:
    """Turn the sensor's auto-exposure off at ``measured`` (or, with no frame seen yet, at its
    current manual values), each value clamped to its option's range and snapped to its step;
    returns what was set and what to restore."""
    options = (rs.option.enable_auto_exposure, rs.option.exposure, rs.option.gain)
    if not all(sensor.supports(o) for o in options):
        raise CapabilityUnsupported("this RealSense sensor has no auto-exposure to lock")
    saved = SavedExposure(*(float(sensor.get_option(o)) for o in options))
    want = measured or ExposureSetting(saved.exposure, saved.gain)
    exposure = _snap(sensor, rs.option.exposure, want.exposure_us)
    gain = _snap(sensor, rs.option.gain, want.gain)
    try:
        # Exposure first: on a D4xx writing it switches auto-exposure off at once, at this value,
        # so no frame is taken at a stale manual exposure in between.
        sensor.set_option(rs.option.exposure, exposure)
        sensor.set_option(rs.option.gain, gain)
        sensor.set_option(rs.option.enable_auto_exposure, 0.0)
    except RuntimeError as exc:
        raise CapabilityUnsupported(f"the camera refused the exposure lock: {exc}") from None
    return ExposureSetting(exposure, gain), saved


def restore_sensor_exposure(sensor, saved: SavedExposure) -> None:
    """Put back the exposure control a lock replaced: the manual values, then auto-exposure."""
    try:
        sensor.set_option(rs.option.exposure, saved.exposure)
        sensor.set_option(rs.option.gain, saved.gain)
        sensor.set_option(rs.option.enable_auto_exposure, saved.auto_exposure)
    except RuntimeError as exc:
        raise CapabilityUnsupported(f"the camera refused to restore its exposure control: {exc}") from None
