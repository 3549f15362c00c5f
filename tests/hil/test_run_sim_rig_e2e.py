"""``python -m hil run`` end to end on the simulated rig: the reference server and the agent's daemon
as real processes, every session through the local API, an unplug cycle through a ``uhubctl`` on
PATH (a fake: this machine has no USB hub), the sessions file and the HTML report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hil.fakes import uhubctl

pytestmark = pytest.mark.slow                 # real processes: server, daemon and its worker

DATA = Path(__file__).parent / "data"


def test_run_on_the_sim_rig_with_a_fake_uhubctl_port(tmp_path):
    rig = tmp_path / "rig"
    rig.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    uhubctl.install(bin_dir, tmp_path / "hub.json", [{
        "location": "1-1", "nports": 4, "description": "2109:2817 VIA Labs, Inc. USB2.0 Hub, USB 2.10, 4 ports, ppps",
        "ports": {"2": {"power": True, "marker_dir": str(rig),
                        "device": "8086:0b07 Intel(R) RealSense(TM) Depth Camera 435 SIM0000000001"}}}])
    report = tmp_path / "out.html"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    # 48 framesets, as every other test's server asks: at 32 the bona fide session was judged not
    # live in 1 of 5 whole-suite runs (the motion detector's thin margin on a still face, issue 14).
    # The server's nonce is random, so the bona fide face's motion evidence is a draw: a still face
    # judged inconclusive (about 1 session in 80, tests/helpers/live.py), or not live (seen once in the
    # thirty-fourth session's fresh clone: `bona-fide: not_live`, every other session as expected), is
    # the rig's BPCER to report, not this test's failure. The whole run goes again once when that, and
    # only that, is what differed from the set's expectations; a second refusal fails the test.
    for attempt in range(2):
        for f in rig.iterdir():                  # the rig as it was before the first run: nothing plugged yet
            f.unlink()
        out = subprocess.run([sys.executable, "-m", "hil", "run", str(DATA / "tiny.toml"), "--report", str(report),
                              "--rig", "sim", "--sim-dir", str(rig), "--usb-port", "1-1:2", "--frames", "48",
                              "--sim", "realtime=0"], capture_output=True, text=True, timeout=300, env=env)
        sessions = [json.loads(line) for line in (tmp_path / "out.sessions.jsonl").read_text().splitlines()]
        unexpected = [s["scenario"] for s in sessions if not s["as_expected"]]
        refused = any(s["scenario"] == "bona-fide" and s["outcome"] != "accepted" for s in sessions)
        if attempt == 0 and (unexpected == ["bona-fide"] and refused
                             or not unexpected and any(s["scenario"] == "bona-fide" and s["verdict"] == "inconclusive"
                                                       for s in sessions)):
            continue
        assert out.returncode == 0, out.stderr[-3000:]
        break
    assert re.search(r"\[#{30}\] 4/4 ", out.stderr)                       # the progress bar reached the end
    got = {s["scenario"]: s for s in sessions}
    assert [s["outcome"] for s in sessions] == ["accepted", "not_live", "device_refused", "accepted"]
    assert all(s["as_expected"] for s in sessions)
    assert got["bona-fide"]["score"] is not None and got["print"]["score"] is not None   # from the audit log
    assert got["bona-fide"]["timings_ms"]["total"] > 0 and got["bona-fide"]["progress"][-1][1] == 100
    assert got["virtual-camera"]["code"] == "DRV_DEVICE_REFUSED"
    cycle = got["unplug"]["unplug"]
    assert cycle["while_off"] == {"outcome": "error", "code": "DRV_DEVICE_NOT_FOUND"}
    # the runner retries until a session succeeds: a first try may land before the device manager
    # has re-opened the re-plugged camera (timing on a loaded machine), never more than a few
    assert cycle["recovered_s"] > 0 and 1 <= cycle["attempts"] <= 3
    hub = json.loads((tmp_path / "hub.json").read_text())
    assert hub["hubs"][0]["ports"]["2"]["power"] is True                 # powered again through uhubctl
    assert (rig / "enumeration").read_text() == "2"                      # plugged at start, re-plugged once
    page = report.read_text()
    for tid in ("scenarios", "apcer", "bpcer", "bpcer-at-apcer", "injection", "latency", "recovery"):
        assert f'<table id="{tid}">' in page
    assert page.count('src="data:image/png;base64,') == 5
    assert "src=\"http" not in page and "<script" not in page           # self-contained
