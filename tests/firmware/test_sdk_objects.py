"""The real SDKs' update objects, as far as they run without a device, and the fakes held against them.

librealsense: a software device has no update protocol, but ``rs.updatable``/``rs.update_device``
objects can be built on it; their calls then fail inside the SDK, after the binding has converted
the arguments. So the binding's argument rules (image as ``list[int]``: bytes refused) and our
identity and calibration reading run for real here. Orbbec SDK v2: a real ``Context`` with no
device behind it."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from drivers.orbbec_update import OrbbecTarget, sealed_image
from drivers.realsense_update import RealSenseTarget, calibration_digest, sdk_image
from drivers.update import BackupFailed, ImageIncompatible, TargetNotFound
from hil.fakes import orbbec_fw, realsense_fw

rs = pytest.importorskip("pyrealsense2")


def software_d435(fx: float = 615.0):
    sw = rs.software_device()
    sw.register_info(rs.camera_info.serial_number, "SW0001")
    sw.register_info(rs.camera_info.name, "Intel RealSense D435")
    sw.register_info(rs.camera_info.firmware_version, "5.16.0.1")
    sw.register_info(rs.camera_info.product_id, "0B07")
    sensor = sw.add_sensor("Depth")
    intr = rs.intrinsics()
    intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = 848, 480, fx, fx, 424.0, 240.0
    intr.model, intr.coeffs = rs.distortion.brown_conrady, [0.0] * 5
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid, vs.width, vs.height, vs.fps, vs.bpp = rs.stream.depth, 0, 1, 848, 480, 30, 2
    vs.fmt, vs.intrinsics = rs.format.z16, intr
    sensor.add_video_stream(vs)
    return sw


class OneDeviceSdk:
    """pyrealsense2 itself, except that its context lists one software device (librealsense 2.59.1
    does not list software devices in ``query_devices``)."""

    def __init__(self, dev):
        self._dev = dev

    def __getattr__(self, name):
        return getattr(rs, name)

    def context(self):
        return SimpleNamespace(query_devices=lambda: [self._dev])


def _fake_updatable():
    sdk = realsense_fw.FakeRealSenseSdk(realsense_fw.FakeD4xx())
    return realsense_fw.updatable(realsense_fw.device(realsense_fw._Presence(sdk, sdk.cameras[0], True)))


@pytest.mark.parametrize("make", [lambda: rs.updatable(rs.software_device()), _fake_updatable],
                         ids=["pyrealsense2", "fake"])
def test_the_binding_and_the_fake_refuse_bytes_and_take_our_image_form(make):
    u = make()
    with pytest.raises(TypeError, match="incompatible function arguments"):
        u.check_firmware_compatibility(b"\x00" * 4)
    with pytest.raises(RuntimeError, match='null pointer passed for argument "device"'):
        u.check_firmware_compatibility(sdk_image(b"\x00" * 4))


def test_identity_and_calibration_read_from_a_real_librealsense_device():
    t = RealSenseTarget("SW0001", sdk=OneDeviceSdk(software_d435()))
    ident = t.identity()
    assert (ident.name, ident.serial, ident.firmware, ident.product_id) == ("Intel RealSense D435", "SW0001",
                                                                           "5.16.0.1", 0x0B07)
    assert ident.update_id == "" and not ident.recovery          # a software device has no update id
    assert ident.calibration_sha256 and ident.calibration_sha256 == calibration_digest(software_d435())
    assert calibration_digest(software_d435(fx=616.0)) != ident.calibration_sha256


def test_the_sdks_refusals_on_a_device_without_update_protocol_become_typed_errors():
    t = RealSenseTarget("SW0001", sdk=OneDeviceSdk(software_d435()))
    with pytest.raises(ImageIncompatible, match="null pointer"):
        t.check_image(realsense_fw.d4xx_image((5, 16, 0, 1)))
    with pytest.raises(ImageIncompatible, match="1573660 bytes"):
        t.check_image(b"\x00" * 100)
    with pytest.raises(BackupFailed, match="null pointer"):
        t.backup()
    with pytest.raises(TargetNotFound):
        RealSenseTarget("NOSUCH", sdk=OneDeviceSdk(software_d435()))


def test_realsense_with_no_device_connected():
    with pytest.raises(TargetNotFound, match="no RealSense camera"):
        RealSenseTarget("843112070001")                          # the real SDK, real (empty) bus


def test_orbbec_sdk_without_a_device(tmp_path, monkeypatch):
    ob = pytest.importorskip("pyorbbecsdk")
    monkeypatch.chdir(tmp_path)                                   # the SDK writes ./Log
    with pytest.raises(TargetNotFound, match="no Orbbec camera"):
        OrbbecTarget("AY3A1120034", sdk=ob)
    real = {m: int(getattr(ob.OBUpgradeState, m)) for m in orbbec_fw.OBUpgradeState.__members__}
    assert real == {m.name: m.value for m in orbbec_fw.OBUpgradeState}


def test_the_image_handed_to_a_path_taking_sdk_is_sealed():
    data = b"OBFW1.6.00\x00" + b"\x3c" * 100
    with sealed_image(data) as path:
        with open(path, "rb") as fh:
            assert fh.read() == data
        with pytest.raises(PermissionError):
            with open(path, "r+b") as fh:
                fh.write(b"evil")
                fh.flush()
        fd = int(path.rsplit("/", 1)[1])
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 1)
