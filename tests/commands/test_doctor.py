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


def test_the_exposure_rows_wait_for_the_camera_to_settle():
    # A camera applies a new metering region a few frames late (4 framesets on the simulator), then
    # corrects a share of its error per frame: the rows judge the face once it is usable for 3
    # framesets or the exposure x gain has stopped moving for 8 (at its limit), not after 6 framesets.
    from types import SimpleNamespace

    from agent.commands.doctor import LUX_MAX_FRAMESETS, _exposure_settled

    def run(oks: list[bool], products: list[float]) -> int:
        for n in range(1, len(oks) + 1):
            if _exposure_settled([SimpleNamespace(ok=o) for o in oks[:n]], products[:n]):
                return n
        return 0

    # Fitzpatrick VI at 300 lux (the simulated D435's figures): 4 framesets still, then converging.
    still = [14633.0] * 4
    rising = [22366.0, 30760.0, 39900.0, 47700.0, 54300.0, 59000.0, 62000.0, 64000.0]
    assert run([False] * 9 + [True] * 3, still + rising) == 12
    # At 20 lux the gain reaches its limit and stays out of band: judged after 8 framesets held there.
    at_limit = [33333.0 * 16] * 8
    assert run([False] * 14, still + [33333.0 * 10, 33333.0 * 13.8] + at_limit) == 14
    # Usable from the start: judged at once.
    assert run([True] * 3, [11578.0] * 3) == 3
    # No exposure metadata: only usable framesets end the wait, within the cap.
    assert run([False] * 10, [float("nan")] * 10) == 0 and LUX_MAX_FRAMESETS >= 20
