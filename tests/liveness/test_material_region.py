"""The material measure's skin region: more of the face's skin, so more distinct dots per session.

A session's pairs all see the same dots (the face holds still), so which few dozen dots fell on the
skin patches moved its dot sharpness by +-0.3-0.4 (docs/liveness.md, "A session's dots"). The
measure now reads the discs at twice the radius, kept inside the face's oval (``material_region``;
docs/liveness.md, "More dots per session"). Synthetic images only: the simulator's dot density
(Gaussian spots of 0.55 px), a surface that spreads a share of each dot (skin's, resin's), the region
placed on one simulated train face's landmarks."""

from __future__ import annotations

import cv2
import numpy as np

from agent.liveness.features import MATERIAL_INSET_IPD, dot_shape, material_region, skin_region

# A frontal train face (train:live:4, D415) in the IR imager's pixels, in eye spacings from the pupils'
# midpoint: the skin patches' landmarks (``features.SKIN_PATCHES``) and the face oval's
# (``quality.metrics.FACE_OVAL``).
SKIN = np.array([[-0.823, 0.465], [0.815, 0.453], [-0.688, 0.595], [0.696, 0.584], [-0.046, -0.554],
                 [-0.036, -0.326], [-0.312, -0.559], [0.216, -0.56]])
OVAL = np.array([[-0.058, -0.774], [0.242, -0.767], [0.492, -0.729], [0.721, -0.641], [0.877, -0.508],
                 [0.979, -0.34], [1.039, -0.159], [1.069, 0.07], [1.073, 0.287], [1.085, 0.51], [1.079, 0.751],
                 [1.041, 1.0], [0.973, 1.196], [0.869, 1.34], [0.722, 1.466], [0.593, 1.553], [0.457, 1.628],
                 [0.289, 1.682], [0.07, 1.701], [-0.153, 1.688], [-0.33, 1.639], [-0.487, 1.568], [-0.636, 1.483],
                 [-0.81, 1.357], [-0.949, 1.214], [-1.067, 1.018], [-1.14, 0.767], [-1.173, 0.526], [-1.182, 0.302],
                 [-1.193, 0.082], [-1.175, -0.148], [-1.12, -0.331], [-1.02, -0.502], [-0.865, -0.636],
                 [-0.624, -0.725], [-0.364, -0.766]])
IPD_PX = 50.0                           # a D435 at about 0.45 m
SHAPE = (170, 150)
MIDDLE = np.array([75.0, 60.0])
SKIN_MIX, RESIN_MIX = 0.44, 0.16        # the simulator's share of each dot spread (docs/sim.md)
OLD_RADIUS_IPD = 0.1                    # the patches before (five small discs' worth)


def dots(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros(SHAPE, np.float32)
    n = int(SHAPE[0] * SHAPE[1] * 0.055)
    img[rng.integers(0, SHAPE[0], n), rng.integers(0, SHAPE[1], n)] = rng.uniform(0.6, 1.0, n)
    return img


def surface(seed: int, mix: float) -> np.ndarray:
    sharp = cv2.GaussianBlur(dots(seed), (0, 0), 0.55)
    return sharp * (1 - mix) + 1.9 * mix * cv2.GaussianBlur(sharp, (0, 0), 1.6) + 0.25


def regions() -> tuple[np.ndarray, np.ndarray]:
    centres, oval = SKIN * IPD_PX + MIDDLE, OVAL * IPD_PX + MIDDLE
    return skin_region(SHAPE, centres, OLD_RADIUS_IPD * IPD_PX), material_region(SHAPE, centres, oval, IPD_PX)


def test_the_region_holds_more_than_twice_the_dots_and_stays_inside_the_face() -> None:
    old, new = regions()
    counts = np.array([[(dots(s) > 0)[m].sum() for m in (old, new)] for s in range(12)])
    assert (counts[:, 1] >= 2.5 * counts[:, 0]).all(), counts
    oval = np.zeros(SHAPE, np.uint8)
    cv2.fillPoly(oval, [np.round(OVAL * IPD_PX + MIDDLE).astype(np.int32)], 1)
    inset = int(round((MATERIAL_INSET_IPD - 0.02) * IPD_PX))
    inner = cv2.erode(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1, 2 * inset + 1))) > 0
    assert not (new & ~inner).any()


def test_which_dots_fell_on_the_skin_moves_the_reading_less() -> None:
    # The same surfaces under 24 arrangements of the dots: the larger region's reading spreads about
    # two thirds as much (skin 0.148 -> 0.097, resin 0.259 -> 0.148), and skin's and resin's readings
    # lie further apart.
    old, new = regions()
    read = {(mix, k): np.array([dot_shape(surface(s, mix), m)[0] for s in range(24)])
            for mix in (SKIN_MIX, RESIN_MIX) for k, m in (("old", old), ("new", new))}
    for mix, factor in ((SKIN_MIX, 0.75), (RESIN_MIX, 0.7)):
        assert read[mix, "new"].std() < factor * read[mix, "old"].std(), (mix, read[mix, "new"].std(),
                                                                         read[mix, "old"].std())
    gap = {k: read[RESIN_MIX, k].min() - read[SKIN_MIX, k].max() for k in ("old", "new")}
    assert gap["new"] > gap["old"] + 0.05, gap


def test_the_depth_around_each_point_is_the_window_by_window_median_to_the_bit():
    # ``features.depth_around`` reads every point's 7 x 7 window at once; it must give what the
    # window-by-window loop (``np.nanmedian`` of each) gave: windows clipped at every edge, windows
    # with one, an even and an odd number of pixels with depth, none at all, points outside the image
    # (more than 4 px left of or above it as well, where the loop's slice ends early).
    from agent.liveness.features import depth_around
    from agent.pipeline.align import AlignedFrameSet
    from tests.helpers.material_reference import depth_around as loop

    rng = np.random.default_rng(14)
    h, w = 120, 160
    units = rng.integers(300, 4000, (h, w)).astype(np.uint16)
    units[rng.random((h, w)) < 0.5] = 0              # holes everywhere (some windows keep 1-3 pixels)
    units[40:60, 60:90] = 0                          # and a hole larger than a window
    aligned = AlignedFrameSet(None, None, units, None, 0.001)       # the depth is all it reads
    pts = np.c_[rng.uniform(-12, w + 12, 3000), rng.uniform(-12, h + 12, 3000)]
    pts[:4] = [[-7.2, 30.0], [50.0, -9.6], [75.0, 50.0], [w + 3.0, h + 3.0]]
    fast, slow = depth_around(aligned, pts), loop(aligned, pts)
    assert np.array_equal(fast, slow, equal_nan=True)
    assert np.isnan(slow[2:4]).all() and np.isfinite(slow[:2]).all() and np.isfinite(slow).mean() > 0.8
    counts = {int(np.count_nonzero(units[max(int(y) - 3, 0):max(int(y) + 4, 0), max(int(x) - 3, 0):max(int(x) + 4, 0)]))
              for x, y in np.round(pts[4:])}
    assert {1, 2, 3} <= counts                     # windows of an odd and an even count among them
