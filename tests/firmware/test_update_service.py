"""The update policy around the vendor paths: each refusal and failure a distinct code, the journal
and audit log telling every step, and nothing left in an unknown state. Devices: the simulated DFU
camera on a simulated USB bus, and fakes of librealsense's and the Orbbec SDK's update APIs."""

from __future__ import annotations

import time

import pytest

from firmware.errors import (
    CameraBusy,
    DowngradeBudget,
    DowngradeNotRequested,
    DowngradeRefused,
    FlashFailed,
    ImageHashMismatch,
    ImageInvalid,
    MaintenanceActive,
    UpdateInterrupted,
    VersionUnapproved,
)
from firmware.journal import Journal
from firmware.maintenance import MaintenanceLock
from hil.fakes.orbbec_fw import FakeOrbbecCamera, FakeOrbbecSdk, OBUpgradeState
from hil.fakes.realsense_fw import FakeD4xx, FakeRealSenseSdk
from tests.helpers.firmware import Images, service

DFU = "dfu://2bdf:0102"


def write(tmp_path, data: bytes, name="fw.bin") -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_dfu_update_end_to_end_with_backup_journal_and_audit(tmp_path, manifest, state, bus, dfu_cam, audit):
    svc = service(manifest, state, audit, usb_backend=bus)
    out = svc.update(DFU, write(tmp_path, Images.dfu_200))
    assert out["result"] == "updated" and out["identity"]["firmware"] == "2.00"
    assert audit.names() == ["firmware_maintenance_begin", "firmware_update_begin", "firmware_backup",
                             "firmware_flash_begin", "firmware_update_done", "firmware_maintenance_end"]
    backup = [d for e, d in audit.events if e == "firmware_backup"][0]
    assert open(backup["path"], "rb").read() == Images.dfu_102
    assert Journal(state).entries() == []
    assert svc.history.of("AIM0001234")[-1]["to"] == "2.00"
    assert svc.update(DFU, write(tmp_path, Images.dfu_200))["result"] == "already_current"


@pytest.mark.parametrize("image, error, code", [
    (b"x" * 100, ImageHashMismatch, "FW_IMAGE_HASH_MISMATCH"),
    (Images.dfu_100, DowngradeRefused, "FW_DOWNGRADE_REFUSED"),
    (Images.dfu_150, VersionUnapproved, "FW_VERSION_UNAPPROVED"),
    (b"", ImageInvalid, "FW_IMAGE_INVALID"),
])
def test_images_the_manifest_does_not_allow_never_reach_the_device(tmp_path, manifest, state, bus, dfu_cam, audit,
                                                                   image, error, code):
    svc = service(manifest, state, audit, usb_backend=bus)
    with pytest.raises(error) as e:
        svc.update(DFU, write(tmp_path, image))
    assert e.value.code == code
    assert "DFU_DETACH (1000 ms)" not in dfu_cam.log and dfu_cam.running_version == 0x0102
    assert Journal(state).entries() == []
    assert ("firmware_update_failed", {"device": DFU, "code": code, "message": e.value.message[:200]}) in audit.events


def test_downgrades_need_asking_and_stay_within_the_budget(tmp_path, manifest, state, bus, audit):
    svc = service(manifest, state, audit, usb_backend=bus)
    svc.update(DFU, write(tmp_path, Images.dfu_210))
    with pytest.raises(DowngradeNotRequested):
        svc.update(DFU, write(tmp_path, Images.dfu_200))
    svc.limits = type(svc.limits)(max_downgrades=1, backup_dir=svc.limits.backup_dir)
    assert svc.update(DFU, write(tmp_path, Images.dfu_200), allow_downgrade=True)["plan"]["downgrade"]
    svc.update(DFU, write(tmp_path, Images.dfu_210))
    with pytest.raises(DowngradeBudget) as e:
        svc.update(DFU, write(tmp_path, Images.dfu_200), allow_downgrade=True)
    assert e.value.code == "FW_DOWNGRADE_BUDGET"


def test_an_update_never_starts_during_a_capture_and_captures_wait_out_an_update(tmp_path, manifest, state, bus,
                                                                                 dfu_cam, audit):
    svc = service(manifest, state, audit, usb_backend=bus)
    lock = MaintenanceLock(state)
    with lock.session():                                    # a capture session holds the camera
        with pytest.raises(CameraBusy) as e:
            svc.update(DFU, write(tmp_path, Images.dfu_200))
        assert e.value.code == "FW_CAMERA_BUSY"
        with lock.session():                                # sessions do not block each other here
            pass
    assert dfu_cam.running_version == 0x0102
    seen = []

    def progress(phase, f):
        if phase == "flash" and not seen:
            with pytest.raises(MaintenanceActive) as e:     # a capture asked for while flashing
                with lock.session():
                    pass
            seen.append(e.value.code)
            assert lock.update_running()
    svc.update(DFU, write(tmp_path, Images.dfu_200), progress=progress)
    assert seen == ["FW_MAINTENANCE"] and not lock.update_running()


def test_a_failed_flash_is_journaled_refused_and_resumed(tmp_path, manifest, state, bus, dfu_cam, audit):
    dfu_cam.fail_at_block = 4
    svc = service(manifest, state, audit, usb_backend=bus)
    image = write(tmp_path, Images.dfu_200)
    with pytest.raises(FlashFailed):
        svc.update(DFU, image)
    [entry] = Journal(state).entries()
    assert (entry.step, entry.error, entry.to_version) == ("flashing", "FW_FLASH_FAILED", "2.00")
    with pytest.raises(UpdateInterrupted):                  # check reports it, it does not hide it
        svc.check(DFU)
    with pytest.raises(UpdateInterrupted, match="same image"):
        svc.update(DFU, write(tmp_path, Images.dfu_210, "other.bin"))
    out = svc.update(DFU, image)                            # resume: the camera is in DFU mode
    assert out["result"] == "updated" and out["identity"]["firmware"] == "2.00"
    assert Journal(state).entries() == []


def test_a_crash_mid_flash_is_found_at_the_next_start_and_resumed(tmp_path, manifest, state, bus, dfu_cam, audit):
    class Crash(BaseException):
        pass

    def crash(phase, f):
        if phase == "flash" and f > 0.3:
            raise Crash()                                   # the process dies: no handler runs
    svc = service(manifest, state, audit, usb_backend=bus)
    image = write(tmp_path, Images.dfu_200)
    with pytest.raises(Crash):
        svc.update(DFU, image, progress=crash)
    [entry] = Journal(state).entries()
    assert entry.step == "flashing" and entry.error == ""  # nobody recorded a failure: it was cut off
    bus.power_cycle(dfu_cam)                                # and the camera was power-cycled meanwhile
    time.sleep(0.05)
    fresh = service(manifest, state, audit, usb_backend=bus)  # the next start
    from firmware import runtime
    assert [e.serial for e in runtime.report_interrupted(state, audit)] == ["AIM0001234"]
    assert audit.names()[-1] == "firmware_update_interrupted"
    assert fresh.update(DFU, image)["resumed"] is False      # flashed again from DFU mode
    assert dfu_cam.running_version == 0x0200 and Journal(state).entries() == []


def test_check_closes_an_entry_whose_update_had_in_fact_completed(tmp_path, manifest, state, bus, audit):
    svc = service(manifest, state, audit, usb_backend=bus)

    def die_while_verifying(phase, f):
        if phase == "verify":
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        svc.update(DFU, write(tmp_path, Images.dfu_200), progress=die_while_verifying)
    assert Journal(state).entries()[0].step == "verifying"
    out = svc.check(DFU)
    assert "resumed" in out and out["verdict"]["approved"] and Journal(state).entries() == []


# -- RealSense through the fake of librealsense's update API --------------------------------------
def rs_service(manifest, state, audit, *cams):
    sdk = FakeRealSenseSdk(*cams)
    return service(manifest, state, audit, sdk=sdk), sdk


def test_realsense_update_backs_up_enters_recovery_flashes_and_verifies(tmp_path, manifest, state, audit):
    cam = FakeD4xx()
    svc, _ = rs_service(manifest, state, audit, cam)
    out = svc.update("realsense://843112070001", write(tmp_path, Images.rs_5160))
    assert out["identity"]["firmware"] == "5.16.0.1" and out["identity"]["update_id"] == "0B07ASIC0001"
    assert cam.log[:4] == ["backup", "enter_update_state", "left the bus (recovery)", "enumerated as recovery device"]
    assert out["backup"] and open(out["backup"], "rb").read()[:12] == b"843112070001"


def test_realsense_failure_partway_leaves_a_recovery_device_that_the_next_update_finds(tmp_path, manifest, state,
                                                                                        audit):
    cam = FakeD4xx(fail_update_at=0.5)
    svc, sdk = rs_service(manifest, state, audit, cam)
    image = write(tmp_path, Images.rs_5160)
    with pytest.raises(FlashFailed):
        svc.update("realsense://843112070001", image)
    time.sleep(0.05)
    assert [d.is_update_device() for d in sdk.context().query_devices()] == [True]
    out = svc.update("realsense://843112070001", image)      # found by the journaled firmware_update_id
    assert out["result"] == "updated" and cam.version == "5.16.0.1"


@pytest.mark.parametrize("fault, code", [({"new_fx": 600.0}, "FW_IDENTITY_MISMATCH"),
                                         ({"refuse_enter": True}, "FW_ENTER_UPDATE_FAILED"),
                                         ({"no_recovery_device": True}, "FW_ENTER_UPDATE_FAILED"),
                                         ({"never_back": True}, "FW_REENUMERATION_TIMEOUT")])
def test_realsense_failure_modes_have_their_own_codes(tmp_path, manifest, state, audit, fault, code):
    cam = FakeD4xx(**fault)
    svc, _ = rs_service(manifest, state, audit, cam)
    with pytest.raises(Exception) as e:
        svc.update("realsense://843112070001", write(tmp_path, Images.rs_5160))
    assert getattr(e.value, "code", None) == code
    if code in ("FW_IDENTITY_MISMATCH", "FW_REENUMERATION_TIMEOUT"):
        [entry] = Journal(state).entries()                  # flashed but not verified: refused until resolved
        assert entry.error == code
    else:
        assert Journal(state).entries()[0].step == "flashing"


def test_an_impostor_coming_back_is_an_identity_mismatch(tmp_path, manifest, state, audit):
    cam = FakeD4xx(new_serial="999999999999")
    svc, _ = rs_service(manifest, state, audit, cam)
    with pytest.raises(Exception) as e:
        svc.update("realsense://843112070001", write(tmp_path, Images.rs_5160))
    # The camera that comes back answers to another serial: it is not found under the old one.
    assert e.value.code in ("FW_REENUMERATION_TIMEOUT", "FW_IDENTITY_MISMATCH")


# -- Orbbec through the fake of the Orbbec SDK v2's update API ------------------------------------
def test_orbbec_two_stage_update_with_the_mandatory_reboot(tmp_path, manifest, state, audit):
    cam = FakeOrbbecCamera(two_stage=True)
    svc = service(manifest, state, audit, sdk=FakeOrbbecSdk(cam))
    out = svc.update("orbbec://AY3A1120034", write(tmp_path, Images.ob_160))
    assert out["identity"]["firmware"] == "1.6.00" and out["backup"] is None     # the SDK has no backup
    assert cam.log.count("update_firmware(sync)") == 2 and cam.log.count("reboot") == 2


@pytest.mark.parametrize("fault", [{"fail_state": OBUpgradeState.ERR_PROGRAM}, {"raise_error": True}])
def test_orbbec_failures_are_flash_failures_and_journaled(tmp_path, manifest, state, audit, fault):
    cam = FakeOrbbecCamera(**fault)
    svc = service(manifest, state, audit, sdk=FakeOrbbecSdk(cam))
    with pytest.raises(FlashFailed):
        svc.update("orbbec://AY3A1120034", write(tmp_path, Images.ob_160))
    assert Journal(state).entries()[0].error == "FW_FLASH_FAILED"
    svc.update("orbbec://AY3A1120034", write(tmp_path, Images.ob_160))
    assert cam.version == "1.6.00"
