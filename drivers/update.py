"""Firmware update targets: the contract every vendor update path implements, and its typed errors.

A :class:`FirmwareTarget` is a camera seen through its vendor's *update* API (not its streaming
API): librealsense's ``updatable``/``update_device`` (``drivers/realsense_update.py``), the Orbbec
SDK v2's ``Device.update_firmware`` (``drivers/orbbec_update.py``) and USB DFU 1.1 over pyusb for
UVC modules (``drivers/dfu.py``). The policy around it (signed manifest, downgrades, maintenance
window, journal, audit) lives in the ``firmware`` package; a target only knows how to talk to one
device and reports what it sees as a :class:`FirmwareIdentity`.

Contract of :class:`FirmwareTarget`:

* ``identity()`` re-reads the device (after an update it is a different USB device: the target
  finds it again by what survives re-enumeration: serial, RealSense's ``firmware_update_id``).
* ``check_image(image)`` runs the SDK's own compatibility check where there is one; it never
  writes to the device.
* ``backup(progress)`` returns the flash backup bytes, or raises :class:`UpdateUnsupported` when
  the SDK has no backup (``can_backup`` says so up front).
* ``install(image, progress)`` takes the device from service (or from its recovery/DFU mode) to
  running ``image``: enter the update state, wait for the update device, flash, wait for the
  device to come back. It returns once the device has re-enumerated; it does not judge the result
  (the caller compares versions and identity). Every wait has a monotonic deadline.

Codes start with ``FW_``, the firmware family (``firmware/errors.py`` adds the policy's codes).
"""

from __future__ import annotations

import abc
import importlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .base import parse_uri
from .errors import CaptureAgentError

# progress(phase, fraction): phase names the step ("backup", "flash", "verify", ...), fraction 0..1.
Progress = Callable[[str, float], None]


def no_progress(phase: str, fraction: float) -> None:
    """A progress sink that ignores everything."""


class FirmwareError(CaptureAgentError):
    code = "FW_ERROR"


class UpdateUnsupported(FirmwareError):
    """The device or source has no firmware update path (a recording, the simulator, a software device)."""

    code = "FW_UNSUPPORTED"


class TargetNotFound(FirmwareError):
    """No device matching the URI is connected (in service or in its recovery/DFU mode)."""

    code = "FW_DEVICE_NOT_FOUND"


class ImageIncompatible(FirmwareError):
    """The vendor's own check refuses the image for this device (size, product, signature format)."""

    code = "FW_IMAGE_INCOMPATIBLE"


class BackupFailed(FirmwareError):
    code = "FW_BACKUP_FAILED"


class EnterUpdateFailed(FirmwareError):
    """The device would not switch to its update (DFU / recovery) mode."""

    code = "FW_ENTER_UPDATE_FAILED"


class ReenumerationTimeout(FirmwareError):
    """The device did not come back on the bus within its deadline (after detach, reset or reboot)."""

    code = "FW_REENUMERATION_TIMEOUT"


class FlashFailed(FirmwareError):
    """The transfer or the programming of the image failed part-way; the device holds no valid
    firmware until an update completes (it stays in recovery / DFU mode)."""

    code = "FW_FLASH_FAILED"


@dataclass(frozen=True)
class FirmwareIdentity:
    """What the update API tells about a device. ``update_id`` is what survives the update state
    (librealsense's ``firmware_update_id``, the ASIC serial; the USB serial for DFU and Orbbec)."""

    backend: str
    name: str
    serial: str
    firmware: str
    vendor_id: int = 0
    product_id: int = 0
    update_id: str = ""
    calibration_sha256: str = ""        # digest of the factory calibration; "" when the SDK exposes none
    recovery: bool = False              # in recovery / DFU mode: no valid firmware running

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["usb_id"] = f"{self.vendor_id:04x}:{self.product_id:04x}" if self.vendor_id else ""
        return d


class FirmwareTarget(abc.ABC):
    backend: str = ""
    can_backup: bool = False

    @abc.abstractmethod
    def identity(self) -> FirmwareIdentity: ...

    def check_image(self, image: bytes) -> None:  # noqa: B027 - optional: not every SDK has a check
        """The SDK's own compatibility check; the default is that there is none."""

    def backup(self, progress: Progress = no_progress) -> bytes:
        raise UpdateUnsupported(f"the {self.backend} update path cannot back up the camera's flash")

    @abc.abstractmethod
    def install(self, image: bytes, progress: Progress = no_progress) -> None: ...

    def close(self) -> None:  # noqa: B027 - targets holding no resources need not override
        """Release SDK handles (idempotent)."""

    def __enter__(self) -> FirmwareTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until(probe: Callable[[], Any], timeout_s: float, poll_s: float, what: str,
               sleep: Callable[[float], None] = time.sleep) -> Any:
    """Call ``probe`` until it returns something truthy, at most ``timeout_s`` (monotonic); raise
    :class:`ReenumerationTimeout` naming ``what`` otherwise. Device-changed callbacks are not
    reliable after resets (librealsense #9287), so re-enumeration is polled."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise ReenumerationTimeout(f"{what} did not appear within {timeout_s:g} s")
        sleep(poll_s)


# Update paths by URI scheme; modules (and vendor SDKs) load on first use, like the camera backends.
_TARGETS = {
    "realsense": "drivers.realsense_update",
    "orbbec": "drivers.orbbec_update",
    "dfu": "drivers.dfu",
    "usb": "drivers.dfu",
    "uvc": "drivers.dfu",
}


def register_target(scheme: str, module: str) -> None:
    """Add an update path (tests and benches register their fake devices' paths this way)."""
    _TARGETS[scheme] = module


def open_target(uri: str, *, update_id: str = "", **options: Any) -> FirmwareTarget:
    """The update target for a device URI: ``realsense://SERIAL``, ``orbbec://SERIAL``,
    ``dfu://VID:PID[/SERIAL]``, ``usb://BUS-PORT.PORT`` or ``uvc:///dev/videoN``. ``update_id``
    finds a device that is already in its recovery/DFU mode (an interrupted update). ``options``
    go to the backend (tests inject SDK modules, a pyusb backend and short deadlines)."""
    parsed = parse_uri(uri)
    module = _TARGETS.get(parsed.scheme)
    if module is None:
        raise UpdateUnsupported(f"{parsed.scheme}:// sources have no firmware update path "
                                f"(recordings and the simulator never do); update paths: {', '.join(sorted(_TARGETS))}")
    try:
        mod = importlib.import_module(module)
    except (ImportError, OSError) as exc:
        raise UpdateUnsupported(f"the {parsed.scheme} update path is unavailable: {exc}") from None
    target: FirmwareTarget = mod.open_update_target(parsed, update_id=update_id, **options)
    return target
