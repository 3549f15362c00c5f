"""`capture-agent devices` lists backends' devices with identity and allowlist status."""

import json

from agent.cli import main


def test_devices_command_json_lists_sim_and_reports_problems(capsys, tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[devices]\nusb_allow = ["8086:0b07"]\n')
    assert main(["devices", "--json", "--config", str(cfg)]) == 0
    out = json.loads(capsys.readouterr().out)
    sims = [d for d in out["devices"] if d["backend"] == "sim"]
    assert sims and sims[0]["allowed"] is None and sims[0]["usb"] is None
    assert isinstance(out["unavailable_backends"], dict)


def test_devices_command_rejects_bad_allowlist(capsys, tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[devices]\nusb_allow = ["not-a-vid"]\n')
    assert main(["devices", "--config", str(cfg)]) == 2
    assert "error[AGT_CONFIG_INVALID]" in capsys.readouterr().err
