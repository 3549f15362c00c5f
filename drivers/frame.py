"""The frame model shared by every backend.

Drivers produce these immutable values; ``agent/`` consumes them. Pixels are copied out of
SDK-owned buffers before a Frame is built, and the array is made read-only, so a Frame can cross
threads safely and nobody downstream can scribble on another stage's input.

Units: timestamps in milliseconds (as librealsense reports them), host arrival time in
nanoseconds of ``time.monotonic_ns()``, translations in metres, depth as raw ``uint16`` units times
``depth_scale`` metres.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np


class StreamKind(str, enum.Enum):
    COLOR = "color"
    IR = "ir"
    DEPTH = "depth"


class PixelFormat(str, enum.Enum):
    BGR8 = "bgr8"    # 3 x uint8, OpenCV order
    RGB8 = "rgb8"
    Y8 = "y8"        # 8-bit luminance (IR)
    Y16 = "y16"      # 16-bit luminance (IR)
    Z16 = "z16"      # 16-bit depth units; metres = value * depth_scale, 0 = no data


class ClockDomain(str, enum.Enum):
    """Which clock a frame's ``timestamp_ms`` is on (names follow librealsense)."""

    HARDWARE = "hardware_clock"    # the device's own counter; per device, may wrap
    GLOBAL = "global_time"         # device clock mapped onto the host clock by a linear model
    SYSTEM = "system_time"         # host time at arrival (UVC, most OpenNI devices)


class DistortionModel(str, enum.Enum):
    NONE = "none"
    BROWN_CONRADY = "brown_conrady"                  # k1 k2 p1 p2 k3, distorts on projection
    INVERSE_BROWN_CONRADY = "inverse_brown_conrady"  # undistorts on projection (RealSense IR/depth)
    MODIFIED_BROWN_CONRADY = "modified_brown_conrady"
    KANNALA_BRANDT4 = "kannala_brandt4"


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera model of one stream, with lens distortion."""

    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float
    model: DistortionModel = DistortionModel.NONE
    coeffs: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"intrinsics size must be positive, got {self.width}x{self.height}")
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError("focal lengths must be positive")
        if len(self.coeffs) != 5:
            raise ValueError("distortion needs exactly five coefficients")
        object.__setattr__(self, "coeffs", tuple(float(c) for c in self.coeffs))

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.ppx], [0.0, self.fy, self.ppy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same lens at another resolution (same field of view)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(width, height, self.fx * sx, self.fy * sy,
                          (self.ppx + 0.5) * sx - 0.5, (self.ppy + 0.5) * sy - 0.5,
                          self.model, self.coeffs)


def distortion_coeffs(values: Iterable[Any]) -> tuple[float, float, float, float, float]:
    """Lens-distortion coefficients read from a file or message, as the five floats ``Intrinsics``
    takes; ValueError (with Intrinsics' message) when there are not five."""
    c = tuple(float(v) for v in values)
    if len(c) != 5:
        raise ValueError("distortion needs exactly five coefficients")
    return c[0], c[1], c[2], c[3], c[4]


@dataclass(frozen=True)
class Extrinsics:
    """Rigid transform from one stream's 3D frame to another's: p_to = R @ p_from + t (metres)."""

    rotation: tuple[float, ...]      # 9 values, row-major 3x3
    translation: tuple[float, float, float]

    def __post_init__(self) -> None:
        if len(self.rotation) != 9 or len(self.translation) != 3:
            raise ValueError("extrinsics need a 3x3 rotation and a 3-vector translation")
        object.__setattr__(self, "rotation", tuple(float(v) for v in self.rotation))
        object.__setattr__(self, "translation", tuple(float(v) for v in self.translation))

    @classmethod
    def identity(cls) -> Extrinsics:
        return cls((1, 0, 0, 0, 1, 0, 0, 0, 1), (0, 0, 0))

    @classmethod
    def from_arrays(cls, rotation: np.ndarray, translation: np.ndarray) -> Extrinsics:
        return cls(tuple(np.asarray(rotation, float).reshape(9)), tuple(np.asarray(translation, float).reshape(3)))

    @property
    def R(self) -> np.ndarray:
        return np.array(self.rotation).reshape(3, 3)

    @property
    def t(self) -> np.ndarray:
        return np.array(self.translation)

    def inverse(self) -> Extrinsics:
        r = self.R
        return Extrinsics.from_arrays(r.T, -r.T @ self.t)

    def then(self, other: Extrinsics) -> Extrinsics:
        """Apply self, then other."""
        return Extrinsics.from_arrays(other.R @ self.R, other.R @ self.t + other.t)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform (..., 3) points."""
        return points @ self.R.T + self.t


@dataclass(frozen=True)
class StreamProfile:
    kind: StreamKind
    width: int
    height: int
    fps: float
    format: PixelFormat
    index: int = 0
    intrinsics: Intrinsics | None = None

    def describe(self) -> str:
        return f"{self.kind.value}[{self.index}] {self.width}x{self.height} {self.format.value} @ {self.fps:g} fps"


@dataclass(frozen=True)
class FrameMetadata:
    """Per-frame sensor state. ``None`` means the device does not report it."""

    exposure_us: float | None = None
    gain: float | None = None
    projector_on: bool | None = None
    projector_power_mw: float | None = None
    frame_counter: int | None = None          # the sensor's own counter (watchdog, continuity)
    sensor_timestamp_us: int | None = None    # mid-exposure timestamp where the device has one
    white_balance_k: float | None = None
    # Depth frames: the distances the depth sensor measures, in metres, as the camera states them
    # (``Camera.depth_range``); None where it does not. A face nearer or further has no depth to trust.
    depth_min_m: float | None = None
    depth_max_m: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))


_CHANNELS = {PixelFormat.BGR8: 3, PixelFormat.RGB8: 3, PixelFormat.Y8: 1, PixelFormat.Y16: 1, PixelFormat.Z16: 1}
_DTYPES = {PixelFormat.BGR8: np.uint8, PixelFormat.RGB8: np.uint8, PixelFormat.Y8: np.uint8,
           PixelFormat.Y16: np.uint16, PixelFormat.Z16: np.uint16}


def check_pixels(fmt: PixelFormat, shape: tuple[int, ...], dtype: Any, intrinsics: Intrinsics,
                 depth_scale: float) -> None:
    """ValueError unless pixels of ``shape`` and ``dtype`` make a ``fmt`` frame of ``intrinsics``: the
    checks of :class:`Frame`, for a reader that describes a frame without holding its pixels."""
    channels = _CHANNELS[fmt]
    if np.dtype(dtype) != _DTYPES[fmt]:
        raise ValueError(f"{fmt.value} frame needs {np.dtype(_DTYPES[fmt])} pixels, got {np.dtype(dtype)}")
    ndim = len(shape)
    if (ndim == 2 and channels != 1) or (ndim == 3 and shape[2] != channels) or ndim not in (2, 3):
        raise ValueError(f"{fmt.value} frame has wrong pixel shape {shape}")
    if (shape[1], shape[0]) != (intrinsics.width, intrinsics.height):
        raise ValueError(f"pixels {shape[1]}x{shape[0]} do not match intrinsics "
                         f"{intrinsics.width}x{intrinsics.height}")
    if fmt is PixelFormat.Z16 and not depth_scale > 0:
        raise ValueError("depth frames need a positive depth_scale")


@dataclass(frozen=True, eq=False)
class Frame:
    """One image from one stream. Immutable; ``pixels`` is a read-only array owned by the frame."""

    stream: StreamKind
    pixels: np.ndarray
    format: PixelFormat
    timestamp_ms: float
    clock_domain: ClockDomain
    host_time_ns: int
    frame_number: int
    intrinsics: Intrinsics
    index: int = 0
    device_serial: str = ""
    depth_scale: float = 0.0                  # metres per Z16 unit; 0 for non-depth streams
    metadata: FrameMetadata = field(default_factory=FrameMetadata)

    def __post_init__(self) -> None:
        px = self.pixels
        check_pixels(self.format, tuple(px.shape), px.dtype, self.intrinsics, self.depth_scale)
        if px.flags.writeable or px.base is not None:
            # Own a private read-only copy: SDK buffers get recycled, callers' arrays get reused.
            px = px.copy()
            px.flags.writeable = False
            object.__setattr__(self, "pixels", px)

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def depth_m(self) -> np.ndarray:
        """Depth in metres as float32, NaN where the sensor has no data."""
        if self.format is not PixelFormat.Z16:
            raise TypeError(f"{self.stream.value} frame has no depth")
        z = self.pixels.astype(np.float32) * np.float32(self.depth_scale)
        z[self.pixels == 0] = np.nan
        return z


@dataclass(frozen=True)
class FrameHeader:
    """A frame without its pixels: which stream, its counters and its time. What a reader that only
    watches a camera (is the counter advancing?) needs; ``Camera.read_header`` hands it out."""

    stream: StreamKind
    frame_number: int
    timestamp_ms: float
    frame_counter: int | None = None          # ``metadata.frame_counter``
    index: int = 0

    @property
    def counter(self) -> int:
        """The sensor's own counter where it has one, else the frame number (what the watchdog reads)."""
        return self.frame_counter if self.frame_counter is not None else self.frame_number

    @classmethod
    def of(cls, f: Frame) -> FrameHeader:
        return cls(f.stream, f.frame_number, f.timestamp_ms, f.metadata.frame_counter, f.index)


@dataclass(frozen=True, eq=False)
class FrameSet:
    """Frames of different streams judged to show the same instant, plus the calibration between them.

    ``extrinsics`` maps (from, to) stream pairs to transforms; the reverse direction is derived.
    ``skew_ms`` is the spread of the members' timestamps on a common clock, set by the matcher.
    """

    frames: Mapping[StreamKind, Frame]
    extrinsics: Mapping[tuple[StreamKind, StreamKind], Extrinsics] = field(default_factory=dict)
    skew_ms: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "frames", MappingProxyType(dict(self.frames)))
        object.__setattr__(self, "extrinsics", MappingProxyType(dict(self.extrinsics)))

    def __contains__(self, kind: StreamKind) -> bool:
        return kind in self.frames

    def get(self, kind: StreamKind) -> Frame | None:
        return self.frames.get(kind)

    @property
    def color(self) -> Frame | None:
        return self.frames.get(StreamKind.COLOR)

    @property
    def depth(self) -> Frame | None:
        return self.frames.get(StreamKind.DEPTH)

    @property
    def ir(self) -> Frame | None:
        return self.frames.get(StreamKind.IR)

    def extrinsics_between(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        if src == dst:
            return Extrinsics.identity()
        if (src, dst) in self.extrinsics:
            return self.extrinsics[(src, dst)]
        if (dst, src) in self.extrinsics:
            return self.extrinsics[(dst, src)].inverse()
        raise KeyError(f"no extrinsics between {src.value} and {dst.value}")
