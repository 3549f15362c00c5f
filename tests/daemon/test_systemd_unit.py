"""The shipped systemd unit: it parses (systemd-analyze verify), its exposure is at most 2.0
(systemd-analyze security --offline), and it runs the daemon unprivileged with the kiosk app's
access to the socket spelled out. That the daemon works under it is
``tests/daemon/test_daemon_unprivileged.py``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "systemd" / "capture-agent.service"
needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed (Debian package systemd; make setup "
                                          "installs it)")


def settings() -> list[tuple[str, str]]:
    return [tuple(line.split("=", 1)) for line in UNIT.read_text().splitlines()  # type: ignore[misc]
            if "=" in line and not line.startswith("#")]


def values(key: str) -> list[str]:
    return [v for k, v in settings() if k == key]


def local_copy(tmp_path: Path) -> Path:
    unit = UNIT.read_text().replace("/opt/capture-agent/.venv/bin/capture-agent",
                                    str(Path(sys.executable).parent / "capture-agent"))
    out = tmp_path / "capture-agent.service"
    out.write_text(unit)
    return out


@needs_systemd
def test_unit_file_verifies(tmp_path):
    unit = local_copy(tmp_path)
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (out.stdout + out.stderr).splitlines()
                if "capture-agent.service" in line and "not executable" not in line]
    assert problems == [], problems


@needs_systemd
def test_exposure_is_at_most_2_0(tmp_path):
    unit = local_copy(tmp_path)
    out = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                         capture_output=True, text=True, timeout=60)
    score = float(re.search(r"Overall exposure level for capture-agent\.service: (\d+\.\d)", out.stdout).group(1))
    assert score <= 2.0, out.stdout
    # --threshold compares on a 0-100 scale: exit 0 means "at most 2.0" to systemd itself too.
    gate = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(unit)],
                          capture_output=True, text=True, timeout=60)
    assert gate.returncode == 0, gate.stdout[-3000:]


def test_the_daemon_runs_unprivileged():
    assert values("User") == ["capture-agent"] and values("Group") == ["capture-agent"]
    assert values("CapabilityBoundingSet") == [""] and values("AmbientCapabilities") == [""]
    assert values("NoNewPrivileges") == ["yes"]
    assert not any(cap in " ".join(values("CapabilityBoundingSet")) for cap in ("SETUID", "SETGID", "SYS_ADMIN"))
    # Cameras through device ACLs and groups, not privilege.
    assert values("DevicePolicy") == ["closed"]
    assert {"char-usb_device rw", "char-video4linux rw"} <= set(values("DeviceAllow"))
    assert set(values("SupplementaryGroups")[0].split()) == {"video", "plugdev"}
    # The worker's user+network namespace is the only namespace the service may make.
    assert values("RestrictNamespaces") == ["user net"]
    assert values("LimitCORE") == ["0"] and values("MemorySwapMax") == ["0"] and values("UMask") == ["0077"]


def test_the_kiosk_app_can_reach_the_socket_through_the_group():
    assert values("RuntimeDirectory") == ["capture-agent"] and values("RuntimeDirectoryMode") == ["0750"]
    sample = (ROOT / "capture-agent.sample.toml").read_text()
    assert 'socket_mode = "0660"' in sample and 'allowed_groups = ["capture-agent"]' in sample
    sysusers = (ROOT / "packaging" / "systemd" / "capture-agent.sysusers").read_text()
    assert re.search(r"^u capture-agent ", sysusers, re.M)
    readme = (ROOT / "README.md").read_text()
    assert "usermod --append --groups capture-agent" in readme
