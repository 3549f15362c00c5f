"""Sunflecks on the face, and an injector that adds them on purpose (issue 14, docs/liveness.md,
*Sunflecks*): the flicker rule (``agent.liveness.challenge.explain_flicker``) against windows built
cell by cell, colour AND the registered infrared, as the judge reads them (4x4 cells).

    python -m bench.flicker_injector N [FRAMES] [GAIN_OVER_NOISE]

Per trial a fresh nonce (its screen sequence and projector schedule) and one of these streams, each
verified as the terminal does (``verify`` on the face's light and the dot energies, then
``explain_flicker`` on the cells):

* ``genuine+flecks`` — a camera that sees the screen, under sunflecks: each cell's colour is its albedo
  times (shade + fleck x the sun's colour + the screen's colour), its infrared its NIR albedo times
  (shade + fleck x the sun's NIR + the projector when lit); the flecks weak (0.1-0.6 x the shade) or
  strong (3-15 x); the fleck field is patchy (a few drifting cosines over the cells, thresholded
  softly, as ``drivers/sim/lobby.py``) and flickers at 0.3-3 Hz;
  the dot energy is the dots' when lit plus the ambient infrared's texture (in proportion to it);
* ``blind+flecks`` — another nonce's sequence (the injector does not see the screen), obeying the
  projector, with flecks added consistently in colour and infrared (the same field, the sun's colour
  and NIR): the injector's best reading of the physics;
* ``still+flecks`` — no response to any screen (a still face or a photo) under the same flecks;
* ``blind+ir_only`` — the blind stream with flicker in its infrared only (its colour unchanged);
* ``blind+own_edges`` — the injector's infrared follows its own colour's steps (so that taking the
  infrared out takes its own wrong edges out);
* ``blind+rich_ir`` — every cell's infrared an independent random flicker, the colour the blind stream
  plus the sun's colour times each cell's flicker (the most freedom a per-cell fit could use);
* ``replay+flecks`` — a camera's genuine response to ANOTHER nonce (screen and projector alike: a
  replay), flecks as genuine;
* ``grey+own_ir`` — no answer to any screen, but the injector's own brightness steps (every two frames a
  new level, along the sun's positive colour), its infrared following them cell by cell: the flicker
  rule's model exactly, built on purpose (review23: it takes the steps out and leaves a still face, not
  measurable, what a still face always was);
* ``genuine+foliage``, ``blind+foliage`` — ``genuine+flecks`` and ``blind+flecks`` under a canopy whose
  shade is rich in 850 nm (leaves pass and reflect it): the flecks' infrared over the shade's a third of
  their colour's over the shade's, so each cell's colour gain on its infrared depends on how much of the
  window the flecks cover it (fleck26: the gains fitted cell by cell, ``FLICKER_CELL_GAINS``);
* ``blind+ir_holes`` — ``blind+flecks`` with the infrared box empty (no depth registered: NaN cells, as
  ``ir_grid`` reads them) on every frame but a run of five (review23: enough pairs for the fit, too few
  faces left once the correction is applied).

Printed per stream: windows passed (must be 0 for all but genuine; the rule never passes a window),
refused as a contradiction (``attack``), not measurable, and relabelled by the flicker rule, with the
Clopper-Pearson upper 95 % of passes and of relabels.
"""

from __future__ import annotations

import sys

import numpy as np

from agent.liveness.challenge import (
    FLICKER_DETAIL,
    PROJECTOR_FLICKER_DETAIL,
    Challenge,
    ChallengeResult,
    Kind,
    explain_flicker,
    face_response,
    verify,
)
from bench.challenge_stats import clopper_pearson_upper
from bench.shadow_injector import command_line

STREAMS = ("genuine+flecks", "blind+flecks", "still+flecks", "blind+ir_only", "blind+own_edges", "blind+rich_ir",
           "replay+flecks", "grey+own_ir", "blind+ir_holes", "genuine+foliage", "blind+foliage")
CELLS = 16
SHADE = np.array([0.20, 0.17, 0.15])           # the canopy's shade on the face, linear colour, per unit albedo
SCREEN_GAIN = 0.02                             # the screen's light per channel at full drive, in the same units
FPS = 30.0


def fleck_field(frames: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, CELLS) 0..1: how far each cell is in a fleck: four cosines over the 4x4 cells (wavelength
    1.5-6 cells), each phase running at its own 0.3-3 Hz, thresholded softly to cover 10-40 % of the
    face; a cell's value is the mean over 4x4 points inside it (a fleck's edge crossing a cell)."""
    yy, xx = np.mgrid[0:16, 0:16] / 4.0                      # sub-cell points, cell units
    waves = [(2 * np.pi / rng.uniform(1.5, 6.0), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi),
              rng.uniform(0.3, 3.0) * rng.choice([-1.0, 1.0])) for _ in range(4)]
    cover = rng.uniform(0.10, 0.40)
    t = np.arange(frames) / FPS
    f = np.zeros((frames, 16, 16))
    for k, ang, ph, hz in waves:
        f += np.cos(k * (xx * np.cos(ang) + yy * np.sin(ang))[None] + ph + 2 * np.pi * hz * t[:, None, None])
    f *= np.sqrt(2.0 / len(waves))
    thr = np.quantile(f, 1 - cover)
    lit = 1 / (1 + np.exp(-(f - thr) / 0.15))
    return lit.reshape(frames, 4, 4, 4, 4).mean(axis=(2, 4)).reshape(frames, CELLS)


def _shown(x: np.ndarray, lag: int) -> np.ndarray:
    """The commanded per-frame values as the camera shows them ``lag`` frames later."""
    return np.concatenate([np.repeat(x[:1], lag, axis=0), x[:len(x) - lag]]) if lag else x


# The flecks' light over the shade's: weak (a thin canopy's scattered flecks, the screen still seen
# through them) and strong (the eleventh family's 2,000-10,000 lux in 200-1,500 lux of shade).
FLECKS = {"weak": (0.1, 0.6), "strong": (3.0, 15.0)}


def window(kind: str, ch: Challenge, rng: np.random.Generator, noise: float,
           flecks: tuple[float, float] = FLECKS["weak"]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cells (n, CELLS, 3), ir (n, CELLS), lit (n,), energies (n,)) of one stream on challenge ``ch``,
    the flecks ``flecks`` (low, high) times the shade's light, uniform."""
    n = ch.frames
    alb = np.clip(np.array([0.55, 0.40, 0.33]) * rng.uniform(0.7, 1.3, (CELLS, 1)) * rng.uniform(0.9, 1.1, (CELLS, 3)),
                  0.05, 1)
    nir = np.clip(0.6 * rng.uniform(0.7, 1.3, CELLS), 0.05, 1)
    ratio = rng.uniform(*flecks)
    sun = SHADE * ratio * np.array([1.0, 0.97, 0.9])                      # the flecks' colour light
    # NIR-rich: the shade's NIR is 1 (its unit); under foliage (``+foliage``) the shade is the richer in NIR
    # (leaves pass and reflect 850 nm), the flecks' NIR over it a third of their colour's over the shade's.
    sun_ir = ratio / 3.0 if kind.endswith("foliage") else ratio * 1.5
    proj = rng.uniform(0.3, 1.5)                                          # the dots' light on the skin
    slag, plag = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    other = Challenge.from_nonce(rng.bytes(32), n, (Kind.PROJECTOR, Kind.ILLUMINATION))
    if kind.startswith("genuine"):
        x, on = _shown(ch.colours(), slag), _shown(np.asarray(ch.schedule, float)[:, None], plag)[:, 0]
    elif kind.startswith("replay"):
        x, on = _shown(other.colours(), slag), _shown(np.asarray(other.schedule, float)[:, None], plag)[:, 0]
    elif kind.startswith(("still", "grey")):
        x, on = np.zeros((n, 3)), _shown(np.asarray(ch.schedule, float)[:, None], plag)[:, 0]
    else:       # blind to the screen, obeying the projector
        x, on = _shown(other.colours(), slag), _shown(np.asarray(ch.schedule, float)[:, None], plag)[:, 0]
    f = fleck_field(n, rng)
    f_colour, f_ir = f, f
    if kind.endswith("ir_only"):
        f_colour = np.zeros_like(f)
    elif kind.endswith("own_edges"):
        f_ir = np.repeat(x.sum(axis=1, keepdims=True) / 3, CELLS, axis=1) * rng.uniform(0.5, 1.5, CELLS)[None]
        f_colour = np.zeros_like(f)
    elif kind.endswith("rich_ir"):
        f_ir = rng.uniform(0, 1, (n, CELLS))
        f_colour = f_ir
    elif kind.endswith("own_ir"):
        f_colour = np.repeat(np.repeat(rng.uniform(0, 1, n // 2 + 1), 2)[:n, None], CELLS, axis=1)
        f_ir = f_colour * rng.uniform(0.5, 1.5, CELLS)[None]
    light = SHADE[None, None] + f_colour[..., None] * sun[None, None] + SCREEN_GAIN * x[:, None, :]
    cells = alb[None] * light + rng.normal(0, noise, (n, CELLS, 3))
    ir = nir[None] * (1.0 + f_ir * sun_ir + proj * on[:, None]) * 40.0 + rng.normal(0, 0.2, (n, CELLS))
    texture = 0.05 * np.mean(nir[None] * (1.0 + f_ir * sun_ir), axis=1) * 40.0
    energies = 4.0 * proj * on + texture + rng.normal(0, 0.05, n)
    if kind.endswith("ir_holes"):
        start = int(rng.integers(0, n - 5))
        ir[np.r_[0:start, start + 5:n]] = np.nan
    return cells, ir, on > 0.5, energies


def judge(ch: Challenge, cells: np.ndarray, ir: np.ndarray, lit: np.ndarray, energies: np.ndarray
          ) -> tuple[ChallengeResult, ChallengeResult]:
    """The window's challenges as verified before the flicker rule, and after it."""
    before = verify(ch, energies, face_response(cells))
    return before, explain_flicker(ch, before, cells, ir, lit, energies)


def run(trials: int, frames: int = 32, gain_over_noise: float = 20.0, seed: int = 23,
        flecks: tuple[float, float] = FLECKS["weak"]) -> dict[str, dict[str, int]]:
    noise = SCREEN_GAIN * 0.45 / gain_over_noise          # the screen's gain on a mean skin cell over its noise
    rng = np.random.default_rng(seed)
    keys = ("passed", "attack_before", "attack", "unmeasurable", "flicker_illumination", "flicker_projector")
    out = {k: dict.fromkeys(keys, 0) for k in STREAMS}
    for _ in range(trials):
        ch = Challenge.from_nonce(rng.bytes(32), frames, (Kind.PROJECTOR, Kind.ILLUMINATION))
        for kind in STREAMS:
            before, after = judge(ch, *window(kind, ch, rng, noise, flecks))
            c = out[kind]
            c["passed"] += after.passed
            c["attack_before"] += (not before.passed) and not before.unmeasurable
            c["attack"] += (not after.passed) and not after.unmeasurable
            c["unmeasurable"] += after.unmeasurable
            il, pr = after.get(Kind.ILLUMINATION), after.get(Kind.PROJECTOR)
            c["flicker_illumination"] += il is not None and il.detail == FLICKER_DETAIL
            c["flicker_projector"] += pr is not None and pr.detail == PROJECTOR_FLICKER_DETAIL
            assert after.passed == before.passed
    return out


def _report(trials: int, frames: int, gn: float) -> None:
    for name, flecks in FLECKS.items():
        for kind, c in run(trials, frames, gn, flecks=flecks).items():
            print(f"{name} {kind:16s} {frames} fs gain/noise {gn:g}: passed {c['passed']}/{trials} "
                  f"(upper 95 % {clopper_pearson_upper(c['passed'], trials):.4f}), attack {c['attack']} "
                  f"(before the rule {c['attack_before']}), not measurable {c['unmeasurable']}; relabelled by the "
                  f"flicker rule: illumination {c['flicker_illumination']} (upper 95 % "
                  f"{clopper_pearson_upper(c['flicker_illumination'], trials):.4f}), projector "
                  f"{c['flicker_projector']} (upper 95 % {clopper_pearson_upper(c['flicker_projector'], trials):.4f})")


def _main(argv: list[str]) -> int:
    return command_line(argv, __doc__, _report)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
