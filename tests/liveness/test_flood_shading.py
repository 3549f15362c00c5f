"""The material measure under a directional NIR flood (issue 14, the ninth family's CCTV dome): relief
the flood shades at its own angle (a fringe's strands, spectacle rims and their shadows) puts texture
in the unlit frame that the albedo cannot explain, on part of the region only; an attacker's patterned
lamp puts it wherever the lamp reaches.

Synthetic on/off pairs: a 60 x 60 px region in three bands (the forehead's discs, the upper cheeks',
the lower cheeks'), the projector's dots soft like skin's (sigma 2.2 px) or sharp like resin's (1.6
px) at 60 DN, 40 DN of steady ambient NIR, photon shot noise at the simulator's full well. The
flood's shading multiplies the ambient light only (the projector beside the camera lights the relief
head-on): fine strands (0.8 x 6 px, 50 % deviations) where the relief is."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.liveness.detectors import active_ramps
from agent.liveness.features import (
    MAX_SHADED_SHARE,
    MAX_UNEXPLAINED_TEXTURE,
    ProjectorLight,
    ProjectorMeasure,
    pair_light,
)
from tests.liveness.test_projector_measure import FULL_WELL_E, RESIN_SIGMA, SKIN_SIGMA, dot_pattern

SPECKLE = active_ramps()["projector_speckle"]


class Flooded:
    """The region's bands: ``shaded`` names those the ambient light carries a fine texture on
    ("forehead", "upper", "lower"); ``cheeks_sigma``: the cheeks' dots (the forehead's are skin's)."""

    def __init__(self, shaded: tuple[str, ...], cheeks_sigma: float = SKIN_SIGMA, seed: int = 0):
        shape = (84, 84)                            # 60 x 60 and room for the band-passes
        self.mask = np.zeros(shape, bool)
        self.mask[12:-12, 12:-12] = True
        rows = np.arange(shape[0])[:, None]
        band = {"forehead": rows < 42, "upper": (rows >= 42) & (rows < 57), "lower": rows >= 57}
        self.forehead = self.mask & band["forehead"]
        self.lower = self.mask & band["lower"]
        self.pattern = np.where(band["forehead"], dot_pattern(shape, SKIN_SIGMA, seed + 1),
                                dot_pattern(shape, cheeks_sigma, seed + 2))
        texture = np.random.default_rng(seed + 7).normal(size=shape).astype(np.float32)
        self.albedo = 1 + 0.05 * cv2.GaussianBlur(texture, (0, 0), 3)
        strands = cv2.GaussianBlur(np.random.default_rng(seed + 9).normal(size=shape).astype(np.float32),
                                   (0, 0), sigmaX=0.8, sigmaY=6)
        where = np.zeros(shape, bool)
        for name in shaded:
            where |= band[name]
        self.shading = np.where(where, np.clip(1 + 0.5 * strands / strands.std(), 0.05, None), 1.0)
        self.rng = np.random.default_rng(seed)

    def frame(self, lit: bool) -> np.ndarray:
        dn = self.albedo * (40.0 * self.shading + (60.0 * self.pattern if lit else 0.0))
        e = dn * FULL_WELL_E / 255
        noisy = e + self.rng.normal(size=e.shape) * np.sqrt(e + 16)
        return np.clip(np.floor(noisy * 255 / FULL_WELL_E), 0, 255).astype(np.float32)

    def pairs(self, n: int = 6) -> list[ProjectorLight]:
        out = []
        for _ in range(n):
            on, off, a, b = self.frame(True), self.frame(False), self.frame(False), self.frame(False)
            out.append(pair_light(on, off, self.mask, (a, b), forehead=self.forehead, lower=self.lower))
        return out


@pytest.mark.parametrize("seed", [0, 1])
def test_skin_shaded_by_the_flood_on_the_forehead_is_read_on_its_cheeks(seed):
    # The whole region's unlit texture is unexplained (main: every pair one-sided, nothing measured);
    # the cheeks' is explained, and the speckle is theirs: skin.
    lights = Flooded(("forehead",), seed=seed).pairs()
    assert all(x.unexplained > MAX_UNEXPLAINED_TEXTURE for x in lights)
    m = ProjectorMeasure.pool(lights)
    assert m.patterned == 0 and m.pairs == 6 and m.forehead_dropped == 6
    assert m.high < SPECKLE.live, m
    clean = ProjectorMeasure.pool(Flooded((), seed=seed).pairs())        # the same face unshaded
    assert abs(m.speckle - clean.cheeks) < 0.02


@pytest.mark.parametrize("seed", [0, 1])
def test_shading_that_reaches_the_upper_cheeks_leaves_the_lower_cheeks(seed):
    lights = Flooded(("forehead", "upper"), seed=seed).pairs()
    assert all(x.cheeks is not None and x.cheeks.unexplained > MAX_UNEXPLAINED_TEXTURE for x in lights)
    m = ProjectorMeasure.pool(lights)
    assert m.patterned == 0 and m.pairs == 6 and m.rims_dropped == 6 and m.high < SPECKLE.live, m


@pytest.mark.parametrize("sigma", [SKIN_SIGMA, RESIN_SIGMA])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_patterned_lamp_over_the_whole_region_is_measured_as_before(sigma, seed):
    # A flat print or a screen (or skin) under an attacker's lamp that reaches everywhere: no part is
    # explained, every pair stays one-sided with the whole region's readings.
    lights = Flooded(("forehead", "upper", "lower"), cheeks_sigma=sigma, seed=seed).pairs()
    m = ProjectorMeasure.pool(lights)
    assert m.patterned == 6 and m.pairs == 0 and m.forehead_dropped == 0 and m.rims_dropped == 0
    assert not np.isfinite(m.speckle) and np.isfinite(m.floor)


def _patterned_forehead(cheeks_sharpness: float) -> list[ProjectorLight]:
    # Pairs whose whole region reads one-sided under light with a pattern of its own (unexplained
    # 0.05, as ninth live/0's), floored at 0.16, with cheeks explained (0.002) reading 0.234 in
    # speckle: a mask's cheeks can read that soft (train mask_eyeholes/3, test_forehead_occluder).
    cheeks = ProjectorLight(0.234 ** 2, 60.0, 4.0, 900, 1.0, unexplained=0.002, sharpness=cheeks_sharpness)
    return [ProjectorLight(0.16 ** 2, 60.0, 4.0, 1800, 1.0, unexplained=0.05, sharpness=1.36,
                           cheeks_sharpness=cheeks_sharpness, cheeks=cheeks) for _ in range(8)]


def test_cheeks_with_a_hard_surfaces_dots_are_not_read_alone():
    # Resin cheeks (a mask) under a lamp kept to the forehead: the cheeks' dots read sharp (1.845), so
    # the session is not read on them (the forehead rule's guard) and stays one-sided, as on main.
    mask = ProjectorMeasure.pool(_patterned_forehead(1.845))
    assert mask.patterned == 8 and mask.pairs == 0 and mask.forehead_dropped == 0
    assert mask.floor == pytest.approx(0.16)
    skin = ProjectorMeasure.pool(_patterned_forehead(1.20))
    assert skin.patterned == 0 and skin.pairs == 8 and skin.forehead_dropped == 8
    assert skin.speckle == pytest.approx(0.234)


def _strands(f: Flooded, seed: int) -> np.ndarray:
    """Sparse flood-lit strands and rims over every band (a fringe and spectacles whose pattern falls
    on the cheeks too): thin lines 2.5x as bright as the skin beside them on about 3 % of the pixels,
    and their shadows (the fill light, 10 %) on about 1 %; the rest of the skin untouched (the
    high-pass carries each line about 4 px either side: some 45 % of the skin is left out)."""
    blurred = cv2.GaussianBlur(np.random.default_rng(seed + 11).normal(size=f.mask.shape).astype(np.float32),
                               (0, 0), sigmaX=0.8, sigmaY=6)
    s = np.asarray(blurred / blurred.std(), dtype=np.float32)
    return np.where(s > 1.8, 2.5, np.where(s < -2.2, 0.1, 1.0)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 3])
def test_strands_over_every_band_leave_the_skin_between_them(seed):
    # No band is explained (main: every pair one-sided, nothing measured); the pixels the strands and
    # their shadows reach are left out and the skin between them reads skin, as the unshaded face does.
    f = Flooded((), seed=seed)
    f.shading = _strands(f, seed)
    lights = f.pairs()
    assert all(x.unexplained > MAX_UNEXPLAINED_TEXTURE for x in lights)
    assert all(x.cheeks is not None and x.cheeks.unexplained > MAX_UNEXPLAINED_TEXTURE for x in lights)
    assert np.median([x.lower.unexplained for x in lights if x.lower is not None]) > MAX_UNEXPLAINED_TEXTURE
    m = ProjectorMeasure.pool(lights)
    assert m.patterned == 0 and m.pairs == 6 and m.shading_dropped == 6, m
    assert m.high < SPECKLE.live, m
    # Within what one surface's halves differ by for which dots fell where (15 %, test_forehead_occluder).
    clean = ProjectorMeasure.pool(Flooded((), seed=seed).pairs())
    assert abs(m.speckle - clean.speckle) < 0.15 * clean.speckle
    assert all(0 < x.shading_out < MAX_SHADED_SHARE * x.pixels for x in lights)


@pytest.mark.parametrize("seed", [0, 3])
def test_an_injector_choosing_the_pixels_left_out_gains_nothing(seed):
    # An injected stream (it sees the projector's commands, so it knows where the dots fall) whose
    # unlit frames carry bright structures where it likes: on the dots' peaks or on their flanks (a
    # twentieth or a fifth of the pixels), or as a fringe's strands. Structures on the dots are either
    # explained by them (the difference carries them too) or, left out, hold more of the dots than the
    # rest: no pair is read clear of them. Strands are read, and what is left of resin reads as resin
    # (over the speckle ramp's attack end, as unshaded), of skin as skin.
    for sigma in (RESIN_SIGMA, SKIN_SIGMA):
        for where, share in (("peaks", 0.05), ("peaks", 0.2), ("flanks", 0.05), ("flanks", 0.2), ("strands", 0)):
            f = Flooded((), cheeks_sigma=sigma, seed=seed)
            f.pattern = dot_pattern(f.mask.shape, sigma, seed + 2)
            if where == "strands":
                f.shading = _strands(f, seed)
            else:
                p = f.pattern
                on_dots = p if where == "peaks" else np.hypot(cv2.Sobel(p, cv2.CV_32F, 1, 0),
                                                               cv2.Sobel(p, cv2.CV_32F, 0, 1))
                f.shading = np.where(on_dots > np.quantile(on_dots, 1 - share), 2.5, 1.0).astype(np.float32)
            lights = f.pairs()
            m = ProjectorMeasure.pool(lights)
            if where != "strands":
                assert all(x.clear is None for x in lights) and m.shading_dropped == 0, (sigma, where, share)
                continue
            assert m.shading_dropped == 6 and m.pairs == 6, (sigma, m)
            if sigma == RESIN_SIGMA:
                assert m.low > SPECKLE.attack, m
            else:
                assert m.high < SPECKLE.live, m


def test_a_hard_surfaces_dots_keep_its_pixels_from_being_chosen():
    # Pairs patterned everywhere (no band explained), their skin clear of the shading explained and
    # reading 0.234 with soft dots there: read so only when the whole region's dots read as skin's. A
    # mask's dots (1.845 on the whole region) are not moved by which pixels the speckle is read on.
    def pairs(whole_sharpness: float) -> list[ProjectorLight]:
        part = ProjectorLight(0.30 ** 2, 60.0, 4.0, 900, 1.0, unexplained=0.05, sharpness=1.2)
        clear = ProjectorLight(0.234 ** 2, 60.0, 4.0, 800, 1.0, unexplained=0.004, sharpness=1.2)
        return [ProjectorLight(0.16 ** 2, 60.0, 4.0, 1800, 1.0, unexplained=0.05, sharpness=whole_sharpness,
                               cheeks=part, lower=part, clear=clear, shading_out=1000) for _ in range(8)]
    mask = ProjectorMeasure.pool(pairs(1.845))
    assert mask.patterned == 8 and mask.pairs == 0 and mask.shading_dropped == 0
    skin = ProjectorMeasure.pool(pairs(1.20))
    assert skin.patterned == 0 and skin.pairs == 8 and skin.shading_dropped == 8
    assert skin.speckle == pytest.approx(0.234) and skin.sharpness == pytest.approx(1.20)
