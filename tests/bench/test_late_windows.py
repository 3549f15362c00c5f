"""bench.late_windows' interval of a rate (the bench itself runs the daemon: python -m bench.late_windows)."""

from __future__ import annotations

import pytest

from bench.late_windows import exact_interval


def test_the_exact_interval_of_all_and_none_seen_and_of_a_share():
    lo, hi = exact_interval(100, 100)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 100), abs=1e-9)     # (alpha/2)^(1/n) for n of n
    lo, hi = exact_interval(0, 30)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 30), abs=1e-9)
    lo, hi = exact_interval(3, 100)
    assert lo < 0.03 < hi and (round(lo, 4), round(hi, 4)) == (0.0062, 0.0852)   # a table's figures
    assert exact_interval(0, 0) == (0.0, 1.0)


def test_the_scheduler_account_covers_the_process_tree_and_the_camera_host_apart():
    # stream31: the bench's evidence of a reader starved inside its reads (the camera host's run-queue wait).
    import os
    import subprocess
    import sys

    from bench.late_windows import _descendants, autogroup_nice, sched_account
    # A child whose command line names the camera host's module, waiting on its stdin (no timing involved).
    child = subprocess.Popen([sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()",
                              "drivers.host"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        assert child.pid in _descendants(os.getpid())
        acc = sched_account(os.getpid())
        assert set(acc) == {"cpu_ms", "wait_ms", "cam_host_cpu_ms", "cam_host_wait_ms"}
        assert acc["cam_host_cpu_ms"] > 0                     # the child started Python: it ran
        assert acc["cpu_ms"] > acc["cam_host_cpu_ms"]         # and this process ran more, counted too
        assert acc["wait_ms"] >= acc["cam_host_wait_ms"] >= 0
        assert sched_account(child.pid)["cam_host_cpu_ms"] <= sched_account(os.getpid())["cam_host_cpu_ms"]
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait()
    nice = autogroup_nice(os.getpid())
    assert nice is None or -20 <= nice <= 19


def test_the_enrolment_scenes_are_the_benchs_camera_on_a_board_and_a_wall():
    # stream32: the camera's own profile (no family added: a family's camera has another IR mode, which the daemon
    # refuses at start, LIV_DOT_REFERENCE_MISMATCH), unpaced, a board at two distances then the wall.
    import urllib.parse

    from bench.late_windows import CAMERA, enrolment_scenes
    scenes = [dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(u).query)) for u in enrolment_scenes(CAMERA)]
    assert [(q["subject"], q.get("distance_mm")) for q in scenes] == [("print", "450"), ("print", "650"),
                                                                      ("none", None)]
    assert all("family" not in q and q["realtime"] == "0" and "stream" not in q for q in scenes)
    with_profile = enrolment_scenes(CAMERA + "&camera=d415&family=train")
    assert all("camera=d415" in u and "family=train" in u for u in with_profile)


def test_the_refusal_record_is_the_last_result_the_audit_log_gained(tmp_path):
    import json

    from bench.late_windows import refusal_record
    log = tmp_path / "audit.jsonl"
    assert refusal_record(log, 0) == (None, 0)                  # no log yet
    entries = [{"event": "agent_start", "data": {}}, {"event": "result", "data": {"reason": "NOT_LIVE", "n": 1}},
               {"event": "result", "data": {"reason": "NOT_LIVE", "n": 2}}]
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    got, end = refusal_record(log, 0)
    assert got == {"reason": "NOT_LIVE", "n": 2} and end == log.stat().st_size
    assert refusal_record(log, end) == (None, end)              # nothing new since
