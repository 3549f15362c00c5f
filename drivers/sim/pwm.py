"""The thirteenth family's light: LED panels dimmed by pulse-width modulation, seen by a rolling shutter.

A PWM dimmer switches the LEDs fully on and off at a fixed frequency and sets the brightness by the
share of each period they are on (the duty cycle). "When PWM dimming is used for general
illumination, the frequencies used vary between 100 Hz and 1 kHz" (P. J. Aphalo, *PWM dimming and
digital photography*, photo-spectrum.info, 2023, read session 24); a panel maker calls 300 Hz "high
quality" for filming (Pixalux, 2016, read). The light is a square wave, not the mains sine of
``night.Flicker``: nothing is lit between pulses.

A rolling-shutter colour imager (the D435i's OV2740, [DS]) starts and ends each row's exposure one
line time after the row above, so each row integrates the pulses over its own window: where the
window is shorter than the period or not a whole number of periods, rows differ and the image carries
horizontal bands that move between frames (the PWM is free-running, not locked to the frame rate)
(A. Adams, *Pulse width modulation is NOT your friend*, ProVideo Coalition, 2011; gluonfield.com,
*PWM and the rolling shutter*, 2018: read as search excerpts). The global-shutter IR imagers see the
whole frame's mean over their exposure, the same for every pixel (``factor``, as ``night.Flicker``).

Closed form. With the pulse on for ``u in [0, D)`` of each period (``u`` = (t - t_on) f mod 1), the
light's integral from the origin is ``F(t) = floor(x) D / f + min(frac(x), D) / f`` with x = (t - t_on)
f, so the mean over an exposure [t, t + e] relative to the average (D) is
``(F(t + e) - F(t)) / (e D)``: 1 for any e that is a whole number of periods, between 0 and 1/D
otherwise. Row r of H starts at ``t + (r + 0.5) / H * readout``; the readout (top row to bottom row)
is a typical 90 % of the frame time (recalled: a sensor reads out nearly the whole frame period at its
top frame rate; the OV2740's line time is not in a source reached here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PWM_HZ = (100.0, 1000.0)       # the dimmer's frequency (log-uniform): general lighting's 100 Hz - 1 kHz
PWM_DUTY = (0.25, 0.85)        # dimmed to a quarter .. nearly full (the lux is the average: D x peak)
READOUT_FRACTION = 0.9         # a rolling shutter's readout, top to bottom, as a share of the frame time


@dataclass(frozen=True)
class PwmLight:
    """A square-wave light: on for ``duty`` of each period of ``1 / hz``, its pulse starting at ``t_on_s``."""

    hz: float
    duty: float
    t_on_s: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> PwmLight:
        hz = float(np.exp(rng.uniform(np.log(PWM_HZ[0]), np.log(PWM_HZ[1]))))
        return cls(hz, float(rng.uniform(*PWM_DUTY)), float(rng.uniform(0.0, 1.0 / hz)))

    def _on_time(self, t: np.ndarray) -> np.ndarray:
        """F(t): seconds lit from the first pulse's start to ``t`` (module docstring)."""
        x = (t - self.t_on_s) * self.hz
        whole = np.floor(x)
        return (whole * self.duty + np.minimum(x - whole, self.duty)) / self.hz

    def rows(self, t0_s: float, exposure_s: float, readout_s: float, h: int) -> np.ndarray:
        """(h,) each row's light over its exposure relative to the average, the rows starting
        ``readout_s / h`` apart from ``t0_s`` (a rolling shutter)."""
        start = t0_s + (np.arange(h, dtype=np.float64) + 0.5) * (readout_s / h)
        if exposure_s <= 1e-9:
            x = (start - self.t_on_s) * self.hz
            return ((x - np.floor(x)) < self.duty).astype(np.float32) / np.float32(self.duty)
        lit = self._on_time(start + exposure_s) - self._on_time(start)
        return (lit / (exposure_s * self.duty)).astype(np.float32)

    def factor(self, t0_s: float, exposure_s: float) -> float:
        """The light's mean over an exposure [t0, t0 + exposure] relative to its average, the same for
        every pixel (a global shutter: ``night.Flicker.factor``'s contract)."""
        return float(self.rows(t0_s, exposure_s, 0.0, 1)[0])
