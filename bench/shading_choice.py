"""Review 22 (issue 14): an injector that chooses which pixels ``features.clear_of_shading`` leaves out.

The rule leaves out the pixels whose unlit texture the albedo does not explain, and the unlit frames are
the injector's: it sees where the projector's dots fall (the lit frames), so it can put a texture (the
same in every frame: the on-off difference stays the camera's) on the part of the region where the
dots' speckle happens to read hardest, about 0.7 of the skin after the rule's 2 px growth, and leave
the softest part to be read. Review 21's guard (``MAX_DARK_EDGE_DOTS``: the pixels left out hold at
most 1.15 times the kept pixels' mean of the difference) compares the dots' *mean*, which a choice by
the speckle's *contrast* does not move, and the share stays under ``MAX_SHADED_SHARE``.

    python -m bench.shading_choice [SEEDS]

Synthetic pairs as ``tests/liveness/test_flood_shading.py`` draws them (60 x 60 px, 40 DN ambient,
60 DN of dots, shot noise), the dots resin-hard (sigma 1.6 px), in between (1.9) or skin-soft (2.2).
Per seed and material, printed: the session's speckle (``ProjectorMeasure.pool``) unattacked and
attacked, whether the pairs were read clear of the texture (``shading_dropped``), and, per pair, the
speckle contrast of the pixels left out over the kept pixels' (noise removed): for a fringe's strands
(``_strands``, the case the rule is for) and for the attack. The session's dots' sharpness is not
moved by the choice (read on the whole region), so in the simulator the whole-region guard
(``FOREHEAD_SHARP_DOTS``) still holds every material whose dots read over 1.4893; the synthetic
pairs' sharpness is not on that scale, so only the speckle is shown."""

from __future__ import annotations

import sys

import cv2
import numpy as np

from agent.liveness import features as F
from agent.liveness.features import ProjectorMeasure
from tests.liveness.test_flood_shading import SPECKLE, Flooded, _strands
from tests.liveness.test_projector_measure import RESIN_SIGMA, SKIN_SIGMA, dot_pattern

SHARE = 0.3          # the chosen pixels: the hardest 30 % by local speckle (about 0.7 after the 2 px growth)
REACH = 3.0          # px: the scale the local speckle is judged on
AMPLITUDE = 0.5      # the texture's deviation, a share of the ambient light


def choose(f: Flooded, seed: int) -> None:
    """The injector's texture on the pixels where the dots' local speckle contrast is highest."""
    p = f.pattern
    hp = p - cv2.GaussianBlur(p, (0, 0), 1.5)
    local = cv2.GaussianBlur(hp * hp, (0, 0), REACH) / np.maximum(cv2.GaussianBlur(p, (0, 0), REACH), 1e-3) ** 2
    chosen = (local > np.quantile(local[f.mask], 1 - SHARE)) & f.mask
    tex = cv2.GaussianBlur(np.random.default_rng(seed + 50).normal(size=p.shape).astype(np.float32), (0, 0), 1.0)
    f.shading = np.where(chosen, np.clip(1 + AMPLITUDE * tex / tex.std(), 0.05, None), 1.0).astype(np.float32)


def _contrast2(img: F._PairImages, px: np.ndarray) -> float:
    """The difference's speckle contrast squared on ``px``, the noise pair's share removed."""
    return float((np.var(img.hp_diff[px]) - np.var(img.hp_same[px]) / 2) / np.mean(img.diff[px]) ** 2)


def out_over_kept(f: Flooded, pairs: int = 6) -> list[float]:
    """Per pair: the speckle contrast of the pixels ``clear_of_shading`` leaves out over the kept
    pixels' (each with the noise pair's variance removed); NaN where nothing is left out."""
    out: list[float] = []
    for _ in range(pairs):
        on, off, a, b = f.frame(True), f.frame(False), f.frame(False), f.frame(False)
        img = F._PairImages(on, off, (a, b))
        kept, n = F.clear_of_shading(img, f.mask)
        if not n:
            out.append(float("nan"))
            continue
        out.append(float(np.sqrt(max(_contrast2(img, f.mask & ~kept), 0.0) / _contrast2(img, kept))))
    return out


def flooded(sigma: float, seed: int) -> Flooded:
    f = Flooded((), seed=seed)
    f.pattern = dot_pattern(f.mask.shape, sigma, seed + 2)
    return f


def main(argv: list[str]) -> int:
    seeds = int(argv[0]) if argv else 6
    print(f"speckle ramp: attack {SPECKLE.attack}, live {SPECKLE.live}")
    for sigma in (RESIN_SIGMA, 1.9, SKIN_SIGMA):
        for seed in range(seeds):
            clean = ProjectorMeasure.pool(flooded(sigma, seed).pairs())
            f = flooded(sigma, seed)
            choose(f, seed)
            m = ProjectorMeasure.pool(f.pairs())
            g = flooded(sigma, seed)
            g.shading = _strands(g, seed)
            h = flooded(sigma, seed)
            choose(h, seed)
            ratios_g, ratios_h = out_over_kept(g), out_over_kept(h)
            print(f"sigma {sigma} seed {seed}: speckle {clean.speckle:.3f} -> attacked {m.speckle:.3f} "
                  f"(read clear {m.shading_dropped} of {m.pairs + m.patterned} pairs); left-out/kept speckle: "
                  f"strands {np.nanmin(ratios_g):.2f}-{np.nanmax(ratios_g):.2f}, "
                  f"attack {np.nanmin(ratios_h) if np.isfinite(ratios_h).any() else float('nan'):.2f}-"
                  f"{np.nanmax(ratios_h) if np.isfinite(ratios_h).any() else float('nan'):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
