"""A fake of the Orbbec SDK v2 Python binding's firmware-update API (``pyorbbecsdk``), for what needs a
device. Names, states and messages are the SDK's (``OBUpgradeState`` values as printed from
pyorbbecsdk2 2.1.2; ``/work/notes/camera-sdks.md`` §2):

* ``Context().query_devices().get_device_by_serial_number(sn)`` raises
  ``OBError("Device not found by serial number: …")`` for an absent camera, as the real SDK does;
* ``update_firmware(path, callback, async_update)`` reads the image *from the path* and calls
  ``callback(state, message, percent)``; a two-stage model ends its first pass with
  ``DONE_REBOOT_AND_REUPDATE``; a failure ends with an ``ERR_*`` state;
* the new firmware runs only after ``reboot()`` (until then the device reports the old version);
  after ``reboot()`` the old handle is dead (``OBError("Device is deactivated/disconnected!")``)
  and the device re-enumerates under the same serial after ``reenumerate_s``.

Image format of the fake: ``b"OBFW"`` + the version as ASCII up to the first NUL, padded.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field
from typing import Any


class OBError(Exception):
    pass


class OBUpgradeState(enum.IntEnum):
    VERIFY_IMAGE = 0
    START = 1
    IN_PROGRESS = 2
    DONE = 3
    FILE_TRANSFER = 4
    VERIFY_SUCCESS = 5
    DONE_WITH_DUPLICATES = 6
    DONE_REBOOT_AND_REUPDATE = 7
    ERR_VERIFY = -1
    ERR_PROGRAM = -2
    ERR_ERASE = -3
    ERR_FLASH_TYPE = -4
    ERR_IMAGE_SIZE = -5
    ERR_OTHER = -6
    ERR_DDR = -7
    ERR_TIMEOUT = -8
    ERR_MISMATCH = -9
    ERR_UNSUPPORT_DEV = -10
    ERR_INVALID_COUNT = -11
    ERR_FILE_READ = -12
    ERR_TRANSFER = -13


def ob_image(version: str, size: int = 4096) -> bytes:
    head = b"OBFW" + version.encode() + b"\x00"
    return head + bytes([0x3C]) * (size - len(head))


def _image_version(data: bytes) -> str | None:
    if not data.startswith(b"OBFW") or b"\x00" not in data[4:40]:
        return None
    return data[4:data.index(b"\x00", 4)].decode("ascii", "replace")


class _Intrinsic:
    def __init__(self, fx: float):
        self.fx, self.fy, self.cx, self.cy, self.width, self.height = fx, fx, 320.0, 200.0, 640, 400


class _Param:
    def __init__(self, fx: float):
        self.depth_intrinsic, self.rgb_intrinsic = _Intrinsic(fx), _Intrinsic(fx * 1.1)
        self.depth_distortion = self.rgb_distortion = None
        self.transform = None


class _ParamList:
    def __init__(self, fx: float):
        self._items = [_Param(fx)]

    def get_count(self) -> int:
        return len(self._items)

    def get_camera_param(self, i: int) -> _Param:
        return self._items[i]


@dataclass
class FakeOrbbecCamera:
    serial: str = "AY3A1120034"
    name: str = "Orbbec Gemini 335"
    vid: int = 0x2BC5
    pid: int = 0x0800
    version: str = "1.4.60"
    two_stage: bool = False
    fx: float = 450.0
    reenumerate_s: float = 0.02
    fail_state: OBUpgradeState | None = None      # an ERR_* state to end the (first) update with
    raise_error: bool = False                     # update_firmware raises OBError instead
    log: list[str] = field(default_factory=list)
    pending: str = ""                             # flashed, active after the next reboot
    _stage_done: bool = False


class DeviceInfo:
    def __init__(self, cam: FakeOrbbecCamera):
        self._c = cam

    def get_name(self) -> str:
        return self._c.name

    def get_serial_number(self) -> str:
        return self._c.serial

    def get_firmware_version(self) -> str:
        return self._c.version

    def get_vid(self) -> int:
        return self._c.vid

    def get_pid(self) -> int:
        return self._c.pid


class Device:
    def __init__(self, sdk: FakeOrbbecSdk, cam: FakeOrbbecCamera, epoch: int):
        self._sdk, self._c, self._epoch = sdk, cam, epoch

    def _check(self) -> None:
        if self._sdk._epoch.get(id(self._c)) != self._epoch:
            raise OBError("Device is deactivated/disconnected!")

    def get_device_info(self) -> DeviceInfo:
        self._check()
        return DeviceInfo(self._c)

    def get_calibration_camera_param_list(self) -> _ParamList:
        self._check()
        return _ParamList(self._c.fx)

    def get_bool_property(self, prop: Any) -> bool:
        self._check()
        raise OBError(f"Property {prop} is not supported")

    def reboot(self, delay_ms: int = 0) -> None:
        self._check()
        self._c.log.append("reboot")
        self._sdk._leave(self._c)

    def update_firmware(self, file_path: str, callback: Any, async_update: bool = True) -> None:
        self._check()
        cam = self._c
        try:
            with open(file_path, "rb") as fh:
                data = fh.read()
        except OSError:
            callback(OBUpgradeState.ERR_FILE_READ, "read firmware file failed", 0)
            return
        cam.log.append(f"update_firmware({'async' if async_update else 'sync'})")
        if cam.raise_error:
            cam.raise_error = False
            raise OBError("Upgrade failed: device not responding")
        callback(OBUpgradeState.VERIFY_IMAGE, "verify image", 0)
        version = _image_version(data)
        if version is None:
            callback(OBUpgradeState.ERR_VERIFY, "image verify failed", 0)
            return
        callback(OBUpgradeState.START, "start upgrade", 0)
        for pct in (10, 30, 50, 70, 90, 100):
            if cam.fail_state is not None and pct >= 50:
                state, cam.fail_state = cam.fail_state, None
                cam.log.append(f"failed: {state.name}")
                callback(state, "upgrade failed", pct)
                return
            callback(OBUpgradeState.FILE_TRANSFER if pct < 100 else OBUpgradeState.IN_PROGRESS, "file transfer", pct)
        if cam.two_stage and not cam._stage_done:
            cam._stage_done = True
            cam.log.append("stage 1 done")
            callback(OBUpgradeState.DONE_REBOOT_AND_REUPDATE, "reboot and update again", 100)
            return
        cam._stage_done = False
        cam.pending = version
        cam.log.append(f"flashed {version}")
        callback(OBUpgradeState.DONE, "upgrade done", 100)


class _DeviceList:
    def __init__(self, sdk: FakeOrbbecSdk, devices: list[Device]):
        self._sdk, self._devices = sdk, devices

    def get_count(self) -> int:
        return len(self._devices)

    def get_device_by_serial_number(self, serial: str) -> Device:
        for d in self._devices:
            if d._c.serial == serial:
                return d
        raise OBError(f"Device not found by serial number: {serial}")


class FakeOrbbecSdk:
    """Stands in for the ``pyorbbecsdk`` module: ``Context``, ``OBError``, ``OBUpgradeState``."""

    OBError = OBError
    OBUpgradeState = OBUpgradeState

    def __init__(self, *cameras: FakeOrbbecCamera):
        self.cameras = list(cameras)
        self._lock = threading.Lock()
        self._epoch: dict[int, int | None] = {id(c): 1 for c in self.cameras}
        self._back: dict[int, float] = {}
        self._generation = 1

    def _leave(self, cam: FakeOrbbecCamera) -> None:
        with self._lock:
            self._epoch[id(cam)] = None
            self._back[id(cam)] = time.monotonic() + cam.reenumerate_s
            cam.log.append("left the bus")

    def Context(self) -> _Context:  # noqa: N802 - the SDK's class name
        return _Context(self)


class _Context:
    def __init__(self, sdk: FakeOrbbecSdk):
        self._sdk = sdk

    def query_devices(self) -> _DeviceList:
        sdk = self._sdk
        with sdk._lock:
            now = time.monotonic()
            out = []
            for cam in sdk.cameras:
                due = sdk._back.get(id(cam))
                if due is not None and now >= due:
                    del sdk._back[id(cam)]
                    if cam.pending:
                        cam.version, cam.pending = cam.pending, ""
                    sdk._generation += 1                  # a new device instance: old handles stay dead
                    sdk._epoch[id(cam)] = sdk._generation
                    cam.log.append(f"enumerated, firmware {cam.version}")
                epoch = sdk._epoch.get(id(cam))
                if epoch is not None:
                    out.append(Device(sdk, cam, epoch))
            return _DeviceList(sdk, out)
