"""Camera drivers: open any source by URI and get immutable Frames.

    cam = drivers.open("sim://?subject=live&lux=300")
    with cam:
        frame = cam.read(timeout_s=1.0)

``drivers`` knows devices and nothing else; it never imports ``agent``.
"""

from .base import (
    Camera,
    Capability,
    DepthRange,
    DeviceInfo,
    ExposureSetting,
    ParsedUri,
    ProjectorPowerRange,
    UsbIdentity,
    backends,
    list_devices,
    open,
    parse_uri,
    register_backend,
)
from .errors import *  # noqa: F401,F403 - the typed errors are part of the public API
from .frame import (
    ClockDomain,
    DistortionModel,
    Extrinsics,
    Frame,
    FrameHeader,
    FrameMetadata,
    FrameSet,
    Intrinsics,
    PixelFormat,
    StreamKind,
    StreamProfile,
)

# Backends register by scheme; their modules (and vendor SDKs) load on first use.
register_backend("sim", "drivers.sim", ("sim",), "simulated RGB-IR-depth camera (embedded default)")
register_backend("openni", "drivers.openni", ("openni", "openni+file"),
                 "OpenNI2 depth cameras (Orbbec, PrimeSense) and .oni recordings")
register_backend("uvc", "drivers.uvc", ("uvc", "uvc+file"), "UVC RGB/IR cameras (V4L2) and video files (OpenCV)")
register_backend("realsense", "drivers.realsense", ("realsense", "realsense+file"),
                 "Intel RealSense D4xx devices and .db3/.bag recordings")
register_backend("orbbec", "drivers.orbbec", ("orbbec", "orbbec+file"),
                 "Orbbec cameras on Orbbec SDK v2 (Gemini 330/2, Femto, Astra 2) and their .bag recordings")

__all__ = [
    "Camera", "Capability", "DepthRange", "DeviceInfo", "ExposureSetting", "ProjectorPowerRange", "ParsedUri",
    "UsbIdentity",
    "backends", "list_devices", "open", "parse_uri", "register_backend", "ClockDomain", "DistortionModel",
    "Extrinsics", "Frame", "FrameHeader", "FrameMetadata", "FrameSet", "Intrinsics", "PixelFormat", "StreamKind",
    "StreamProfile",
]
