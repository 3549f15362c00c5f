"""The source contract every backend implements, and the URI registry that opens them.

Discovery (``list_devices``) is kept apart from streaming (``Camera``). A backend module registers
its URI schemes with :func:`register_backend`; the registry imports the module only when one of its
schemes is used, so a missing vendor SDK disables that backend with a clear
:class:`~drivers.errors.BackendUnavailable` instead of breaking the agent.

Contract of :class:`Camera`:

* ``start()`` begins streaming; ``read(timeout_s)`` returns the next :class:`Frame` of any stream in
  arrival order, or raises ``FrameTimeout`` (nothing arrived in time) or ``DeviceLost`` (the device
  is gone). ``read`` never blocks longer than ``timeout_s`` plus a small constant.
* ``stop()`` is idempotent and bounded in time; after it ``read`` raises ``StreamClosed``.
* Timestamps are in the clock domain the frame says; non-monotonic frames are the matcher's
  business (``agent.sync``), not the backend's.
* Optional capabilities (projector control, illumination, exposure locks, hardware reset) are
  listed in ``capabilities`` and raise ``CapabilityUnsupported`` when absent.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import importlib
import math
import numbers
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .errors import (
    BackendUnavailable,
    CapabilityUnsupported,
    InvalidSetting,
    InvalidUri,
    UnknownScheme,
    UnsupportedMode,
)
from .frame import Extrinsics, Frame, FrameHeader, FrameMetadata, StreamKind, StreamProfile


class Capability(str, enum.Enum):
    PROJECTOR_CONTROL = "projector_control"            # IR projector on/off per frame
    # The colour the kiosk screen shows, set through the camera: ``set_illumination((r, g, b))``.
    # Only a simulated kiosk routes it through the camera; on a real terminal the kiosk app shows it.
    ILLUMINATION_CONTROL = "illumination_control"
    HARDWARE_RESET = "hardware_reset"
    # The auto-exposure of one imager can be frozen and resumed: ``lock_exposure(stream)`` /
    # ``unlock_exposure(stream)``, for the IR/depth imager (IR and depth share one) and for the
    # colour imager (its white balance with it) separately. A camera claims only the imagers its
    # ``lock_exposure`` actually holds: the server is told the exposure is held from these claims.
    EXPOSURE_LOCK_IR = "exposure_lock_ir"
    EXPOSURE_LOCK_COLOR = "exposure_lock_color"
    PROJECTOR_POWER = "projector_power"                    # IR projector power settable (mW)
    # The colour imager's auto-exposure can meter a region: ``set_exposure_region``.
    EXPOSURE_REGION = "exposure_region"
    RECORDING = "recording"                        # a playback source, not a live device


def exposure_lock_capability(stream: StreamKind) -> Capability:
    """The capability that says the imager behind ``stream`` can have its exposure locked."""
    if not isinstance(stream, StreamKind):
        raise InvalidSetting(f"not a stream: {stream!r}")
    return Capability.EXPOSURE_LOCK_COLOR if stream is StreamKind.COLOR else Capability.EXPOSURE_LOCK_IR


def lockable_streams(capabilities: frozenset[Capability]) -> frozenset[StreamKind]:
    """The streams (IR stands for the IR/depth imager) whose exposure these capabilities say can be
    locked."""
    return frozenset(s for s in (StreamKind.IR, StreamKind.COLOR) if exposure_lock_capability(s) in capabilities)


@dataclass(frozen=True)
class ProjectorPowerRange:
    """A projector's power setting, in mW: ``minimum``..``maximum`` in steps of ``step``."""
    minimum: float
    maximum: float
    step: float
    default: float

    def snap(self, mw: float, *, down: bool = False) -> float:
        """The nearest settable power to ``mw`` (with ``down``, the nearest not above it), within
        the range."""
        if isinstance(mw, bool) or not isinstance(mw, numbers.Real) or not math.isfinite(mw):
            raise InvalidSetting(f"projector power must be a finite number of mW, not {mw!r}")
        v = min(max(float(mw), self.minimum), self.maximum)
        if self.step > 0:
            steps = (v - self.minimum) / self.step
            v = self.minimum + (math.floor(steps + 1e-9) if down else round(steps)) * self.step
        return float(min(v, self.maximum))


@dataclass(frozen=True)
class ExposureSetting:
    """An imager's exposure (microseconds) and gain, in the units its frame metadata reports."""
    exposure_us: float
    gain: float

    def __post_init__(self) -> None:
        for name in ("exposure_us", "gain"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
                raise InvalidSetting(f"exposure setting {name} must be a finite number >= 0, not {v!r}")


@dataclass(frozen=True)
class DepthRange:
    """The distances a depth sensor measures, in metres; None for a bound the camera does not state.
    Nearer than ``min_m`` a stereo camera finds no match within its disparity search (no depth, or
    none to trust); beyond ``max_m`` the depth error grows past use. ``source`` says where the
    figures come from (the device's own option, its product line's datasheet, a profile)."""
    min_m: float | None
    max_m: float | None
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("min_m", "max_m"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                                  or not 0.0 < v <= 100.0):
                raise InvalidSetting(f"depth range {name} must be a distance in metres in (0, 100], not {v!r}")
        if self.min_m is not None and self.max_m is not None and self.min_m >= self.max_m:
            raise InvalidSetting(f"depth range {self.min_m} m..{self.max_m} m is empty")

    def stamp(self, md: FrameMetadata) -> FrameMetadata:
        """``md`` for a depth frame of this sensor: the range travels with the frame to the gate."""
        return dataclasses.replace(md, depth_min_m=self.min_m, depth_max_m=self.max_m)


@dataclass(frozen=True)
class UsbIdentity:
    vendor_id: int
    product_id: int
    serial: str = ""
    bcd_device: int = 0
    bus_path: str = ""                 # e.g. "2-1.3"; empty for a device with no physical USB parent
    link: str = ""                     # USB link the device runs at, as its SDK reports it ("3.2", "2.1"); "" unknown

    def describe(self) -> str:
        link = f" usb{self.link}" if self.link else ""
        ident = f"{self.vendor_id:04x}:{self.product_id:04x}"
        return f"{ident} serial={self.serial or '-'} bus={self.bus_path or '-'}{link}"


@dataclass(frozen=True)
class DeviceInfo:
    """What discovery and an opened camera know about a device."""

    uri: str
    backend: str
    name: str
    serial: str = ""
    firmware: str = ""
    usb: UsbIdentity | None = None
    streams: tuple[str, ...] = ()
    is_recording: bool = False
    allowed: bool | None = None        # allowlist verdict, when a policy has been applied
    note: str = ""
    # Per-frame metadata (exposure, projector state, hardware timestamps) delivered by the device:
    # None when the backend cannot tell. A RealSense on Linux without it loses global time.
    metadata_enabled: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "uri": self.uri, "backend": self.backend, "name": self.name, "serial": self.serial,
            "firmware": self.firmware, "streams": list(self.streams), "is_recording": self.is_recording,
            "allowed": self.allowed, "note": self.note, "usb": None, "metadata_enabled": self.metadata_enabled,
        }
        if self.usb is not None:
            u = self.usb
            d["usb"] = {"vendor_id": f"{u.vendor_id:04x}", "product_id": f"{u.product_id:04x}",
                        "serial": u.serial, "bcd_device": f"{u.bcd_device:04x}", "bus_path": u.bus_path,
                        "link": u.link}
        return d


@dataclass(frozen=True)
class ParsedUri:
    scheme: str
    target: str                        # host+path part: serial, index, file path, ...
    query: dict[str, str] = field(default_factory=dict)
    raw: str = ""


def parse_uri(uri: str) -> ParsedUri:
    if not isinstance(uri, str) or "://" not in uri:
        raise InvalidUri(f"not a device URI: {uri!r} (expected scheme://target, e.g. sim://)")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidUri(f"device URI has no scheme: {uri!r}")
    target = (parts.netloc + parts.path)
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    except ValueError as exc:
        raise InvalidUri(f"malformed query in {uri!r}: {exc}") from None
    return ParsedUri(scheme=scheme, target=target, query=query, raw=uri)


class Camera(abc.ABC):
    """A source of frames. One owner thread reads it; other threads may call ``stop``."""

    capabilities: frozenset[Capability] = frozenset()
    # Whether ``read`` can block past its timeout: an SDK's read may hang inside its C code, so the
    # frameset reader makes such reads on a thread of its own and gives up on a hung one
    # (``agent.pipeline.frames``). False where something else bounds every read: a camera host's
    # (its heartbeat) and the simulator's (Python that honours its timeout). A wrapper that adds to
    # reading keeps True; one that does not is its camera's (``CameraWrapper.read_may_hang``).
    read_may_hang: bool = True
    # Whether each frame is made when it is read, with no wall clock behind the stream (the simulator
    # with ``realtime=0``): its frames carry the camera's own timing however long they take to make,
    # so a session may count its stage bounds in that time (``FramesetReader.stream(own_time=True)``).
    # False for every device (its frames come in real time) and every wrapper and camera host.
    renders_on_read: bool = False
    # Whether the camera's clock waits for its reader: each frame is made when it is read and a command
    # lands on the next frame read (the simulator unless ``stream=N``), so a late reader cannot see frames
    # captured before a command it sent. False for every device: it streams at its own rate, and a reader
    # behind it sends commands that land late (``agent.session.window``'s lateness check).
    waits_for_reader: bool = False

    @property
    @abc.abstractmethod
    def info(self) -> DeviceInfo: ...

    @abc.abstractmethod
    def profiles(self) -> list[StreamProfile]:
        """The active stream profiles (valid after ``start``)."""

    @abc.abstractmethod
    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics: ...

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def read(self, timeout_s: float = 1.0) -> Frame: ...

    def read_header(self, timeout_s: float = 1.0) -> FrameHeader:
        """The next frame's header (stream, counters, time) without its pixels: for a reader that only
        watches the camera and keeps no frames. The same frame, errors and deadline as ``read``; it
        is consumed. A camera that can describe a frame without copying its pixels (a camera host)
        does so; any other reads the frame."""
        return FrameHeader.of(self.read(timeout_s))

    @abc.abstractmethod
    def stop(self) -> None: ...

    def select_streams(self, kinds: Iterable[StreamKind]) -> None:
        """Before ``start``: the streams the caller will read (one stream of a device's, e.g. depth and
        IR without colour). A camera that can leave the others out does (the simulator renders no frame
        of theirs); any other streams what it always does, and its reader picks what it needs
        (``profiles`` says what comes)."""
        return None

    # Optional capabilities --------------------------------------------------------------
    def set_projector(self, on: bool) -> None:
        raise CapabilityUnsupported(f"{self.info.backend} camera cannot switch its IR projector")

    def set_illumination(self, rgb: tuple[float, float, float], luminance: float = 1.0) -> None:
        """Show this colour on the kiosk screen from now on: (r, g, b), each 0..1 of full white, at
        ``luminance`` times the panel's everyday luminance (1..8: its backlight raised, as far as it goes)."""
        raise CapabilityUnsupported(f"{self.info.backend} camera has no controllable illumination")

    def lock_exposure(self, stream: StreamKind, setting: ExposureSetting | None = None) -> ExposureSetting:
        """Turn the auto-exposure of the imager behind ``stream`` (IR and depth share one) off, from
        the next frames on, and return what was applied. Without ``setting``: frozen at the exposure
        and gain it has now (idempotent: a second lock returns the first). With ``setting``: at that
        exposure and gain, clamped to the device's range (and snapped to its step); a lock already
        held moves to it. ``unlock_exposure`` gives back the control the first lock replaced."""
        raise CapabilityUnsupported(f"{self.info.backend} camera cannot lock its exposure")

    def unlock_exposure(self, stream: StreamKind) -> None:
        """Give the imager behind ``stream`` back the exposure control it had before the lock."""
        raise CapabilityUnsupported(f"{self.info.backend} camera cannot lock its exposure")

    def set_exposure_region(self, stream: StreamKind, region: tuple[int, int, int, int] | None) -> None:
        """Meter the auto-exposure of the imager behind ``stream`` on ``region`` (x0, y0, x1, y1 in
        that stream's pixels, x1 and y1 exclusive) from the next frames on; None gives it back its
        default metering. librealsense offers it as the sensor's auto-exposure ROI
        (``rs.roi_sensor.set_region_of_interest``); the agent meters the face with it, so a face
        darker or brighter than its surroundings is exposed for itself."""
        raise CapabilityUnsupported(f"{self.info.backend} camera cannot meter its exposure on a region")

    def hardware_reset(self) -> None:
        raise CapabilityUnsupported(f"{self.info.backend} camera has no hardware reset")

    def projector_power_range(self) -> ProjectorPowerRange:
        """The projector's settable power, in mW."""
        raise CapabilityUnsupported(f"{self.info.backend} camera cannot set its projector's power")

    def depth_range(self) -> DepthRange | None:
        """The distances the depth sensor measures, as the SDK states them (a device option, or the
        product line's documented range); None when the camera does not say (no claim is then made
        about a face being too near or too far for depth). Depth frames carry the same figures in
        their metadata (``FrameMetadata.depth_min_m``/``depth_max_m``)."""
        return None

    def set_projector_power(self, mw: float) -> float:
        """Set the projector's power (taking effect on the next frames, like ``set_projector``);
        returns the power actually applied, snapped to the device's step."""
        raise CapabilityUnsupported(f"{self.info.backend} camera cannot set its projector's power")

    # Conveniences ------------------------------------------------------------------------
    def all_extrinsics(self) -> dict[tuple[StreamKind, StreamKind], Extrinsics]:
        """Extrinsics from every active stream to every other (for building FrameSets)."""
        kinds = sorted({p.kind for p in self.profiles()}, key=lambda k: k.value)
        out = {}
        for i, a in enumerate(kinds):
            for b in kinds[i + 1:]:
                out[(a, b)] = self.extrinsics(a, b)
        return out

    def __enter__(self) -> Camera:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SingleStreamCamera(Camera):
    """A camera with one stream (a UVC colour or IR camera): the subclass sets ``_info``, ``_kind``
    and, once started, ``_profile``. It has no extrinsics to another stream; a rig's calibration
    provides them."""

    _info: DeviceInfo
    _kind: StreamKind
    _profile: StreamProfile | None = None

    @property
    def info(self) -> DeviceInfo:
        return self._info

    def profiles(self) -> list[StreamProfile]:
        return [self._profile] if self._profile is not None else []

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        if src == dst == self._kind:
            return Extrinsics.identity()
        raise UnsupportedMode(f"{self._info.backend}: a single-stream camera has no {src.value}->{dst.value} "
                              "extrinsics; a rig's calibration provides them")


class CameraWrapper(Camera):
    """A camera that is another camera with something added (recording it, cutting its cable): every
    call goes to ``inner`` through :meth:`_forward`, the optional controls included, so a wrapper
    never hides a capability its camera advertises (a wrapper that did once left the challenge
    window's exposure unlocked). A subclass overrides only what it adds."""

    def __init__(self, inner: Camera):
        self.inner = inner
        self.capabilities = inner.capabilities

    @property
    def read_may_hang(self) -> bool:  # type: ignore[override]
        """A wrapper that adds to reading (records, edits, cuts the cable) may hang in what it adds:
        True. One that reads as its camera does is bounded as its camera is: a wrapped simulator
        is read on the caller's thread like the simulator, where a render slower than the reader's
        hang grace (``agent.pipeline.frames.READ_HANG_GRACE_S``, at load 15) is not a hung camera."""
        return True if type(self).read is not CameraWrapper.read else bool(self.inner.read_may_hang)

    @property
    def waits_for_reader(self) -> bool:  # type: ignore[override]
        """Its camera's: a wrapper does not change when the camera captures."""
        return bool(getattr(self.inner, "waits_for_reader", False))

    def _forward(self, name: str, *args: Any) -> Any:
        return getattr(self.inner, name)(*args)

    @property
    def info(self) -> DeviceInfo:
        return self.inner.info

    def profiles(self) -> list[StreamProfile]:
        return self.inner.profiles()

    def extrinsics(self, src: StreamKind, dst: StreamKind) -> Extrinsics:
        return self.inner.extrinsics(src, dst)

    def start(self) -> None:
        self.inner.start()

    def read(self, timeout_s: float = 1.0) -> Frame:
        return self.inner.read(timeout_s)

    def read_header(self, timeout_s: float = 1.0) -> FrameHeader:
        if type(self).read is not CameraWrapper.read:
            # A wrapper that adds something to reading (records, edits, cuts the cable) sees every read.
            return FrameHeader.of(self.read(timeout_s))
        return self._forward("read_header", timeout_s)

    def stop(self) -> None:
        self.inner.stop()

    def select_streams(self, kinds: Iterable[StreamKind]) -> None:
        self._forward("select_streams", kinds)

    def set_projector(self, on: bool) -> None:
        self._forward("set_projector", on)

    def set_illumination(self, rgb: tuple[float, float, float], luminance: float = 1.0) -> None:
        self._forward("set_illumination", rgb, luminance)

    def lock_exposure(self, stream: StreamKind, setting: ExposureSetting | None = None) -> ExposureSetting:
        return self._forward("lock_exposure", stream, setting)

    def unlock_exposure(self, stream: StreamKind) -> None:
        self._forward("unlock_exposure", stream)

    def set_exposure_region(self, stream: StreamKind, region: tuple[int, int, int, int] | None) -> None:
        self._forward("set_exposure_region", stream, region)

    def hardware_reset(self) -> None:
        self._forward("hardware_reset")

    def projector_power_range(self) -> ProjectorPowerRange:
        return self._forward("projector_power_range")

    def depth_range(self) -> DepthRange | None:
        return self._forward("depth_range")

    def set_projector_power(self, mw: float) -> float:
        return self._forward("set_projector_power", mw)


Opener = Callable[[ParsedUri], Camera]
Lister = Callable[[], list[DeviceInfo]]


@dataclass
class _Backend:
    name: str
    module: str                       # imported lazily on first use
    schemes: tuple[str, ...]
    description: str


_BACKENDS: dict[str, _Backend] = {}
_SCHEMES: dict[str, _Backend] = {}
_LOADED: dict[str, tuple[Opener, Lister]] = {}
_LOCK = threading.Lock()


def register_backend(name: str, module: str, schemes: tuple[str, ...], description: str) -> None:
    be = _Backend(name, module, schemes, description)
    _BACKENDS[name] = be
    for s in schemes:
        _SCHEMES[s] = be


def _load(be: _Backend) -> tuple[Opener, Lister]:
    with _LOCK:
        if be.name not in _LOADED:
            try:
                mod = importlib.import_module(be.module)
            except BackendUnavailable:
                raise
            except (ImportError, OSError) as exc:
                raise BackendUnavailable(f"{be.name} backend unavailable: {exc}") from None
            _LOADED[be.name] = (mod.open_camera, mod.list_devices)
        return _LOADED[be.name]


def backends() -> list[tuple[str, tuple[str, ...], str]]:
    return [(b.name, b.schemes, b.description) for b in _BACKENDS.values()]


def open(uri: str) -> Camera:  # noqa: A001 - mirrors the builtin on purpose: drivers.open(uri)
    parsed = parse_uri(uri)
    be = _SCHEMES.get(parsed.scheme)
    if be is None:
        known = ", ".join(sorted(_SCHEMES))
        raise UnknownScheme(f"unknown device scheme {parsed.scheme!r} in {uri!r}; known schemes: {known}")
    opener, _ = _load(be)
    return opener(parsed)


def list_devices() -> tuple[list[DeviceInfo], dict[str, str]]:
    """Devices of every backend, plus ``{backend: reason}`` for backends that could not list."""
    found: list[DeviceInfo] = []
    problems: dict[str, str] = {}
    for be in _BACKENDS.values():
        try:
            _, lister = _load(be)
            found.extend(lister())
        except BackendUnavailable as exc:
            problems[be.name] = exc.message
        except Exception as exc:  # one broken backend must not hide the others
            problems[be.name] = f"{type(exc).__name__}: {exc}"
    return found, problems
