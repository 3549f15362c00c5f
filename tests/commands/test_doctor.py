import json

from agent.cli import main
from agent.config import load


def test_doctor_on_the_sim_passes_every_clause(capsys):
    assert main(["doctor", "sim://", "--frames", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    checks = {c["check"]: c for c in out["checks"]}
    assert out["ok"] is True
    for name in ("depth_resolution", "depth_fps", "rgb_depth_sync", "depth_accuracy_50cm",
                 "depth_completeness_face", "depth_completeness_eyes_nose_mouth", "exposure_response_20",
                 "exposure_response_300", "exposure_response_6000"):
        assert checks[name]["result"] == "PASS", checks[name]
    assert checks["depth_accuracy_50cm"]["clause"] == "7.5 h"
    # No lux calibration was given: doctor says illuminance is not judged on this camera.
    assert checks["lux_calibration"]["result"] == "NOT RUN"
    assert "exposure judged from the image" in checks["lux_calibration"]["value"]


def test_doctor_with_a_lux_calibration_judges_illuminance(capsys):
    from agent.quality.gate import SIM_LUX_K
    assert main(["doctor", "sim://", "--frames", "6", "--lux-k", str(SIM_LUX_K), "--json"]) == 0
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["lux_calibration"]["result"] == "PASS"
    for lux in (20, 300, 6000):
        assert checks[f"lux_response_{lux}"]["result"] == "PASS", checks[f"lux_response_{lux}"]


def test_doctor_fails_a_camera_too_slow_for_the_spec(capsys):
    assert main(["doctor", "sim://?fps=8", "--frames", "6", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    checks = {c["check"]: c for c in out["checks"]}
    assert checks["depth_fps"]["result"] == "FAIL"


def test_sample_config_loads_with_quality_section():
    from pathlib import Path
    s = load(Path(__file__).resolve().parents[2] / "capture-agent.sample.toml")
    assert s.quality.channel == "kiosk"
    assert s.quality.thresholds_for("counter").ipd_min_px == 90
