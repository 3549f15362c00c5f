"""Growth per session of a memory series, with a confidence interval that survives its steps.

A process's resident memory over sessions is not independent noise around a line: the allocator
keeps memory for a while, gives it back later, grows an arena once; consecutive samples are alike.
An ordinary least-squares interval assumes independent residuals and would be far too narrow, so
the slope's standard error here is Newey-West's (heteroscedasticity- and autocorrelation-
consistent, Bartlett kernel), and the interval uses Student's t with n - 2 degrees of freedom.

Warm-up is not steady state: the first sessions load code paths, grow the allocator's pools and
fill caches that are bounded. ``fit`` is given the steady-state part only; the caller says where
the warm-up ends and reports that growth separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Slope:
    per_session: float        # MiB per session (units of the series per step)
    low: float                # 95 % confidence interval of the slope
    high: float
    n: int                    # samples fitted
    lag: int                  # Newey-West lag used

    def bound(self, sessions: int) -> float:
        """The most the series can grow over ``sessions`` more sessions at the interval's far end
        (never less than 0: a series that cannot be shown to shrink is not promised to)."""
        return max(0.0, self.high) * sessions


def newey_west_lag(n: int) -> int:
    """The usual automatic lag, floor(4 (n/100)^(2/9)), at least 1 and below n - 2."""
    return max(1, min(n - 3, int(4 * (n / 100) ** (2 / 9))))


def fit(values: list[float] | np.ndarray, level: float = 0.95) -> Slope:
    """Least-squares slope of ``values`` against their index (one per session), with its
    autocorrelation-robust confidence interval at ``level``. Needs at least 4 samples."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    if n < 4:
        raise ValueError(f"a slope needs at least 4 samples, got {n}")
    if not np.all(np.isfinite(y)):
        raise ValueError("the series has a sample that is not a finite number")
    x = np.arange(n, dtype=float)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    b = float(xc @ (y - y.mean())) / sxx
    resid = y - y.mean() - b * xc
    u = xc * resid                                  # the slope's score terms
    lag = newey_west_lag(n)
    s = float(u @ u)
    for k in range(1, lag + 1):
        s += 2 * (1 - k / (lag + 1)) * float(u[k:] @ u[:-k])
    # Small-sample correction n/(n-2), as for the ordinary interval; s >= 0 with Bartlett weights.
    se = math.sqrt(max(s, 0.0) * n / (n - 2)) / sxx
    t = float(stats.t.ppf(0.5 + level / 2, n - 2))
    return Slope(b, b - t * se, b + t * se, n, lag)
