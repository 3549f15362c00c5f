"""A fake of pyrealsense2's firmware-update API, for what cannot run without a D4xx on USB.

It offers what ``drivers/realsense_update.py`` uses, with pyrealsense2's names and the behaviour the
SDK documents or shows here (2.59.1; ``/work/notes/camera-sdks.md`` §1g):

* ``context().query_devices()`` lists the cameras on the (simulated) bus; a device handle from
  before a re-enumeration is dead (its calls raise ``RuntimeError``);
* ``updatable(dev)`` / ``update_device(dev)`` on a device without that interface build an object
  whose calls raise ``RuntimeError('null pointer passed for argument "device"')``;
* images must be a sequence of ints: ``bytes`` raise the binding's ``TypeError``;
* ``check_firmware_compatibility`` raises "Unsupported firmware binary image provided - N bytes"
  unless the image is 0x18031C bytes, and returns False below the per-product minimum version;
* ``enter_update_state`` takes the camera off the bus; it returns as the recovery device
  ("Intel RealSense D4XX Recovery", PID 0ADB, its own serial, ``firmware_update_id`` = ASIC serial);
* ``update(image, cb)`` runs on the caller's thread with float progress 0..1; on success the camera
  comes back in service under its serial with the image's version; on failure it stays a recovery
  device;
* ``create_flash_backup(cb)`` returns ``list[int]``.

Image format of the fake (the real one is Intel's and signed): 0x18031C bytes, ``b"D4FW"`` at 0,
the version as four bytes at 0x10 (5.16.0.1 -> 05 10 00 01).

Faults: ``fail_update_at`` (fraction at which ``update`` raises), ``refuse_enter``,
``no_recovery_device`` (enter_update_state works but nothing comes back), ``never_back``
(updated but never re-enumerates), ``new_serial`` / ``new_calibration`` (an impostor comes back).
"""

from __future__ import annotations

import enum
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

SIGNED_IMAGE_SIZE = 0x18031C
MIN_VERSION = {"0B07": (5, 8, 15, 0), "0AD3": (5, 8, 15, 0), "0B3A": (5, 12, 7, 100), "0B5B": (5, 12, 11, 8),
               "0B5C": (5, 13, 0, 50)}


def d4xx_image(version: tuple[int, int, int, int], fill: int = 0xA5) -> bytes:
    body = bytearray([fill]) * SIGNED_IMAGE_SIZE
    body[0:4] = b"D4FW"
    body[0x10:0x14] = bytes(version)
    return bytes(body)


def _image_version(image: bytes) -> tuple[int, ...] | None:
    if len(image) != SIGNED_IMAGE_SIZE or image[:4] != b"D4FW":
        return None
    return tuple(struct.unpack_from("<4B", image, 0x10))


class camera_info(enum.Enum):  # noqa: N801 - pyrealsense2's spelling
    name = "name"
    serial_number = "serial_number"
    firmware_version = "firmware_version"
    firmware_update_id = "firmware_update_id"
    product_id = "product_id"
    product_line = "product_line"


class _Intrinsics:
    def __init__(self, w: int, h: int, fx: float, fy: float, ppx: float, ppy: float):
        self.width, self.height, self.fx, self.fy, self.ppx, self.ppy = w, h, fx, fy, ppx, ppy
        self.model, self.coeffs = "distortion.brown_conrady", [0.0, 0.0, 0.0, 0.0, 0.0]


class _Extrinsics:
    def __init__(self, tx: float):
        self.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        self.translation = [tx, 0.0, 0.0]


class _Profile:
    def __init__(self, stream: str, intr: _Intrinsics, baseline: float):
        self._stream, self._intr, self._baseline = stream, intr, baseline

    def is_video_stream_profile(self) -> bool:
        return True

    def as_video_stream_profile(self) -> _Profile:
        return self

    def get_intrinsics(self) -> _Intrinsics:
        return self._intr

    def stream_type(self) -> str:
        return f"stream.{self._stream}"

    def stream_index(self) -> int:
        return 0

    def get_extrinsics_to(self, other: _Profile) -> _Extrinsics:
        return _Extrinsics(self._baseline if other._stream != self._stream else 0.0)


class _Sensor:
    def __init__(self, profiles: list[_Profile]):
        self._profiles = profiles

    def get_stream_profiles(self) -> list[_Profile]:
        return list(self._profiles)


@dataclass
class FakeD4xx:
    serial: str = "843112070001"
    asic_serial: str = "0B07ASIC0001"
    pid: str = "0B07"
    name: str = "Intel RealSense D435"
    image: bytes = field(default_factory=lambda: d4xx_image((5, 13, 0, 50)))
    fx: float = 615.0                    # calibration (what identity checks compare)
    baseline_m: float = -0.05
    flash_size: int = 1 << 16
    reenumerate_s: float = 0.02
    # faults
    fail_update_at: float | None = None
    refuse_enter: bool = False
    no_recovery_device: bool = False
    never_back: bool = False
    new_serial: str = ""
    new_fx: float | None = None
    # observed
    log: list[str] = field(default_factory=list)

    @property
    def version(self) -> str:
        v = _image_version(self.image)
        return ".".join(str(x) for x in v) if v else ""


class _Presence:
    def __init__(self, bus: FakeRealSenseSdk, cam: FakeD4xx, recovery: bool):
        self.bus, self.cam, self.recovery, self.alive = bus, cam, recovery, True

    def _check(self) -> None:
        if not self.alive:
            raise RuntimeError("Device disconnected. Failed to receive data from the device")


class device:  # noqa: N801 - pyrealsense2's spelling
    def __init__(self, p: _Presence):
        self._p = p

    def supports(self, info: camera_info) -> bool:
        self._p._check()
        if self._p.recovery:
            return info in (camera_info.name, camera_info.serial_number, camera_info.firmware_update_id,
                            camera_info.product_id, camera_info.product_line)
        return True

    def get_info(self, info: camera_info) -> str:
        if not self.supports(info):
            raise RuntimeError(f"info {info.value} not supported by the device!")
        cam = self._p.cam
        if self._p.recovery:
            return {camera_info.name: "Intel RealSense D4XX Recovery", camera_info.serial_number: "RECOVERY0001",
                    camera_info.firmware_update_id: cam.asic_serial, camera_info.product_id: "0ADB",
                    camera_info.product_line: "D400"}[info]
        return {camera_info.name: cam.name, camera_info.serial_number: cam.serial,
                camera_info.firmware_version: cam.version, camera_info.firmware_update_id: cam.asic_serial,
                camera_info.product_id: cam.pid, camera_info.product_line: "D400"}[info]

    def is_update_device(self) -> bool:
        self._p._check()
        return self._p.recovery

    def is_in_recovery_mode(self) -> bool:
        self._p._check()
        return self._p.recovery

    def query_sensors(self) -> list[_Sensor]:
        self._p._check()
        if self._p.recovery:
            return []
        cam = self._p.cam
        depth = _Intrinsics(848, 480, 425.0, 425.0, 424.0, 240.0)
        color = _Intrinsics(640, 480, cam.fx, cam.fx, 320.0, 240.0)
        return [_Sensor([_Profile("depth", depth, cam.baseline_m)]),
                _Sensor([_Profile("color", color, cam.baseline_m)])]


def _null(*_: Any, **__: Any) -> Any:
    raise RuntimeError('null pointer passed for argument "device"')


def _as_image(fw_image: Any, method: str) -> bytes:
    # pybind11's list_caster refuses bytes and str; any other sequence of ints converts.
    if isinstance(fw_image, (bytes, str)):
        raise TypeError(f"{method}(): incompatible function arguments. The following argument types are supported:\n"
                        f"    1. (self, image: list[int]) -> ...")
    return bytes(fw_image)


class updatable:  # noqa: N801
    def __init__(self, dev: device):
        # A device without the interface gives an object whose calls fail (after argument conversion).
        self._p = dev._p if not dev._p.recovery else None

    def enter_update_state(self) -> None:
        if self._p is None:
            _null()
        assert self._p is not None
        self._p._check()
        cam = self._p.cam
        if cam.refuse_enter:
            raise RuntimeError("Failed to enter update state")
        cam.log.append("enter_update_state")
        self._p.bus._leave(cam, come_back_as="none" if cam.no_recovery_device else "recovery")

    def create_flash_backup(self, callback: Any = None) -> list[int]:
        if self._p is None:
            _null()
        assert self._p is not None
        self._p._check()
        cam = self._p.cam
        out = list((cam.serial.encode() + bytes([0x5A])) * (cam.flash_size // (len(cam.serial) + 1)))
        if callback is not None:
            for k in range(1, 5):
                callback(k / 4)
        cam.log.append("backup")
        return out

    def check_firmware_compatibility(self, image: Any) -> bool:
        data = _as_image(image, "check_firmware_compatibility")
        if self._p is None:
            _null()
        assert self._p is not None
        self._p._check()
        if len(data) != SIGNED_IMAGE_SIZE:
            raise RuntimeError(f"Unsupported firmware binary image provided - {len(data)} bytes")
        v = _image_version(data)
        return v is not None and v >= MIN_VERSION.get(self._p.cam.pid, (0, 0, 0, 0))


class update_device:  # noqa: N801
    def __init__(self, dev: device):
        self._p = dev._p if dev._p.recovery else None

    def update(self, fw_image: Any, callback: Any = None) -> None:
        data = _as_image(fw_image, "update")
        if self._p is None:
            _null()
        assert self._p is not None
        self._p._check()
        cam = self._p.cam
        cam.log.append("update")
        for k in range(1, 21):
            f = k / 20
            if cam.fail_update_at is not None and f >= cam.fail_update_at:
                cam.fail_update_at = None
                cam.log.append("update failed")
                self._p.bus._leave(cam, come_back_as="recovery")
                raise RuntimeError("Firmware update failed: write to flash failed")
            if callback is not None:
                callback(f)
        if _image_version(data) is None:
            self._p.bus._leave(cam, come_back_as="recovery")
            raise RuntimeError("Firmware update failed: image rejected by the device")
        cam.image = data
        if cam.new_serial:
            cam.serial = cam.new_serial
        if cam.new_fx is not None:
            cam.fx = cam.new_fx
        self._p.bus._leave(cam, come_back_as="none" if cam.never_back else "service")


class FakeRealSenseSdk:
    """Stands in for the ``pyrealsense2`` module: ``sdk.context()``, ``sdk.camera_info``, ``sdk.updatable``,
    ``sdk.update_device``."""

    camera_info = camera_info
    updatable = updatable
    update_device = update_device

    def __init__(self, *cameras: FakeD4xx):
        self.cameras = list(cameras)
        self._lock = threading.Lock()
        self._present: dict[int, _Presence] = {id(c): _Presence(self, c, False) for c in self.cameras}
        self._back: dict[int, tuple[float, bool]] = {}

    def _leave(self, cam: FakeD4xx, come_back_as: str) -> None:
        with self._lock:
            p = self._present.pop(id(cam), None)
            if p is not None:
                p.alive = False
            cam.log.append(f"left the bus ({come_back_as})")
            if come_back_as != "none":
                self._back[id(cam)] = (time.monotonic() + cam.reenumerate_s, come_back_as == "recovery")

    def power_cycle(self, cam: FakeD4xx, recovery: bool) -> None:
        self._leave(cam, "recovery" if recovery else "service")

    def context(self) -> _Context:
        return _Context(self)


class _Context:
    def __init__(self, sdk: FakeRealSenseSdk):
        self._sdk = sdk

    def query_devices(self) -> list[device]:
        sdk = self._sdk
        with sdk._lock:
            now = time.monotonic()
            for cam in sdk.cameras:
                due = sdk._back.get(id(cam))
                if due is not None and now >= due[0]:
                    del sdk._back[id(cam)]
                    sdk._present[id(cam)] = _Presence(sdk, cam, due[1])
                    cam.log.append("enumerated " + ("as recovery device" if due[1] else "in service"))
            return [device(p) for p in sdk._present.values()]
