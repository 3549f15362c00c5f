"""USB identity of cameras: enumeration (pyusb), allowlist policy, virtual-camera detection (sysfs).

Why: frames may only come from allowlisted physical cameras. A virtual camera (v4l2loopback, OBS
Virtual Camera, ...) is how recorded video gets injected into a "live" capture, so a video node
without a physical USB parent is refused outright (T/IIFAA 3001.1 §8.2.2: no tampering with capture).

Three small pieces, each testable alone:

* :func:`enumerate_video_devices` asks pyusb's core (any ``usb.backend.IBackend``; tests pass a
  simulated bus) for USB video-class devices and known depth-camera vendors.
* :class:`UsbPolicy` decides allow/refuse by VID:PID and optionally serial.
* :class:`Sysfs` maps a ``/dev/videoN`` node to its USB parent under an injectable root, so tests
  can build a fake sysfs tree in ``tmp_path``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import UsbIdentity
from .errors import BackendUnavailable, DeviceRefused

USB_CLASS_VIDEO = 0x0E
# Depth cameras whose vendor interfaces are not class 0x0E on every model.
DEPTH_CAMERA_VIDS = {0x8086: "Intel", 0x2BC5: "Orbbec", 0x1D27: "PrimeSense"}
# Kernel drivers and card names that only virtual (software) video devices use.
VIRTUAL_DRIVERS = frozenset({"v4l2loopback", "vivid", "akvcam", "obs-virtualcam"})
_VIRTUAL_NAME = re.compile(r"loopback|virtual ?cam|obs virtual|dummy video|akvcam|vivid|droidcam|manycam",
                           re.IGNORECASE)


@dataclass(frozen=True)
class UsbVideoDevice:
    identity: UsbIdentity
    manufacturer: str = ""
    product: str = ""
    reason: str = ""                  # why it counts as a camera: "class 0x0e" or a known vendor


def _string(dev: Any, index: int) -> str:
    if not index:
        return ""
    try:
        import usb.util
        return usb.util.get_string(dev, index) or ""
    except Exception:  # a device that will not answer string requests still has VID/PID
        return ""


def bus_path(bus: int | None, ports: Iterable[int] | None) -> str:
    """``bus-port.port`` as the kernel names USB devices in sysfs (e.g. ``2-1.3``)."""
    ports = tuple(ports or ())
    if bus is None or not ports:
        return ""
    return f"{bus}-{'.'.join(str(p) for p in ports)}"


def _video_reason(dev: Any) -> str:
    if dev.bDeviceClass == USB_CLASS_VIDEO:
        return "class 0x0e"
    try:
        for cfg in dev:
            for intf in cfg:
                if intf.bInterfaceClass == USB_CLASS_VIDEO:
                    return "interface class 0x0e"
    except Exception:
        pass
    if dev.idVendor in DEPTH_CAMERA_VIDS:
        return f"{DEPTH_CAMERA_VIDS[dev.idVendor]} depth camera vendor"
    return ""


def enumerate_video_devices(backend: Any = None) -> list[UsbVideoDevice]:
    """USB video devices on the bus. ``backend`` is a pyusb backend (default: libusb1)."""
    try:
        import usb.core
    except ImportError as exc:
        raise BackendUnavailable(f"pyusb is not installed: {exc}") from None
    try:
        devices = list(usb.core.find(find_all=True, backend=backend))
    except usb.core.NoBackendError as exc:
        raise BackendUnavailable(f"no libusb backend for pyusb: {exc}") from None
    out = []
    for dev in devices:
        reason = _video_reason(dev)
        if not reason:
            continue
        ident = UsbIdentity(vendor_id=int(dev.idVendor), product_id=int(dev.idProduct),
                            serial=_string(dev, dev.iSerialNumber), bcd_device=int(dev.bcdDevice),
                            bus_path=bus_path(dev.bus, dev.port_numbers))
        out.append(UsbVideoDevice(ident, _string(dev, dev.iManufacturer), _string(dev, dev.iProduct), reason))
    return out


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AllowEntry:
    vendor_id: int
    product_id: int
    serial: str = ""                  # empty: any serial of this model

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        """``"8086:0b07"`` or ``"8086:0b07:SERIAL"`` (hex VID:PID)."""
        parts = text.strip().split(":", 2)
        if len(parts) < 2:
            raise ValueError(f"allowlist entry {text!r} is not VID:PID[:SERIAL]")
        try:
            vid, pid = int(parts[0], 16), int(parts[1], 16)
        except ValueError:
            raise ValueError(f"allowlist entry {text!r}: VID and PID must be hex") from None
        if not (0 <= vid <= 0xFFFF and 0 <= pid <= 0xFFFF):
            raise ValueError(f"allowlist entry {text!r}: VID/PID out of range")
        return cls(vid, pid, parts[2] if len(parts) == 3 else "")

    def matches(self, ident: UsbIdentity) -> bool:
        return (ident.vendor_id, ident.product_id) == (self.vendor_id, self.product_id) and (
            not self.serial or self.serial == ident.serial)


@dataclass(frozen=True)
class UsbPolicy:
    """Allow/refuse cameras by USB identity. An empty allowlist allows every physical camera."""

    allow: tuple[AllowEntry, ...] = ()
    refuse_virtual: bool = True

    @classmethod
    def from_strings(cls, entries: Iterable[str], refuse_virtual: bool = True) -> UsbPolicy:
        return cls(tuple(AllowEntry.parse(e) for e in entries), refuse_virtual)

    def allows(self, ident: UsbIdentity) -> bool:
        if self.refuse_virtual and not ident.bus_path:
            return False
        return not self.allow or any(e.matches(ident) for e in self.allow)

    def enforce(self, ident: UsbIdentity) -> UsbIdentity:
        if self.refuse_virtual and not ident.bus_path:
            raise DeviceRefused(f"camera {ident.describe()} has no physical USB parent (virtual camera)")
        if not self.allows(ident):
            raise DeviceRefused(f"camera {ident.describe()} is not on the USB allowlist")
        return ident


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoNode:
    name: str                          # "video0"
    card: str                          # the driver's card name (sysfs ``name``)
    driver: str                        # kernel driver bound to the node's parent, "" if none
    usb: UsbIdentity | None            # None: no physical USB parent
    index: int = 0                     # sysfs ``index``: 0 the video node, 1+ e.g. a UVC metadata node

    @property
    def is_virtual(self) -> bool:
        return self.usb is None or self.driver in VIRTUAL_DRIVERS or bool(_VIRTUAL_NAME.search(self.card))


class Sysfs:
    """Read-only view of ``/sys`` under an injectable root (tests use a fake tree)."""

    def __init__(self, root: str | os.PathLike[str] = "/"):
        self.root = Path(root)

    @property
    def _class_dir(self) -> Path:
        return self.root / "sys" / "class" / "video4linux"

    def _read(self, p: Path) -> str:
        try:
            return p.read_text(errors="replace").strip()
        except OSError:
            return ""

    def video_nodes(self) -> list[VideoNode]:
        if not self._class_dir.is_dir():
            return []
        return [self.video_node(p.name) for p in sorted(self._class_dir.iterdir()) if p.name.startswith("video")]

    def video_node(self, node: str) -> VideoNode:
        """``node`` is ``video0`` or ``/dev/video0``."""
        name = os.path.basename(str(node))
        entry = self._class_dir / name
        if not entry.exists():
            raise DeviceRefused(f"/dev/{name} has no sysfs entry; cannot prove it is a physical camera")
        card = self._read(entry / "name")
        try:
            index = int(self._read(entry / "index") or "0")
        except ValueError:
            index = 0
        dev_link = entry / "device"
        driver = ""
        usb = None
        if dev_link.exists():
            real = self._resolve(dev_link)
            driver = self._driver_of(real)
            usb = self._usb_parent(real)
        return VideoNode(name, card, driver, usb, index)

    def _resolve(self, p: Path) -> Path:
        # Resolve symlinks but keep the result inside our root (fake trees use relative links).
        return Path(os.path.realpath(p))

    def _driver_of(self, dev_dir: Path) -> str:
        drv = dev_dir / "driver"
        if drv.is_symlink() or drv.exists():
            return os.path.basename(os.path.realpath(drv))
        return ""

    def _usb_parent(self, dev_dir: Path) -> UsbIdentity | None:
        """Walk up from the interface to the USB device directory (the one with idVendor)."""
        root = Path(os.path.realpath(self.root))
        cur = dev_dir
        while cur != cur.parent and str(cur).startswith(str(root)):
            if (cur / "idVendor").is_file() and (cur / "idProduct").is_file():
                try:
                    vid = int(self._read(cur / "idVendor"), 16)
                    pid = int(self._read(cur / "idProduct"), 16)
                    bcd = int(self._read(cur / "bcdDevice") or "0", 16)
                except ValueError:
                    return None
                return UsbIdentity(vid, pid, self._read(cur / "serial"), bcd, cur.name)
            cur = cur.parent
        return None


def check_video_node(node: str, policy: UsbPolicy, sysfs: Sysfs | None = None) -> UsbIdentity:
    """USB identity of a ``/dev/videoN`` node, or :class:`DeviceRefused` (virtual or not allowed)."""
    vn = (sysfs or Sysfs()).video_node(node)
    if vn.is_virtual:
        why = f"driver {vn.driver}" if vn.driver in VIRTUAL_DRIVERS else (
            "no physical USB parent" if vn.usb is None else f"card name {vn.card!r}")
        if policy.refuse_virtual:
            raise DeviceRefused(f"/dev/{vn.name} ({vn.card or 'unnamed'}) is a virtual camera: {why}")
    if vn.usb is None:
        raise DeviceRefused(f"/dev/{vn.name} has no USB identity")
    return policy.enforce(vn.usb)


def find_identity(vendor_id: int, product_id: int, serial: str = "",
                  devices: Iterable[UsbVideoDevice] | None = None, backend: Any = None) -> UsbIdentity | None:
    """Tie an opened camera (known by VID/PID and maybe serial) to its enumerated USB identity."""
    devs = list(devices) if devices is not None else enumerate_video_devices(backend)
    hits = [d.identity for d in devs if (d.identity.vendor_id, d.identity.product_id) == (vendor_id, product_id)
            and (not serial or d.identity.serial == serial)]
    return hits[0] if len(hits) == 1 else None
