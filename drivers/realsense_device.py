"""What a RealSense device is, asked of the device itself: USB identity and link, capabilities,
and the stream modes to run it in. Pure functions over pyrealsense2 device objects, so they run
on ``rs.software_device`` here and on real cameras unchanged.

Mode choice (``choose_modes``). Depth must meet T/IIFAA 3001.1 §7.5 h (≥ 640×400, ≥ 10 fps); IR is
the left imager at depth's mode (one imager, one mode). Colour is chosen for the face: the inter-pupil
distance (63 mm) must cover ``ipd_px`` pixels (§7.4: ≥ 60) at the working distance, which depends on
the colour lens: a D455's wide colour lens at 640×480 keeps 60 px only to about 0.4 m, a D435's to
about 0.5 m. The smallest colour mode that keeps it is taken (least USB bandwidth), at depth's frame
rate, lowering the rate before settling for a colour mode too small for the face. On a USB 2 link
the three streams must fit what USB 2 carries (``USB2_BUDGET``), so lower rates and smaller colour
modes are tried before a mode is refused; the link is read from the device
(``usb_type_descriptor``), never assumed.

Per-model table (``MODELS``): the colour lens's nominal horizontal field of view, used only when
the device does not report a colour mode's intrinsics, and whether the model has a projector. The
authority on the projector is the device's own option list (``probe_capabilities``): a D405 has no
``emitter_enabled`` and is reported without projector control.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import modes
from .base import Capability, DepthRange, UsbIdentity
from .errors import InvalidSetting
from .frame import StreamKind
from .modes import USB2_BUDGET, Choice, Mode

__all__ = ["USB2_BUDGET", "Choice", "Mode", "MODELS", "choose_modes", "model_of", "usb_identity", "is_usb2",
           "probe_capabilities", "offered_modes", "bus_path_from_port", "DEPTH_SPECS", "depth_range_of"]

INTEL_VID = 0x8086


@dataclass(frozen=True)
class ModelInfo:
    color_hfov_deg: float           # nominal; a device's own intrinsics win
    projector: bool


MODELS = {
    "D405": ModelInfo(87.0, False),     # colour from the depth imagers; no projector, IR-cut filter
    "D415": ModelInfo(69.4, True),
    "D435": ModelInfo(69.4, True),      # also D435i/D435f
    "D455": ModelInfo(90.0, True),      # also D455f/D456
    "D456": ModelInfo(90.0, True),
    "D457": ModelInfo(90.0, True),      # the D450 module (D455's optics) on GMSL (librealsense #10964)
}


@dataclass(frozen=True)
class DepthSpec:
    """A model's documented depth range (Intel RealSense D400 Series datasheet, 337029): the
    minimum Z at the 848x480 and 1280x720 depth modes (the disparity search covers a fixed number of
    pixels, so the nearest measurable distance grows with the depth resolution), and the far end of
    its ideal range (None where the camera measures on beyond it)."""
    min_z_848_m: float
    min_z_1280_m: float
    max_m: float | None


DEPTH_SPECS = {
    "D405": DepthSpec(0.07, 0.10, None),    # ideal 7-50 cm, but it measures (noisily) further
    "D415": DepthSpec(0.31, 0.45, 3.0),
    "D435": DepthSpec(0.195, 0.28, 3.0),
    "D455": DepthSpec(0.42, 0.52, 6.0),
    "D456": DepthSpec(0.42, 0.52, 6.0),
    "D457": DepthSpec(0.42, 0.52, 6.0),     # the D450 module: ~52 cm at max resolution, ideal to 6 m
}


def depth_range_of(sensor: Any, rs: Any, model: str, depth_width: int) -> DepthRange | None:
    """The depth sensor's range: its own ``min_distance``/``max_distance`` options where it has
    them (metres), else the model's datasheet range at this depth width; None for a model the table
    does not know (no claim is made then)."""
    own: dict[str, float | None] = {}
    for key in ("min_distance", "max_distance"):
        own[key] = None
        option = getattr(rs.option, key, None)
        try:
            if sensor is not None and option is not None and sensor.supports(option):
                own[key] = round(float(sensor.get_option(option)), 4)   # float32 option: to 0.1 mm
        except RuntimeError:
            pass
    lo, hi = own["min_distance"], own["max_distance"]
    if lo is not None and lo <= 0:
        lo = None                                # 0: no minimum stated
    if lo is not None or hi is not None:
        try:
            return DepthRange(lo, hi, "the depth sensor's min_distance/max_distance options")
        except InvalidSetting:
            pass                                 # nonsense from the device: fall back to the datasheet
    spec = DEPTH_SPECS.get(model)
    if spec is None or depth_width <= 0:
        return None
    if depth_width <= 848:
        z = spec.min_z_848_m * depth_width / 848
    else:
        z = spec.min_z_848_m + (spec.min_z_1280_m - spec.min_z_848_m) * (min(depth_width, 1280) - 848) / (1280 - 848)
    return DepthRange(round(z, 3), spec.max_m, f"{model} datasheet at {depth_width} px wide depth")


def model_of(name: str) -> str:
    """``"Intel RealSense D435I"`` → ``"D435"`` (the table's key), or ``""``."""
    m = re.search(r"D4\d\d", name.upper())
    return m.group(0) if m else ""


def choose_modes(offered: list[Mode], *, usb2: bool, model: str = "", distance_m: float = modes.WORKING_DISTANCE_M,
                 ipd_px: float = modes.MIN_IPD_PX, want_color: bool = True, want_ir: bool = True) -> Choice:
    """The modes to stream for this model (see the module doc and ``drivers/modes.py``)."""
    info = MODELS.get(model, ModelInfo(70.0, True))
    return modes.choose_modes(offered, usb2=usb2, color_hfov_deg=info.color_hfov_deg, distance_m=distance_m,
                              ipd_px=ipd_px, want_color=want_color, want_ir=want_ir, ir_index=1)


# -- asking the device ---------------------------------------------------------------------------------
def _info(dev: Any, rs: Any, key: str) -> str:
    attr = getattr(rs.camera_info, key)
    try:
        return str(dev.get_info(attr)) if dev.supports(attr) else ""
    except RuntimeError:
        return ""


_BUS_PATH = re.compile(r"/(\d+-\d+(?:\.\d+)*)(?=[:/]|$)")


def bus_path_from_port(port: str) -> str:
    """The USB device's ``bus-port.port`` from librealsense's ``physical_port`` (a sysfs path on
    Linux: ``.../usb2/2-3/2-3.1/2-3.1:1.0/video4linux/video0`` → ``2-3.1``)."""
    hits = _BUS_PATH.findall(port or "")
    return hits[-1] if hits else ""


def usb_identity(dev: Any, rs: Any) -> UsbIdentity | None:
    """The device's USB identity, from what it reports; None when it is not a USB device."""
    pid_text = _info(dev, rs, "product_id")
    port = _info(dev, rs, "physical_port")
    if not pid_text or not port:
        return None
    try:
        pid = int(pid_text, 16)
    except ValueError:
        return None
    return UsbIdentity(INTEL_VID, pid, _info(dev, rs, "serial_number"), 0, bus_path_from_port(port),
                       _info(dev, rs, "usb_type_descriptor"))


def is_usb2(identity: UsbIdentity | None) -> bool:
    return identity is not None and identity.link.startswith("2")


def probe_capabilities(dev: Any, rs: Any) -> frozenset[Capability]:
    """What this device can do, from its own option list: the depth sensor's ``emitter_enabled``
    (projector on/off), ``laser_power`` (projector power), ``enable_auto_exposure`` with
    ``exposure`` and ``gain`` (the IR/depth imager's exposure lock: the options the lock sets). No
    colour exposure lock: ``RealSenseCamera.lock_exposure`` refuses the colour imager (its exposure
    units differ by model). A live device can always be reset."""
    caps = {Capability.HARDWARE_RESET}
    try:
        sensor = dev.first_depth_sensor()
    except RuntimeError:
        return frozenset(caps)
    for options, cap in (((rs.option.emitter_enabled,), Capability.PROJECTOR_CONTROL),
                         ((rs.option.laser_power,), Capability.PROJECTOR_POWER),
                         ((rs.option.enable_auto_exposure, rs.option.exposure, rs.option.gain),
                          Capability.EXPOSURE_LOCK_IR)):
        try:
            if all(sensor.supports(o) for o in options):
                caps.add(cap)
        except RuntimeError:
            pass
    return frozenset(caps)


def offered_modes(dev: Any, rs: Any) -> list[Mode]:
    """Every video mode the device offers, with colour focal lengths where the device reports them."""
    kinds = {rs.stream.depth: StreamKind.DEPTH, rs.stream.infrared: StreamKind.IR, rs.stream.color: StreamKind.COLOR}
    out = []
    for sensor in dev.query_sensors():
        for p in sensor.get_stream_profiles():
            kind = kinds.get(p.stream_type())
            if kind is None or not p.is_video_stream_profile():
                continue
            v = p.as_video_stream_profile()
            fx = 0.0
            if kind is StreamKind.COLOR:
                try:
                    fx = float(v.get_intrinsics().fx)
                except RuntimeError:
                    fx = 0.0
            out.append(Mode(kind, v.width(), v.height(), int(p.fps()), str(p.format()).split(".")[-1],
                            p.stream_index(), fx))
    return out
