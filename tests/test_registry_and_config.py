import subprocess
import sys

import pytest

import drivers
from agent import config
from agent.cli import main
from agent.errors import ConfigError


@pytest.mark.parametrize("uri, code", [
    ("nonsense", "DRV_INVALID_URI"),
    ("ftp://camera", "DRV_UNKNOWN_SCHEME"),
    ("sim://?a=1&&&b", "DRV_INVALID_URI"),
])
def test_bad_uris_get_stable_codes(uri, code):
    with pytest.raises(drivers.DriverError) as ei:
        drivers.open(uri)
    assert ei.value.code == code


def test_cli_reports_error_code_not_traceback(capsys):
    assert main(["stream", "ftp://x", "--frames", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error[DRV_UNKNOWN_SCHEME]:")
    assert "Traceback" not in err


def test_version_flag():
    out = subprocess.run([sys.executable, "-m", "agent.cli", "--version"], capture_output=True, text=True)
    assert out.stdout.strip().startswith("capture-agent ")


def test_config_rejects_unknown_keys_and_bad_types(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('terminal_id = "t1"\n[camera]\nuris = ["sim://"]\nread_timout_s = 2\n')
    with pytest.raises(ConfigError, match="read_timout_s"):
        config.load(p)
    p.write_text('[camera]\nread_timeout_s = "fast"\n')
    with pytest.raises(ConfigError, match="expected a number"):
        config.load(p)
    p.write_text('terminal_id = ')
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(p)
    with pytest.raises(ConfigError) as ei:
        config.load(tmp_path / "missing.toml")
    assert ei.value.code == "AGT_CONFIG_INVALID"


def test_config_loads_typed_values(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('terminal_id = "kiosk-7"\n[camera]\nuris = ["sim://?lux=50"]\nread_timeout_s = 2\n')
    s = config.load(p)
    assert s.terminal_id == "kiosk-7"
    assert s.camera.uris == ("sim://?lux=50",)
    assert s.camera.read_timeout_s == 2.0
