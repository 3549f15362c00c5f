"""The twenty-second family's lights: hard light that moves, in a mall atrium and a branch's glass front.

``gobo`` ("GoboSpot"): a kiosk in a mall atrium at the holidays (the atrium's base light 150-600 lux,
3000-4200 K, its 850 nm as "metal_halide") with a gobo projector on the gallery throwing a rotating wheel of
snowflake or star cut-outs over the floor, the kiosk, the customer and the wall behind. A gobo is an etched steel
disc in the focal plane of a spot's condenser; its image is the lamp's light through the cut-outs only, with
edges as sharp as the lens's focus (recalled: theatre and retail gobo projectors, a 575 W short-arc discharge
lamp in a moving head or a 750-1000 W halogen ellipsoidal spot, a rotator turning the wheel at 0-2 rpm on
a theatre rotator to 30 rpm on a retail "snowfall" effect). Drawn: the lamp a halogen (60 %, 3000-3300 K, 0.32
of 850 nm per lux as "halogen": Planck at 3100 K) or a short-arc discharge lamp (40 %, 5600-6500 K, 0.05 per lux:
an assumption, the arc's argon and mercury lines and continuum past 800 nm, recalled, not read); in half the
sessions a blue dichroic glass over the gobo (visible transmission B 0.85, G 0.35, R 0.05; dichroic filters are
interference stacks designed for 400-700 nm and pass most of the near infrared, recalled: 0.9 at 850 nm), so a
blue pattern with the lamp's full 850 nm. The spot's light at the face through a cut-out: 300-2500 lux
(log-uniform; a 575 W discharge spot's ~20,000 lm into a 15-25 deg beam at 6-10 m gives 2,000-6,000 lux on its
axis, a halogen's a quarter of that, recalled figures; the gobo's open area does not dim a cut-out's light).
It comes from the gallery, 20-50 deg above the face and up to 60 deg to a side; its pattern is the gobo's
image projected along the beam (parallel: the projector is 6-10 m away), so its edges lie in the world, not
in the image, as the fourteenth family's blinds' do, but move: the wheel turns at 0.05-0.5 rev/s (log-uniform,
either way) about the beam's axis, 0.3-1.2 m from the face on the wall's plane, so a cut-out's edge crosses
the face at 0.1-3.8 m/s, 3-125 mm between two frames at 30 fps. The cut-outs: a lattice of cells 0.15-0.4 m
on the wall (projected snowflakes and stars 0.1-0.35 m across), one star per cell at a jitter (a fifth of the
cells empty), 6-pointed snowflakes (their notches 0.35 of their tips' radius) or 5-pointed stars (0.45), each
turned its own way; their edges 2-6 mm wide (the lens focused on the wall 0.5-1.5 m behind the face, recalled
depth of field of a f/4 spot lens: a few mm of blur at the face), the same at every depth. The pattern's
cosine to each surface is computed on every 2nd (640 wide) or 4th (1280 wide) pixel (entrance.py's helpers);
the cut-outs' edges on every pixel.

``lightning`` ("Lightning"): a branch with a glass front on a stormy day: grey daylight through the glass
(100-800 lux, 5500-7500 K, 0.09 of 850 nm per lux as "daylight") and a thunderstorm's flashes seen through it
from one side. A cloud-to-ground flash is a sequence of return strokes: 3-5 typical, up to 20, separated by
20-120 ms (geometric mean ~60 ms); each stroke's light peaks within microseconds and decays over a few ms, with
a continuing current glowing 10-100+ ms after some strokes (recalled: Rakov and Uman, *Lightning: Physics and
Effects*, 2003, ch. 4; the flicker a person sees in a flash is its strokes). Drawn: 0-3 flashes (uniform), each at a
uniform time in its own third (half, whole) of a 10 s cycle, 1 s apart at least (a session of a few seconds
opened at any ``t0_s`` sees the cycle's), each of 2-6
strokes (uniform) 20-120 ms apart (log-uniform), each stroke an exponential decay of 2-30 ms (log-uniform:
the fast return strokes and the continuing currents' glow), the first at a peak of 2,000-40,000 lux at the face
(log-uniform: a flash 0.5-3 km away lights the sky and the street, and the branch through its glass, at
hundreds to a few thousand lux over a frame, recalled orders of magnitude), each later stroke at 0.3-1.0 of it.
A frame takes the strokes' mean over a 33 ms exposure, so a stroke lights a frame or two. Lightning's light is
a line spectrum (N II, O I, N I, H-alpha) on a continuum; its strongest near-infrared lines are O I 777 nm and
844.6 nm and N I 818-821 nm and 859-871 nm (recalled: Orville's lightning spectra, 1968; Walker and Christian,
2017), inside the 850 nm imagers' pass band: 0.25 of 850 nm per lux (an assumption, between daylight's 0.09 and
halogen's 0.32), its colour bluish-white (6500-7500 K). It comes through the glass front, 40-100 deg to a side
and 0-30 deg up (the sky over the street); 0.1-0.3 of it reaches every surface (the room lit by the sky's
flash). Its geometry on every 2nd or 4th pixel as the gobo's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bystander import lit_share
from .entrance import _add_light, _log_uniform
from .lobby import side_direction
from .optics import View
from .render import ViewMaps
from .sensor import illuminant_bgr

# --- The gobo projector ----------------------------------------------------------------------------------------
GOBO_LUX = (300.0, 2500.0)
HALOGEN_SHARE = 0.6                  # of gobo projectors: a halogen lamp (else a short-arc discharge lamp)
HALOGEN_CCT = (3000.0, 3300.0)
HALOGEN_NIR_SHARE = 0.32             # scene.LIGHT_NIR_SHARE["halogen"]
DISCHARGE_CCT = (5600.0, 6500.0)
DISCHARGE_NIR_SHARE = 0.05           # assumed (module docstring)
DICHROIC_SHARE = 0.5                 # of gobos: a blue dichroic glass over the pattern
DICHROIC_BGR = (0.85, 0.35, 0.05)    # its visible transmission, B, G, R
DICHROIC_NIR = 0.9                   # its 850 nm transmission
GOBO_AZIMUTH_DEG = (0.0, 60.0)       # off the line to the camera, either side
GOBO_ELEVATION_DEG = (20.0, 50.0)    # from the gallery
GOBO_REV_S = (0.05, 0.5)             # the wheel's turns per second (log-uniform, either way)
GOBO_AXIS_M = (0.3, 1.2)             # the beam's axis from the face, on the wall's plane
GOBO_CELL_M = (0.15, 0.40)           # the cut-outs' lattice on the wall
GOBO_STAR_RADIUS = (0.30, 0.45)      # a star's tips' radius x its cell
GOBO_EMPTY = 0.2                     # of cells without a cut-out
GOBO_EDGE_M = (0.002, 0.006)         # the cut-outs' edges at the face (the lens's focus)
GOBO_SHAPES = ((6, 0.35), (5, 0.45))  # (points, notch radius x tip radius): a snowflake, a star
FACE_AT = (0.0, 0.0, 0.45)           # where the face is (depth camera's frame): the pattern's origin

# --- The storm -------------------------------------------------------------------------------------------------
LIGHTNING_CYCLE_S = 10.0
LIGHTNING_FLASHES = (0, 3)           # per cycle, inclusive
FLASH_SPAN_S = 1.0                   # a flash's strokes and glow (5 x 120 ms + decay) within this
LIGHTNING_STROKES = (2, 6)           # per flash, inclusive
STROKE_GAP_S = (0.020, 0.120)
STROKE_DECAY_S = (0.002, 0.030)
LIGHTNING_PEAK_LUX = (2000.0, 40000.0)
LATER_STROKE = (0.3, 1.0)            # a later stroke's peak x the first's
LIGHTNING_CCT = (6500.0, 7500.0)
LIGHTNING_NIR_SHARE = 0.25           # assumed (module docstring)
LIGHTNING_AZIMUTH_DEG = (40.0, 100.0)
LIGHTNING_ELEVATION_DEG = (0.0, 30.0)
LIGHTNING_DIFFUSE = (0.1, 0.3)
FRAME_S = 1.0 / 30.0


def beam_axes(view: View, axes, origin) -> list[tuple[np.ndarray, float]]:
    """Per axis ``e`` (unit, depth camera's frame): (g, c) with ``z * g - c`` each pixel's point's coordinate along
    ``e`` from ``origin`` (m), ``z`` the view's depth (the view's rays and its pose from the depth camera)."""
    R, T = view.depth_to_view.R, view.depth_to_view.t
    rays = view.rays
    per = []
    for e in axes:
        ev = R @ e
        per.append(((ev[0] * rays[..., 0] + ev[1] * rays[..., 1] + ev[2]).astype(np.float32),
                    float(ev @ T) + float(e @ np.asarray(origin))))
    return per


GOBO_TILE_BITS = 6
GOBO_TILE = 1 << GOBO_TILE_BITS      # the cut-outs' draws repeat every 64 cells (10-26 m: past any wall here)


@dataclass(frozen=True)
class GoboSpot:
    """A rotating gobo's snowflakes or stars swept over the face and the wall (module docstring)."""

    direction: tuple[float, float, float]   # from the face to the projector, depth camera's frame
    lux: float                              # through a cut-out, at normal incidence
    cct: float
    nir_share: float                        # of the lamp's 850 nm per lux
    tint: tuple[float, float, float]        # the glass over the gobo, visible B, G, R (1, 1, 1: none)
    tint_nir: float
    rev_s: float                            # the wheel's turns per second, signed
    phase: float                            # its angle at scene time 0 (rad)
    axis: tuple[float, float]               # the beam's axis on the pattern's plane, from the face (m)
    cell_m: float
    star_radius: float                      # x cell
    points: int
    notch: float
    edge_m: float
    seed: int
    # Per view: each pixel's pattern coordinates per metre of z and their offsets (computed once per view), and
    # the last light computed (the IR frame and the leak's visible light read the same depth view at one t);
    # "cells": each lattice cell's draws.
    _rays: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> GoboSpot:
        d = side_direction(rng, GOBO_AZIMUTH_DEG, GOBO_ELEVATION_DEG)
        lux = _log_uniform(rng, *GOBO_LUX)
        halogen = bool(rng.random() < HALOGEN_SHARE)
        cct = float(rng.uniform(*(HALOGEN_CCT if halogen else DISCHARGE_CCT)))
        share = HALOGEN_NIR_SHARE if halogen else DISCHARGE_NIR_SHARE
        dichroic = bool(rng.random() < DICHROIC_SHARE)
        tint, tint_nir = (DICHROIC_BGR, DICHROIC_NIR) if dichroic else ((1.0, 1.0, 1.0), 1.0)
        rev = _log_uniform(rng, *GOBO_REV_S) * float(rng.choice([-1.0, 1.0]))
        phase = float(rng.uniform(0.0, 2.0 * np.pi))
        r, a = float(rng.uniform(*GOBO_AXIS_M)), float(rng.uniform(0.0, 2.0 * np.pi))
        cell = float(rng.uniform(*GOBO_CELL_M))
        radius = float(rng.uniform(*GOBO_STAR_RADIUS))
        points, notch = GOBO_SHAPES[int(rng.integers(len(GOBO_SHAPES)))]
        edge = float(rng.uniform(*GOBO_EDGE_M))
        seed = int(rng.integers(1, 2**31 - 1))
        axis = (float(r * np.cos(a)), float(r * np.sin(a)))
        return cls(d, lux, cct, share, tint, tint_nir, rev, phase, axis, cell, radius, points, notch, edge, seed)

    def basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Two unit vectors across the beam (depth camera's frame): the pattern's plane's axes."""
        d = np.asarray(self.direction, np.float64)
        e1 = np.cross(d, np.array([0.0, 1.0, 0.0]))
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(d, e1)
        return e1, e2

    def angle(self, t: float) -> float:
        """The wheel's angle (rad) at scene time ``t``."""
        return self.phase + 2.0 * np.pi * self.rev_s * t

    def plane_coords(self, view: View, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each pixel's point on the pattern's plane (m, from the face's point ``FACE_AT``), projected along the
        beam; NaN where nothing is."""
        kept = self._rays.get(id(view))
        if kept is None or kept[0] is not view:
            kept = (view, beam_axes(view, self.basis(), FACE_AT))
            self._rays[id(view)] = kept
        (g1, c1), (g2, c2) = kept[1]
        return z * g1 - np.float32(c1), z * g2 - np.float32(c2)

    def pattern(self, u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
        """(H, W) float32 0..1: the light through the gobo's cut-outs at pattern-plane points (u, v) at ``t``."""
        a = -self.angle(t)
        ca, sa = np.float32(np.cos(a)), np.float32(np.sin(a))
        du, dv = u - np.float32(self.axis[0]), v - np.float32(self.axis[1])
        x = ca * du - sa * dv
        y = sa * du + ca * dv
        ok = np.isfinite(x)
        x, y = np.where(ok, x, np.float32(0.0)), np.where(ok, y, np.float32(0.0))
        cell = np.float32(self.cell_m)
        fi, fj = np.floor(x / cell), np.floor(y / cell)
        jx, jy, turn, empty = self._cells()
        k = ((fi.astype(np.int32) & (GOBO_TILE - 1)) << GOBO_TILE_BITS) | (fj.astype(np.int32) & (GOBO_TILE - 1))
        jmax = np.float32((0.5 - self.star_radius) * self.cell_m)
        px = x - ((fi + np.float32(0.5)) * cell + np.take(jx, k) * jmax)
        py = y - ((fj + np.float32(0.5)) * cell + np.take(jy, k) * jmax)
        phi = np.arctan2(py, px) + np.take(turn, k)
        frac = phi * np.float32(self.points / (2 * np.pi))
        tip = np.abs(frac - np.floor(frac) - np.float32(0.5)) * np.float32(2.0)   # 1 at a tip, 0 at a notch
        notch = np.float32(self.notch)
        radius = np.float32(self.star_radius * self.cell_m) * (notch + (np.float32(1.0) - notch) * tip)
        inside = np.clip((radius - np.hypot(px, py)) / np.float32(self.edge_m) + np.float32(0.5), 0.0, 1.0)
        inside *= np.take(empty, k)
        inside *= ok
        return inside

    def _cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each lattice cell's (x, y jitter -1..1, the star's turn (rad), 1 with a cut-out else 0), flattened
        ``GOBO_TILE`` x ``GOBO_TILE``, drawn from ``seed``."""
        kept = self._rays.get("cells")
        if kept is None:
            r = np.random.default_rng(self.seed).random((4, GOBO_TILE * GOBO_TILE))
            kept = ((2 * r[0] - 1).astype(np.float32), (2 * r[1] - 1).astype(np.float32),
                    (2 * np.pi * r[2]).astype(np.float32), (r[3] >= GOBO_EMPTY).astype(np.float32))
            self._rays["cells"] = kept
        return kept

    def light(self, view: View, z: np.ndarray, t: float) -> np.ndarray:
        """(H, W) float32: the spot's light on each pixel at ``t``, x ``lux`` (the cut-outs x the cosine)."""
        last = self._rays.get(("light", id(view)))
        if last is not None and last[0] is view and last[1] is z and last[2] == t:
            return last[3]
        u, v = self.plane_coords(view, z)
        light = self.pattern(u, v, t) * lit_share(view, z, self.direction, 0.0)
        self._rays[("light", id(view))] = (view, z, t, light)
        return light

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the gobo's pattern at ``t``."""
        bgr = (self.lux * illuminant_bgr(self.cct) * np.asarray(self.tint)).astype(np.float32)
        return _add_light(irr, maps, self.light(view, maps.z, t), bgr)

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the gobo's 850 nm at ``t`` (the lamp's, through the glass's)."""
        e = np.float32(self.lux * self.nir_share * self.tint_nir)
        return (signal + self.light(view, maps.z, t) * e * maps.nir * (1.0 - maps.specular)).astype(np.float32)


@dataclass(frozen=True)
class Lightning:
    """A storm's flashes through the branch's glass front, each a few return strokes (module docstring)."""

    direction: tuple[float, float, float]   # from the face to the glass front, depth camera's frame
    cct: float
    diffuse: float
    # Each flash's strokes: (start in the cycle (s), peak lux, decay (s)), in order; the flashes in order.
    flash_strokes: tuple[tuple[tuple[float, float, float], ...], ...]

    @property
    def flashes(self) -> int:
        return len(self.flash_strokes)

    @property
    def strokes(self) -> tuple[tuple[float, float, float], ...]:
        return tuple(st for flash in self.flash_strokes for st in flash)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Lightning:
        d = side_direction(rng, LIGHTNING_AZIMUTH_DEG, LIGHTNING_ELEVATION_DEG)
        cct = float(rng.uniform(*LIGHTNING_CCT))
        diffuse = float(rng.uniform(*LIGHTNING_DIFFUSE))
        n = int(rng.integers(LIGHTNING_FLASHES[0], LIGHTNING_FLASHES[1] + 1))
        flashes = []
        for f in range(n):
            # One flash in each n-th of the cycle, ending a flash's span (``FLASH_SPAN_S``) before the next n-th.
            slot = LIGHTNING_CYCLE_S / n
            s = float(rng.uniform(f * slot, (f + 1) * slot - FLASH_SPAN_S))
            peak = _log_uniform(rng, *LIGHTNING_PEAK_LUX)
            k = int(rng.integers(LIGHTNING_STROKES[0], LIGHTNING_STROKES[1] + 1))
            strokes = []
            for m in range(k):
                if m > 0:
                    s += _log_uniform(rng, *STROKE_GAP_S)
                level = peak if m == 0 else peak * float(rng.uniform(*LATER_STROKE))
                strokes.append((s, level, _log_uniform(rng, *STROKE_DECAY_S)))
            flashes.append(tuple(strokes))
        return cls(d, cct, diffuse, tuple(flashes))

    def lux(self, t0: float, t1: float) -> float:
        """The flashes' mean illuminance (lux, at normal incidence) over the exposure ``t0``..``t1`` (scene time;
        the cycle's strokes repeat every ``LIGHTNING_CYCLE_S``)."""
        span = max(t1 - t0, 1e-9)
        base = np.floor(t0 / LIGHTNING_CYCLE_S) * LIGHTNING_CYCLE_S
        total = 0.0
        for k in (-1.0, 0.0, 1.0):
            for s, peak, tau in self.strokes:
                s = s + base + k * LIGHTNING_CYCLE_S
                a, b = max(t0, s), t1
                if b <= a:
                    continue
                total += peak * tau * (np.exp(-(a - s) / tau) - np.exp(-(b - s) / tau))
        return float(total / span)

    def _lux(self, t: float) -> float:
        # A frame's colour and IR are rendered at one instant; the strokes are averaged over a 33 ms frame.
        return self.lux(t, t + FRAME_S)

    def color(self, irr: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The colour irradiance with the flashes at ``t`` (nothing between them)."""
        lux = self._lux(t)
        if lux < 1e-3:
            return irr
        bgr = (lux * illuminant_bgr(self.cct)).astype(np.float32)
        return _add_light(irr, maps, lit_share(view, maps.z, self.direction, self.diffuse), bgr)

    def ir(self, signal: np.ndarray, view: View, maps: ViewMaps, t: float) -> np.ndarray:
        """The IR light with the flashes' 850 nm lines at ``t``."""
        lux = self._lux(t)
        if lux < 1e-3:
            return signal
        share = lit_share(view, maps.z, self.direction, self.diffuse)
        return (signal + share * np.float32(lux * LIGHTNING_NIR_SHARE) * maps.nir * (1.0 - maps.specular)).astype(
            np.float32)
