"""review25: attack B (an even lamp switched with the projector) where the dots' shape is all that holds
it, on a surface with an ink or paint texture of its own. The on-off difference then carries the lamp
times that texture: energy in the mid band that lowers the dots' fine/mid ratio toward skin's with
nothing moving (no light gone, no level stepped, clean noise pairs), so pairs25's checks do not see it.

* ``eyes``: a printed eye band (hard dots on the discs over the eyes, the wearer's own skin elsewhere,
  eye recess kept) with the lamp on the band only (``soft``: flat over the discs, logistic edges 6 px
  outside them; ``box``: a hard edge on the discs' border), the band's albedo the model's 5 % or a
  printed eye's coarse ink (``ink``: 30 %, sigma 4 px).
* ``mask``: a resin mask, the lamp on the whole face (attack B itself), its albedo painted (0-30 %,
  sigma 4 px); skin under the same paint without a lamp.

The frame model of tests/liveness/test_moving_light.py (its 16 DN dots, 20 DN room, ``judged`` and
``session_score``: every other cue alive, the recess 12 mm); the judge's own ``pair_light`` and
``ProjectorMeasure.pool``. Prints per case the windows scoring >= 0.5 and the readings.

* ``steady`` (texture26): the painted resin under a lamp never switched whose own pattern lies in the
  band the unlit texture is read in: what ``features.texture_out`` must not write into the difference.

* ``--dot-print`` (review26b): the resin printed with the projector's own dot pattern, aligned, blurred
  ``blur`` px (a halo round each dot, as skin's scattering makes) at relative deviation ``amp``, under attack
  B's lamp: the lamp times the print adds blurred dots where the dots are, a texture the unlit frame shows
  only at its mean, so ``features.texture_out`` cannot take it all out.

    PYTHONPATH=. nice -n 19 python -m bench.eye_lamp [--seeds 2] [--dot-print]

Numbers only, no frames written; seconds."""

from __future__ import annotations

import argparse
from functools import partial

import cv2
import numpy as np

import tests.liveness.test_moving_light as T
from agent.liveness.challenge import projector_schedule
from agent.liveness.features import ProjectorLight, pair_light
from agent.liveness.judge import _edges, _noise_pair

LIVE_MIN = 0.5
INK_SIGMA = 4.0


def band_lamp(kind: str, margin: float = 6.0, edge: float = 1.5) -> np.ndarray:
    """The lamp's shape over the eye band: 1 on the discs over the eyes, 0 on the skin's region."""
    if kind == "box":
        return T.EYES.astype(np.float32)
    yy, xx = np.mgrid[:T.SHAPE[0], :T.SHAPE[1]].astype(np.float32)
    r0, r1 = 12 - margin, T.SHAPE[0] - 12 + margin
    c0, c1 = 24 + T.SIDE - margin, 24 + 2 * T.SIDE + margin

    def s(v: np.ndarray) -> np.ndarray:
        return np.asarray(1 / (1 + np.exp(-v / edge)))
    return (s(yy - r0) * s(r1 - yy) * s(xx - c0) * s(c1 - xx)).astype(np.float32)


def ink(amp: float, seed: int) -> np.ndarray:
    """A coarse ink or paint texture of relative deviation ``amp`` (sigma ``INK_SIGMA`` px)."""
    x = cv2.GaussianBlur(np.random.default_rng(seed + 13).normal(size=T.SHAPE).astype(np.float32), (0, 0), INK_SIGMA)
    return np.asarray(amp * x / x.std(), np.float32)


def window(pattern: np.ndarray, albedo: np.ndarray, lamp: np.ndarray, eyes: bool, seed: int, nonce: bytes,
           n: int = 32, steady: np.ndarray | float = 0.0) -> list[ProjectorLight]:
    """The judge's pairs over a still window: room 20 DN, the dots 16 DN x ``pattern``, ``lamp`` (DN per
    pixel) on the lit frames only, ``steady`` (DN per pixel) on every frame, all times ``albedo``; shot
    noise as test_moving_light's."""
    rng = np.random.default_rng(seed)
    lit = list(projector_schedule(nonce, n))
    frames = []
    for k in range(n):
        dn = albedo * (20.0 + steady + ((16.0 * pattern + lamp) if lit[k] else 0.0))
        e = dn * T.FULL_WELL_E / 255
        noisy = e + rng.normal(size=e.shape) * np.sqrt(e + 16)
        frames.append(np.clip(np.floor(noisy * 255 / T.FULL_WELL_E), 0, 255).astype(np.float32))
    out = []
    for k, on, off in _edges(lit):
        p = _noise_pair(lit, k, n)
        out.append(pair_light(frames[on], frames[off], T.SKIN, (frames[p[0]], frames[p[1]]) if p is not None else None,
                              eyes=T.EYES if eyes else None))
    return out


def base_albedo(seed: int) -> np.ndarray:
    texture = np.random.default_rng(seed + 7).normal(size=T.SHAPE).astype(np.float32)
    return np.asarray(1 + 0.05 * cv2.GaussianBlur(texture, (0, 0), 3), np.float32)


def eye_band(lamp_dn: float, shape: str, ink_amp: float, seed: int, nonce: bytes) -> list[ProjectorLight]:
    pattern = np.where(T.EYES, T.projected_dots(T.SHAPE, T.RESIN_SCATTER, seed=2),
                       T.projected_dots(T.SHAPE, T.SKIN_SCATTER))
    albedo = base_albedo(seed)
    if ink_amp:
        albedo = np.where(T.EYES, np.clip(albedo + ink(ink_amp, seed), 0.2, 2.0), albedo).astype(np.float32)
    return window(pattern, albedo, lamp_dn * band_lamp(shape), True, seed, nonce)


def painted(scatter: float, lamp_dn: float, paint: float, seed: int, nonce: bytes,
            steady: float = 0.0) -> list[ProjectorLight]:
    """A surface of ``scatter`` painted ``paint`` (``ink``) under attack B's even lamp (``lamp_dn``);
    ``steady``: a lamp never switched (its DN on average) with a pattern of its own in the band the
    unlit texture is read in (``ink`` at 50 %, another draw than the paint's)."""
    albedo = base_albedo(seed)
    if paint:
        albedo = np.clip(albedo + ink(paint, seed), 0.2, 2.0).astype(np.float32)
    still = np.clip(steady * (1 + ink(0.5, seed + 100)), 0.0, None) if steady else 0.0
    return window(T.projected_dots(T.SHAPE, scatter), albedo, np.full(T.SHAPE, lamp_dn, np.float32), False, seed,
                  nonce, steady=still)


def dot_print(scatter: float, lamp_dn: float, amp: float, blur: float, seed: int, nonce: bytes) -> list[ProjectorLight]:
    """A surface of ``scatter`` printed with the projector's own dots (``T.projected_dots``, aligned), blurred
    ``blur`` px, at relative deviation ``amp``, under attack B's even lamp (``lamp_dn``)."""
    pattern = T.projected_dots(T.SHAPE, scatter)
    halo = cv2.GaussianBlur(pattern - pattern.mean(), (0, 0), blur) if blur else pattern - pattern.mean()
    albedo = np.clip(base_albedo(seed) + amp * halo / max(float(halo.std()), 1e-9), 0.2, 2.0).astype(np.float32)
    return window(pattern, albedo, np.full(T.SHAPE, lamp_dn, np.float32), False, seed, nonce)


def _row(label: str, runs: list[tuple[float, float, int]], what: str) -> None:
    sc = [r[0] for r in runs]
    print(f"{label}: score >= {LIVE_MIN} in {sum(x >= LIVE_MIN for x in sc)} of {len(sc)} "
          f"(scores {[round(x, 2) for x in sc]}); {what} {[round(r[1], 2) for r in runs]}; "
          f"coarse pairs {[r[2] for r in runs]}", flush=True)


def _judged_runs(make, seeds: int, nonces, attr: str) -> list[tuple[float, float, int]]:
    """(session score, the measure's ``attr`` sharpness, coarse pairs) of each seed's window under each nonce."""
    runs = []
    for seed in range(seeds):
        for nonce in nonces:
            m, s = T.judged(make(seed, nonce))
            runs.append((T.session_score(s), float(getattr(m, attr)), int(m.coarse)))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--dot-print", action="store_true", help="only the resin printed with the dots (review26b)")
    a = ap.parse_args()
    nonces = (b"\0" * 16, b"\1" * 16)
    if a.dot_print:
        for amp in (0.1, 0.3, 0.6):
            for blur in (1.0, 2.0, 4.0):
                for lamp in (0.0, 16.0, 24.0):
                    runs = _judged_runs(partial(dot_print, T.RESIN_SCATTER, lamp, amp, blur), a.seeds, nonces,
                                        "sharpness")
                    _row(f"resin printed with the dots, {amp:.1f}, blur {blur:.0f} px, lamp {lamp:.0f} DN", runs,
                         "sharpness")
        return
    for shape in ("soft", "box"):
        for ink_amp in (0.0, 0.3):
            for lamp in (0.0, 16.0, 40.0):
                runs = _judged_runs(partial(eye_band, lamp, shape, ink_amp),
                                    a.seeds, nonces, "eyes_sharpness")
                _row(f"eye band, ink {ink_amp:.1f}, {shape} lamp {lamp:.0f} DN on the band", runs, "eyes' sharpness")
    for name, scatter, lamps in (("resin", T.RESIN_SCATTER, (0.0, 16.0, 24.0, 40.0)), ("skin", T.SKIN_SCATTER, (0.0,))):
        for paint in (0.0, 0.1, 0.2, 0.3):
            for lamp in lamps:
                runs = _judged_runs(partial(painted, scatter, lamp, paint),
                                    a.seeds, nonces, "sharpness")
                _row(f"{name}, paint {paint:.1f}, lamp {lamp:.0f} DN on the face", runs, "sharpness")
    # texture26: the unlit texture is taken out at a gain fitted to the difference (``features.texture_out``);
    # a steady lamp with a pattern of its own (never switched: in the unlit frame, not in the difference)
    # must write nothing of it into the difference.
    for steady in (20.0, 60.0):
        for lamp in (0.0, 24.0):
            runs = _judged_runs(partial(painted, T.RESIN_SCATTER, lamp, 0.2, steady=steady), a.seeds, nonces,
                                "sharpness")
            _row(f"resin, paint 0.2, lamp {lamp:.0f} DN, a steady patterned lamp {steady:.0f} DN", runs, "sharpness")


if __name__ == "__main__":
    main()
