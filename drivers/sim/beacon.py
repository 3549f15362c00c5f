"""The sixteenth family's two lights: a failing fluorescent tube in a lobby, and an amber warning beacon
at a walk-up ATM at night.

``FailingTube`` ("failing_tube"): a branch lobby or ATM vestibule lit by fluorescent troffers (T8 tubes,
3000-4000 K, 100-800 lux on the face with every tube lit, 0.012 of 850 nm per lux as "fluorescent",
scene.LIGHT_NIR_SHARE) on preheat ("switch-start") magnetic ballasts, one of whose tubes, near the kiosk,
is at the end of its life: its emission mix is spent at one end, so it lights, drops out, and the glow
starter re-strikes it, over and over, until someone replaces it (the familiar blinking tube; recalled
from lamp makers' troubleshooting notes, not read here). Modelled as a random telegraph: lit spells
log-uniform in 0.05-3 s (a failed strike's brief flash to a spell that holds for seconds), dark spells
log-uniform in 0.3-2 s (the glow starter's bimetal heating and closing again, recalled as ~0.5-2 s;
shorter when it re-strikes at once), drawn independently per session (``TUBE_ON_S``, ``TUBE_OFF_S``), so
the steps come at no period and between or inside any frames' exposures: unlike every earlier family's
light, whose change is periodic (mains flicker, PWM, a fan), steady, or a smooth sweep. The failing tube
gives ``share`` (0.25-0.60) of the face's light (the nearest fixture; the other tubes and the room's
diffuse light the rest). Every tube on a magnetic ballast also flickers at twice the mains frequency with
20-40 % percent flicker (the ninth family's recalled surveys for magnetic-ballast fluorescent lamps,
night.py): the whole light follows 1 + m cos(2 pi f t + phi) while lit. ``lux`` is the face's light with
every tube lit; a frame's factor is the mean over its exposure of
(1 - share) (1 + m cos) + share on(t) (1 + m cos), in closed form per lit spell (``factor``); colour and
850 nm alike (one lamp type), the projector's dots and the kiosk screen's light not. The schedule is drawn
for ``TUBE_HORIZON_S`` (900 s) and repeats after it. The tube's cathode glow while the starter heats, its
own dark end, and a rolling-shutter colour image's rows seeing a step at different times (the Gemini 330's
colour module rolls: each frame takes the step whole, at the frame's exposure) are not modelled.

``Beacon`` ("beacon"): a walk-up ATM or a kiosk in a glazed lobby at night (15-80 lux on the face from
LED street lights and the ATM's fascia, 3000-4500 K, 0.003 of 850 nm per lux as "street_led") beside
which a vehicle with an amber warning beacon stands or works (a tow truck, a gritter, a security patrol,
road works, a cash-in-transit van's hazard beacon; recalled as common at street ATMs, no survey read).
Two kinds, drawn per session (half each):

- a rotating halogen beacon: a lamp and a turning parabolic mirror under an amber dome, one flash a
  turn at 2-4 Hz (ECE R65's flash frequency for warning lamps, recalled), each flash the beam's width
  (10-25° at half maximum, recalled for rotating-mirror beacons) crossing the face: 7-35 ms, taken as a
  flat-topped pulse of that length (the beam's profile not modelled). The amber dome takes out the blue
  and green of the halogen lamp and passes its near infrared: 0.9 of 850 nm per lux of amber light (a
  3000 K body's 0.35 per lux, with the dome passing ~0.35-0.4 of the lamp's lumens and all of its 850 nm,
  recalled);
- an LED beacon: amber AlInGaP LEDs flashed in bursts of 1-3 flashes of 30-80 ms, 40-100 ms apart, a
  burst every 0.5-1.0 s (the single, double and triple flash patterns such beacons offer, recalled from
  makers' catalogues); no near infrared (0.0: a 590 nm LED's emission ends below 650 nm).

The beacon's peak light on the face is log-uniform 10-120 lux (an effective intensity of ~250-3000 cd at
5-10 m, recalled), amber (590 nm dominant, ``AMBER_BGR`` the linear sRGB of that wavelength normalised to
green, recalled), on top of the street's steady light: each flash changes the face's colour, not only its
level (every earlier family's flicker changes the level at the light's own colour). The beacon runs free
of the camera's clock. Each frame collects the flashes' share of its exposure (``factor``: the covered
fraction of [t0, t0 + exposure], in closed form from the pattern's cumulative on-time). The light reaches
the face with the room lamp's shading (its direction from the street is not modelled) and, in the IR of a
camera without an IR-pass filter, through the room's band gains (leak.py; the amber's own band shares are
not modelled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .night import Flicker

# --- The failing tube -------------------------------------------------------------------------------------
TUBE_SHARE = (0.25, 0.60)           # the failing tube's share of the face's light (every tube lit)
TUBE_ON_S = (0.05, 3.0)             # a lit spell, log-uniform
TUBE_OFF_S = (0.3, 2.0)             # a dark spell (the starter re-striking), log-uniform
TUBE_RIPPLE = (0.20, 0.40)          # magnetic-ballast fluorescent percent flicker at twice the mains
TUBE_HORIZON_S = 900.0              # the drawn schedule's length; it repeats after that

# --- The beacon -------------------------------------------------------------------------------------------
BEACON_KINDS = ("rotating_halogen", "led_flash")
BEACON_PEAK_LUX = (10.0, 120.0)     # the flash's light on the face, log-uniform
ROTATING_HZ = (2.0, 4.0)            # one flash a turn
ROTATING_BEAM_DEG = (10.0, 25.0)    # the beam's width at half maximum
LED_FLASHES = (1, 3)                # flashes a burst
LED_FLASH_S = (0.030, 0.080)
LED_GAP_S = (0.040, 0.100)
LED_BURST_PERIOD_S = (0.5, 1.0)
BEACON_NIR = {"rotating_halogen": 0.9, "led_flash": 0.0}   # 850 nm per lux of the amber light
AMBER_BGR = np.array([0.0, 1.0, 2.6], np.float32)          # 590 nm, linear sRGB, green = 1 (recalled)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, size: int | None = None) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


@dataclass(frozen=True)
class FailingTube:
    """A failing fluorescent tube's lit spells over a magnetic ballast's ripple (module docstring)."""

    share: float
    edges: np.ndarray         # lit spells [edges[2i], edges[2i + 1]) over [0, TUBE_HORIZON_S)
    ripple: Flicker           # the whole room's light at twice the mains, while lit

    @classmethod
    def draw(cls, rng: np.random.Generator) -> FailingTube:
        share = float(rng.uniform(*TUBE_SHARE))
        f = Flicker.draw(rng)
        ripple = Flicker(f.hz, float(rng.uniform(*TUBE_RIPPLE)), f.phase)
        n = int(TUBE_HORIZON_S / 0.2) + 8        # more spells than the horizon can hold
        spells = np.empty(2 * n)
        spells[0::2] = _log_uniform(rng, *TUBE_ON_S, size=n)
        spells[1::2] = _log_uniform(rng, *TUBE_OFF_S, size=n)
        start = float(rng.uniform(0.0, spells[0] + spells[1]))   # the session starts anywhere in a cycle
        edges = np.concatenate([[0.0], np.cumsum(spells)]) - start   # even index: a lit spell starts
        first = int(np.searchsorted(edges, 0.0, side="right"))
        edges = edges[first:]
        edges = edges[edges < TUBE_HORIZON_S]
        if first % 2 == 1:                        # t = 0 falls inside a lit spell: lit from 0
            edges = np.concatenate([[0.0], edges])
        if edges.size % 2:                        # the last lit spell ends at the horizon
            edges = np.concatenate([edges, [TUBE_HORIZON_S]])
        assert edges.size >= 2 and bool(np.all(np.diff(edges) > 0))
        return cls(share, edges.astype(np.float64), ripple)

    def lit(self, t_s: float) -> bool:
        """Whether the tube is lit at ``t_s``."""
        return bool(np.searchsorted(self.edges, t_s % TUBE_HORIZON_S, side="right") % 2 == 1)

    def _ripple_integral(self, a: float, b: float) -> float:
        """The integral of 1 + m cos(w t + phi) over [a, b]."""
        w = 2 * np.pi * self.ripple.hz
        return (b - a) + self.ripple.depth * float(np.sin(w * b + self.ripple.phase)
                                                   - np.sin(w * a + self.ripple.phase)) / w

    def _lit_integral(self, a: float, b: float) -> float:
        """The integral of on(t) (1 + m cos(w t + phi)) over [a, b] (b - a well under the horizon)."""
        base = np.floor(a / TUBE_HORIZON_S) * TUBE_HORIZON_S
        total = 0.0
        for k in (0, 1):                          # an exposure may straddle the schedule's repeat
            off = base + k * TUBE_HORIZON_S
            lo, hi = a - off, b - off
            if hi <= 0 or lo >= TUBE_HORIZON_S:
                continue
            i = int(np.searchsorted(self.edges, lo, side="right"))
            i -= i % 2                            # the lit spell containing or following lo
            j = int(np.searchsorted(self.edges, hi, side="left"))
            for s in range(i, min(j + 1, self.edges.size), 2):
                s0, s1 = max(self.edges[s], lo), min(self.edges[s + 1], hi)
                if s1 > s0:
                    total += self._ripple_integral(s0 + off, s1 + off)
        return total

    def factor(self, t0_s: float, exposure_s: float) -> float:
        """The light's mean over [t0, t0 + exposure] relative to the light with every tube lit."""
        if exposure_s < 1e-6:
            on = 1.0 if self.lit(t0_s) else 0.0
            return (1.0 - self.share + self.share * on) * self.ripple.factor(t0_s, 0.0)
        a, b = t0_s, t0_s + exposure_s
        return ((1.0 - self.share) * self._ripple_integral(a, b) + self.share * self._lit_integral(a, b)) / exposure_s


@dataclass(frozen=True)
class Beacon:
    """An amber warning beacon's flashes (module docstring): a pattern of flat-topped pulses that repeats
    every ``period_s``, starting at ``starts_s`` (within a period) for ``length_s`` each."""

    kind: str
    peak_lux: float
    period_s: float
    starts_s: tuple[float, ...]
    length_s: tuple[float, ...]
    phase_s: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Beacon:
        kind = BEACON_KINDS[int(rng.integers(0, 2))]
        peak = float(_log_uniform(rng, *BEACON_PEAK_LUX))
        if kind == "rotating_halogen":
            hz = float(rng.uniform(*ROTATING_HZ))
            period = 1.0 / hz
            length = float(rng.uniform(*ROTATING_BEAM_DEG)) / 360.0 * period
            starts: tuple[float, ...] = (0.0,)
            lengths: tuple[float, ...] = (length,)
        else:
            n = int(rng.integers(LED_FLASHES[0], LED_FLASHES[1] + 1))
            flash, gap = float(rng.uniform(*LED_FLASH_S)), float(rng.uniform(*LED_GAP_S))
            period = float(rng.uniform(*LED_BURST_PERIOD_S))
            starts = tuple(i * (flash + gap) for i in range(n))
            lengths = (flash,) * n
        return cls(kind, peak, period, starts, lengths, float(rng.uniform(0.0, period)))

    @property
    def nir_share(self) -> float:
        return BEACON_NIR[self.kind]

    def _cumulative(self, t_s: float) -> float:
        """The flashes' on-time over [0, t] (t >= 0 after the phase)."""
        t = t_s + self.phase_s
        n, x = divmod(t, self.period_s)
        starts, lengths = np.array(self.starts_s), np.array(self.length_s)
        return float(n * lengths.sum() + np.clip(x - starts, 0.0, lengths).sum())

    def factor(self, t0_s: float, exposure_s: float) -> float:
        """The share of [t0, t0 + exposure] the beacon's flashes cover (the light on the face is
        ``peak_lux`` times it); for a zero exposure, 1 inside a flash and 0 outside."""
        if exposure_s < 1e-6:
            x = (t0_s + self.phase_s) % self.period_s
            return float(any(s <= x < s + d for s, d in zip(self.starts_s, self.length_s, strict=True)))
        return (self._cumulative(t0_s + exposure_s) - self._cumulative(t0_s)) / exposure_s

