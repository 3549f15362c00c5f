"""Firmware at device open (check_policy's gate) and the capture session's side of the maintenance lock."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from agent.devices.policy import DeviceSettings, check_policy
from agent.purpose import Purpose
from agent.session.capture import SessionDeps, run_capture
from agent.session.events import Error
from agent.session.request import CaptureRequest
from drivers.base import DeviceInfo, UsbIdentity
from firmware import manifest as mf
from firmware.errors import ManifestSignature, ModelUnknown, UpdateInterrupted, VersionUnapproved
from firmware.journal import Journal, JournalEntry
from firmware.maintenance import MaintenanceLock
from firmware.policy import FirmwareGate, ManifestSource, judge
from tests.helpers.firmware import body

D435 = UsbIdentity(0x8086, 0x0B07, "843112070001", 0x5010, "2-1")


def gate(tmp_path, release_key, state, mode="refuse", alerts=None):
    path = tmp_path / "manifest.json"
    if not path.exists():
        path.write_bytes(mf.sign(body(), release_key))
    source = ManifestSource(path, release_key.public_key(), mf.SequenceFloor(state / "floor"))
    alert = (lambda e, **d: alerts.append(e)) if alerts is not None else None
    return FirmwareGate(source, Journal(state), mode, alert), path


def info(firmware="5.16.0.1", **kw):
    d = dict(uri="realsense://843112070001", backend="realsense", name="Intel RealSense D435",
             serial="843112070001", firmware=firmware, usb=D435)
    d.update(kw)
    return DeviceInfo(**d)


def test_approved_firmware_passes_and_unapproved_is_refused(tmp_path, release_key, state):
    g, _ = gate(tmp_path, release_key, state)
    assert g.check(info()) == info()
    with pytest.raises(VersionUnapproved) as e:
        g.check(info(firmware="5.15.0.0"))
    assert e.value.code == "FW_VERSION_UNAPPROVED"
    with pytest.raises(ModelUnknown):
        g.check(info(usb=UsbIdentity(0x046D, 0x0825, "x", 0, "1-2"), name="Webcam C270"))
    with pytest.raises(VersionUnapproved):
        g.check(info(firmware=""))                                # a camera that reports no version


def test_alert_mode_lets_the_camera_through_with_an_audited_alert(tmp_path, release_key, state):
    alerts = []
    g, _ = gate(tmp_path, release_key, state, mode="alert", alerts=alerts)
    out = g.check(info(firmware="5.15.0.0"))
    assert "FW_VERSION_UNAPPROVED" in out.note
    assert alerts == ["firmware_alert"]


def test_recordings_and_the_simulator_are_not_judged(tmp_path, release_key, state):
    g, _ = gate(tmp_path, release_key, state)
    assert g.check(info(firmware="", is_recording=True, usb=None)).firmware == ""
    assert g.check(DeviceInfo(uri="sim://", backend="sim", name="sim")).backend == "sim"


def test_an_interrupted_update_refuses_the_camera_even_in_alert_mode(tmp_path, release_key, state):
    g, _ = gate(tmp_path, release_key, state, mode="alert", alerts=[])
    Journal(state).write(JournalEntry(device="realsense://843112070001", serial="843112070001", update_id="A",
                                      model="intel-d435", backend="realsense", from_version="5.13.0.50",
                                      to_version="5.16.0.1", image_sha256="0" * 64, image_path="/x", step="flashing"))
    with pytest.raises(UpdateInterrupted) as e:
        g.check(info())
    assert e.value.code == "FW_UPDATE_INTERRUPTED"


def test_a_manifest_replaced_by_a_forgery_refuses_every_camera(tmp_path, release_key, state):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    g, path = gate(tmp_path, release_key, state)
    assert g.check(info())
    b = body(sequence=9)
    b["models"][1]["allowed_versions"].append("5.15.0.0")
    path.write_bytes(mf.sign(b, Ed25519PrivateKey.generate()))
    with pytest.raises(ManifestSignature):
        g.check(info(firmware="5.15.0.0"))
    with pytest.raises(ManifestSignature):
        g.check(info())                                            # fail closed, not "last good"


def test_check_policy_applies_the_gate_after_the_usb_allowlist(tmp_path, release_key, state):
    g, _ = gate(tmp_path, release_key, state)
    settings = DeviceSettings(usb_allow=("8086:0b07",))
    assert check_policy(info(), settings, firmware=g).allowed is True
    with pytest.raises(VersionUnapproved):
        check_policy(info(firmware="5.15.0.0"), settings, firmware=g)
    assert check_policy(info(firmware="5.15.0.0"), settings).allowed is True     # no gate configured


def test_judge_is_the_same_verdict_the_server_can_apply(manifest):
    v = judge(manifest, backend="realsense", name="Intel RealSense D435", firmware="5.16.0.1",
              vendor_id=0x8086, product_id=0x0B07)
    assert v.approved and v.model == "intel-d435"
    assert not judge(manifest, backend="realsense", name="x", firmware="5.16.0.1").approved


def test_a_capture_during_an_update_is_refused_with_fw_maintenance_and_not_counted(state):
    events = []

    class Audit:
        def record(self, event, **data):
            events.append((event, data))
    never = SimpleNamespace()                       # uplink, signer, supervisor: not reached
    deps = SessionDeps(terminal_id="t1", camera_uri="sim://", uplink=never, signer=never, supervisor=never,
                       audit=Audit(), maintenance=MaintenanceLock(state),
                       devices=DeviceSettings(allow_development_cameras=True))
    req = CaptureRequest(purpose=Purpose.VERIFY, consent_ref="consent-0001", channel="kiosk")
    held, release = threading.Event(), threading.Event()

    def update():
        with MaintenanceLock(state).update():
            held.set()
            release.wait(60)                    # set once the capture has ended: held throughout it
    t = threading.Thread(target=update)
    t.start()
    assert held.wait(30)
    try:
        out = list(run_capture(deps, req))
    finally:
        release.set()
        t.join()
    assert len(out) == 1 and isinstance(out[0], Error) and out[0].code == "FW_MAINTENANCE"
    assert deps.lockout is not None and not any(deps.lockout._fails.values())  # not a failed attempt
    assert ("error", {"session_id": events[0][1]["session_id"], "stage": "consent", "code": "FW_MAINTENANCE",
                      "message": out[0].message[:200]}) in events
