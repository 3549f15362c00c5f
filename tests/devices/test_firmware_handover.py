"""The daemon's device manager hands its cameras over to a firmware update and takes them back.

Real processes and real ``flock``: the device manager runs here with its cameras in real camera host
processes; the update is ``capture-agent firmware update`` in a process of its own. Only the USB bus
is faked (``hil/fakes/usbcam.py``, ``hil/fakes/usbcam_fw.py``): a device that, like a real SDK's,
refuses a second open while it is claimed, and re-enumerates after a flash.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import drivers
from agent.devices.lease import DeviceManager
from agent.devices.manager import SourceState
from agent.devices.policy import DeviceSettings
from agent.observe.health import CameraState, camera_state_of
from agent.purpose import Purpose
from agent.session.capture import SessionDeps, run_capture
from agent.session.events import Error
from agent.session.request import CaptureRequest
from drivers.errors import CaptureAgentError, DeviceBusy
from firmware import manifest as mf
from firmware.errors import MaintenanceActive
from firmware.journal import Journal
from firmware.maintenance import MaintenanceLock
from firmware.policy import FirmwareGate, ManifestSource
from hil.fakes import usbcam, usbcam_fw
from tests.helpers.firmware import sha

ROOT = Path(__file__).resolve().parents[2]
VID, PID = 0x1209, 0x0F01                # pid.codes' test id: no model of the other tests
FAST = DeviceSettings(stall_timeout_s=0.4, read_timeout_s=0.1, restart_timeout_s=0.4, reset_timeout_s=0.6,
                      replug_timeout_s=1.0, replug_poll_s=0.02, host_heartbeat_timeout_s=0.6, host_read_hang_s=0.8,
                      lease_wait_s=1.5, idle_period_s=0.1, maintenance_poll_s=0.1)
IMAGE_110 = usbcam_fw.fake_image("1.1.0")
IMAGE_120 = usbcam_fw.fake_image("1.2.0", b"unapproved " * 50)


@pytest.fixture(autouse=True)
def _fakes():
    usbcam_fw.register()


@pytest.fixture(scope="module")
def release_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _body() -> dict:
    model = {"id": "fake-uvc", "vendor": "Test", "model": "Fake USB depth camera", "backend": "uvc",
             "usb_ids": [f"{VID:04x}:{PID:04x}"], "names": ["Fake USB depth camera"], "minimum_version": "1.0.0",
             "allowed_versions": ["1.0.0", "1.1.0"],
             "images": [{"version": "1.1.0", "sha256": sha(IMAGE_110), "size": len(IMAGE_110)},
                        {"version": "1.2.0", "sha256": sha(IMAGE_120), "size": len(IMAGE_120)}]}
    return {"sequence": 1, "issued": "2026-12-03T09:00:00Z", "models": [model]}


@pytest.fixture
def site(tmp_path, release_key):
    """A terminal's files: state directory, signed manifest, release key, image, the tool's config."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (tmp_path / "manifest.json").write_bytes(mf.sign(_body(), release_key))
    (tmp_path / "release.pem").write_bytes(release_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "fw-110.bin").write_bytes(IMAGE_110)
    dev = usbcam.FakeUsbDevice(tmp_path / "bus", vid=VID, pid=PID, fps=60, firmware="1.0.0")
    return SimpleNamespace(root=tmp_path, state=state, dev=dev, release_key=release_key)


def _config(site, handover_timeout_s: float = 8.0) -> str:
    cfg = site.root / "agent.toml"
    cfg.write_text('state_dir = "state"\n[audit]\npath = "state/audit.jsonl"\n'
                   '[firmware]\nmanifest = "manifest.json"\nrelease_key = "release.pem"\n'
                   f'reenumerate_timeout_s = 5.0\nhandover_timeout_s = {handover_timeout_s}\n')
    return str(cfg)


def _gate(site) -> FirmwareGate:
    source = ManifestSource(site.root / "manifest.json", site.release_key.public_key(),
                            mf.SequenceFloor(site.state / "firmware-manifest-sequence"))
    return FirmwareGate(source, Journal(site.state))


def _manager(site, events: list | None = None, uri: str | None = None) -> DeviceManager:
    def tell(event, **data):
        if events is not None:
            events.append((event, data))
    return DeviceManager([uri or site.dev.uri], FAST, maintenance=MaintenanceLock(site.state), firmware=_gate(site),
                         on_maintenance=tell)


def _updater(site, *args: str, image: str = "fw-110.bin", timeout: float = 8.0) -> subprocess.Popen:
    argv = [sys.executable, "-m", "tests.helpers.fw_update_proc", "firmware", "update", "--device", site.dev.uri,
            "--image", str(site.root / image), "--config", _config(site, timeout), "--json", *args]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(pred, limit_s=10.0, what="condition"):
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < limit_s, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - t0


def _lease_frames(m: DeviceManager, n: int = 4):
    cam = m.lease()
    cam.start()
    try:
        frames = [cam.read(1.0) for _ in range(n)]
        return cam.info, frames
    finally:
        cam.stop()


class ReachedTheServer(CaptureAgentError):
    code = "TEST_REACHED_SERVER"


class StubUplink:
    """The server's first question to a session is whether its camera's capabilities will do: a
    session that gets here has passed the maintenance window, the lease and the firmware gate."""

    def __init__(self) -> None:
        self.asked = 0

    def check_capabilities(self, channel, caps):
        self.asked += 1
        raise ReachedTheServer("the test ends the session at the server")


def _session_deps(site, m: DeviceManager, uplink: Any = None) -> SessionDeps:
    never: Any = SimpleNamespace()           # signer, supervisor: not reached
    return SessionDeps(terminal_id="t1", camera_uri=site.dev.uri, uplink=uplink or never, signer=never,
                       supervisor=never,
                       maintenance=MaintenanceLock(site.state), cameras=m, firmware=_gate(site),
                       devices=dataclasses.replace(FAST, usb_allow=(f"{VID:04x}:{PID:04x}",)))


REQ = CaptureRequest(purpose=Purpose.VERIFY, consent_ref="consent-0001", channel="kiosk")


def test_the_fake_usb_camera_refuses_a_second_open_like_a_real_sdk(site):
    cam = drivers.open(site.dev.uri)
    try:
        with pytest.raises(DeviceBusy) as e:
            drivers.open(site.dev.uri)
        assert e.value.code == "DRV_DEVICE_BUSY"
        with pytest.raises(Exception) as e2:                        # the update API is refused too
            usbcam_fw.open_update_target(drivers.base.parse_uri(site.dev.uri))
        assert getattr(e2.value, "code", "") == "FW_CAMERA_BUSY"
    finally:
        cam.stop()
    drivers.open(site.dev.uri).stop()                                # stopped: free again


def test_an_update_beside_the_running_manager_gets_the_camera_and_the_manager_takes_it_back(site):
    events: list = []
    m = _manager(site, events, uri=site.dev.behind("sim://"))    # the simulator behind the fake USB plug
    m.start()
    try:
        info, _ = _lease_frames(m)
        assert info.firmware == "1.0.0"
        with pytest.raises(DeviceBusy):                              # the daemon holds the camera
            drivers.open(site.dev.uri)
        hold = site.dev.dir / "hold_update"
        hold.touch()                                                 # the update pauses before it writes
        t0 = time.monotonic()
        proc = _updater(site)
        try:
            _wait(lambda: site.dev.count("update_open") == 1, 15, "the update to open the device")
            handover_s = time.monotonic() - t0
            # Handed over: every camera closed (and its host gone), state maintenance.
            assert m.in_maintenance and m.rig.sources[0].camera is None and m.pool is None
            assert {st["state"] for st in m.status().values()} == {"maintenance"}
            assert camera_state_of(st["state"] for st in m.status().values()) is CameraState.MAINTENANCE
            assert m.healthy()                                       # the watchdog keeps pinging
            with pytest.raises(MaintenanceActive):                  # a lease is refused at once
                m.lease().start()
            out = list(run_capture(_session_deps(site, m), REQ))     # a session: FW_MAINTENANCE
            assert len(out) == 1 and isinstance(out[0], Error) and out[0].code == "FW_MAINTENANCE"
            assert site.dev.count("flash") == 0
        finally:
            hold.unlink()
            stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        result = json.loads(stdout.splitlines()[-1])
        assert result["result"] == "updated"
        assert site.dev.firmware == "1.1.0" and site.dev.count("flash") == 1
        # Taken back: a fresh handle on the re-enumerated device, on the new (approved) version.
        _wait(lambda: not m.in_maintenance and m.rig.sources[0].state is SourceState.ONLINE, 10, "reopen")
        info, frames = _lease_frames(m)
        assert info.firmware == "1.1.0" and len(frames) == 4
        # A session is accepted: the maintenance window, the lease, the USB policy and the firmware gate
        # on the new version, the capture spec; it goes on to the server (a stub that ends it there).
        uplink = StubUplink()
        out = list(run_capture(_session_deps(site, m, uplink), REQ))
        assert uplink.asked == 1 and isinstance(out[-1], Error) and out[-1].code == "TEST_REACHED_SERVER", out[-1]
        names = [e for e, _ in events]
        assert names == ["camera_released_for_update", "camera_reopened_after_update"]
        assert events[0][1]["device"] == site.dev.uri and events[0][1]["update_pid"] == proc.pid
        assert "1.1.0" in events[1][1]["firmware"]
        print(f"hand-over: the update waited {result['handover_ms']} ms for the cameras (its process start to "
              f"its device open {handover_s * 1000:.0f} ms); the manager's release {events[0][1]['release_ms']} ms, "
              f"reopen {events[1][1]['reopen_ms']} ms")
    finally:
        m.stop()


def test_an_update_that_is_not_given_the_camera_ends_busy_and_writes_nothing(site):
    m = _manager(site)
    m.start()
    tool = m.lease()
    tool.start()                      # a lease that is not a session's never ends: the camera stays held
    try:
        t0 = time.monotonic()
        proc = _updater(site, timeout=1.0)
        stdout, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - t0
        assert proc.returncode == 2
        assert "error[FW_CAMERA_BUSY]" in stderr and "did not release the camera within 1 s" in stderr
        assert "Traceback" not in stderr
        assert site.dev.count("update_open") == 0 and site.dev.count("flash") == 0
        assert site.dev.firmware == "1.0.0" and Journal(site.state).entries() == []
        assert not (site.state / "camera-maintenance.request").exists()
        assert tool.read(1.0) is not None                            # the lease never noticed
        assert took >= 1.0
    finally:
        tool.stop()
        m.stop()


def test_with_no_daemon_the_update_proceeds_at_once(site):
    proc = _updater(site)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert site.dev.firmware == "1.1.0"


def test_an_update_killed_mid_way_gives_the_camera_back_refused_by_the_gate(site):
    """The update dies after its journal entry (power cut of the tool): the kernel drops its lock, the
    manager reopens the camera and the firmware gate refuses it, FW_UPDATE_INTERRUPTED, at once."""
    m = _manager(site)
    m.start()
    hold = site.dev.dir / "hold_update"
    hold.touch()
    try:
        proc = _updater(site)
        _wait(lambda: site.dev.count("update_open") == 1, 15, "the update to open the device")
        _wait(lambda: Journal(site.state).entries() != [], 5, "the journal entry")
        assert m.in_maintenance
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        assert (site.state / "camera-maintenance.request").exists()          # left behind, meaningless
        _wait(lambda: not m.in_maintenance, 10, "the manager to take the camera back")
        src = m.rig.sources[0]
        _wait(lambda: src.attempt_error is not None, 5, "the gate's verdict")
        assert src.state is not SourceState.ONLINE and src.attempt_error.code == "FW_UPDATE_INTERRUPTED"
        with pytest.raises(Exception) as e:
            m.lease().start()
        assert getattr(e.value, "code", "") == "FW_UPDATE_INTERRUPTED"
    finally:
        hold.unlink(missing_ok=True)
        m.stop()


def test_the_gate_runs_again_on_the_version_found_after_the_hand_over(site):
    """Firmware changed behind the manager's back while it was handed over (another tool, not the
    verified update): the camera comes back refused, FW_VERSION_UNAPPROVED, and no lease gets it."""
    m = _manager(site)
    m.start()
    lock = MaintenanceLock(site.state, handover_timeout_s=5.0)
    try:
        with lock.update(site.dev.uri):                              # the real flock, this process
            assert m.in_maintenance
            target = usbcam_fw.open_update_target(drivers.base.parse_uri(site.dev.uri), reenumerate_s=0.05)
            with target:
                target.install(IMAGE_120)                            # 1.2.0: listed, not approved
        _wait(lambda: not m.in_maintenance, 10, "reopen")
        src = m.rig.sources[0]
        _wait(lambda: src.attempt_error is not None, 5, "the gate's verdict")
        assert src.attempt_error.code == "FW_VERSION_UNAPPROVED" and src.camera is None
        with pytest.raises(Exception) as e:
            m.lease().start()
        assert getattr(e.value, "code", "") == "FW_VERSION_UNAPPROVED"
    finally:
        m.stop()


def test_a_daemon_started_during_an_update_waits_for_it(site):
    lock = MaintenanceLock(site.state, handover_timeout_s=2.0)
    with lock.update(site.dev.uri):
        m = _manager(site)
        m.start()
        try:
            assert m.in_maintenance and m.rig.sources[0].camera is None
            assert site.dev.count("open") == 0
            assert not lock.cameras_held()
        except BaseException:
            m.stop()
            raise
    try:
        _wait(lambda: not m.in_maintenance and m.rig.sources[0].state is SourceState.ONLINE, 10, "open")
        assert lock.cameras_held()
    finally:
        m.stop()
    assert not lock.cameras_held()


def test_maintenance_files_are_private_and_a_request_alone_changes_nothing(site):
    lock = MaintenanceLock(site.state)
    site.state.joinpath("camera-maintenance.lock").touch(mode=0o640)
    os.chmod(site.state / "camera-maintenance.lock", 0o640)          # from an older version
    assert not lock.update_running()
    assert (site.state / "camera-maintenance.lock").stat().st_mode & 0o777 == 0o600
    # A request with no update holding the lock (its update died) is not a hand-over.
    (site.state / "camera-maintenance.request").write_text('{"pid": 1}')
    assert lock.handover_requested() is None
    with lock._hold(__import__("fcntl").LOCK_EX, MaintenanceActive("x")):
        assert lock.handover_requested() == {"pid": 1}
        os.chmod(site.state / "camera-maintenance.request", 0o666)   # writable by anyone: not trusted
        assert lock.handover_requested() is None


ATTACK = r"""
import fcntl, json, os, subprocess, sys
state, config = sys.argv[1], sys.argv[2]
out = {}
fd = os.open(os.path.join(state, "camera-maintenance.lock"), os.O_RDONLY)   # 0640 from an older version
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
out["lock"] = "held"
try:
    open(os.path.join(state, "camera-maintenance.request"), "w").write('{"pid": 1}')
    out["request"] = "written"
except PermissionError:
    out["request"] = "EACCES"
try:
    os.open(os.path.join(state, "camera-holder.lock"), os.O_RDONLY)
    out["holder"] = "opened"
except PermissionError:
    out["holder"] = "EACCES"
tool = subprocess.run([sys.executable, "-m", "agent.cli", "firmware", "update", "--device", "fakeusb://X?bus=/nonexistent",
                       "--image", "/dev/null", "--config", config], capture_output=True, text=True)
out["tool"] = tool.stderr.strip().splitlines()[-1] if tool.stderr.strip() else ""
print(json.dumps(out), flush=True)
sys.stdin.read()                                 # hold the lock until the test is done looking (stdin closed)
"""


def test_a_local_user_of_the_daemons_group_cannot_make_it_drop_its_camera(site):
    """The kiosk app's user (a member of the daemon's group) holds the maintenance lock (an older
    version's 0640 file lets it) and tries to write a request and to run the firmware tool: the
    daemon keeps its camera."""
    from tests.helpers.users import DAEMON_USER, KIOSK_USER, ensure_user, popen_as, shared_tmp
    uid, gid = ensure_user(DAEMON_USER)
    ensure_user(KIOSK_USER, groups=(DAEMON_USER,))
    shared = shared_tmp("ca-fw-handover-")
    state = shared / "state"
    state.mkdir(mode=0o750)
    os.chown(state, uid, gid)
    legacy = state / "camera-maintenance.lock"
    legacy.touch()
    os.chown(legacy, uid, gid)
    os.chmod(legacy, 0o640)
    for name in ("manifest.json", "release.pem"):
        (shared / name).write_bytes((site.root / name).read_bytes())
    (shared / "agent.toml").write_text(f'state_dir = "{state}"\n[firmware]\nmanifest = "{shared / "manifest.json"}"\n'
                                       f'release_key = "{shared / "release.pem"}"\n')
    site.state = state
    m = _manager(site)
    m.start()
    proc = None
    try:
        holder = state / "camera-holder.lock"              # made by the daemon (root here): given to its user
        assert holder.stat().st_uid == uid and holder.stat().st_mode & 0o777 == 0o600
        proc = popen_as(KIOSK_USER, ["-c", ATTACK, str(state), str(shared / "agent.toml")],
                        groups=(DAEMON_USER,), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        seen = json.loads(line) if line else {}
        assert seen.get("lock") == "held", (line, proc.stderr.read() if proc.stderr else "")
        assert seen["request"] == "EACCES" and seen["holder"] == "EACCES"
        assert "error[FW_NOT_PERMITTED]" in seen["tool"], seen
        time.sleep(1.0)                                    # ten of the manager's polls with the lock held
        assert proc.poll() is None                         # still held: it lets go when told (before: after a
        #                                                    fixed 2 s, which a loaded machine could spend first)
        assert not m.in_maintenance and m.handovers == 0 and m.rig.sources[0].camera is not None
        _lease_frames(m, 2)
        proc.stdin.close()
        proc.wait(timeout=30)
    finally:
        if proc is not None and proc.poll() is None:       # a failed assertion: it waits for its stdin
            proc.kill()
            proc.wait()
        m.stop()
        shutil.rmtree(shared, ignore_errors=True)


def test_a_different_device_found_after_the_update_stays_closed_and_says_why(site):
    """After the hand-over the port holds a device the USB policy refuses: the manager keeps the
    cameras closed, audits why, a lease gets DRV_DEVICE_REFUSED; once the right device is back it reopens."""
    events: list = []
    allow = (f"{VID:04x}:{PID:04x}",)
    m = DeviceManager([site.dev.uri], dataclasses.replace(FAST, usb_allow=allow),
                      maintenance=MaintenanceLock(site.state), firmware=_gate(site),
                      on_maintenance=lambda e, **d: events.append((e, d)))
    m.start()
    cfg = site.dev.dir / "device.json"
    original = cfg.read_text()
    try:
        with MaintenanceLock(site.state, handover_timeout_s=5.0).update(site.dev.uri):
            cfg.write_text(original.replace(f'"pid": {PID}', '"pid": 1'))      # another model on the port
        _wait(lambda: any(e == "camera_reopen_failed" for e, _ in events), 10, "the failed reopen")
        assert m.in_maintenance and m.maintenance_error.code == "DRV_DEVICE_REFUSED"
        assert not MaintenanceLock(site.state).cameras_held()                   # nothing held meanwhile
        with pytest.raises(Exception) as e:
            m.lease().start()
        assert getattr(e.value, "code", "") == "DRV_DEVICE_REFUSED"
        cfg.write_text(original)
        _wait(lambda: not m.in_maintenance and m.rig.sources[0].state is SourceState.ONLINE, 10, "reopen")
        _lease_frames(m, 2)
        assert [e for e, _ in events] == ["camera_released_for_update", "camera_reopen_failed",
                                          "camera_reopened_after_update"]
    finally:
        cfg.write_text(original)
        m.stop()
