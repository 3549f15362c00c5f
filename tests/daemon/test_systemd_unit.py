"""The shipped systemd unit parses (systemd-analyze verify), with ExecStart pointed at this checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_file_verifies(tmp_path):
    unit = (ROOT / "packaging" / "systemd" / "capture-agent.service").read_text()
    exe = Path(sys.executable).parent / "capture-agent"
    unit = unit.replace("/opt/capture-agent/.venv/bin/capture-agent", str(exe))
    (tmp_path / "capture-agent.service").write_text(unit)
    out = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "capture-agent.service")],
                         capture_output=True, text=True, timeout=60)
    problems = [line for line in (out.stdout + out.stderr).splitlines()
                if "capture-agent.service" in line and "not executable" not in line]
    assert problems == [], problems
    assert "Type=notify" in unit and "UMask=0077" in unit and "LimitCORE=0" in unit
