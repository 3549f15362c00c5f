"""USB DFU 1.1 over pyusb: firmware updates of UVC camera modules that carry a DFU interface.

The protocol (USB Device Firmware Upgrade 1.1, usb.org): a device in service exposes a *run-time*
DFU interface (class 0xFE, subclass 1, protocol 1). ``DFU_DETACH`` (and, unless the device detaches
by itself, a USB reset) makes it re-enumerate in *DFU mode* (protocol 2), usually under another
product ID. There the host downloads the image in blocks of at most ``wTransferSize`` bytes; after
each block it polls ``DFU_GETSTATUS`` and waits the ``bwPollTimeout`` the device asks for (a request
while the device is busy programming stalls it into ``dfuERROR``). A zero-length download starts
manifestation; then a USB reset brings the device back in service with the new firmware.

Why it is written out here rather than left to a tool: every state is checked (the device must be
where the protocol says before the next request), every wait has a deadline, a device in
``dfuERROR`` is cleared back to ``dfuIDLE`` before we give up (a known state), and a device found in
DFU mode at the start is an interrupted update that can be resumed.

URIs: ``dfu://VID:PID[/SERIAL]`` (hex), ``usb://BUS-PORT.PORT`` (the kernel's bus path, as
``capture-agent devices`` lists unclaimed USB cameras), ``uvc:///dev/videoN`` (the video node's USB
parent through sysfs). Tests pass ``usb_backend``: any ``usb.backend.IBackend`` (a simulated bus).
"""

from __future__ import annotations

import enum
import re
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import ParsedUri
from .update import (
    BackupFailed,
    EnterUpdateFailed,
    FirmwareIdentity,
    FirmwareTarget,
    FlashFailed,
    ImageIncompatible,
    Progress,
    ReenumerationTimeout,
    TargetNotFound,
    UpdateUnsupported,
    no_progress,
    wait_until,
)

DFU_CLASS, DFU_SUBCLASS = 0xFE, 0x01
PROTOCOL_RUNTIME, PROTOCOL_DFU = 0x01, 0x02
FUNCTIONAL_DESCRIPTOR = 0x21
OUT, IN = 0x21, 0xA1                     # class request, interface recipient
DETACH, DNLOAD, UPLOAD, GETSTATUS, CLRSTATUS, GETSTATE, ABORT = range(7)
MAX_POLL_S = 5.0                         # a bwPollTimeout beyond this is treated as a fault, not obeyed
MAX_BACKUP_BYTES = 64 << 20


class State(enum.IntEnum):
    APP_IDLE = 0
    APP_DETACH = 1
    DFU_IDLE = 2
    DFU_DNLOAD_SYNC = 3
    DFU_DNBUSY = 4
    DFU_DNLOAD_IDLE = 5
    DFU_MANIFEST_SYNC = 6
    DFU_MANIFEST = 7
    DFU_MANIFEST_WAIT_RESET = 8
    DFU_UPLOAD_IDLE = 9
    DFU_ERROR = 10


class Status(enum.IntEnum):
    OK = 0x00
    ERR_TARGET = 0x01
    ERR_FILE = 0x02
    ERR_WRITE = 0x03
    ERR_ERASE = 0x04
    ERR_CHECK_ERASED = 0x05
    ERR_PROG = 0x06
    ERR_VERIFY = 0x07
    ERR_ADDRESS = 0x08
    ERR_NOTDONE = 0x09
    ERR_FIRMWARE = 0x0A
    ERR_VENDOR = 0x0B
    ERR_USBR = 0x0C
    ERR_POR = 0x0D
    ERR_UNKNOWN = 0x0E
    ERR_STALLEDPKT = 0x0F


def _name(enum_cls: type[enum.IntEnum], value: int) -> str:
    try:
        return enum_cls(value).name
    except ValueError:
        return f"0x{value:02x}"


@dataclass(frozen=True)
class FunctionalDescriptor:
    can_download: bool
    can_upload: bool
    manifestation_tolerant: bool
    will_detach: bool
    detach_timeout_ms: int
    transfer_size: int
    dfu_version: int

    @classmethod
    def parse(cls, extra: bytes) -> FunctionalDescriptor | None:
        """The DFU functional descriptor among an interface's extra descriptors (None if absent)."""
        i = 0
        while i + 2 <= len(extra):
            length, kind = extra[i], extra[i + 1]
            if length < 2:
                return None
            if kind == FUNCTIONAL_DESCRIPTOR and length >= 7 and i + length <= len(extra):
                attrs = extra[i + 2]
                detach, size = struct.unpack_from("<HH", extra, i + 3)
                version = struct.unpack_from("<H", extra, i + 7)[0] if length >= 9 else 0x0100
                return cls(bool(attrs & 1), bool(attrs & 2), bool(attrs & 4), bool(attrs & 8), detach, size, version)
            i += length
        return None


@dataclass(frozen=True)
class DfuStatus:
    status: int
    poll_timeout_ms: int
    state: int

    @classmethod
    def parse(cls, raw: bytes) -> DfuStatus:
        if len(raw) != 6:
            raise FlashFailed(f"DFU_GETSTATUS answered {len(raw)} bytes instead of 6")
        return cls(raw[0], raw[1] | raw[2] << 8 | raw[3] << 16, raw[4])

    def describe(self) -> str:
        return f"state {_name(State, self.state)}, status {_name(Status, self.status)}"


# -- DFU file suffix (DFU 1.1 appendix B) ---------------------------------------------------------
@dataclass(frozen=True)
class DfuSuffix:
    bcd_device: int
    product_id: int
    vendor_id: int
    bcd_dfu: int

    def matches(self, vendor_id: int, product_id: int) -> bool:
        # 0xFFFF is the suffix's wildcard.
        return self.vendor_id in (0xFFFF, vendor_id) and self.product_id in (0xFFFF, product_id)


def split_suffix(image: bytes) -> tuple[bytes, DfuSuffix | None]:
    """``(payload, suffix)``: a DFU file's suffix is checked (CRC) and is not sent to the device.
    An image without the ``UFD`` signature is all payload."""
    if len(image) < 16 or image[-8:-5] != b"UFD":
        return image, None
    length = image[-5]
    if length < 16 or length > len(image):
        raise ImageIncompatible(f"DFU suffix length {length} is invalid")
    crc = struct.unpack("<I", image[-4:])[0]
    # The suffix's CRC is the CRC-32 register without its final inversion (as dfu-util computes it).
    if crc != (zlib.crc32(image[:-4]) ^ 0xFFFFFFFF):
        raise ImageIncompatible("the DFU file's CRC does not match its contents (corrupt or altered image)")
    bcd_device, pid, vid, bcd_dfu = struct.unpack("<HHHH", image[-16:-8])
    return image[:-length], DfuSuffix(bcd_device, pid, vid, bcd_dfu)


def add_suffix(payload: bytes, vendor_id: int, product_id: int, bcd_device: int = 0xFFFF) -> bytes:
    """A DFU file: ``payload`` plus the 16-byte suffix (for tools and tests building images)."""
    body = payload + struct.pack("<HHHH", bcd_device, product_id, vendor_id, 0x0100) + b"UFD" + bytes([16])
    return body + struct.pack("<I", zlib.crc32(body) ^ 0xFFFFFFFF)


def bcd_version(bcd: int) -> str:
    """``bcdDevice`` as a version string: 0x0102 -> ``1.02``."""
    return f"{bcd >> 8:x}.{bcd & 0xFF:02x}"


# -- finding the device ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    """How to recognise the camera on the bus, in service or in DFU mode."""

    vendor_id: int = 0
    product_id: int = 0
    serial: str = ""
    bus_path: str = ""

    def runtime(self, dev: Any, serial: str) -> bool:
        if self.bus_path and _bus_path(dev) != self.bus_path:
            return False
        if self.vendor_id and dev.idVendor != self.vendor_id:
            return False
        if self.product_id and dev.idProduct != self.product_id:
            return False
        return not self.serial or serial == self.serial

    def dfu_mode(self, dev: Any, serial: str) -> bool:
        # In DFU mode the product ID (and often the strings) change; the vendor, the serial and the
        # port stay. With neither serial nor port known we cannot tell two cameras apart: refuse.
        if self.vendor_id and dev.idVendor != self.vendor_id:
            return False
        if self.serial:
            return serial == self.serial
        return bool(self.bus_path) and _bus_path(dev) == self.bus_path


def _bus_path(dev: Any) -> str:
    ports = tuple(getattr(dev, "port_numbers", None) or ())
    return f"{dev.bus}-{'.'.join(str(p) for p in ports)}" if ports and dev.bus is not None else ""


def _string(dev: Any, index: int) -> str:
    if not index:
        return ""
    try:
        import usb.util
        return usb.util.get_string(dev, index) or ""
    except Exception:  # a device that will not answer string requests still has IDs
        return ""


def _dfu_interface(dev: Any) -> tuple[int, int, FunctionalDescriptor] | None:
    """``(interface number, protocol, functional descriptor)`` of the device's DFU interface."""
    try:
        for cfg in dev:
            for intf in cfg:
                if intf.bInterfaceClass == DFU_CLASS and intf.bInterfaceSubClass == DFU_SUBCLASS:
                    fd = FunctionalDescriptor.parse(bytes(intf.extra_descriptors or b""))
                    if fd is not None:
                        return intf.bInterfaceNumber, intf.bInterfaceProtocol, fd
    except Exception:
        return None
    return None


def parse_target(parsed: ParsedUri, sysfs_root: str = "/") -> Match:
    if parsed.scheme == "dfu":
        m = re.fullmatch(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{4})(?:/([^/]{1,126}))?", parsed.target.strip("/"))
        if not m:
            raise TargetNotFound(f"dfu:// needs VID:PID[/SERIAL] in hex, not {parsed.target!r}")
        return Match(int(m.group(1), 16), int(m.group(2), 16), m.group(3) or "")
    if parsed.scheme == "usb":
        path = parsed.target.strip("/")
        if not re.fullmatch(r"\d{1,3}-\d{1,3}(\.\d{1,3}){0,6}", path):
            raise TargetNotFound(f"usb:// needs a bus path such as 2-1.3, not {path!r}")
        return Match(bus_path=path)
    if parsed.scheme == "uvc":
        from .usb import Sysfs
        node = parsed.target if parsed.target.startswith("/dev/") else f"/dev/video{parsed.target.strip('/')}"
        vn = Sysfs(sysfs_root).video_node(node)
        if vn.usb is None or not vn.usb.bus_path:
            raise UpdateUnsupported(f"{node} has no physical USB parent: nothing to update")
        return Match(vn.usb.vendor_id, vn.usb.product_id, vn.usb.serial, vn.usb.bus_path)
    raise UpdateUnsupported(f"{parsed.scheme}:// is not a DFU target")


class DfuTarget(FirmwareTarget):
    """One camera module with a DFU interface, found again after each re-enumeration."""

    backend = "dfu"

    def __init__(self, match: Match, *, usb_backend: Any = None, reenumerate_timeout_s: float = 10.0,
                 poll_s: float = 0.05, request_timeout_ms: int = 5000, sleep: Callable[[float], None] = time.sleep):
        try:
            import usb.core
        except ImportError as exc:
            raise UpdateUnsupported(f"pyusb is not installed: {exc}") from None
        self._usb = usb.core
        self.match = match
        self._backend = usb_backend
        self.reenumerate_timeout_s, self.poll_s = reenumerate_timeout_s, poll_s
        self.request_timeout_ms = request_timeout_ms
        self._sleep = sleep
        found = self._find()
        if found is None:
            raise TargetNotFound(f"no USB device with a DFU interface matches {self._describe_match()}")
        dev, in_dfu = found
        # Pin the match to what survives re-enumeration: vendor, serial, port (and the product id
        # in service, when the camera was found in service).
        serial = _string(dev, dev.iSerialNumber)
        self.match = Match(match.vendor_id or dev.idVendor, match.product_id or (0 if in_dfu else dev.idProduct),
                           match.serial or serial, match.bus_path or _bus_path(dev))
        fd = _dfu_interface(dev)
        self.can_backup = bool(fd and fd[2].can_upload)

    def _describe_match(self) -> str:
        m = self.match
        parts = [f"{m.vendor_id:04x}:{m.product_id:04x}" if m.vendor_id else "", m.serial, m.bus_path]
        return " ".join(p for p in parts if p) or "(nothing)"

    # -- enumeration ---------------------------------------------------------------------------
    def _devices(self) -> list[Any]:
        try:
            return list(self._usb.find(find_all=True, backend=self._backend))
        except self._usb.NoBackendError as exc:
            raise UpdateUnsupported(f"no libusb backend for pyusb: {exc}") from None

    def _find(self) -> tuple[Any, bool] | None:
        """``(device, in_dfu_mode)`` for the camera, or None when it is not on the bus."""
        for dev in self._devices():
            intf = _dfu_interface(dev)
            if intf is None:
                continue
            serial = _string(dev, dev.iSerialNumber)
            if intf[1] == PROTOCOL_DFU and self.match.dfu_mode(dev, serial):
                return dev, True
            if intf[1] == PROTOCOL_RUNTIME and self.match.runtime(dev, serial):
                return dev, False
        return None

    def _wait(self, dfu_mode: bool, what: str) -> Any:
        def probe() -> Any:
            found = self._find()
            return found[0] if found is not None and found[1] == dfu_mode else None
        return wait_until(probe, self.reenumerate_timeout_s, self.poll_s, what, self._sleep)

    def identity(self) -> FirmwareIdentity:
        found = self._find()
        if found is None:
            raise TargetNotFound(f"the camera ({self._describe_match()}) is not on the bus")
        dev, dfu = found
        name = _string(dev, dev.iProduct) or _string(dev, dev.iManufacturer)
        return FirmwareIdentity(backend=self.backend, name=name, serial=_string(dev, dev.iSerialNumber),
                                firmware="" if dfu else bcd_version(dev.bcdDevice), vendor_id=dev.idVendor,
                                product_id=self.match.product_id if dfu and self.match.product_id else dev.idProduct,
                                update_id=self.match.serial, recovery=dfu)

    # -- requests ------------------------------------------------------------------------------
    def _request(self, dev: Any, intf: int, request: int, value: int = 0, data: Any = None) -> Any:
        rtype = IN if request in (UPLOAD, GETSTATUS, GETSTATE) else OUT
        try:
            return dev.ctrl_transfer(rtype, request, value, intf, data if data is not None else 0,
                                     timeout=self.request_timeout_ms)
        except self._usb.USBError as exc:
            raise _Transfer(request, exc) from None

    def _status(self, dev: Any, intf: int) -> DfuStatus:
        return DfuStatus.parse(bytes(self._request(dev, intf, GETSTATUS, data=6)))

    def _to_idle(self, dev: Any, intf: int) -> None:
        """Bring a device in DFU mode to ``dfuIDLE`` (clearing an error an earlier run left)."""
        st = self._status(dev, intf)
        if st.state == State.DFU_ERROR:
            self._request(dev, intf, CLRSTATUS)
            st = self._status(dev, intf)
        if st.state in (State.DFU_DNLOAD_IDLE, State.DFU_UPLOAD_IDLE):
            self._request(dev, intf, ABORT)
            st = self._status(dev, intf)
        if st.state != State.DFU_IDLE:
            raise EnterUpdateFailed(f"the DFU device will not go idle ({st.describe()})")

    def _wait_poll(self, st: DfuStatus) -> None:
        if st.poll_timeout_ms / 1000 > MAX_POLL_S:
            raise FlashFailed(f"the device asked for a {st.poll_timeout_ms} ms poll timeout (over {MAX_POLL_S:g} s)")
        if st.poll_timeout_ms:
            self._sleep(st.poll_timeout_ms / 1000)

    def _settle(self, dev: Any, intf: int, busy: tuple[int, ...], done: tuple[int, ...], what: str) -> DfuStatus:
        """Poll GETSTATUS, waiting each bwPollTimeout, until the state leaves ``busy``."""
        deadline = time.monotonic() + self.reenumerate_timeout_s
        st = self._status(dev, intf)
        while st.status == Status.OK and st.state in busy:
            if time.monotonic() > deadline:
                raise FlashFailed(f"{what}: the device stayed busy ({st.describe()})")
            self._wait_poll(st)
            st = self._status(dev, intf)
        if st.status != Status.OK or st.state not in done:
            self._clear(dev, intf)
            raise FlashFailed(f"{what}: {st.describe()}")
        return st

    def _clear(self, dev: Any, intf: int) -> None:
        """Leave a failed device in dfuIDLE (a known state), if it still answers."""
        try:
            self._request(dev, intf, CLRSTATUS)
        except _Transfer:
            pass

    def _enter_dfu(self, progress: Progress) -> tuple[Any, int, FunctionalDescriptor]:
        found = self._find()
        if found is None:
            raise TargetNotFound(f"the camera ({self._describe_match()}) is not on the bus")
        dev, dfu = found
        if not dfu:
            intf = _dfu_interface(dev)
            assert intf is not None
            number, _, fd = intf
            progress("detach", 0.0)
            try:
                self._request(dev, number, DETACH, min(fd.detach_timeout_ms, 0xFFFF))
            except _Transfer as exc:
                raise EnterUpdateFailed(f"DFU_DETACH refused: {exc}") from None
            if not fd.will_detach:
                self._reset(dev)
            try:
                dev = self._wait(True, f"the camera in DFU mode ({self._describe_match()})")
            except ReenumerationTimeout as exc:
                raise EnterUpdateFailed(exc.message) from None
            progress("detach", 1.0)
        intf = _dfu_interface(dev)
        assert intf is not None
        number, _, fd = intf
        self._to_idle(dev, number)
        return dev, number, fd

    def _reset(self, dev: Any) -> None:
        try:
            dev.reset()
        except self._usb.USBError:
            pass          # a device that re-enumerates during the reset fails it (libusb: NOT_FOUND)
        try:
            self._usb.util.dispose_resources(dev)
        except Exception:
            pass

    # -- the two operations ---------------------------------------------------------------------
    def check_image(self, image: bytes) -> None:
        payload, suffix = split_suffix(image)
        if not payload:
            raise ImageIncompatible("the image is empty")
        m = self.match
        if suffix is not None and m.vendor_id and not suffix.matches(m.vendor_id, m.product_id or suffix.product_id):
            raise ImageIncompatible(f"the image is for USB {suffix.vendor_id:04x}:{suffix.product_id:04x}, "
                                    f"not this camera ({m.vendor_id:04x}:{m.product_id:04x})")

    def install(self, image: bytes, progress: Progress = no_progress) -> None:
        self.check_image(image)
        payload, _ = split_suffix(image)
        dev, intf, fd = self._enter_dfu(progress)
        if not fd.can_download:
            raise UpdateUnsupported("the camera's DFU interface does not accept downloads")
        size = max(1, min(fd.transfer_size, 4096))
        blocks = (len(payload) + size - 1) // size
        try:
            for n in range(blocks):
                self._request(dev, intf, DNLOAD, n & 0xFFFF, payload[n * size:(n + 1) * size])
                self._settle(dev, intf, (State.DFU_DNLOAD_SYNC, State.DFU_DNBUSY), (State.DFU_DNLOAD_IDLE,),
                             f"block {n} of {blocks}")
                progress("flash", (n + 1) / blocks)
            self._request(dev, intf, DNLOAD, blocks & 0xFFFF, b"")          # end of image: manifest
            done = (State.DFU_IDLE,) if fd.manifestation_tolerant else (State.DFU_MANIFEST_WAIT_RESET,)
            try:
                self._settle(dev, intf, (State.DFU_MANIFEST_SYNC, State.DFU_MANIFEST), done, "manifestation")
            except _Transfer as exc:
                # A device that is not manifestation-tolerant may drop off the bus instead of
                # answering the last status request; it is judged by what comes back.
                if fd.manifestation_tolerant or not exc.gone:
                    raise
        except _Transfer as exc:
            raise FlashFailed(f"DFU transfer failed ({exc}); the camera stays in DFU mode until an update "
                              "completes") from None
        progress("reboot", 0.0)
        self._reset(dev)
        try:
            self._wait(False, f"the camera back in service ({self._describe_match()})")
        except ReenumerationTimeout:
            if self._find() is not None:      # back in DFU mode: the bootloader rejected the image
                raise FlashFailed("the camera came back in DFU mode: its bootloader did not accept the image") from None
            raise
        progress("reboot", 1.0)

    def backup(self, progress: Progress = no_progress) -> bytes:
        dev, intf, fd = self._enter_dfu(progress)
        try:
            if not fd.can_upload:
                raise UpdateUnsupported("the camera's DFU interface does not allow uploads (no backup)")
            size = max(1, min(fd.transfer_size, 4096))
            out = bytearray()
            n = 0
            while True:
                chunk = bytes(self._request(dev, intf, UPLOAD, n & 0xFFFF, size))
                out += chunk
                n += 1
                progress("backup", min(0.99, n / 1024))
                if len(chunk) < size:
                    break                       # a short block ends the upload (device is dfuIDLE again)
                if len(out) > MAX_BACKUP_BYTES:
                    self._request(dev, intf, ABORT)
                    raise BackupFailed(f"the upload exceeded {MAX_BACKUP_BYTES} bytes")
            st = self._status(dev, intf)
            if st.state != State.DFU_IDLE or st.status != Status.OK:
                raise BackupFailed(f"upload ended with {st.describe()}")
        except _Transfer as exc:
            raise BackupFailed(f"DFU upload failed: {exc}") from None
        finally:
            self._reset(dev)                    # back in service, with or without a backup
            self._wait(False, f"the camera back in service ({self._describe_match()})")
        progress("backup", 1.0)
        return bytes(out)


class _Transfer(Exception):
    """A control transfer failed (stall, timeout, device gone); mapped to a typed error by the caller."""

    def __init__(self, request: int, exc: Exception):
        names = {DETACH: "DETACH", DNLOAD: "DNLOAD", UPLOAD: "UPLOAD", GETSTATUS: "GETSTATUS",
                 CLRSTATUS: "CLRSTATUS", GETSTATE: "GETSTATE", ABORT: "ABORT"}
        super().__init__(f"DFU_{names.get(request, request)}: {exc}")
        self.gone = getattr(exc, "errno", None) in (19, 2)      # ENODEV / ENOENT: the device left the bus


def open_update_target(parsed: ParsedUri, *, update_id: str = "", usb_backend: Any = None,
                       sysfs_root: str = "/", **options: Any) -> DfuTarget:
    match = parse_target(parsed, sysfs_root)
    if update_id and not match.serial:
        match = Match(match.vendor_id, match.product_id, update_id, match.bus_path)
    return DfuTarget(match, usb_backend=usb_backend, **options)
