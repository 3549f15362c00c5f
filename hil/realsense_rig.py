"""Feed our frames into librealsense through ``rs.software_device`` (tests and benchmarks).

This drives the real SDK: its syncer, ``rs.align`` and recorder see frames exactly as if a device
had produced them, with our intrinsics, extrinsics, depth units and timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyrealsense2 as rs

from drivers.frame import DistortionModel, Extrinsics, Intrinsics

_RS_MODEL = {
    DistortionModel.NONE: rs.distortion.none,
    DistortionModel.BROWN_CONRADY: rs.distortion.brown_conrady,
    DistortionModel.INVERSE_BROWN_CONRADY: rs.distortion.inverse_brown_conrady,
    DistortionModel.MODIFIED_BROWN_CONRADY: rs.distortion.modified_brown_conrady,
    DistortionModel.KANNALA_BRANDT4: rs.distortion.kannala_brandt4,
}


def rs_intrinsics(i: Intrinsics) -> rs.intrinsics:
    out = rs.intrinsics()
    out.width, out.height = i.width, i.height
    out.fx, out.fy, out.ppx, out.ppy = i.fx, i.fy, i.ppx, i.ppy
    out.model = _RS_MODEL[i.model]
    out.coeffs = list(i.coeffs)
    return out


def rs_extrinsics(e: Extrinsics) -> rs.extrinsics:
    out = rs.extrinsics()
    out.rotation = list(e.R.T.reshape(9))       # librealsense stores rotation column-major
    out.translation = list(e.translation)
    return out


@dataclass
class SoftwareRig:
    device: rs.software_device
    depth_sensor: rs.software_sensor
    color_sensor: rs.software_sensor
    depth_profile: rs.video_stream_profile
    color_profile: rs.video_stream_profile
    sink: rs.syncer
    depth_scale: float
    n: int = 0

    def push(self, depth_u16: np.ndarray, color_bgr: np.ndarray, ts_ms: float) -> rs.composite_frame | None:
        """Feed one depth+color pair; return the syncer's frameset holding both, or None if it
        has not paired them (the syncer needs a frame or two to learn the streams)."""
        self.n += 1
        for sensor, profile, px, bpp in ((self.depth_sensor, self.depth_profile, depth_u16, 2),
                                         (self.color_sensor, self.color_profile, color_bgr, 3)):
            f = rs.software_video_frame()
            f.pixels = bytearray(np.ascontiguousarray(px).tobytes())   # the SDK keeps this buffer
            f.stride = px.shape[1] * bpp
            f.bpp = bpp
            f.timestamp = ts_ms
            f.domain = rs.timestamp_domain.hardware_clock
            f.frame_number = self.n
            f.profile = profile
            sensor.on_video_frame(f)
        found = None
        while True:
            f = self.sink.poll_for_frame()
            if not f:
                return found
            fs = rs.composite_frame(f)
            if fs and fs.size() == 2:
                found = fs

    def pair(self, depth_u16: np.ndarray, color_bgr: np.ndarray) -> rs.composite_frame:
        """Push the same pair until the syncer returns it as one frameset."""
        for _ in range(40):
            fs = self.push(depth_u16, color_bgr, 1000.0 + 33.3 * self.n)
            if fs is not None:
                return fs
        raise RuntimeError("librealsense syncer did not pair depth and color")

    def close(self) -> None:
        for s in (self.depth_sensor, self.color_sensor):
            s.stop()
            s.close()


def make_rig(depth_intr: Intrinsics, color_intr: Intrinsics, depth_to_color: Extrinsics,
             depth_scale: float, fps: int = 30) -> SoftwareRig:
    dev = rs.software_device()
    dev.create_matcher(rs.matchers.default)      # before the sensors exist, as the SDK's own tests do
    ds = dev.add_sensor("Depth")
    cs = dev.add_sensor("Color")
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid = rs.stream.depth, 0, 1
    vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = depth_intr.width, depth_intr.height, fps, 2, rs.format.z16
    vs.intrinsics = rs_intrinsics(depth_intr)
    dp = ds.add_video_stream(vs).as_video_stream_profile()
    ds.add_read_only_option(rs.option.depth_units, depth_scale)
    cv = rs.video_stream()
    cv.type, cv.index, cv.uid = rs.stream.color, 0, 2
    cv.width, cv.height, cv.fps, cv.bpp, cv.fmt = color_intr.width, color_intr.height, fps, 3, rs.format.bgr8
    cv.intrinsics = rs_intrinsics(color_intr)
    cp = cs.add_video_stream(cv).as_video_stream_profile()
    dp.register_extrinsics_to(cp, rs_extrinsics(depth_to_color))
    sink = rs.syncer(100)                          # the default queue of 1 would drop framesets
    ds.open(dp)
    cs.open(cp)
    ds.start(sink)
    cs.start(sink)
    return SoftwareRig(dev, ds, cs, dp, cp, sink, depth_scale)
