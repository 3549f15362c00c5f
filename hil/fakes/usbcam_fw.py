"""The fake USB camera's firmware update path (``hil/fakes/usbcam.py``): tests and benches only.

``fakeusb://SERIAL?bus=DIR`` seen through an update API, behind the :class:`drivers.update.FirmwareTarget`
contract, with what a real update API does to the device:

* opening it claims the device like the camera does: while any handle (the daemon's camera host,
  another update) holds it, the open is refused (``FW_CAMERA_BUSY``, as a real SDK's busy device);
* ``install`` writes the image's version into the device, then the device re-enumerates (off the
  bus for ``reenumerate_s``, back as a new enumeration: every handle from before is dead) and the
  target claims it again under its serial, within ``reenumerate_timeout_s``;
* images are ``fake_image(version)``: a magic, the version, a payload; anything else is refused by
  the "SDK's" own check (``FW_IMAGE_INCOMPATIBLE``).

Each open and flash is logged in the device's ``log`` (``update_open``, ``flash``), so a test can
show that nothing was written. While the device directory holds a ``hold_update`` file, ``install``
waits before it writes anything (at most ``hold_s``): a test's window onto an update in progress.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from drivers import update
from drivers.base import ParsedUri
from drivers.update import (
    FirmwareError,
    FirmwareIdentity,
    FirmwareTarget,
    ImageIncompatible,
    Progress,
    TargetNotFound,
    no_progress,
    wait_until,
)
from hil.fakes.usbcam import _bump, _log, _State, _write, claim, firmware_of

MAGIC = b"FAKEUSB-FW\0"


def fake_image(version: str, payload: bytes = b"fake usb camera firmware " * 64) -> bytes:
    return MAGIC + version.encode().ljust(16, b"\0") + payload


def image_version(image: bytes) -> str:
    if not image.startswith(MAGIC) or len(image) < len(MAGIC) + 16:
        raise ImageIncompatible("fakeusb: not an image for this camera")
    return image[len(MAGIC):len(MAGIC) + 16].rstrip(b"\0").decode()


class FakeUsbFirmwareTarget(FirmwareTarget):
    backend = "fakeusb"

    def __init__(self, parsed: ParsedUri, *, reenumerate_timeout_s: float = 5.0, reenumerate_s: float = 0.1,
                 poll_s: float = 0.01, hold_s: float = 30.0):
        bus = parsed.query.get("bus")
        if not bus or not parsed.target:
            raise TargetNotFound("fakeusb://SERIAL?bus=DIR")
        self.dev = Path(bus) / parsed.target.strip("/")
        self.state = _State(self.dev)
        self.reenumerate_timeout_s, self.reenumerate_s, self.poll_s = reenumerate_timeout_s, reenumerate_s, poll_s
        self.hold_s = hold_s
        if not (self.dev / "device.json").exists() or not self.state.plugged():
            raise TargetNotFound(f"fakeusb: no device {parsed.target!r} on the bus")
        self.cfg: dict[str, Any] = json.loads((self.dev / "device.json").read_text())
        self._claim: int | None = None
        self._take()
        _log(self.dev, "update_open")

    def _take(self) -> None:
        self._claim = claim(self.dev, self.state.enumeration())
        if self._claim is None:
            raise FirmwareError(f"fakeusb: device {self.cfg['serial']} is claimed by another program "
                                "(LIBUSB_ERROR_BUSY)", code="FW_CAMERA_BUSY")

    def _release(self) -> None:
        fd, self._claim = self._claim, None
        if fd is not None:
            os.close(fd)

    def identity(self) -> FirmwareIdentity:
        c = self.cfg
        return FirmwareIdentity("fakeusb", "Fake USB depth camera", c["serial"], firmware_of(self.dev), c["vid"],
                                c["pid"], update_id=c["serial"],
                                calibration_sha256=hashlib.sha256(json.dumps(c, sort_keys=True).encode()).hexdigest())

    def check_image(self, image: bytes) -> None:
        image_version(image)

    def install(self, image: bytes, progress: Progress = no_progress) -> None:
        version = image_version(image)
        if self._claim is None:
            raise FirmwareError("fakeusb: the device is not claimed", code="FW_FLASH_FAILED")
        deadline = time.monotonic() + self.hold_s
        while (self.dev / "hold_update").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        _log(self.dev, "flash")
        progress("flash", 0.0)
        _write(self.dev / "firmware", version)
        progress("flash", 1.0)
        # The new firmware boots: the device leaves the bus and comes back as a new enumeration.
        self._release()
        (self.dev / "plugged").unlink(missing_ok=True)
        time.sleep(self.reenumerate_s)
        _bump(self.dev / "enumeration")
        (self.dev / "plugged").touch()
        wait_until(self.state.plugged, self.reenumerate_timeout_s, self.poll_s, f"fakeusb {self.cfg['serial']}")
        self._take()

    def close(self) -> None:
        self._release()


def open_update_target(parsed: ParsedUri, *, update_id: str = "", **options: Any) -> FirmwareTarget:
    known = {"reenumerate_timeout_s", "reenumerate_s", "poll_s", "hold_s"}
    return FakeUsbFirmwareTarget(parsed, **{k: v for k, v in options.items() if k in known})


def register() -> None:
    """Add the ``fakeusb`` update path (and the camera backend)."""
    from hil.fakes import usbcam
    usbcam.register()
    update.register_target("fakeusb", "hil.fakes.usbcam_fw")
