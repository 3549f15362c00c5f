"""Stream modes of the simulated depth/IR imager: ``WxH@FPS`` and the intrinsics of each.

A D4xx is calibrated once, at its imager's native rectified resolution (1280x800 on a D435). Every
other depth/IR resolution is the centred crop of that image with the mode's aspect ratio, scaled to
the mode's size: the factory writes those per-resolution parameters into the calibration table and
librealsense reads them back per resolution (``get_intrinsic_by_resolution_coefficients_table``).
So 640x480 uses the full 800 rows scaled by 0.6, 848x480 a 1280x724 crop scaled by 0.6625.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidUri
from ..frame import Intrinsics
from .profiles import CameraProfile

_MODE = re.compile(r"^\s*(\d{2,5})\s*x\s*(\d{2,5})\s*@\s*(\d{1,3}(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class StreamMode:
    width: int
    height: int
    fps: float

    @classmethod
    def parse(cls, text: str) -> StreamMode:
        m = _MODE.match(text)
        if m is None:
            raise InvalidUri(f"sim://: a stream mode is WIDTHxHEIGHT@FPS (e.g. 848x480@90), not {text!r}")
        return cls(int(m.group(1)), int(m.group(2)), float(m.group(3)))

    def __str__(self) -> str:
        return f"{self.width}x{self.height}@{self.fps:g}"


def rectified_intrinsics(native: Intrinsics, width: int, height: int) -> Intrinsics:
    """The intrinsics of a depth/IR mode, from the native rectified calibration: centred crop to the
    mode's aspect ratio, then a uniform scale (pixel centres at +0.5, as librealsense counts them)."""
    s = max(width / native.width, height / native.height)
    crop_w, crop_h = width / s, height / s
    off_x, off_y = (native.width - crop_w) / 2, (native.height - crop_h) / 2
    return Intrinsics(width, height, native.fx * s, native.fy * s,
                      (native.ppx + 0.5 - off_x) * s - 0.5, (native.ppy + 0.5 - off_y) * s - 0.5,
                      native.model, native.coeffs)


def native_from_mode(mode_intrinsics: Intrinsics, native_width: int, native_height: int) -> Intrinsics:
    """The native rectified calibration that a given mode's intrinsics were derived from (the
    inverse of :func:`rectified_intrinsics`)."""
    i = mode_intrinsics
    s = max(i.width / native_width, i.height / native_height)
    off_x, off_y = (native_width - i.width / s) / 2, (native_height - i.height / s) / 2
    return Intrinsics(native_width, native_height, i.fx / s, i.fy / s,
                      (i.ppx + 0.5) / s - 0.5 + off_x, (i.ppy + 0.5) / s - 0.5 + off_y, i.model, i.coeffs)


# Native rectified size of each profile's depth imager (the calibration every mode derives from).
NATIVE_SIZE = {"d435": (1280, 800), "d455": (1280, 800), "d405": (1280, 800),
               "d415": (1920, 1080),     # OV2740 imagers: 1920x1080, depth up to 1280x720
               "astra": (640, 480)}      # 320x240 is the 640x480 image binned


def offered_depth_modes(profile: CameraProfile) -> dict[tuple[int, int], tuple[float, ...]]:
    """Depth/IR modes a profile offers: resolutions and rates where both depth and IR stream (one
    imager gives both)."""
    depth = {(w, h, f) for kind, w, h, f in profile.stream_modes if kind == "depth"}
    ir = {(w, h, f) for kind, w, h, f in profile.stream_modes if kind == "ir"}
    out: dict[tuple[int, int], list[float]] = {}
    for w, h, f in sorted(depth & ir):
        out.setdefault((w, h), []).append(float(f))
    return {k: tuple(v) for k, v in out.items()}


def depth_mode(text: str, fps: float, profile: CameraProfile) -> StreamMode:
    """The depth/IR mode a URI asks for: ``text`` (``WxH@FPS``, checked against the modes the camera
    offers) or, when empty, 640x480 at the URI's ``fps`` (any rate, as the simulator always allowed)."""
    if not text:
        return StreamMode(640, 480, fps)
    mode = StreamMode.parse(text)
    offered = offered_depth_modes(profile)
    if mode.fps not in offered.get((mode.width, mode.height), ()):
        listed = ", ".join(f"{w}x{h}@{'/'.join(f'{r:g}' for r in rs)}" for (w, h), rs in offered.items())
        raise InvalidUri(f"sim://: depth_mode {mode} is not offered by the {profile.model} (offered: {listed})")
    return mode


def color_rate(requested: float | None, fps: float, profile: CameraProfile) -> float:
    """The colour frame rate: ``color_fps`` when given (a rate the camera offers for 640x480 colour),
    else the URI's ``fps``."""
    if requested is None:
        return fps
    rates = sorted({float(f) for kind, w, h, f in profile.stream_modes if kind == "color" and (w, h) == (640, 480)})
    if requested not in rates:
        raise InvalidUri(f"sim://: color_fps {requested:g} is not offered by the {profile.model} at 640x480 "
                         f"(offered: {', '.join(f'{r:g}' for r in rates)})")
    return requested


def depth_intrinsics(profile: CameraProfile, mode: StreamMode) -> Intrinsics:
    """Intrinsics of a depth/IR mode of a profile, derived from its native rectified calibration."""
    base = profile.depth_intrinsics
    if (mode.width, mode.height) == (base.width, base.height):
        return base
    native = native_from_mode(base, *NATIVE_SIZE.get(profile.name, (1280, 800)))
    return rectified_intrinsics(native, mode.width, mode.height)
