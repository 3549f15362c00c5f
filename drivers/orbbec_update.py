"""Firmware updates of Orbbec cameras through the Orbbec SDK v2 (``pyorbbecsdk2``, import ``pyorbbecsdk``).

The vendor's flow (``examples/2.device.firmware_update`` in OrbbecSDK_v2; the Python example
``09_device_firmware_update.py``): ``Device.update_firmware(path, callback, async_update=False)``
reports ``(OBUpgradeState, message, percent)``. Some models update in two stages: the first call
ends with ``DONE_REBOOT_AND_REUPDATE``; the device is rebooted, found again by its serial (the
vendor waits up to 30 s) and updated again with the same image. After the final ``DONE`` (or
``DONE_WITH_DUPLICATES``) a ``reboot()`` is mandatory: the new firmware is not active before it.
Any ``ERR_*`` state, or an ``OBError`` from the call, is a failed flash.

The SDK reads the image from a path. So that it reads exactly the bytes we verified (not a file
someone could swap after the hash check), the image is handed over as a sealed memfd
(``/proc/self/fd/N``: no writes, no resizing once sealed).

The SDK has no flash backup: ``can_backup`` is False and the update goes on without one ("backs up
first where the SDK can"). Calibration for the identity check comes from
``get_calibration_camera_param_list`` (intrinsics, distortion, depth-to-colour transform).

``sdk`` is the ``pyorbbecsdk`` module by default; tests pass a fake that follows the same API.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .base import ParsedUri
from .update import (
    EnterUpdateFailed,
    FirmwareIdentity,
    FirmwareTarget,
    FlashFailed,
    Progress,
    ReenumerationTimeout,
    TargetNotFound,
    UpdateUnsupported,
    no_progress,
    wait_until,
)

MAX_STAGES = 3                  # two-stage updates need 2; a device asking for more is faulty


def _load_sdk() -> Any:
    try:
        return importlib.import_module("pyorbbecsdk")
    except (ImportError, OSError) as exc:
        raise UpdateUnsupported(f"the Orbbec SDK (pyorbbecsdk2) cannot be loaded: {exc}") from None


@contextmanager
def sealed_image(image: bytes) -> Iterator[str]:
    """A path to a sealed in-memory copy of ``image`` (read-only for everyone, for good)."""
    fd = os.memfd_create("capture-agent-firmware", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(image)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                    | fcntl.F_SEAL_SEAL)
        os.lseek(fd, 0, os.SEEK_SET)
        yield f"/proc/{os.getpid()}/fd/{fd}"
    finally:
        os.close(fd)


def _attrs(obj: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    out: list[Any] = []
    for n in names:
        v: Any = getattr(obj, n, None)
        try:
            out.append(tuple(round(float(x), 6) for x in v) if hasattr(v, "__iter__") else round(float(v), 6))
        except (TypeError, ValueError):
            out.append(repr(v))
    return tuple(out)


def calibration_digest(dev: Any) -> str:
    """SHA-256 over every camera parameter set the device stores (intrinsics, distortion, transform)."""
    try:
        params = dev.get_calibration_camera_param_list()
        n = params.get_count() if hasattr(params, "get_count") else len(params)
        items = [params.get_camera_param(i) for i in range(n)]
    except Exception:            # OBError on devices without stored calibration
        return ""
    if not items:
        return ""
    h = hashlib.sha256()
    for p in items:
        for part in ("depth_intrinsic", "rgb_intrinsic"):
            h.update(repr(_attrs(getattr(p, part, None), ("fx", "fy", "cx", "cy", "width", "height"))).encode())
        for part in ("depth_distortion", "rgb_distortion"):
            h.update(repr(_attrs(getattr(p, part, None), ("k1", "k2", "k3", "k4", "k5", "k6", "p1", "p2"))).encode())
        h.update(repr(_attrs(getattr(p, "transform", None), ("rot", "transform"))).encode())
    return h.hexdigest()


class OrbbecTarget(FirmwareTarget):
    backend = "orbbec"
    can_backup = False

    def __init__(self, serial: str, *, sdk: Any = None, reenumerate_timeout_s: float = 30.0, poll_s: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep, **_: Any):
        self.ob = sdk if sdk is not None else _load_sdk()
        self.serial = serial
        self.reenumerate_timeout_s, self.poll_s, self._sleep = reenumerate_timeout_s, poll_s, sleep
        self._ctx = self.ob.Context()
        if self._device() is None:
            raise TargetNotFound(f"no Orbbec camera with serial {serial!r} is connected")

    def _device(self) -> Any:
        try:
            return self._ctx.query_devices().get_device_by_serial_number(self.serial)
        except self.ob.OBError:
            return None             # "Device not found by serial number"

    def _require(self) -> Any:
        dev = self._device()
        if dev is None:
            raise TargetNotFound(f"Orbbec {self.serial} is not connected")
        return dev

    def identity(self) -> FirmwareIdentity:
        dev = self._require()
        info = dev.get_device_info()
        recovery = False
        prop = getattr(getattr(self.ob, "OBPropertyID", None), "OB_PROP_DEVICE_IN_RECOVERY_MODE_BOOL", None)
        if prop is not None:
            try:
                recovery = bool(dev.get_bool_property(prop))
            except (self.ob.OBError, RuntimeError, AttributeError):
                recovery = False
        return FirmwareIdentity(backend=self.backend, name=info.get_name(), serial=info.get_serial_number(),
                                firmware="" if recovery else info.get_firmware_version(), vendor_id=info.get_vid(),
                                product_id=info.get_pid(), update_id=info.get_serial_number(),
                                calibration_sha256="" if recovery else calibration_digest(dev), recovery=recovery)

    def _reboot_and_wait(self, dev: Any, why: str) -> Any:
        try:
            dev.reboot()
        except self.ob.OBError:
            pass                    # the device may drop off before the call returns
        # The old handle is dead after a reboot: the device must first leave, then come back (a
        # device found again before it left would be the old, stale one).
        wait_until(lambda: self._device() is None, self.reenumerate_timeout_s, self.poll_s,
                   f"Orbbec {self.serial} leaving the bus for the {why} reboot", self._sleep)
        return wait_until(self._device, self.reenumerate_timeout_s, self.poll_s,
                          f"Orbbec {self.serial} after the {why} reboot", self._sleep)

    def install(self, image: bytes, progress: Progress = no_progress) -> None:
        ob = self.ob
        states = ob.OBUpgradeState
        dev = self._require()
        with sealed_image(image) as path:
            for stage in range(1, MAX_STAGES + 1):
                final: list[Any] = []
                lock = threading.Lock()

                def callback(state: Any, message: str, percent: int, _final: list[Any] = final,
                             _lock: threading.Lock = lock, _phase: str = f"flash {stage}") -> None:
                    with _lock:
                        _final.append((state, str(message)[:200]))
                    progress(_phase, max(0, min(100, int(percent))) / 100)

                try:
                    dev.update_firmware(path, callback, async_update=False)
                except ob.OBError as exc:
                    raise FlashFailed(f"Orbbec SDK: update failed ({exc}); the camera must be updated again") from None
                state, message = final[-1] if final else (None, "")
                if state is not None and int(state) < 0:
                    raise FlashFailed(f"Orbbec SDK: update failed with {state} ({message})")
                if state == states.DONE_REBOOT_AND_REUPDATE:
                    try:
                        dev = self._reboot_and_wait(dev, f"stage-{stage}")
                    except ReenumerationTimeout as exc:
                        raise EnterUpdateFailed(exc.message) from None
                    continue
                if state not in (states.DONE, states.DONE_WITH_DUPLICATES):
                    raise FlashFailed(f"Orbbec SDK: the update ended without completion (last state {state})")
                progress("reboot", 0.0)
                self._reboot_and_wait(dev, "mandatory")          # the new firmware runs only after it
                progress("reboot", 1.0)
                return
        raise FlashFailed(f"Orbbec SDK asked for a reboot-and-update more than {MAX_STAGES - 1} times")


def open_update_target(parsed: ParsedUri, *, update_id: str = "", **options: Any) -> OrbbecTarget:
    serial = parsed.target.strip("/") or update_id
    if parsed.scheme != "orbbec" or not serial:
        raise UpdateUnsupported("Orbbec firmware is updated on a connected camera: orbbec://SERIAL")
    return OrbbecTarget(serial, **options)
