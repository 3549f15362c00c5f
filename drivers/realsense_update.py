"""Firmware updates of Intel RealSense D4xx cameras through librealsense's own update API.

The flow is the vendor's (``tools/fw-update/rs-fw-update.cpp``): ``updatable.check_firmware_compatibility``
on the signed image, ``create_flash_backup`` (calibration and device data; not a loadable image),
``enter_update_state`` (the camera leaves the bus and comes back as a *recovery* device, PID 0ADB,
under another serial), find that device by ``firmware_update_id`` (the ASIC serial, the identity
that survives the update state), ``update_device.update(image, progress)`` on the caller's thread,
then wait for the camera to come back in service under its own serial. Device-changed callbacks
are unreliable after resets (librealsense #9287) and ``device_hub.wait_for_device`` cannot time
out, so re-enumeration is polled with a deadline (``rs-fw-update`` waits 15 s).

A camera found already in recovery mode (an update cut off earlier) is updated the same way, found
by the ``update_id`` the journal kept ("recovery mode handled").

Facts this code relies on (pyrealsense2 2.59.1, checked here): images are passed as a sequence of
ints (the binding refuses ``bytes`` with a TypeError; ``bytearray`` converts); a signed D4xx image is
exactly 0x18031C bytes, other sizes raise "Unsupported firmware binary image provided"; progress
callbacks get a float 0..1; ``rs.updatable(dev)`` on a device without the update protocol builds an
object whose every call raises ``RuntimeError: null pointer passed for argument "device"``.

``sdk`` is the ``pyrealsense2`` module by default; tests pass a fake that follows the same API.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
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

INTEL_VID = 0x8086
SIGNED_IMAGE_SIZE = 0x18031C              # librealsense: signed_fw_size (d400-private.h)
RECOVERY_PIDS = frozenset({0x0ADB, 0x0ADC})


def _load_sdk() -> Any:
    try:
        import pyrealsense2 as rs
    except (ImportError, OSError) as exc:
        raise UpdateUnsupported(f"pyrealsense2 cannot be loaded: {exc}") from None
    return rs


def sdk_image(image: bytes) -> bytearray:
    """The image in a form the binding accepts (``list[int]``: a bytearray converts, bytes do not)."""
    return bytearray(image)


def calibration_digest(dev: Any) -> str:
    """SHA-256 over the factory calibration the SDK exposes: every video profile's intrinsics
    (model and coefficients included) and the extrinsics between the streams. Same camera, same
    digest: a firmware update must not change it."""
    items: set[tuple[Any, ...]] = set()
    firsts: dict[str, Any] = {}
    for sensor in dev.query_sensors():
        for p in sensor.get_stream_profiles():
            if not p.is_video_stream_profile():
                continue
            try:
                i = p.as_video_stream_profile().get_intrinsics()
            except RuntimeError:
                continue
            stream = f"{p.stream_type()}/{p.stream_index()}"
            firsts.setdefault(stream, p)
            items.add(("intrinsics", stream, i.width, i.height, round(i.fx, 4), round(i.fy, 4), round(i.ppx, 4),
                       round(i.ppy, 4), str(i.model), tuple(round(c, 6) for c in i.coeffs)))
    names = sorted(firsts)
    for a in names:
        for b in names:
            if a >= b:
                continue
            try:
                e = firsts[a].get_extrinsics_to(firsts[b])
            except RuntimeError:
                continue
            items.add(("extrinsics", a, b, tuple(round(r, 6) for r in e.rotation),
                       tuple(round(t, 6) for t in e.translation)))
    if not items:
        return ""
    h = hashlib.sha256()
    for item in sorted(items, key=repr):
        h.update(repr(item).encode())
    return h.hexdigest()


class RealSenseTarget(FirmwareTarget):
    backend = "realsense"
    can_backup = True

    def __init__(self, serial: str, *, update_id: str = "", sdk: Any = None, reenumerate_timeout_s: float = 15.0,
                 poll_s: float = 0.25, sleep: Callable[[float], None] = time.sleep):
        self.rs = sdk if sdk is not None else _load_sdk()
        self.serial, self.update_id = serial, update_id
        self.reenumerate_timeout_s, self.poll_s, self._sleep = reenumerate_timeout_s, poll_s, sleep
        dev = self._service()
        if dev is not None:
            self.update_id = self._info(dev, "firmware_update_id") or update_id
        elif not (update_id and self._recovery()):
            raise TargetNotFound(f"no RealSense camera with serial {serial!r} is connected"
                                 + (f", and no recovery device with update id {update_id!r}" if update_id else ""))

    # -- enumeration ---------------------------------------------------------------------------
    def _devices(self) -> list[Any]:
        try:
            return list(self.rs.context().query_devices())
        except RuntimeError as exc:
            raise TargetNotFound(f"librealsense cannot list devices: {exc}") from None

    def _info(self, dev: Any, name: str) -> str:
        field = getattr(self.rs.camera_info, name)
        try:
            return str(dev.get_info(field)) if dev.supports(field) else ""
        except RuntimeError:
            return ""

    def _is_recovery(self, dev: Any) -> bool:
        try:
            return bool(dev.is_update_device() or dev.is_in_recovery_mode())
        except RuntimeError:
            return False

    def _service(self) -> Any:
        return next((d for d in self._devices() if not self._is_recovery(d)
                     and self._info(d, "serial_number") == self.serial), None)

    def _recovery(self) -> Any:
        if not self.update_id:
            return None
        return next((d for d in self._devices() if self._is_recovery(d)
                     and self._info(d, "firmware_update_id") == self.update_id), None)

    def identity(self) -> FirmwareIdentity:
        dev = self._service()
        if dev is not None:
            return FirmwareIdentity(backend=self.backend, name=self._info(dev, "name"), serial=self.serial,
                                    firmware=self._info(dev, "firmware_version"), vendor_id=INTEL_VID,
                                    product_id=_pid(self._info(dev, "product_id")),
                                    update_id=self._info(dev, "firmware_update_id"),
                                    calibration_sha256=calibration_digest(dev))
        rec = self._recovery()
        if rec is None:
            raise TargetNotFound(f"RealSense {self.serial} is not connected (neither in service nor in recovery mode)")
        return FirmwareIdentity(backend=self.backend, name=self._info(rec, "name"),
                                serial=self._info(rec, "serial_number"), firmware="", vendor_id=INTEL_VID,
                                product_id=_pid(self._info(rec, "product_id")), update_id=self.update_id, recovery=True)

    # -- operations ----------------------------------------------------------------------------
    def check_image(self, image: bytes) -> None:
        if len(image) != SIGNED_IMAGE_SIZE:
            raise ImageIncompatible(f"a signed D4xx image is {SIGNED_IMAGE_SIZE} bytes, this one {len(image)}")
        dev = self._service()
        if dev is None:
            return                        # recovery device: the SDK has no compatibility check there
        try:
            ok = self.rs.updatable(dev).check_firmware_compatibility(sdk_image(image))
        except RuntimeError as exc:
            raise ImageIncompatible(f"librealsense refuses the image: {exc}") from None
        if not ok:
            raise ImageIncompatible(f"librealsense: the image is not compatible with RealSense {self.serial}")

    def backup(self, progress: Progress = no_progress) -> bytes:
        dev = self._service()
        if dev is None:
            raise BackupFailed(f"RealSense {self.serial} is not in service (a recovery device has no backup)")
        try:
            data = self.rs.updatable(dev).create_flash_backup(lambda f: progress("backup", float(f)))
        except RuntimeError as exc:
            raise BackupFailed(f"librealsense: flash backup failed: {exc}") from None
        if not data:
            raise BackupFailed("librealsense returned an empty flash backup")
        return bytes(data)

    def install(self, image: bytes, progress: Progress = no_progress) -> None:
        rec = self._recovery()
        if rec is None:
            dev = self._service()
            if dev is None:
                raise TargetNotFound(f"RealSense {self.serial} is not connected")
            progress("enter", 0.0)
            try:
                self.rs.updatable(dev).enter_update_state()
            except RuntimeError as exc:
                raise EnterUpdateFailed(f"librealsense: enter_update_state failed: {exc}") from None
            try:
                rec = wait_until(self._recovery, self.reenumerate_timeout_s, self.poll_s,
                                 f"the recovery device of RealSense {self.serial}", self._sleep)
            except ReenumerationTimeout as exc:
                raise EnterUpdateFailed(exc.message) from None
            progress("enter", 1.0)
        try:
            self.rs.update_device(rec).update(sdk_image(image), lambda f: progress("flash", float(f)))
        except RuntimeError as exc:
            raise FlashFailed(f"librealsense: the update failed part-way ({exc}); the camera stays in recovery "
                              "mode until an update completes") from None
        progress("reboot", 0.0)

        def back() -> Any:
            return self._service() if self.serial else None
        try:
            wait_until(back, self.reenumerate_timeout_s, self.poll_s, f"RealSense {self.serial} back in service",
                       self._sleep)
        except ReenumerationTimeout:
            if self._recovery() is not None:
                raise FlashFailed(f"RealSense {self.serial} came back in recovery mode: the new firmware did not "
                                  "start") from None
            raise
        progress("reboot", 1.0)


def _pid(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        return 0


def open_update_target(parsed: ParsedUri, *, update_id: str = "", **options: Any) -> RealSenseTarget:
    serial = parsed.target.strip("/")
    if parsed.scheme != "realsense" or not serial:
        raise UpdateUnsupported("RealSense firmware is updated on a connected camera: realsense://SERIAL")
    return RealSenseTarget(serial, update_id=update_id, **options)
