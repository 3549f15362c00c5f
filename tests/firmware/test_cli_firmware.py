"""``capture-agent firmware check|update|backup`` in-process, against a DFU camera on a simulated USB bus
(the bus is the only fake): JSON events, typed errors, and the firmware audit log's chain."""

from __future__ import annotations

import functools
import json

import pytest
from cryptography.hazmat.primitives import serialization

from agent import cli
from agent.commands import firmware as cmd
from agent.security import audit
from drivers.update import open_target
from firmware import manifest as mf
from tests.helpers.firmware import FAST, Images, body


@pytest.fixture
def configured(tmp_path, release_key, bus, monkeypatch):
    (tmp_path / "manifest.json").write_bytes(mf.sign(body(), release_key))
    (tmp_path / "release.pem").write_bytes(release_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "fw.bin").write_bytes(Images.dfu_200)
    (tmp_path / "agent.toml").write_text(
        'state_dir = "state"\n[audit]\npath = "state/audit.jsonl"\n'
        '[firmware]\nmanifest = "manifest.json"\nrelease_key = "release.pem"\nreenumerate_timeout_s = 2.0\n')
    # The USB bus is simulated: the update path is opened with it (and short poll intervals).
    monkeypatch.setattr(cmd, "open_target", functools.partial(open_target, usb_backend=bus, poll_s=FAST["poll_s"]))
    return tmp_path


def run(capsys, *argv):
    code = cli.main(["firmware", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def test_check_update_and_backup_through_the_command(configured, capsys, dfu_cam):
    cfg = str(configured / "agent.toml")
    code, events, _ = run(capsys, "check", "--device", "dfu://2bdf:0102", "--config", cfg,
                          "--image", str(configured / "fw.bin"), "--json")
    assert code == 0 and events[-1]["event"] == "result"
    assert events[-1]["verdict"]["approved"] and events[-1]["image"]["to_version"] == "2.00"
    code, events, _ = run(capsys, "update", "--device", "dfu://2bdf:0102", "--config", cfg,
                          "--image", str(configured / "fw.bin"))
    assert code == 0 and events[-1]["result"] == "updated" and events[-1]["identity"]["firmware"] == "2.00"
    flash = [e["percent"] for e in events if e.get("event") == "progress" and e["phase"] == "flash"]
    assert flash == sorted(flash) and flash[-1] == 100
    out = configured / "backup.bin"
    code, events, _ = run(capsys, "backup", "--device", "dfu://2bdf:0102", "--config", cfg, "--output", str(out))
    assert code == 0 and out.read_bytes() == Images.dfu_200 and (out.stat().st_mode & 0o777) == 0o600
    log = configured / "state" / "firmware-audit.jsonl"
    assert audit.verify(log).entries > 10
    names = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert "firmware_update_done" in names and "firmware_backup" in names and names[-1] == "firmware_tool_end"


def test_refusals_reach_the_user_as_codes(configured, capsys, dfu_cam):
    cfg = str(configured / "agent.toml")
    (configured / "other.bin").write_bytes(b"not an image the bank released")
    code, events, err = run(capsys, "update", "--device", "dfu://2bdf:0102", "--config", cfg,
                            "--image", str(configured / "other.bin"), "--json")
    assert code == 2 and "error[FW_IMAGE_HASH_MISMATCH]" in err
    assert events[-1]["error"]["code"] == "FW_IMAGE_HASH_MISMATCH"
    assert "Traceback" not in err
    code, _, err = run(capsys, "check", "--device", "sim://", "--config", cfg)
    assert code == 2 and "error[FW_UNSUPPORTED]" in err
    (configured / "plain.toml").write_text('state_dir = "state"\n')
    code, _, err = run(capsys, "check", "--device", "dfu://2bdf:0102", "--config", str(configured / "plain.toml"))
    assert code == 2 and "error[FW_NOT_CONFIGURED]" in err
    assert dfu_cam.running_version == 0x0102
