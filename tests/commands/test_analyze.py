"""`capture-agent analyze` and `pad-eval` from the command line."""

import json

import pytest

from agent.cli import main


def test_analyze_json_fields_on_the_sim(capsys):
    assert main(["analyze", "sim://?realtime=0&seed=8", "--frames", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for path in (("liveness", "verdict"), ("liveness", "score"), ("liveness", "detectors"), ("quality", "ok"),
                 ("quality", "prompts"), ("sync", "max_skew_ms"), ("timing_ms", "per_frameset")):
        d = out
        for k in path:
            d = d[k]
    assert out["liveness"]["verdict"] == "live" and out["liveness"]["challenge_used"] is True
    assert out["sync"]["max_skew_ms"] < 16.7


def test_analyze_on_a_realsense_recording_says_no_challenge(tmp_path, capsys):
    import drivers
    from drivers.realsense_record import record_camera
    path = tmp_path / "print.db3"
    cam = drivers.open("sim://?realtime=0&subject=print&seed=2")
    with cam:
        record_camera(cam, str(path), 12)
    assert main(["analyze", f"realsense+file://{path}", "--frames", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"]["recording"] is True
    assert out["liveness"]["challenge_used"] is False
    assert any("cannot obey a live challenge" in n for n in out["liveness"]["notes"])
    assert out["liveness"]["verdict"] == "attack"


@pytest.mark.slow
def test_pad_eval_small_run(capsys):
    assert main(["pad-eval", "--per-species", "1", "--live", "1", "--frames", "8", "--injection", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["test"]["apcer_by_species"]) and out["test"]["counts"]["attacks"] == 7
    assert out["injection"]["all_rejected"] is True
    assert out["thresholds"]["live_min"] >= 0.5
