"""The memory bench's growth fit (``bench/slope.py``): a series that steps and then stays is not
called growth, a steady climb is, and the interval widens for autocorrelated samples."""

from __future__ import annotations

import numpy as np
import pytest

from bench import slope


def test_a_climb_is_found_and_its_interval_excludes_zero():
    rng = np.random.default_rng(1)
    y = 300 + 0.5 * np.arange(60) + rng.normal(0, 1.0, 60)
    s = slope.fit(y)
    assert s.low < 0.5 < s.high
    assert s.low > 0.3 and s.high < 0.7
    assert s.bound(1000) == pytest.approx(1000 * s.high)


def test_a_flat_series_with_allocator_steps_is_zero_within_its_interval():
    rng = np.random.default_rng(2)
    # The allocator's way: a plateau that goes up 8 MiB for a while, then back, and noise.
    y = 310 + rng.normal(0, 0.5, 80)
    y[20:45] += 8
    s = slope.fit(y)
    assert s.low < 0 < s.high


def test_autocorrelated_samples_widen_the_interval_over_the_ordinary_one():
    rng = np.random.default_rng(3)
    e = np.zeros(80)
    for i in range(1, 80):                                   # AR(1), rho 0.9: steps that linger
        e[i] = 0.9 * e[i - 1] + rng.normal(0, 1.0)
    s = slope.fit(e)
    x = np.arange(80) - 39.5
    b = float(x @ (e - e.mean())) / float(x @ x)
    resid = e - e.mean() - b * x
    ols_se = np.sqrt(float(resid @ resid) / 78 / float(x @ x))
    assert (s.high - s.low) / 2 > 1.96 * ols_se               # wider than the independent-noise interval


def test_a_shrinking_series_promises_no_negative_growth():
    s = slope.fit([300.0, 299.0, 298.0, 297.0, 296.0, 295.0])
    assert s.per_session == pytest.approx(-1.0)
    assert s.bound(1000) == 0.0


@pytest.mark.parametrize("bad", [[1.0, 2.0, 3.0], [1.0, 2.0, float("nan"), 4.0, 5.0]])
def test_too_few_or_not_finite_samples_are_refused(bad):
    with pytest.raises(ValueError):
        slope.fit(bad)
