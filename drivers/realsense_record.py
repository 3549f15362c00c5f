"""Write any camera's frames into a RealSense recording (``.db3`` or ``.bag``) with librealsense itself.

Frames go through ``rs.software_device`` sensors (depth, IR, color, with our intrinsics, extrinsics,
depth units and timestamps) into ``rs.recorder``. The file is then a genuine RealSense recording:
``realsense+file://`` and every other librealsense tool play it back. Used by tests, by the PAD bench,
and by the explicit non-production record mode — never on a production terminal.
"""

from __future__ import annotations

import numpy as np
import pyrealsense2 as rs

from .base import Camera
from .errors import UnsupportedMode
from .frame import DistortionModel, Extrinsics, Intrinsics, PixelFormat, StreamKind

_RS_MODEL = {
    DistortionModel.NONE: rs.distortion.none,
    DistortionModel.BROWN_CONRADY: rs.distortion.brown_conrady,
    DistortionModel.INVERSE_BROWN_CONRADY: rs.distortion.inverse_brown_conrady,
    DistortionModel.MODIFIED_BROWN_CONRADY: rs.distortion.modified_brown_conrady,
    DistortionModel.KANNALA_BRANDT4: rs.distortion.kannala_brandt4,
}
_FMT = {PixelFormat.Z16: (rs.format.z16, 2), PixelFormat.Y8: (rs.format.y8, 1), PixelFormat.BGR8: (rs.format.bgr8, 3),
        PixelFormat.Y16: (rs.format.y16, 2), PixelFormat.RGB8: (rs.format.rgb8, 3)}
_STREAM = {StreamKind.DEPTH: (rs.stream.depth, 0), StreamKind.IR: (rs.stream.infrared, 1),
           StreamKind.COLOR: (rs.stream.color, 0)}


def rs_intrinsics(i: Intrinsics) -> rs.intrinsics:
    out = rs.intrinsics()
    out.width, out.height, out.fx, out.fy, out.ppx, out.ppy = i.width, i.height, i.fx, i.fy, i.ppx, i.ppy
    out.model = _RS_MODEL[i.model]
    out.coeffs = list(i.coeffs)
    return out


def rs_extrinsics(e: Extrinsics) -> rs.extrinsics:
    out = rs.extrinsics()
    out.rotation = list(e.R.T.reshape(9))        # the SDK stores rotation column-major
    out.translation = list(e.translation)
    return out


def record_camera(camera: Camera, path: str, n_ticks: int, *, depth_scale: float | None = None) -> int:
    """Record ``n_ticks`` frames per stream of a started ``camera`` into ``path``; returns frames written."""
    profiles = {p.kind: p for p in camera.profiles() if p.kind in _STREAM}
    dev = rs.software_device()
    sensors, sdk_profiles = {}, {}
    # Depth and IR come from one imager: one "Stereo Module" sensor; color is its own sensor.
    stereo = dev.add_sensor("Stereo Module")
    rgb = dev.add_sensor("RGB Camera") if StreamKind.COLOR in profiles else None
    uid = 1
    for kind, p in profiles.items():
        sensor = rgb if kind is StreamKind.COLOR else stereo
        assert sensor is not None                 # rgb is added whenever color is among the profiles
        if p.intrinsics is None:
            raise UnsupportedMode(f"{camera.info.uri}: the {kind.value} stream has no intrinsics to record")
        vs = rs.video_stream()
        vs.type, vs.index = _STREAM[kind]
        vs.uid = uid
        uid += 1
        vs.width, vs.height, vs.fps = p.width, p.height, int(round(p.fps))
        vs.fmt, vs.bpp = _FMT[p.format]
        vs.intrinsics = rs_intrinsics(p.intrinsics)
        sdk_profiles[kind] = sensor.add_video_stream(vs).as_video_stream_profile()
        sensors[kind] = sensor
    kinds = list(sdk_profiles)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1:]:
            sdk_profiles[a].register_extrinsics_to(sdk_profiles[b], rs_extrinsics(camera.extrinsics(a, b)))
    dev.register_info(rs.camera_info.serial_number, camera.info.serial or "000000000000")
    dev.register_info(rs.camera_info.name, f"capture-agent recording of {camera.info.name}")
    written = 0
    scale = depth_scale
    rec = rs.recorder(path, dev)
    try:
        queue = rs.frame_queue(1000)
        opened = set()
        for kind in kinds:
            s = sensors[kind]
            if id(s) in opened:
                continue
            s.open([sdk_profiles[k] for k in kinds if sensors[k] is s])
            opened.add(id(s))
        first_depth = True
        started = set()
        seen = {k: 0 for k in kinds}
        while min(seen.values()) < n_ticks:
            f = camera.read(timeout_s=5.0)
            if f.stream not in sdk_profiles or seen[f.stream] >= n_ticks:
                continue
            sensor = sensors[f.stream]
            if f.stream is StreamKind.DEPTH and first_depth:
                scale = scale or f.depth_scale
                stereo.add_read_only_option(rs.option.depth_units, scale)
                first_depth = False
            if id(sensor) not in started:
                sensor.start(queue)
                started.add(id(sensor))
            sf = rs.software_video_frame()
            fmt, bpp = _FMT[f.format]
            sf.pixels = bytearray(np.ascontiguousarray(f.pixels).tobytes())
            sf.stride = f.width * bpp
            sf.bpp = bpp
            sf.timestamp = f.timestamp_ms
            sf.domain = rs.timestamp_domain.hardware_clock
            sf.frame_number = f.frame_number
            sf.profile = sdk_profiles[f.stream]
            if f.stream is StreamKind.DEPTH:
                sf.depth_units = scale
            sensor.on_video_frame(sf)
            seen[f.stream] += 1
            written += 1
            while queue.poll_for_frame():
                pass
    finally:
        for s in {id(v): v for v in sensors.values()}.values():
            try:
                s.stop()
            except RuntimeError:
                pass
            try:
                s.close()
            except RuntimeError:
                pass
        del rec
    return written
