"""drivers.usb against pyusb's real core with a simulated USB bus, and a fake sysfs tree."""

import os

import pytest

from drivers import UsbIdentity
from drivers.errors import DeviceRefused
from drivers.usb import AllowEntry, Sysfs, UsbPolicy, check_video_node, enumerate_video_devices, find_identity
from hil.fakes.usb import SimulatedUsbBackend, orbbec_astra, realsense_d435, usb_keyboard, uvc_webcam


@pytest.fixture
def bus():
    return SimulatedUsbBackend([realsense_d435(), orbbec_astra(), uvc_webcam(), usb_keyboard()])


def test_simulated_usb_bus_enumerates_video_devices_with_identity(bus):
    found = {(d.identity.vendor_id, d.identity.product_id): d for d in enumerate_video_devices(bus)}
    assert set(found) == {(0x8086, 0x0B07), (0x2BC5, 0x0401), (0x046D, 0x0825)}   # keyboard left out
    d435 = found[(0x8086, 0x0B07)]
    assert d435.identity == UsbIdentity(0x8086, 0x0B07, "843112070001", 0x5010, "2-1.3")
    assert d435.reason == "interface class 0x0e"
    assert "RealSense" in d435.product
    astra = found[(0x2BC5, 0x0401)]
    assert astra.identity.bus_path == "1-4" and astra.identity.serial == "17122730022"
    assert "Orbbec" in astra.reason                 # vendor-specific interfaces, found by VID
    assert found[(0x046D, 0x0825)].identity.serial == "A1B2C3D4"


def test_simulated_usb_bus_ties_opened_camera_to_identity(bus):
    devs = enumerate_video_devices(bus)
    assert find_identity(0x2BC5, 0x0401, devices=devs).bus_path == "1-4"
    assert find_identity(0x8086, 0x0B07, serial="843112070001", devices=devs).serial == "843112070001"
    assert find_identity(0x8086, 0x0B07, serial="other", devices=devs) is None
    two = SimulatedUsbBackend([realsense_d435(serial="A"), realsense_d435(serial="B")])
    two.devices[1].ports = (2,)
    assert find_identity(0x8086, 0x0B07, backend=two) is None          # ambiguous without serial
    assert find_identity(0x8086, 0x0B07, serial="B", backend=two).bus_path == "2-2"


def test_simulated_usb_bus_allowlist_accepts_and_refuses(bus):
    devs = {d.identity.vendor_id: d.identity for d in enumerate_video_devices(bus)}
    policy = UsbPolicy.from_strings(["8086:0b07", "2bc5:0401:17122730022"])
    assert policy.allows(devs[0x8086]) and policy.allows(devs[0x2BC5])
    assert not policy.allows(devs[0x046D])
    with pytest.raises(DeviceRefused) as e:
        policy.enforce(devs[0x046D])
    assert e.value.code == "DRV_DEVICE_REFUSED" and "allowlist" in e.value.message
    other_serial = UsbIdentity(0x2BC5, 0x0401, "999", 1, "1-4")
    with pytest.raises(DeviceRefused):
        policy.enforce(other_serial)
    assert UsbPolicy().allows(devs[0x046D])                            # empty list: any physical camera
    assert not UsbPolicy().allows(UsbIdentity(0x046D, 0x0825, "", 0, ""))  # no bus path: virtual


@pytest.mark.parametrize("bad", ["8086", "zz:01", "8086:10000"])
def test_allow_entry_rejects_malformed(bad):
    with pytest.raises(ValueError):
        AllowEntry.parse(bad)


def _fake_sysfs(root):
    """A sysfs tree: video0 = USB webcam (uvcvideo), video10 = v4l2loopback, video11 = OBS under a
    USB-less platform dev."""
    sysd = root / "sys"
    usbdev = sysd / "devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2.1"
    intf = usbdev / "1-2.1:1.0"
    (intf / "video4linux/video0").mkdir(parents=True)
    for name, val in {"idVendor": "046d", "idProduct": "0825", "serial": "A1B2C3D4", "bcdDevice": "0012"}.items():
        (usbdev / name).write_text(val + "\n")
    drv = sysd / "bus/usb/drivers/uvcvideo"
    drv.mkdir(parents=True)
    os.symlink(os.path.relpath(drv, intf), intf / "driver")
    (intf / "video4linux/video0/name").write_text("Webcam C270: Webcam C270\n")
    os.symlink(os.path.relpath(intf, intf / "video4linux/video0"), intf / "video4linux/video0/device")
    virt = sysd / "devices/virtual/video4linux/video10"
    virt.mkdir(parents=True)
    (virt / "name").write_text("Dummy video device (0x0000)\n")
    plat = sysd / "devices/platform/v4l2loopback.0"
    (plat / "video4linux/video11").mkdir(parents=True)
    (plat / "video4linux/video11/name").write_text("OBS Virtual Camera\n")
    ldrv = sysd / "bus/platform/drivers/v4l2loopback"
    ldrv.mkdir(parents=True)
    os.symlink(os.path.relpath(ldrv, plat), plat / "driver")
    os.symlink(os.path.relpath(plat, plat / "video4linux/video11"), plat / "video4linux/video11/device")
    cls = sysd / "class/video4linux"
    cls.mkdir(parents=True)
    for name, target in (("video0", intf / "video4linux/video0"), ("video10", virt),
                         ("video11", plat / "video4linux/video11")):
        os.symlink(os.path.relpath(target, cls), cls / name)
    return Sysfs(root)


def test_fake_sysfs_physical_node_has_usb_identity(tmp_path):
    fs = _fake_sysfs(tmp_path)
    ident = check_video_node("/dev/video0", UsbPolicy(), fs)
    assert ident == UsbIdentity(0x046D, 0x0825, "A1B2C3D4", 0x0012, "1-2.1")
    node = fs.video_node("video0")
    assert node.driver == "uvcvideo" and not node.is_virtual
    with pytest.raises(DeviceRefused):
        check_video_node("/dev/video0", UsbPolicy.from_strings(["8086:0b07"]), fs)


@pytest.mark.parametrize("node, why", [("video10", "no physical USB parent"), ("video11", "v4l2loopback")])
def test_fake_sysfs_virtual_camera_refused(tmp_path, node, why):
    fs = _fake_sysfs(tmp_path)
    assert fs.video_node(node).is_virtual
    with pytest.raises(DeviceRefused) as e:
        check_video_node(f"/dev/{node}", UsbPolicy(), fs)
    assert "virtual camera" in e.value.message and why in e.value.message
    assert [n.name for n in fs.video_nodes() if n.is_virtual] == ["video10", "video11"]


def test_fake_sysfs_unknown_node_refused(tmp_path):
    with pytest.raises(DeviceRefused):
        check_video_node("/dev/video7", UsbPolicy(), _fake_sysfs(tmp_path))


def test_simulated_usb_bus_inventory_lists_identity_and_allowlist(bus, tmp_path):
    from agent.devices.policy import DeviceSettings, inventory
    settings = DeviceSettings(usb_allow=("8086:0b07", "046d:0825"))
    found, problems = inventory(settings, usb_backend=bus, sysfs=_fake_sysfs(tmp_path))
    by_uri = {d.uri: d for d in found}
    assert by_uri["usb://2-1.3"].allowed is True and by_uri["usb://2-1.3"].serial == "843112070001"
    assert by_uri["usb://1-4"].allowed is False                       # Orbbec not on this allowlist
    assert by_uri["uvc:///dev/video0"].allowed is True
    assert by_uri["uvc:///dev/video0"].usb.bus_path == "1-2.1"
    assert by_uri["uvc:///dev/video10"].allowed is False and "virtual" in by_uri["uvc:///dev/video10"].note
    assert by_uri["uvc:///dev/video11"].allowed is False
    assert "usb" not in problems


def test_simulated_usb_bus_ties_openni_vid_pid_to_physical_device(bus):
    """OpenNI reports VID/PID only; the manager ties it to the bus before the allowlist decides."""
    from agent.devices.policy import DeviceSettings, check_policy
    from drivers import DeviceInfo
    info = DeviceInfo("openni://2bc5/0401@1/2", "openni", "Astra", usb=UsbIdentity(0x2BC5, 0x0401))
    out = check_policy(info, DeviceSettings(usb_allow=("2bc5:0401",)), lambda: enumerate_video_devices(bus))
    assert out.allowed is True and out.usb.bus_path == "1-4" and out.usb.serial == "17122730022"
    with pytest.raises(DeviceRefused):      # same VID/PID but nothing on the bus: virtual/spoofed
        check_policy(info, DeviceSettings(), lambda: [])
