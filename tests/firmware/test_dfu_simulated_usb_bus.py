"""USB DFU 1.1 updates through pyusb's real core, against a simulated USB bus (the only fake: this
machine has no USB). The simulated camera runs DFU's state machine, stalls a host that polls too
early, and re-enumerates as a new USB device after detach and reset."""

from __future__ import annotations

import time

import pytest
import usb.core

from drivers import dfu
from drivers.update import (
    EnterUpdateFailed,
    FlashFailed,
    ImageIncompatible,
    ReenumerationTimeout,
    TargetNotFound,
    open_target,
)
from hil.fakes.dfu import SimulatedDfuBus, dfu_module, sim_image
from hil.fakes.usb import usb_keyboard
from tests.helpers.firmware import FAST, Images


def target(bus, uri="dfu://2bdf:0102"):
    return open_target(uri, usb_backend=bus, **FAST)


def test_update_goes_through_detach_blocks_polls_manifestation_and_reset(bus, dfu_cam):
    t = target(bus)
    before = t.identity()
    assert (before.firmware, before.serial, before.recovery) == ("1.02", "AIM0001234", False)
    seen = []
    t.install(Images.dfu_200, lambda phase, f: seen.append((phase, round(f, 2))))
    after = t.identity()
    assert (after.firmware, after.serial, after.recovery) == ("2.00", "AIM0001234", False)
    assert dfu_cam.flash == Images.dfu_200                       # the bootloader holds exactly what was sent
    log = dfu_cam.log
    assert log.index("DFU_DETACH (1000 ms)") < log.index("enumerated in DFU mode") < log.index("flash erased")
    assert log[-3:] == ["USB reset", "left the bus", "enumerated in service"]
    blocks = -(-len(Images.dfu_200) // dfu_cam.transfer_size)
    assert f"end of image after {blocks} blocks" in log
    assert ("flash", 1.0) in seen and seen[-1] == ("reboot", 1.0)


def test_backup_uploads_the_flash_and_returns_the_camera_to_service(bus, dfu_cam):
    t = target(bus)
    assert t.can_backup
    assert t.backup() == Images.dfu_102
    assert t.identity().firmware == "1.02" and not t.identity().recovery


def test_a_failure_partway_leaves_the_camera_idle_in_dfu_mode_and_an_update_resumes_it(bus, dfu_cam):
    dfu_cam.fail_at_block = 5
    t = target(bus)
    with pytest.raises(FlashFailed) as e:
        t.install(Images.dfu_200)
    assert e.value.code == "FW_FLASH_FAILED" and "ERR_WRITE" in e.value.message
    assert dfu_cam.state == dfu.State.DFU_IDLE                   # error cleared: a known state
    ident = t.identity()
    assert ident.recovery and ident.firmware == ""               # no valid application any more
    t.install(Images.dfu_200)                                    # from DFU mode directly
    assert t.identity().firmware == "2.00"


def test_power_loss_mid_transfer_is_a_flash_failure_and_the_camera_returns_in_dfu_mode(bus, dfu_cam):
    dfu_cam.unplug_at_block = 3
    t = target(bus)
    with pytest.raises(FlashFailed, match="No such device"):
        t.install(Images.dfu_200)
    time.sleep(0.1)                          # power comes back; the bootloader enumerates
    ident = t.identity()                     # found again by serial, under the DFU product id
    assert ident.recovery
    t.install(Images.dfu_210)
    assert t.identity().firmware == "2.10"


def test_an_image_the_bootloader_rejects_brings_the_camera_back_in_dfu_mode(bus, dfu_cam):
    bad = bytearray(Images.dfu_200)
    bad[100] ^= 0xFF                                             # breaks the image's own CRC
    t = target(bus)
    with pytest.raises(FlashFailed, match="ERR_FIRMWARE"):
        t.install(bytes(bad))
    assert t.identity().recovery


def test_dfu_file_suffix_is_checked_and_not_sent(bus, dfu_cam):
    t = target(bus)
    good = dfu.add_suffix(Images.dfu_200, 0x2BDF, 0x0102)
    t.install(good)
    assert dfu_cam.flash == Images.dfu_200
    with pytest.raises(ImageIncompatible, match="for USB 046d:0825"):
        t.check_image(dfu.add_suffix(Images.dfu_200, 0x046D, 0x0825))
    corrupt = bytearray(good)
    corrupt[10] ^= 1
    with pytest.raises(ImageIncompatible, match="CRC"):
        t.check_image(bytes(corrupt))


def test_a_camera_that_never_comes_back_is_a_reenumeration_timeout(dfu_cam):
    dfu_cam.never_return = True
    bus = SimulatedDfuBus([], [dfu_cam])
    t = open_target("dfu://2bdf:0102", usb_backend=bus, poll_s=0.002, reenumerate_timeout_s=0.1)
    with pytest.raises(EnterUpdateFailed, match="did not appear"):
        t.install(Images.dfu_200)


def test_a_camera_that_refuses_to_detach(bus, dfu_cam):
    dfu_cam.refuse_detach = True
    with pytest.raises(EnterUpdateFailed, match="DFU_DETACH refused"):
        target(bus).install(Images.dfu_200)
    assert not target(bus).identity().recovery                  # still in service, untouched


@pytest.mark.parametrize("kw", [{"manifestation_tolerant": True}, {"will_detach": True}, {"transfer_size": 64}])
def test_functional_descriptor_variants(kw):
    cam = dfu_module(**kw)
    bus = SimulatedDfuBus([], [cam])
    t = open_target("dfu://2bdf:0102", usb_backend=bus, **FAST)
    t.install(Images.dfu_210)
    assert t.identity().firmware == "2.10"


def test_found_by_bus_path_and_the_serial_survives_the_mode_switch(bus):
    t = open_target("usb://1-5", usb_backend=bus, **FAST)
    assert t.identity().serial == "AIM0001234"
    t.install(Images.dfu_200)
    assert t.identity().firmware == "2.00"
    with pytest.raises(TargetNotFound):
        open_target("usb://1-9", usb_backend=bus, **FAST)
    with pytest.raises(TargetNotFound):
        open_target("dfu://2bdf:0102/OTHER", usb_backend=bus, **FAST)


def test_the_simulated_device_stalls_a_host_that_polls_before_bwPollTimeout():
    """The fake refuses what a real DFU device refuses: here a too-early GETSTATUS while programming."""
    cam = dfu_module(flash=b"", poll_timeout_ms=200)                 # in DFU mode from the start
    bus = SimulatedDfuBus([], [cam])
    dev = next(iter(usb.core.find(find_all=True, backend=bus)))
    dev.ctrl_transfer(0x21, dfu.DNLOAD, 0, 0, b"\x00" * 16)
    st = dfu.DfuStatus.parse(bytes(dev.ctrl_transfer(0xA1, dfu.GETSTATUS, 0, 0, 6)))
    assert st.state == dfu.State.DFU_DNBUSY and st.poll_timeout_ms == 200
    with pytest.raises(usb.core.USBError):
        dev.ctrl_transfer(0xA1, dfu.GETSTATUS, 0, 0, 6)          # too early
    assert cam.state == dfu.State.DFU_ERROR
    dev.ctrl_transfer(0x21, dfu.CLRSTATUS, 0, 0, None)
    with pytest.raises(usb.core.USBError):                       # a block out of sequence stalls too
        dev.ctrl_transfer(0x21, dfu.DNLOAD, 7, 0, b"\x00" * 16)
    assert cam.state == dfu.State.DFU_ERROR


def test_a_handle_from_before_a_reset_is_dead(bus):
    dev = next(d for d in usb.core.find(find_all=True, backend=bus) if d.idVendor == 0x2BDF)
    dev.ctrl_transfer(0x21, dfu.DETACH, 1000, 2, None)
    with pytest.raises(usb.core.USBError):
        dev.reset()
    with pytest.raises(usb.core.USBError) as e:
        dev.ctrl_transfer(0xA1, dfu.GETSTATUS, 0, 2, 6)
    assert e.value.errno == 19


def test_only_dfu_capable_devices_are_targets():
    bus = SimulatedDfuBus([usb_keyboard()], [])
    with pytest.raises(TargetNotFound):
        open_target("dfu://04d9:1603", usb_backend=bus, **FAST)


def test_reenumeration_timeout_after_flash(dfu_cam):
    bus = SimulatedDfuBus([], [dfu_cam])
    t = open_target("dfu://2bdf:0102", usb_backend=bus, poll_s=0.002, reenumerate_timeout_s=0.2)
    t.install(Images.dfu_200)                 # warm: the normal path works with this deadline
    dfu_cam.never_return = True
    with pytest.raises((ReenumerationTimeout, EnterUpdateFailed)):
        t.install(Images.dfu_210)


def test_sim_image_round_trip():
    from hil.fakes.dfu import image_version
    assert image_version(sim_image(0x0312, b"abc")) == 0x0312
    assert image_version(b"SIMFW\x12\x03abc\x00\x00\x00\x00") is None
