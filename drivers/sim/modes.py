"""Stream modes of the simulated depth/IR imager: ``WxH@FPS`` and the intrinsics of each.

A D4xx is calibrated once, at its imager's native rectified resolution (1280x800 on a D435). Every
other depth/IR resolution is the centred crop of that image with the mode's aspect ratio, scaled to
the mode's size: the factory writes those per-resolution parameters into the calibration table and
librealsense reads them back per resolution (``get_intrinsic_by_resolution_coefficients_table``).
So 640x480 uses the full 800 rows scaled by 0.6, 848x480 a 1280x724 crop scaled by 0.6625.

Colour modes derive from the colour module's native calibration the same way (``COLOR_NATIVE_SIZE``:
a D455's colour is calibrated at 1280x800, so its 640x480 is that image scaled by 0.6 and its
1280x720 the centred 1280x720 crop, unscaled). Which colour mode streams is chosen as a RealSense or
Orbbec driver chooses it (``drivers.modes.choose_color``, the rule inside ``choose_modes``): the
smallest mode, at the colour frame rate, that keeps 60 px between the eyes at the working distance
(0.6 m), unless the URI forces one with ``color_mode=WxH@FPS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import modes as driver_modes
from ..errors import InvalidUri
from ..frame import Intrinsics, StreamKind
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
               "astra": (640, 480),      # 320x240 is the 640x480 image binned
               "gemini335": (1280, 800),  # [G335] in profiles.py
               "gemini2": (1280, 800),    # [G2-SEEED] in profiles.py
               "gemini336l": (1280, 800),  # [G336L] in profiles.py
               "astra_mini_s": (640, 480),  # [AMS] in profiles.py: QVGA is the VGA image binned
               "gemini2l": (1280, 800),   # [G2L-KB] in profiles.py
               "gemini335l": (1280, 800),  # [G335L] in profiles.py
               "gemini336": (1280, 800),  # [G336-SEEED] in profiles.py
               "d435f": (1280, 800),  # [DS], as the D435 ([D435F] in profiles.py)
               "d455f": (1280, 800),  # [DS], as the D455 ([D455F] in profiles.py)
               "d457": (1280, 800),  # [D457]: the D450 module's OV9282 imagers, as the D455
               "d456": (1280, 800),  # [D456]: the D455's OV9282 imagers
               "gemini335le": (1280, 800),  # [G335LE]: the 335L's imagers
               "gemini330": (1280, 800),  # [G330]: the 335's imagers
               "d436": (1280, 800),  # [D436]: as the D435
               "gemini335lg": (1280, 800),  # [G335LG]: the 335L's imagers
               "gemini215": (1280, 800),  # [G215]: as the Gemini 2
               "gemini305": (1280, 800),  # [G305-SEEED]: depth up to 1280x800
               "gemini210": (1280, 800),  # [G210]: as the Gemini 2 (recalled)
               "d555": (1280, 800),  # [D555]: the D455's imagers (recalled)
               "d435if": (1280, 800)}  # [D435IF]: the D435's imagers


# Native size of each profile's colour calibration (the image every colour mode is a crop and scale of).
COLOR_NATIVE_SIZE = {"d435": (1920, 1080), "d415": (1920, 1080),   # OV2740: 640x480 is a 1440x1080 crop x 0.444
                     "d455": (1280, 800),      # OV9782, [D455-CAL] in profiles.py
                     "d405": (1280, 800),      # colour is the left depth imager's image
                     "astra": (1280, 960),     # typical: a 1280x960 sensor, 640x480 binned, 1280x720 cropped
                     # [G336-SEEED]: the sensor is 16:9 1920x1080 (86°x55°); the profile's colour calibration
                     # is kept at 1280x800 (86° across, so 1280x720 and 1920x1080, its centred crop at
                     # x1 and x1.5, have the sensor's 86°x55°; the 16:10 and 4:3 modes see 60° high,
                     # more than the sensor does: kept, the sessions drawn with them unchanged)
                     "gemini335": (1280, 800),
                     "gemini2": (1920, 1080),   # [G2-SEEED]: colour up to 1920x1080
                     "gemini336l": (1280, 800),  # [G336L]: a 1280x800 colour sensor
                     "astra_mini_s": (1280, 960),  # typical: a 1.2 MP sensor, VGA binned, HD cropped
                     "gemini2l": (1920, 1080),  # [G2L-KB]: an 86°x55° (16:9) field; 1920x1080 modelled
                     "gemini335l": (1280, 800),  # [G335L]: the 336L's 1280x800 colour sensor
                     "gemini336": (1280, 800),  # [G336-SEEED]: as the Gemini 335's (kept at 1280x800, as gemini335)
                     "d435f": (1920, 1080),  # [D435F]: the D435's OV2740 colour module
                     "d455f": (1280, 800),  # [D455F]: the D455's OV9782 colour module
                     "d457": (1280, 800),  # [D457]: the D450 module's OV9782 colour sensor
                     "d456": (1280, 800),  # [D456]: the D455's OV9782 colour sensor
                     "gemini335le": (1280, 800),  # [G335LE]: the 335L's colour sensor
                     "gemini330": (1280, 800),  # [G330]: as the 335 (its calibration kept at 1280x800)
                     "d436": (1920, 1080),  # [D436]: the D435's OV2740 colour module
                     "gemini335lg": (1280, 800),  # [G335LG]: the 335L's colour sensor
                     "gemini215": (1920, 1080),  # [G215]: as the Gemini 2's
                     "gemini305": (1280, 800),  # [G305-SEEED]: colour up to 1280x800
                     "gemini210": (1920, 1080),  # [G210]: as the Gemini 2's (recalled)
                     "d555": (1280, 800),  # [D555]: the D455's OV9782 (recalled)
                     "d435if": (1920, 1080)}  # [D435IF]: the D435's OV2740 colour module


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


def offered_color_modes(profile: CameraProfile) -> dict[tuple[int, int], tuple[float, ...]]:
    """Colour modes a profile offers: resolution -> frame rates."""
    out: dict[tuple[int, int], list[float]] = {}
    for kind, w, h, f in sorted(profile.stream_modes):
        if kind == "color":
            out.setdefault((w, h), []).append(float(f))
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _listed(offered: dict[tuple[int, int], tuple[float, ...]]) -> str:
    return ", ".join(f"{w}x{h}@{'/'.join(f'{r:g}' for r in rs)}" for (w, h), rs in offered.items())


def color_rate(requested: float | None, fps: float, profile: CameraProfile) -> float:
    """The colour frame rate when no ``color_mode`` is forced: ``color_fps`` when given (a rate the
    camera offers for some colour mode), else the URI's ``fps``."""
    if requested is None:
        return fps
    rates = sorted({r for rs in offered_color_modes(profile).values() for r in rs})
    if requested not in rates:
        raise InvalidUri(f"sim://: color_fps {requested:g} is not offered by the {profile.model} "
                         f"(offered: {', '.join(f'{r:g}' for r in rates)})")
    return requested


def color_intrinsics(profile: CameraProfile, width: int, height: int) -> Intrinsics:
    """Intrinsics of a colour mode of a profile, derived from its native colour calibration."""
    base = profile.color_intrinsics
    if (width, height) == (base.width, base.height):
        return base
    native = native_from_mode(base, *COLOR_NATIVE_SIZE.get(profile.name, (base.width, base.height)))
    return rectified_intrinsics(native, width, height)


@dataclass(frozen=True)
class ColorChoice:
    mode: StreamMode
    intrinsics: Intrinsics
    why: str                 # how the mode was arrived at, for the camera's info note


def color_mode(text: str, color_fps: float | None, fps: float, profile: CameraProfile) -> ColorChoice:
    """The colour mode to stream: ``text`` (``color_mode=WxH@FPS``, checked against the modes the
    camera offers), else the driver's choice (``drivers.modes.choose_color``) among the modes offered
    at the colour rate (``color_rate``); a rate no colour mode offers (the simulator allows any
    ``fps``) chooses among every offered size at that rate."""
    offered = offered_color_modes(profile)
    if text:
        mode = StreamMode.parse(text)
        if mode.fps not in offered.get((mode.width, mode.height), ()):
            raise InvalidUri(f"sim://: color_mode {mode} is not offered by the {profile.model} "
                             f"(offered: {_listed(offered)})")
        if color_fps is not None and color_fps != mode.fps:
            raise InvalidUri(f"sim://: color_fps {color_fps:g} contradicts color_mode {mode}; give one of them")
        return ColorChoice(mode, color_intrinsics(profile, mode.width, mode.height), "forced by color_mode")
    rate = color_rate(color_fps, fps, profile)
    sizes = [wh for wh, rates in offered.items() if rate in rates] or list(offered)
    # Focal lengths as the device reports them per mode; the rate is the one the session runs at.
    candidates = [driver_modes.Mode(StreamKind.COLOR, w, h, round(rate), "bgr8",
                                    fx=color_intrinsics(profile, w, h).fx) for w, h in sizes]
    chosen, note = driver_modes.choose_color(candidates)
    mode = StreamMode(chosen.width, chosen.height, rate)
    why = note or (f"the smallest keeping {driver_modes.MIN_IPD_PX:g} px between the eyes at "
                   f"{driver_modes.WORKING_DISTANCE_M:g} m")
    return ColorChoice(mode, color_intrinsics(profile, mode.width, mode.height), why)


def depth_intrinsics(profile: CameraProfile, mode: StreamMode) -> Intrinsics:
    """Intrinsics of a depth/IR mode of a profile, derived from its native rectified calibration."""
    base = profile.depth_intrinsics
    if (mode.width, mode.height) == (base.width, base.height):
        return base
    native = native_from_mode(base, *NATIVE_SIZE.get(profile.name, (1280, 800)))
    return rectified_intrinsics(native, mode.width, mode.height)
