"""The fifteenth family's two lights: halogen downlights under a turning ceiling fan, and a walk-up ATM at
night under high-pressure sodium street lights.

``CeilingFan`` ("ceiling_fan"): a branch lit by halogen downlights (2800-3200 K, 150-800 lux on the face,
0.32 of 850 nm per lux as "halogen", scene.LIGHT_NIR_SHARE) with a ceiling fan hanging below one of them.
Each of the fan's ``blades`` (3-5) crosses the line from that lamp to the face once a turn; at 150-350
rpm the blades pass ``blades`` x rpm / 60 = 7.5-29.2 times a second: against 30 frames a second the
shadow's pulses alias, so the light on the face changes between the frames of one projector on-off pair
and within one exposure. Geometry (typical of a ceiling fan under a recessed downlight, recalled, not
read: ceilings 2.7-3.2 m, fans 0.25-0.45 m below the lamp, 1.0-1.6 m above a standing person's face,
blades 0.10-0.15 m wide crossing the lamp's line 0.35-0.60 m from the fan's axis; downlight apertures
80-200 mm): seen from a point of the face the blade is a strip of angular width w / h_bf and the lamp a
disc of angular radius (D / 2) / (h_lb + h_bf); the share of the disc the strip hides is closed form
(``covered``), so the pulse's depth and shape (a blade as wide as the lamp's disc hides all of it for an
instant; a narrower one never does) and the penumbra follow from the drawn geometry. The strip's angular
speed is omega r / h_bf; a point of the face displaced by d along the blade's motion sees the lamp
through a point of the blades' plane displaced by d h_lb / (h_lb + h_bf), so its pulses come later by
that over omega r: the shadow sweeps the face (a few per cent of a period across it) rather than
darkening it all at once. The lamp behind the fan gives ``share`` (0.25-0.60) of the face's light (the
other downlights and the room's diffuse light the rest); only that part is modulated, in colour and at
850 nm alike (one halogen lamp). Each frame integrates the pulses over its own exposure (the mean of the
hidden share over [t0, t0 + exposure], from a cumulative table of one period, ``factor``); the projector's
dots and the kiosk screen's light are not shaded. The blades' own image (above the camera's field) and
the lamp's light they reflect are not modelled.

"sodium": an outdoor wall ATM at night under high-pressure sodium street lights (15-80 lux on the face,
the envelope's low end: the brief's 10-80 minus what the gate refuses), with the ATM's own cool-white LED
fascia giving ``SODIUM_LUX_SHARE`` (0.3) of the lux. HPS lamps are ~2000-2100 K (recalled), below the
capture spec's 2300 K: the mix is drawn at 2300-2600 K (mired-weighted 0.7 x 2050 K with 0.3 x 4000 K:
~2400 K). The lamps' sodium doublet at 818.3/819.5 nm (NIST's Na I lines, recalled) reaches imagers
without an IR-pass filter; 850 nm-band irradiance per lux ~0.11 of a 3000 K black body's (recalled: an HPS
lamp radiates ~5 % of its input in 800-900 nm for ~120 lm/W, against a 3000 K body's ~8 % of its power in
that band at ~21 lm/W): 0.04 on the scale of scene.LIGHT_NIR_SHARE, x 0.7 plus the LEDs' 0.3 x 0.002:
0.029. On magnetic ballasts HPS light flickers at twice the mains frequency with a percent flicker of
~0.6-0.95 (recalled from lighting-flicker surveys, not read), ``SODIUM_FLICKER_DEPTH``; the fascia's LEDs
on DC do not: the mix's depth is 0.7 of the lamp's (night.Flicker, ``sodium_flicker``). The sodium
spectrum's colour rendering (CRI ~20-25) is not modelled: the face's colours are a black body's at the
drawn CCT.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .night import Flicker
from .optics import View

FAN_BLADES = (3, 5)
FAN_RPM = (150.0, 350.0)
FAN_SHARE = (0.25, 0.60)            # the lamp behind the fan's share of the face's light
LAMP_DIAMETER_M = (0.08, 0.20)      # a downlight's aperture
LAMP_TO_BLADES_M = (0.25, 0.45)
BLADES_TO_FACE_M = (1.0, 1.6)
BLADE_WIDTH_M = (0.10, 0.15)
CROSSING_RADIUS_M = (0.35, 0.60)    # where the lamp's line to the face crosses the blades
TABLE = 1024                        # samples of one blade period
LUT = 8192                          # a frame's light over its sweep coordinates' range

SODIUM_LUX_SHARE = 0.7              # the sodium lamps' share of the face's lux (the rest the fascia's LEDs)
SODIUM_FLICKER_DEPTH = (0.60, 0.95)  # percent flicker of HPS on a magnetic ballast


def _beyond(x: np.ndarray) -> np.ndarray:
    """The share of a unit disc with coordinate > x along one axis."""
    c = np.clip(x, -1.0, 1.0)
    return (np.arccos(c) - c * np.sqrt(1.0 - c * c)) / np.pi


def covered(offset: np.ndarray, half_width: float) -> np.ndarray:
    """The share of a unit disc a strip of ``half_width`` (in disc radii) centred at ``offset`` hides."""
    return _beyond(offset - half_width) - _beyond(offset + half_width)


@dataclass(frozen=True)
class CeilingFan:
    blades: int
    rpm: float
    share: float
    lamp_m: float
    lamp_to_blades_m: float
    blades_to_face_m: float
    blade_m: float
    radius_m: float
    azimuth: float              # the blades' motion at the lamp's line, in the camera's horizontal plane
    distance_m: float           # the face's distance (the sweep's coordinate is taken from the face's centre)
    phase: float

    @classmethod
    def draw(cls, rng: np.random.Generator, distance_m: float) -> CeilingFan:
        return cls(int(rng.integers(FAN_BLADES[0], FAN_BLADES[1] + 1)), float(rng.uniform(*FAN_RPM)),
                   float(rng.uniform(*FAN_SHARE)), float(rng.uniform(*LAMP_DIAMETER_M)),
                   float(rng.uniform(*LAMP_TO_BLADES_M)), float(rng.uniform(*BLADES_TO_FACE_M)),
                   float(rng.uniform(*BLADE_WIDTH_M)), float(rng.uniform(*CROSSING_RADIUS_M)),
                   float(rng.uniform(0.0, 2 * np.pi)), distance_m, float(rng.uniform(0.0, 1.0)))

    @property
    def blade_hz(self) -> float:
        return self.blades * self.rpm / 60.0

    @property
    def omega(self) -> float:
        return 2 * np.pi * self.rpm / 60.0

    def occlusion(self, phase: np.ndarray) -> np.ndarray:
        """The share of the lamp a blade hides, at ``phase`` (0..1) of the blade period, seen from the
        face (the blade's strip centred on the lamp at phase 0.5)."""
        h_bf, lamp_r = self.blades_to_face_m, self.lamp_m / 2 / (self.lamp_to_blades_m + self.blades_to_face_m)
        u = (np.asarray(phase) - 0.5) * 2 * np.pi * self.radius_m / (self.blades * h_bf)     # radians
        return covered(u / lamp_r, self.blade_m / h_bf / 2 / lamp_r)

    @cached_property
    def _cumulative(self) -> np.ndarray:
        o = self.occlusion((np.arange(TABLE) + 0.5) / TABLE)
        return np.concatenate([[0.0], np.cumsum(o) / TABLE])

    def _integral(self, x: np.ndarray) -> np.ndarray:
        """The occlusion integrated over phase from 0 to ``x`` (periods)."""
        c = self._cumulative
        whole = np.floor(x)
        return whole * c[-1] + np.interp(x - whole, np.linspace(0.0, 1.0, TABLE + 1), c)

    @cached_property
    def _gains(self) -> dict[int, tuple[View, np.ndarray, float]]:
        return {}

    def sweep(self, view: View, z: np.ndarray) -> np.ndarray:
        """(H, W) float32: each pixel's surface along the blades' motion (metres from the face's centre),
        as ``street.PassingShadows.shadow`` takes its band's coordinate (the view's part kept per view)."""
        hit = self._gains.get(id(view))
        if hit is None or hit[0] is not view:
            n = np.array([np.cos(self.azimuth), 0.0, np.sin(self.azimuth)])
            nv = view.depth_to_view.R @ n
            rays = view.rays
            g = (nv[0] * rays[..., 0] + nv[1] * rays[..., 1] + nv[2]).astype(np.float32)
            hit = (view, g, float(n[2]) * self.distance_m + float(nv @ view.depth_to_view.t))
            self._gains[id(view)] = hit
        _, g, offset = hit
        zf = np.where(np.isfinite(z), z, np.float32(10.0)).astype(np.float32, copy=False)
        return zf * g - np.float32(offset)

    def factor(self, sweep: np.ndarray, t0_s: float, exposure_s: float) -> np.ndarray:
        """(H, W) float32: the room's light over an exposure [t0, t0 + exposure] relative to the unshaded
        light, at each pixel's ``sweep`` coordinate (a large map through a table over its range: the light
        differs from the exact light by less than 0.2 % of it, tests/drivers/sim/test_fifteenth_family.py)."""
        sweep = np.asarray(sweep, np.float32)
        if sweep.size <= LUT:
            return self._factor(sweep, t0_s, exposure_s)
        lo, hi = float(sweep.min()), float(sweep.max())
        if hi - lo < 1e-9:
            return np.full(sweep.shape, self._factor(np.array([lo]), t0_s, exposure_s)[0], np.float32)
        lut = self._factor(np.linspace(lo, hi, LUT), t0_s, exposure_s)
        idx = ((sweep - np.float32(lo)) * np.float32((LUT - 1) / (hi - lo)) + np.float32(0.5)).astype(np.intp)
        return lut[idx]

    def _factor(self, sweep: np.ndarray, t0_s: float, exposure_s: float) -> np.ndarray:
        period = 1.0 / self.blade_hz
        lag = sweep * (self.lamp_to_blades_m / (self.lamp_to_blades_m + self.blades_to_face_m)) \
            / (self.omega * self.radius_m) / period
        a = (t0_s / period + self.phase) - lag
        span = exposure_s / period
        if span < 1e-4:
            hidden = self.occlusion(a - np.floor(a))
        else:
            hidden = (self._integral(a + span) - self._integral(a)) / span
        return (1.0 - self.share * hidden).astype(np.float32)

def sodium_flicker(rng: np.random.Generator) -> Flicker:
    """The sodium street lights' flicker at twice the mains frequency, the fascia's steady LEDs mixed in."""
    f = Flicker.draw(rng)
    return Flicker(f.hz, SODIUM_LUX_SHARE * float(rng.uniform(*SODIUM_FLICKER_DEPTH)), f.phase)
