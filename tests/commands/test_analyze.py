"""`capture-agent analyze` and `pad-eval` from the command line."""

import json

import pytest

from agent.cli import main
from drivers.frame import StreamKind
from tests.helpers.recordings import record

NONCE = "5be1c0de" * 8


def test_analyze_json_fields_on_the_sim(capsys):
    # 32 framesets (the server's window): 10 hold one or two projector on-off pairs, too few for the
    # material measure to show skin (at least 3), so a person is not judged live on them.
    # A fixed nonce (the default is a fresh random one) keeps the verdict the test's, not the luck of a draw.
    assert main(["analyze", "sim://?realtime=0&seed=8", "--frames", "32", "--json", "--nonce", NONCE]) == 0
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


@pytest.mark.parametrize("query, edits, code", [
    ("subject=none&seed=3", {}, "QLT_NO_FACE"),
    ("seed=3", {"zero": frozenset({StreamKind.DEPTH})}, "QLT_NO_DEPTH"),
    ("seed=3", {"drop": frozenset({StreamKind.IR})}, "AGT_SPEC_VIOLATION"),
])
def test_bad_recordings_get_an_error_never_a_verdict(tmp_path, capsys, query, edits, code):
    # Genuine .db3 files: no face in them, all-zero depth, the IR stream missing.
    path = record(str(tmp_path / "bad.db3"), query, **edits)
    assert main(["analyze", f"realsense+file://{path}", "--frames", "10", "--json", "--in-process"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"error"} and out["error"]["code"] == code        # no report, no verdict


@pytest.mark.parametrize("realtime", [0, 1])
def test_analyze_with_a_fixed_nonce_repeats_its_verdict(capsys, realtime):
    # Paced at 30 fps in wall time or not, a command lands on the tick after the frames read before
    # it: the projector's timeline does not depend on the machine's speed.
    uri = f"sim://?realtime={realtime}&seed=12&identity=4&lux=400&yaw=6"
    runs = []
    for _ in range(2):
        assert main(["analyze", uri, "--frames", "12", "--json", "--in-process", "--nonce", "ab" * 16]) == 0
        out = json.loads(capsys.readouterr().out)["liveness"]
        runs.append((out["verdict"], out["score"], out["detectors"], out["frame_digests"]))
    assert runs[0] == runs[1]


def test_a_d455_session_at_half_a_metre_is_not_asked_to_move_closer(capsys):
    # At 0.5 m the D455's wide colour lens gives ~48 px between the eyes at 640x480 (< 60, §7.4):
    # the simulated D455 streams 1280x720 colour, as the RealSense driver chooses, and the session
    # completes its quality phase; the same session forced to 640x480 is asked to move closer.
    uri = "sim://?realtime=0&camera=d455&subject=live&distance_mm=500&ipd_mm=63&seed=3"
    assert main(["analyze", uri, "--frames", "16", "--json", "--in-process", "--nonce", NONCE]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["quality_phase"]["complete"] is True and out["quality_phase"]["reason"] is None
    assert "MOVE_CLOSER" not in out["quality"]["prompts"] and out["quality"]["metrics"]["ipd_px"] >= 60
    assert out["liveness"]["verdict"] == "live"
    main(["analyze", uri + "&color_mode=640x480@30", "--frames", "16", "--json", "--in-process", "--nonce", NONCE])
    small = json.loads(capsys.readouterr().out)
    assert small["quality_phase"]["reason"] == "MOVE_CLOSER" and small["quality"]["metrics"]["ipd_px"] < 60
