"""USB port power through ``uhubctl``: the controller against a fake ``uhubctl`` on PATH (this machine
has no USB hub), the fake checked against the real program where the real one can answer here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from hil.errors import UsbPowerError
from hil.fakes import uhubctl
from hil.rig.simcam import Plug
from hil.rig.usbpower import UhubctlPower

HUB = {"location": "1-1", "nports": 4, "description": "2109:2817 VIA Labs, Inc. USB2.0 Hub, USB 2.10, 4 ports, ppps",
       "ports": {"2": {"power": True, "device": "8086:0b07 Intel(R) RealSense(TM) Depth Camera 435 843112070001"}}}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "camera"
    marker.mkdir()
    Plug(marker).plug()
    hubs = [json.loads(json.dumps(HUB))]
    hubs[0]["ports"]["2"]["marker_dir"] = str(marker)
    exe = uhubctl.install(bin_dir, tmp_path / "hub.json", hubs)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return {"exe": exe, "marker": marker, "state": tmp_path / "hub.json"}


def run(*args):
    return subprocess.run(["uhubctl", *args], capture_output=True, text=True, timeout=30)


def test_status_lines_have_the_real_programs_shape(hub):
    out = run()
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0] == f"Current status for hub 1-1 [{HUB['description']}]"
    assert lines[2] == f"  Port 2: 0503 power highspeed enable connect [{HUB['ports']['2']['device']}]"
    assert lines[1] == "  Port 1: 0100 power" and len(lines) == 5


def test_power_off_and_on_unplug_and_replug_the_device_behind_the_port(hub):
    power = UhubctlPower("1-1", 2)
    plug = Plug(hub["marker"])
    assert power.powered() and plug.plugged and plug.enumeration == 1
    power.power(False)
    assert not power.powered() and not plug.plugged
    out = run("-l", "1-1", "-p", "2", "-a", "on")
    assert out.stdout.splitlines()[2:4] == ["Sent power on request", f"New status for hub 1-1 [{HUB['description']}]"]
    assert power.powered() and plug.plugged and plug.enumeration == 2     # enumerated anew
    power.power(True)                                                       # already on: no new enumeration
    assert plug.enumeration == 2


def test_cycle_and_toggle(hub):
    out = run("-l", "1-1", "-p", "2", "-a", "cycle", "-d", "0.1")
    assert [x for x in out.stdout.splitlines() if x.startswith("Sent")] == ["Sent power off request",
                                                                            "Sent power on request"]
    assert Plug(hub["marker"]).enumeration == 2
    run("-l", "1-1", "-p", "2", "-a", "toggle")
    assert not UhubctlPower("1-1", 2).powered()


def test_refusals_are_typed(hub):
    with pytest.raises(UsbPowerError, match="No compatible devices detected at location 9-9!"):
        UhubctlPower("9-9", 2).power(False)
    with pytest.raises(UsbPowerError, match="reported no port 6"):
        UhubctlPower("1-1", 6).powered()                   # beyond the hub's 4 ports: the port mask ignores it
    with pytest.raises(UsbPowerError, match="not a uhubctl hub location"):
        UhubctlPower("1-1; reboot", 2)
    assert run("--frobnicate").returncode == 1


def test_a_missing_uhubctl_is_a_typed_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsbPowerError, match="not found on PATH"):
        UhubctlPower("1-1", 2).powered()


@pytest.mark.skipif(shutil.which("uhubctl", path="/usr/sbin:/usr/bin:/sbin:/bin") is None,
                    reason="Debian's uhubctl is not installed")
def test_the_fake_refuses_a_missing_hub_as_the_real_uhubctl_does(hub):
    real = shutil.which("uhubctl", path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert real is not None
    args = ["-l", "9-9", "-p", "2", "-a", "off"]
    want = subprocess.run([real, *args], capture_output=True, text=True, timeout=30)
    got = run(*args)
    assert (got.returncode, got.stderr, got.stdout) == (want.returncode, want.stderr, want.stdout)
    version = subprocess.run([real, "-v"], capture_output=True, text=True, timeout=30).stdout
    assert re.match(r"2\.5\.", version)                    # the CLI version the fake follows
