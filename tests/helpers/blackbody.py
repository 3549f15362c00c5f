"""A black body's 850 nm light per lux: the arithmetic behind the simulator's NIR scale (``drivers/sim/night.py``)
and the IR-flood prompt's threshold (``agent/session/events.py``)."""

from __future__ import annotations

import numpy as np


def nir_mw_per_lux(kelvin: float) -> float:
    """mW/m^2 of 850 nm light (a 50 nm band) per lux of a black body at ``kelvin``: Planck, the CIE photopic
    curve (its Gaussian approximation) and 683 lm/W."""
    h, c, k = 6.626e-34, 2.998e8, 1.381e-23
    lam = np.linspace(380e-9, 780e-9, 4001)

    def planck(lm):
        return 2 * h * c ** 2 / lm ** 5 / (np.exp(h * c / (lm * k * kelvin)) - 1)
    v = 1.019 * np.exp(-285.4 * (lam * 1e6 - 0.559) ** 2)
    return float(planck(850e-9) * 50e-9 / (683 * np.trapezoid(v * planck(lam), lam)) * 1e3)
