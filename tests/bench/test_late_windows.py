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
