"""A forged depth against the shaded reference (issue 14, docs/liveness.md, *The dots' shading taken out of the
reference*): an injector on the camera link that forges the depth stream under a hard mask's real dots, choosing
a depth whose incidence cosine (``features.incidence_shading``) makes the recorded pattern's shaded reading
sharper than its plain one, so that the mask's dots over it would read as skin's.

    python -m bench.shading_injector [N] [SPEC ...]

SPEC is ``species:index`` of the train family (default ``mask:0 mask:1 mask_eyeholes:0``). Each presentation is
rendered and judged as pad-eval runs it (challenged, 32 framesets, the camera's dot reference); each on-off pair
the judge reads is kept (its skin, lit frame and reading), and its lit frame's depth on the skin's box is then
replaced by forged fields, through the judge's own ``features.pattern_fit`` (the forged depth moves the predicted
dots as well as their shading, as it would in the judge):

* ``flat`` — one depth over the box (no shading at all);
* ``rows P A`` / ``cols P A`` — sawtooth facets of period P px and A mm peak to peak along the rows or columns
  (steep facets inside the discs, finer than the smoothing or not);
* ``bumps`` — N random fields per pair: Gaussian bumps of 1.5-8 px and up to 12 mm, added to the true depth;
  the pair's best (the highest shaded reading) kept, an upper bound on a search the injector could run offline
  on its own renders.

Printed per forged kind, over every pair: how far the forged shading raised the pattern's reading
(``shaded / plain``, over 1 flatters: the unclipped ratio would soften the mask), the clipped gain
(``ProjectorLight.shading_gain``, never under 1), and the session's dots' sharpness three ways: as judged
(plain), with the clipped gain (what ``SHADED_REFERENCE`` scores), and with the unclipped one (what a term without
the clip would have scored). Under the clip the second is never below the first, whatever the depth.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from agent.liveness import features as F
from agent.liveness import judge as J
from agent.liveness.dotref import DotReference
from agent.pipeline.align import AlignedFrameSet
from drivers.frame import StreamKind

Forge = Callable[[np.ndarray, np.random.Generator], np.ndarray]      # depth (m) on the box -> forged


def _sawtooth(period: int, amplitude_mm: float, axis: int) -> Forge:
    def forge(z: np.ndarray, _: np.random.Generator) -> np.ndarray:
        k = np.arange(z.shape[axis], dtype=np.float32)
        saw = ((k % period) / period - 0.5) * amplitude_mm / 1000.0
        return z + (saw[:, None] if axis == 0 else saw[None, :])
    return forge


def _bumps(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    field = np.zeros_like(z)
    h, w = z.shape
    for _ in range(int(rng.integers(8, 64))):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        spot = np.zeros_like(z)
        spot[y, x] = 1.0
        sigma = float(rng.uniform(1.5, 8.0))
        spot = cv2.GaussianBlur(spot, (0, 0), sigma)
        field += spot / max(float(spot.max()), 1e-9) * float(rng.uniform(-12.0, 12.0)) / 1000.0
    return z + field


def forges() -> Iterator[tuple[str, Forge]]:
    yield "flat", lambda z, _: np.full_like(z, float(np.median(z)))
    for axis, name in ((0, "rows"), (1, "cols")):
        for period in (2, 3, 4, 6, 8, 12):
            for amplitude in (2.0, 5.0, 10.0):
                yield f"{name} {period} {amplitude:g}", _sawtooth(period, amplitude, axis)


def with_depth(lit: AlignedFrameSet, box: tuple[slice, slice], z_m: np.ndarray) -> AlignedFrameSet:
    """``lit`` with its depth frame's ``box`` replaced by ``z_m`` metres (the injector's stream)."""
    depth = lit.frameset.depth
    assert depth is not None
    px = np.array(depth.pixels, copy=True)
    units = np.clip(np.round(z_m / depth.depth_scale), 1, np.iinfo(px.dtype).max)
    px[box] = np.where(px[box] > 0, units, 0).astype(px.dtype)
    px.setflags(write=False)
    frames = dict(lit.frameset.frames)
    frames[StreamKind.DEPTH] = dataclasses.replace(depth, pixels=px)
    return dataclasses.replace(lit, frameset=dataclasses.replace(lit.frameset, frames=frames))


@dataclasses.dataclass
class Pair:
    patch: F.IrSkin
    lit: AlignedFrameSet
    reference: DotReference
    light: F.ProjectorLight


def judged_pairs(species: str, index: int) -> list[Pair]:
    """The two-sided on-off pairs the judge read on train ``species``/``index`` as pad-eval runs it."""
    from agent.liveness.fusion import load_thresholds
    from hil.pad_presentations import Presentation, presentation_uri
    from hil.pad_records import kiosk_gate, run_presentation
    kept: list[Pair] = []
    orig = J.projector_light_on

    def wrapped(patch, lit, dark, same=None, reference=None):
        x = orig(patch, lit, dark, same, reference)
        ref = reference.reference if isinstance(reference, F.PatternFit) else reference
        if patch is not None and isinstance(ref, DotReference) and np.isfinite(x.sharpness) and not x.one_sided:
            kept.append(Pair(patch, lit, ref, x))
        return x
    J.projector_light_on = wrapped
    try:
        p = Presentation("attack", species, "train", index, presentation_uri("train", species, index))
        run_presentation(p, frames=32, passive=False, gate=kiosk_gate(),
                           thresholds=load_thresholds("kiosk", challenged=True))
    finally:
        J.projector_light_on = orig
    return kept


def readings(pair: Pair, z_m: np.ndarray) -> tuple[float, float]:
    """The pattern's plain and shaded readings on the pair's skin with the lit frame's depth forged."""
    fit = F.pattern_fit(pair.reference, pair.patch, with_depth(pair.lit, pair.patch.box, z_m))
    if fit is None:
        return float("nan"), float("nan")
    return F.reference_dot_shape(fit, pair.patch.mask), F.shaded_reference_dot_shape(fit, pair.patch.mask)


def true_depth(pair: Pair) -> np.ndarray:
    """The pair's lit frame's depth on its skin's box (metres)."""
    depth = pair.lit.frameset.depth
    assert depth is not None
    return depth.pixels[pair.patch.box].astype(np.float32) * np.float32(depth.depth_scale)


def run(pairs: list[Pair], trials: int, seed: int = 29) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    kinds = list(forges()) + [("bumps", _bumps)]
    for name, forge in kinds:
        lift, clipped, unclipped, plain = [], [], [], []
        for pair in pairs:
            z = true_depth(pair)
            tried = [readings(pair, forge(z, rng)) for _ in range(trials if name == "bumps" else 1)]
            tried = [(r, s) for r, s in tried if np.isfinite(r) and np.isfinite(s) and r > 0]
            if not tried:
                continue
            ref, shaded = max(tried, key=lambda t: t[1] / t[0])     # the injector's best: the most flattering
            light = dataclasses.replace(pair.light, reference_sharpness=ref, shaded_reference_sharpness=shaded)
            lift.append(shaded / ref)
            clipped.append(light.sharpness * light.shading_gain)
            unclipped.append(light.sharpness * ref / shaded)
            plain.append(light.sharpness)
        if lift:
            out[name] = {"pairs": len(lift), "lift_max": max(lift), "lift_median": float(np.median(lift)),
                         "plain": float(np.median(plain)), "clipped": float(np.median(clipped)),
                         "unclipped": float(np.median(unclipped)),
                         "clipped_min_gap": min(c - p for c, p in zip(clipped, plain, strict=True))}
    return out


def main(argv: list[str]) -> int:
    trials = int(argv[0]) if argv and argv[0].isdigit() else 32
    specs = [a for a in argv if not a.isdigit()] or ["mask:0", "mask:1", "mask_eyeholes:0"]
    F.SHADED_REFERENCE_READ = True          # the shaded reading is what this bench measures (off by default)
    for spec in specs:
        species, index = spec.split(":")
        pairs = judged_pairs(species, int(index))
        truth = [readings(p, true_depth(p)) for p in pairs]
        lifts = [s / r for r, s in truth if np.isfinite(r) and np.isfinite(s)]
        print(f"train/{species}/{index}: {len(pairs)} pairs; true depth: shaded/plain "
              f"{min(lifts, default=float('nan')):.3f}-{max(lifts, default=float('nan')):.3f}", flush=True)
        for name, r in run(pairs, trials).items():
            print(f"  {name:12s} pairs {r['pairs']:2.0f}  shaded/plain max {r['lift_max']:.3f} median "
                  f"{r['lift_median']:.3f}  sharpness plain {r['plain']:.3f} clipped {r['clipped']:.3f} "
                  f"unclipped {r['unclipped']:.3f}  clipped-plain min {r['clipped_min_gap']:+.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
