"""What the diagnostics page says about the camera: identity, USB link, metadata, firmware.

Facts only, from the backend's ``DeviceInfo`` and, when the terminal has a firmware policy, the
signed manifest's verdict. ``UsbIdentity.link`` and ``DeviceInfo.metadata_enabled`` are reported by
backends that know them (the device manager's work, issue 17); where a backend does not, they read
as unknown here rather than guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.base import DeviceInfo
from drivers.errors import CaptureAgentError
from firmware.settings import FirmwareSettings


def link_of(info: DeviceInfo) -> dict[str, Any]:
    """The USB link: ``{"text", "ok"}``; ok is False on USB 2 (depth modes and rates fall short)."""
    usb = info.usb
    if usb is None:
        return {"text": "no USB device (" + ("recording" if info.is_recording else info.backend) + ")", "ok": None}
    link = str(getattr(usb, "link", "") or "")
    if not link:
        return {"text": "USB, speed not reported by this backend", "ok": None}
    major = link.split(".")[0]
    return {"text": f"USB {link}", "ok": major.isdigit() and int(major) >= 3}


def metadata_of(info: DeviceInfo) -> dict[str, Any]:
    md = getattr(info, "metadata_enabled", None)
    if info.backend == "sim":
        md = True                        # the simulator stamps exposure, projector and hardware time
    text = {True: "enabled", False: "not enabled", None: "unknown to this backend"}[md]
    return {"text": text, "ok": md}


def firmware_of(info: DeviceInfo, settings: FirmwareSettings | None, state_dir: Path,
                resolve: Callable[[str], Path]) -> dict[str, Any]:
    """The firmware version and, with a configured manifest, whether it approves it."""
    out: dict[str, Any] = {"version": info.firmware or "unknown", "verdict": "not checked", "ok": None, "detail": ""}
    from firmware.policy import NOT_JUDGED_BACKENDS, judge
    if info.is_recording or info.backend in NOT_JUDGED_BACKENDS:
        out["detail"] = "recordings and the simulator are not judged"
        return out
    if settings is None or not settings.enabled:
        out["detail"] = "no [firmware] manifest configured"
        return out
    from firmware import runtime
    try:
        manifest = runtime.load_manifest_source(runtime.paths(settings, state_dir, resolve)).current()
    except CaptureAgentError as exc:
        return {**out, "verdict": exc.code, "ok": False, "detail": exc.message[:200]}
    usb = info.usb
    v = judge(manifest, backend=info.backend, name=info.name, firmware=info.firmware,
              vendor_id=usb.vendor_id if usb else 0, product_id=usb.product_id if usb else 0)
    return {**out, "verdict": "approved" if v.approved else "not approved", "ok": v.approved, "detail": v.detail}


def device_facts(info: DeviceInfo, firmware: FirmwareSettings | None = None, state_dir: Path = Path("."),
                 resolve: Callable[[str], Path] = Path) -> dict[str, Any]:
    usb = info.usb
    return {
        "backend": info.backend, "name": info.name, "serial": info.serial or "—",
        "usb_id": f"{usb.vendor_id:04x}:{usb.product_id:04x}" if usb else "—",
        "bus": (usb.bus_path or "—") if usb else "—",
        "streams": list(info.streams), "note": info.note,
        "link": link_of(info), "metadata": metadata_of(info),
        "firmware": firmware_of(info, firmware, state_dir, resolve),
    }
