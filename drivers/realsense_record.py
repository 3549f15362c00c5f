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
from .frame import DistortionModel, Extrinsics, Frame, Intrinsics, PixelFormat, StreamKind

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


class Recorder:
    """Frames in, a RealSense recording out: ``write`` each frame of ``camera``'s streams as it is
    read, ``close`` to finish the file. The camera's profiles must be valid (it is started)."""

    def __init__(self, camera: Camera, path: str, *, depth_scale: float | None = None):
        profiles = {p.kind: p for p in camera.profiles() if p.kind in _STREAM}
        self._dev = dev = rs.software_device()
        self._sensors: dict[StreamKind, rs.software_sensor] = {}
        self._profiles: dict[StreamKind, rs.video_stream_profile] = {}
        # Depth and IR come from one imager: one "Stereo Module" sensor; color is its own sensor.
        self._stereo = dev.add_sensor("Stereo Module")
        rgb = dev.add_sensor("RGB Camera") if StreamKind.COLOR in profiles else None
        uid = 1
        for kind, p in profiles.items():
            sensor = rgb if kind is StreamKind.COLOR else self._stereo
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
            self._profiles[kind] = sensor.add_video_stream(vs).as_video_stream_profile()
            self._sensors[kind] = sensor
        kinds = list(self._profiles)
        for i, a in enumerate(kinds):
            for b in kinds[i + 1:]:
                self._profiles[a].register_extrinsics_to(self._profiles[b], rs_extrinsics(camera.extrinsics(a, b)))
        dev.register_info(rs.camera_info.serial_number, camera.info.serial or "000000000000")
        dev.register_info(rs.camera_info.name, f"capture-agent recording of {camera.info.name}")
        self.kinds = tuple(kinds)
        self.written = 0
        self._scale = depth_scale
        self._rec = rs.recorder(path, dev)
        self._queue = rs.frame_queue(1000)
        self._started: set[int] = set()
        self._first_depth = True
        opened: set[int] = set()
        for kind in kinds:
            s = self._sensors[kind]
            if id(s) not in opened:
                s.open([self._profiles[k] for k in kinds if self._sensors[k] is s])
                opened.add(id(s))

    def write(self, f: Frame) -> bool:
        """Record one frame; False for a stream the recording does not carry."""
        if f.stream not in self._profiles:
            return False
        sensor = self._sensors[f.stream]
        if f.stream is StreamKind.DEPTH and self._first_depth:
            self._scale = self._scale or f.depth_scale
            self._stereo.add_read_only_option(rs.option.depth_units, self._scale)
            # The recorded camera's depth range, as a device that reports one does: playback (and
            # the agent's range checks) then see the range of the camera that was recorded.
            if f.metadata.depth_min_m is not None:
                self._stereo.add_read_only_option(rs.option.min_distance, f.metadata.depth_min_m)
            if f.metadata.depth_max_m is not None:
                self._stereo.add_read_only_option(rs.option.max_distance, f.metadata.depth_max_m)
            self._first_depth = False
        if id(sensor) not in self._started:
            sensor.start(self._queue)
            self._started.add(id(sensor))
        sf = rs.software_video_frame()
        _, bpp = _FMT[f.format]
        sf.pixels = bytearray(np.ascontiguousarray(f.pixels).tobytes())
        sf.stride = f.width * bpp
        sf.bpp = bpp
        sf.timestamp = f.timestamp_ms
        sf.domain = rs.timestamp_domain.hardware_clock
        sf.frame_number = f.frame_number
        sf.profile = self._profiles[f.stream]
        if f.stream is StreamKind.DEPTH:
            sf.depth_units = self._scale
        sensor.on_video_frame(sf)
        self.written += 1
        while self._queue.poll_for_frame():
            pass
        return True

    def close(self) -> None:
        for s in {id(v): v for v in self._sensors.values()}.values():
            try:
                s.stop()
            except RuntimeError:
                pass
            try:
                s.close()
            except RuntimeError:
                pass
        del self._rec                                  # the recorder finishes the file when released


def record_camera(camera: Camera, path: str, n_ticks: int, *, depth_scale: float | None = None) -> int:
    """Record ``n_ticks`` frames per stream of a started ``camera`` into ``path``; returns frames written."""
    rec = Recorder(camera, path, depth_scale=depth_scale)
    seen = {k: 0 for k in rec.kinds}
    try:
        while min(seen.values()) < n_ticks:
            f = camera.read(timeout_s=5.0)
            if f.stream in seen and seen[f.stream] < n_ticks and rec.write(f):
                seen[f.stream] += 1
    finally:
        rec.close()
    return rec.written
