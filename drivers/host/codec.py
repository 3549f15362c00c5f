"""What a camera host says about its camera, as JSON, and the strict way back.

Everything decoded here came from a process that runs a vendor SDK, so every field is checked:
types, enum values, finite numbers, bounded strings. A bad field is ``CameraHostProtocol`` (the
client then kills the host); it never becomes a half-valid frame.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .. import base
from ..base import Capability, DeviceInfo, UsbIdentity
from ..errors import CameraHostProtocol, InvalidSetting
from ..frame import (
    DistortionModel,
    Extrinsics,
    FrameMetadata,
    Intrinsics,
    PixelFormat,
    StreamKind,
    StreamProfile,
)
from .channel import finite

MAX_TEXT = 512
_META_NUMBERS = ("exposure_us", "gain", "projector_power_mw", "white_balance_k", "depth_min_m", "depth_max_m")
_META_INTS = ("frame_counter", "sensor_timestamp_us")
MAX_EXTRA_KEYS = 16
# Results of forwarded camera calls that are dataclasses, by name. Looked up in drivers.base at
# decode time, so a type another branch adds there (an exposure setting, say) works once it exists.
RESULT_TYPES = ("ProjectorPowerRange", "ExposureSetting", "DepthRange")
ARG_ENUMS = {"StreamKind": StreamKind}


def text(v: Any, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(v, str) or len(v) > limit:
        raise CameraHostProtocol(f"{what} is not a string of at most {limit} characters")
    return v


def integer(v: Any, what: str, lo: int = -(1 << 63), hi: int = (1 << 63) - 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise CameraHostProtocol(f"{what} is not an integer in [{lo}, {hi}]: {v!r}")
    return v


def member(cls: type[enum.Enum], v: Any, what: str) -> Any:
    try:
        return cls(v)
    except ValueError:
        raise CameraHostProtocol(f"{what}: {v!r} is not a {cls.__name__}") from None


# -- intrinsics, profiles, extrinsics, device info --------------------------------------------------
def intrinsics_to(i: Intrinsics) -> list[Any]:
    return [i.width, i.height, i.fx, i.fy, i.ppx, i.ppy, i.model.value, list(i.coeffs)]


def intrinsics_from(v: Any) -> Intrinsics:
    try:
        w, h, fx, fy, ppx, ppy, model, coeffs = v
        if not isinstance(coeffs, list) or len(coeffs) != 5:
            raise ValueError("five distortion coefficients")
        return Intrinsics(integer(w, "width", 1, 16384), integer(h, "height", 1, 16384), finite(fx, "fx"),
                          finite(fy, "fy"), finite(ppx, "ppx"), finite(ppy, "ppy"),
                          member(DistortionModel, model, "distortion model"),
                          tuple(finite(c, "distortion coefficient") for c in coeffs))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise CameraHostProtocol(f"bad intrinsics: {exc}") from None


def profile_to(p: StreamProfile) -> dict[str, Any]:
    return {"kind": p.kind.value, "width": p.width, "height": p.height, "fps": p.fps, "format": p.format.value,
            "index": p.index, "intrinsics": intrinsics_to(p.intrinsics) if p.intrinsics else None}


def profile_from(d: Any) -> StreamProfile:
    if not isinstance(d, dict):
        raise CameraHostProtocol("a stream profile must be an object")
    return StreamProfile(member(StreamKind, d.get("kind"), "stream"), integer(d.get("width"), "width", 1, 16384),
                         integer(d.get("height"), "height", 1, 16384), finite(d.get("fps"), "fps"),
                         member(PixelFormat, d.get("format"), "format"), integer(d.get("index"), "index", 0, 8),
                         None if d.get("intrinsics") is None else intrinsics_from(d["intrinsics"]))


def extrinsics_to(e: Extrinsics) -> list[Any]:
    return [list(e.rotation), list(e.translation)]


def extrinsics_from(v: Any) -> Extrinsics:
    try:
        r, t = v
        return Extrinsics(tuple(finite(x, "rotation") for x in r),
                          tuple(finite(x, "translation") for x in t))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise CameraHostProtocol(f"bad extrinsics: {exc}") from None


def info_to(i: DeviceInfo) -> dict[str, Any]:
    d = dataclasses.asdict(i)
    d["streams"] = list(i.streams)
    return d


def info_from(d: Any) -> DeviceInfo:
    if not isinstance(d, dict):
        raise CameraHostProtocol("device info must be an object")
    usb = d.get("usb")
    ident = None
    if usb is not None:
        if not isinstance(usb, dict):
            raise CameraHostProtocol("usb identity must be an object")
        ident = UsbIdentity(integer(usb.get("vendor_id"), "vendor_id", 0, 0xFFFF),
                            integer(usb.get("product_id"), "product_id", 0, 0xFFFF),
                            text(usb.get("serial", ""), "usb serial", 128),
                            integer(usb.get("bcd_device", 0), "bcd_device", 0, 0xFFFF),
                            text(usb.get("bus_path", ""), "bus path", 64), text(usb.get("link", ""), "usb link", 16))
    streams = d.get("streams", [])
    if not isinstance(streams, list) or len(streams) > 8:
        raise CameraHostProtocol("streams must be a short list")
    allowed, metadata = d.get("allowed"), d.get("metadata_enabled")
    if any(v is not None and not isinstance(v, bool) for v in (allowed, metadata)):
        raise CameraHostProtocol("allowed and metadata_enabled must be booleans or null")
    return DeviceInfo(uri=text(d.get("uri"), "uri", 2048), backend=text(d.get("backend"), "backend", 32),
                      name=text(d.get("name"), "name"), serial=text(d.get("serial", ""), "serial", 128),
                      firmware=text(d.get("firmware", ""), "firmware", 128), usb=ident,
                      streams=tuple(text(s, "stream", 16) for s in streams),
                      is_recording=bool(d.get("is_recording", False)), allowed=allowed,
                      note=text(d.get("note", ""), "note", 2048), metadata_enabled=metadata)


def capabilities_from(v: Any) -> frozenset[Capability]:
    if not isinstance(v, list):
        raise CameraHostProtocol("capabilities must be a list")
    return frozenset(member(Capability, c, "capability") for c in v)


# -- frames -------------------------------------------------------------------------------------------
def metadata_to(m: FrameMetadata) -> dict[str, Any]:
    d: dict[str, Any] = {k: getattr(m, k) for k in _META_NUMBERS + _META_INTS}
    d["projector_on"] = m.projector_on
    extra = {str(k)[:64]: v for k, v in list(m.extra.items())[:MAX_EXTRA_KEYS]
             if v is None or isinstance(v, (str, int, float, bool))}
    d["extra"] = {k: (v[:MAX_TEXT] if isinstance(v, str) else v) for k, v in extra.items()}
    return d


def metadata_from(d: Any) -> FrameMetadata:
    if not isinstance(d, dict):
        raise CameraHostProtocol("frame metadata must be an object")
    kw: dict[str, Any] = {}
    for k in _META_NUMBERS:
        kw[k] = None if d.get(k) is None else finite(d[k], k)
    for k in _META_INTS:
        kw[k] = None if d.get(k) is None else integer(d[k], k)
    on = d.get("projector_on")
    if on is not None and not isinstance(on, bool):
        raise CameraHostProtocol("projector_on must be a boolean or null")
    extra = d.get("extra", {})
    if not isinstance(extra, dict) or len(extra) > MAX_EXTRA_KEYS:
        raise CameraHostProtocol("metadata extra must be a small object")
    for k, v in extra.items():
        if not (v is None or isinstance(v, (int, bool)) or (isinstance(v, float) and finite(v, k) == v)
                or (isinstance(v, str) and len(v) <= MAX_TEXT)) or len(k) > 64:
            raise CameraHostProtocol(f"metadata extra {k!r} is not a short scalar")
    return FrameMetadata(projector_on=on, extra=extra, **kw)


# -- forwarded calls ----------------------------------------------------------------------------------
def value_to(v: Any) -> Any:
    """A call's argument or result as JSON: scalars, enums of ``ARG_ENUMS``, tuples, and the
    dataclasses named in ``RESULT_TYPES``."""
    # Enums first: StreamKind and its kin are ``str`` enums, and must arrive as members, not text.
    if isinstance(v, enum.Enum) and type(v).__name__ in ARG_ENUMS:
        return {"enum": type(v).__name__, "value": v.value}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return {"tuple": [value_to(x) for x in v]}
    if dataclasses.is_dataclass(v) and not isinstance(v, type) and type(v).__name__ in RESULT_TYPES:
        return {"type": type(v).__name__, "fields": {k: value_to(x) for k, x in dataclasses.asdict(v).items()}}
    raise CameraHostProtocol(f"cannot send a {type(v).__name__} across the camera host boundary")


def value_from(v: Any, depth: int = 0) -> Any:
    if depth > 4:
        raise CameraHostProtocol("value nested too deeply")
    if v is None or isinstance(v, (bool, int, str)):
        return v if not isinstance(v, str) else text(v, "value")
    if isinstance(v, float):
        return finite(v, "value")
    if isinstance(v, dict) and set(v) == {"enum", "value"} and v["enum"] in ARG_ENUMS:
        return member(ARG_ENUMS[v["enum"]], v["value"], v["enum"])
    if isinstance(v, dict) and set(v) == {"tuple"} and isinstance(v["tuple"], list) and len(v["tuple"]) <= 16:
        return tuple(value_from(x, depth + 1) for x in v["tuple"])
    if isinstance(v, dict) and set(v) == {"type", "fields"} and v["type"] in RESULT_TYPES:
        cls = getattr(base, v["type"], None)
        if not isinstance(cls, type) or not dataclasses.is_dataclass(cls) or not isinstance(v["fields"], dict):
            raise CameraHostProtocol(f"unknown result type {v['type']!r}")
        make: Any = cls
        try:
            return make(**{text(k, "field", 64): value_from(x, depth + 1) for k, x in v["fields"].items()})
        except (TypeError, InvalidSetting) as exc:        # a field missing, or a value the type refuses
            raise CameraHostProtocol(f"bad {v['type']}: {exc}") from None
    raise CameraHostProtocol("value of an unknown shape")
