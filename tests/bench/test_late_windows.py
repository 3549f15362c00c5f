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
