"""Auto-exposure of the IR imager, and exposure locks for both imagers.

A D4xx meters its own IR image (the whole image unless an AE region is set) and moves the exposure
toward a setpoint over a few frames. The image includes the projector's dots, so when the projector
switches off the image darkens and the auto-exposure lengthens the exposure; when it switches back
on, it shortens it again. During a projector challenge this drift is part of what the agent sees
unless it locks the exposure.

Limits: a D435's depth auto-exposure is reported not to go above its 8.5 ms default in low light,
leaving the image dark rather than raising gain (realsense-ros issue #1428), so the loop works on
the exposure alone, up to 8.5 ms (or the frame period, if shorter). The setpoint is the mean the
reference scene (300 lux, 5000 K, 0.5 m, projector on at 150 mW) shows at 8.5 ms, so that scene and
darker ones keep the exposure the simulator always used with the projector on; brighter rooms get
shorter exposures, and there the exposure chases every projector toggle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .profiles import CameraProfile

IR_AE_SETPOINT_DN = 34.4        # mean of the 8-bit IR image the AE aims for
AE_EXPOSURE_CEILING_S = 0.0085  # a D435's depth AE stays at or below its default exposure (see above)
IR_AE_RATE = 0.35               # share of the (log) error corrected per frame: converges in ~6-8 frames
IR_AE_DEAD_BAND = 0.02          # no change within ±2 % of the setpoint (no hunting on noise)
READOUT_S = 0.0015              # part of each frame period the imager needs to read out


@dataclass(frozen=True)
class ExposureLimits:
    """What the auto-exposure may use: exposure in seconds, gain as a multiplier of unity."""

    exposure_s: tuple[float, float] = (20e-6, 0.0325)
    gain: tuple[float, float] = (1.0, 15.5)

    @classmethod
    def of(cls, profile: CameraProfile) -> ExposureLimits:
        """What the auto-exposure may use on a profile: its IR auto-exposure's range up to the AE
        ceiling, at the profile's default gain (a camera that runs no IR auto-exposure holds its
        default exposure: ``CameraProfile.ir_auto_exposure_range_s``)."""
        lo, hi = profile.ir_auto_exposure_range_s
        g = profile.ir_gain_default
        return cls((lo, min(hi, max(lo, AE_EXPOSURE_CEILING_S))), (g, g))

    def for_fps(self, fps: float) -> ExposureLimits:
        """The same limits with the exposure capped by the frame period (no exposure longer than
        a frame, less its readout)."""
        cap = max(1.0 / fps - READOUT_S, self.exposure_s[0])
        return ExposureLimits((self.exposure_s[0], min(self.exposure_s[1], cap)), self.gain)


class IrAutoExposure:
    """Exposure and gain of the IR imager: a metering loop on the delivered image, or frozen."""

    def __init__(self, limits: ExposureLimits, exposure_s: float, gain: float = 1.0,
                 setpoint_dn: float = IR_AE_SETPOINT_DN, rate: float = IR_AE_RATE):
        self.limits = limits
        self.setpoint_dn = setpoint_dn
        self.rate = rate
        self.locked = False
        self.exposure_s, self.gain = 0.0, 1.0
        self._set_product(exposure_s * gain)

    @property
    def setting(self) -> tuple[float, float]:
        return self.exposure_s, self.gain

    def _set_product(self, p: float) -> None:
        # Exposure first (it adds no noise), gain only once the exposure is at its limit.
        (emin, emax), (gmin, gmax) = self.limits.exposure_s, self.limits.gain
        p = float(np.clip(p, emin * gmin, emax * gmax))
        if p <= emax * gmin:
            self.exposure_s, self.gain = max(p / gmin, emin), gmin
        else:
            self.exposure_s, self.gain = emax, p / emax

    @staticmethod
    def meter(y8: np.ndarray) -> float:
        """Mean level (DN) of an IR image, every 4th pixel: a D4xx meters the whole image unless
        an auto-exposure region of interest is set."""
        return float(y8[::4, ::4].mean())

    def update(self, y8: np.ndarray, rate: float | None = None) -> None:
        """Move toward the setpoint after one delivered frame (nothing while locked)."""
        if self.locked:
            return
        level = self.meter(y8)
        if level <= 0.5:
            self._set_product(self.exposure_s * self.gain * 4)
            return
        err = math.log(self.setpoint_dn / level)
        if abs(err) < IR_AE_DEAD_BAND:
            return
        r = self.rate if rate is None else rate
        self._set_product(self.exposure_s * self.gain * math.exp(err * r))
