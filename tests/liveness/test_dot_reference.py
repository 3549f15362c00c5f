"""The projector's pattern reference (``agent.liveness.dotref``): enrolment from on-off pairs and
depth alone (a board near the camera and the wall behind), its file checked strictly, and its
prediction of where the dots fall at another depth.

The frames are synthetic: a projector pattern in projector coordinates, each dot landing at
``u_p + f·b/z`` in the imager, times the surface's albedo, plus photon-like noise."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import cv2
import numpy as np
import pytest

from agent.liveness.dotref import (
    FORMAT,
    MARGIN_PX,
    MAX_FILE_BYTES,
    DotReference,
    EnrolmentFailed,
    EnrolPair,
    PairBands,
    PatternBands,
    ReferenceInvalid,
    _nonnegative_fit,
    enrol,
    match_pattern,
)
from tests.helpers.liveness_reference import match_pattern_alone, nonnegative_fit_alone

H, W = 120, 200
FB = 9.6            # f·b, px·m (a D435: 383 px x 25 mm)
FX = 383.0


def projector_pattern(seed: int = 7) -> np.ndarray:
    """The projector's dots in its own columns (``-MARGIN_PX .. W``)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((H, W + MARGIN_PX), np.float32)
    n = int(img.size * 0.055)
    img[rng.integers(0, H, n), rng.integers(0, img.shape[1], n)] = rng.uniform(0.6, 1.0, n)
    b = cv2.GaussianBlur(img, (0, 0), 0.55)
    return np.asarray(b / b.max(), dtype=np.float32)


def seen(pattern: np.ndarray, z: np.ndarray, fb: float = FB) -> np.ndarray:
    """The pattern as the imager sees it on surfaces at depth ``z`` (the projector's flood between dots added)."""
    cols = np.arange(W, dtype=np.float32)[None, :] + MARGIN_PX - np.float32(fb) / z
    rows = np.broadcast_to(np.arange(H, dtype=np.float32)[:, None], (H, W))
    return 0.25 + cv2.remap(pattern, cols.astype(np.float32), np.ascontiguousarray(rows), cv2.INTER_LINEAR)


def scene_depth(board: bool) -> np.ndarray:
    z = np.full((H, W), 1.6, np.float32)
    if board:
        z[20:100, 50:150] = 0.5
    return z


def pair(pattern: np.ndarray, z: np.ndarray, rng: np.random.Generator, fb: float = FB) -> EnrolPair:
    albedo = 1 + 0.1 * cv2.GaussianBlur(rng.normal(size=(H, W)).astype(np.float32), (0, 0), 4)
    dn = 60.0 * (0.5 / z) ** 2 * albedo * seen(pattern, z, fb)
    diff = dn + rng.normal(size=dn.shape).astype(np.float32) * np.sqrt(dn / 4 + 1)
    return EnrolPair(diff.astype(np.float32), (z + rng.normal(size=z.shape) * 0.001 * z * z).astype(np.float32))


def enrolment_pairs(pattern: np.ndarray, n: int = 4, fb: float = FB, seed: int = 0) -> list[EnrolPair]:
    rng = np.random.default_rng(seed)
    return [pair(pattern, scene_depth(board), rng, fb) for board in (True, False) for _ in range(n)]


def band(x: np.ndarray) -> np.ndarray:
    return np.asarray(x - cv2.GaussianBlur(x, (0, 0), 2.0))


@pytest.fixture(scope="module")
def enrolled() -> tuple[np.ndarray, DotReference]:
    pattern = projector_pattern()
    return pattern, enrol(enrolment_pairs(pattern), FX)


def test_enrolment_finds_the_parallax_and_the_pattern_from_frames_and_depth_alone(enrolled):
    pattern, ref = enrolled
    assert abs(ref.parallax_px_m - FB) < 0.15
    # The recorded pattern is the projector's, dot for dot, where the scenes showed it.
    c = ref.covered
    assert c[:, MARGIN_PX:].mean() > 0.9          # the projector columns the imager sees at 1.6 m
    assert np.corrcoef(band(ref.pattern)[c], band(pattern)[c])[0, 1] > 0.8


def test_the_reference_predicts_the_dots_at_a_depth_it_was_not_recorded_at(enrolled):
    pattern, ref = enrolled
    z = np.full((60, 80), 0.7, np.float32)
    predicted, covered = ref.predict(60, 30, z)
    truth = seen(pattern, np.full((H, W), 0.7, np.float32))[30:90, 60:140]
    assert covered.all()
    assert np.corrcoef(band(predicted).ravel(), band(truth).ravel())[0, 1] > 0.9
    # At another depth (2 px of parallax off) the prediction no longer matches.
    wrong, _ = ref.predict(60, 30, np.full((60, 80), 0.55, np.float32))
    assert np.corrcoef(band(wrong).ravel(), band(truth).ravel())[0, 1] < 0.3


def test_enrolment_refuses_scenes_at_one_depth():
    pattern = projector_pattern()
    rng = np.random.default_rng(1)
    with pytest.raises(EnrolmentFailed, match="inverse depth"):
        enrol([pair(pattern, scene_depth(False), rng) for _ in range(6)], FX)
    # ... unless the parallax is known.
    ref = enrol([pair(pattern, scene_depth(False), rng) for _ in range(6)], FX, parallax_px_m=FB)
    assert ref.parallax_px_m == FB


def test_enrolment_refuses_light_with_no_fixed_pattern():
    # Each pair lit by a different random pattern (no projector of fixed pattern): near and far do not agree.
    rng = np.random.default_rng(2)
    pairs = [pair(projector_pattern(seed=100 + k), scene_depth(board), rng)
             for k, board in enumerate((True, False) * 3)]
    with pytest.raises(EnrolmentFailed, match="agree"):
        enrol(pairs, FX)


def test_the_file_round_trips_with_its_digest(tmp_path, enrolled):
    _, ref = enrolled
    path = tmp_path / "dots.npz"
    digest = ref.save(path)
    back = DotReference.load(path)
    assert back.digest == digest and len(digest) == 64
    assert np.array_equal(back.pattern, ref.pattern) and np.array_equal(back.covered, ref.covered)
    assert back.parallax_px_m == ref.parallax_px_m and back.origin_u == ref.origin_u and back.fx == ref.fx
    assert back.fits(W, H, FX) and not back.fits(W, H, FX * 1.5) and not back.fits(W * 2, H, FX)


def _npz(**over) -> bytes:
    arrays: dict[str, Any] = {"format": np.array(FORMAT), "pattern": np.ones((H, W + MARGIN_PX), np.float32),
              "covered": np.ones((H, W + MARGIN_PX), bool), "parallax_px_m": np.float64(FB),
              "origin_u": np.int64(-MARGIN_PX), "fx": np.float64(FX)}
    arrays.update(over)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("over, message", [
    ({"format": np.array("other")}, "format"),
    ({"extra": np.zeros(3)}, "exactly"),
    ({"fx": None}, "exactly"),
    ({"pattern": np.ones((H, W + MARGIN_PX), np.float64)}, "float32"),
    ({"pattern": np.full((H, W + MARGIN_PX), np.nan, np.float32)}, "finite"),
    ({"pattern": -np.ones((H, W + MARGIN_PX), np.float32)}, "finite"),
    ({"covered": np.ones((H, W), bool)}, "covered"),
    ({"covered": np.zeros((H, W + MARGIN_PX), bool)}, "too little"),
    ({"parallax_px_m": np.float64(500.0)}, "parallax"),
    ({"parallax_px_m": np.array([1.0, 2.0])}, "parallax"),
    ({"fx": np.float64(np.inf)}, "fx"),
    ({"origin_u": np.float64(-3.5)}, "origin_u"),
])
def test_the_file_is_checked_strictly(over, message):
    with pytest.raises(ReferenceInvalid, match=message):
        DotReference.parse(_npz(**over))


def test_files_that_are_not_references_are_refused(tmp_path):
    with pytest.raises(ReferenceInvalid, match="not a dot reference"):
        DotReference.parse(b"not a zip")
    buf = io.BytesIO()
    np.savez(buf, format=np.array([{"a": 1}], dtype=object))      # a pickle inside: never loaded
    with pytest.raises(ReferenceInvalid):
        DotReference.parse(buf.getvalue())
    with pytest.raises(ReferenceInvalid, match="cannot read"):
        DotReference.load(tmp_path / "missing.npz")


def test_an_archive_that_declares_a_huge_array_is_refused_before_anything_is_allocated():
    # review31c: a 1 KB .npz whose pattern.npy header claims (10**6, 10**6) float32 made np.load try to allocate
    # 3.6 TiB (a bare MemoryError out of the daemon's start), and a deflated member of zeros inflates to
    # gigabytes within the 16 MB file limit: both are LIV_DOT_REFERENCE_INVALID before numpy reads the data.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10 ** 6, 10 ** 6)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pattern.npy", header.getvalue())
    with pytest.raises(ReferenceInvalid, match="declares a"):
        DotReference.parse(buf.getvalue())
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pattern.npy", bytes(64 << 20))
    assert len(bomb.getvalue()) < MAX_FILE_BYTES
    with pytest.raises(ReferenceInvalid, match="declares 67108864 bytes"):
        DotReference.parse(bomb.getvalue())


def test_light_off_the_pattern_is_unmatched(enrolled):
    # A hard surface (the sharp pattern) with synced blobs of sigma 2.5 px on top: the blobs stay in
    # the residual (unmatched); the reference's own imperfection leaves a little there too.
    pattern, ref = enrolled
    z = np.full((80, 100), 0.5, np.float32)
    predicted, covered = ref.predict(50, 20, z)
    truth = 40.0 * seen(pattern, np.full((H, W), 0.5, np.float32))[20:100, 50:150]
    rng = np.random.default_rng(5)
    blobs = np.zeros_like(truth)
    blobs[rng.integers(0, 80, 600), rng.integers(0, 100, 600)] = 1.0
    blobs = cv2.GaussianBlur(blobs, (0, 0), 2.5)
    blobs *= 20.0 / blobs.mean()
    skin = np.zeros(truth.shape, bool)
    skin[12:-12, 12:-12] = True
    clean = match_pattern(truth, skin, predicted, covered)
    lit = match_pattern(truth + blobs, skin, predicted, covered)
    assert clean.unmatched < 0.25 < 0.5 < lit.unmatched and clean.covered == lit.covered == 1.0
    # A reference that does not cover the skin cannot test it.
    assert np.isnan(match_pattern(truth, skin, predicted, np.zeros_like(covered)).unmatched)


def test_a_pairs_bands_worked_out_once_fit_every_pattern_as_a_fit_of_its_own(enrolled):
    # ``features`` fits one pair's difference to the predicted pattern at several shifts; what the
    # fit reads of the difference alone (its local mean, its relative bands, the noise pair's) is
    # worked out once (``PairBands``) for all of them, and what it reads of the pattern alone (its
    # blurs' bands) once for every difference (``PatternBands``, as the judge works out a lit
    # frame's side ahead). Every fit is the one the difference given on
    # its own makes, to the bit (``match_pattern_alone``: the lines before perf26): with and without
    # a noise pair, patterns moved along the rows, a reference not covering the skin, and a
    # difference too dim to read.
    pattern, ref = enrolled
    predicted, covered = ref.predict(50, 20, np.full((80, 100), 0.5, np.float32))
    rng = np.random.default_rng(11)
    truth = 40.0 * seen(pattern, np.full((H, W), 0.5, np.float32))[20:100, 50:150]
    diff = (truth + rng.normal(size=truth.shape) * 3).astype(np.float32)
    noise = (rng.normal(size=truth.shape) * 3).astype(np.float32)
    skin = np.zeros(truth.shape, bool)
    skin[12:-12, 12:-12] = True
    dim = np.full_like(diff, 0.5)
    patterns: dict[float, PatternBands] = {}       # the pattern's side, once for every difference (perf27)
    for d, nd, scale in ((diff, None, 0.0), (diff, noise, 1.3), (dim, noise, 1.0)):
        pair = PairBands(d, nd)
        for shift in (-1.0, -0.5, 0.0, 0.5, 1.0):
            move = np.array([[1, 0, shift], [0, 1, 0]], np.float32)
            p = cv2.warpAffine(predicted, move, (predicted.shape[1], predicted.shape[0]), flags=cv2.INTER_LINEAR)
            c = cv2.warpAffine(covered.astype(np.float32), move, (covered.shape[1], covered.shape[0])) > 0.999
            for cov in (c, np.zeros_like(c)):
                shared = match_pattern(pair, skin, p, cov, noise_scale=scale)
                alone = match_pattern(d, skin, p, cov, nd, scale)
                both = match_pattern(pair, skin, patterns.setdefault(shift, PatternBands(p)), cov, noise_scale=scale)
                want = match_pattern_alone(d, skin, p, cov, nd, scale)
                for got in (shared, alone, both):
                    assert got.covered == want[1]
                    assert got.unmatched == want[0] or (np.isnan(got.unmatched) and np.isnan(want[0]))
        assert pair.noise_bands() is None if nd is None else pair.noise_bands() is not None
    # Read at all: the dim difference's fits are all NaN (too little local light), the others finite.
    assert np.isfinite(match_pattern(PairBands(diff, noise), skin, predicted, covered, noise_scale=1.3).unmatched)
    assert np.isnan(match_pattern(PairBands(dim, noise), skin, predicted, covered, noise_scale=1.0).unmatched)


def test_the_non_negative_fit_solves_each_size_of_subsets_at_once_as_each_subset_alone():
    # ``_nonnegative_fit`` solves every subset of the bases of one size in one stacked
    # ``np.linalg.solve`` (perf28), one at a time only when a matrix of that size is singular: the
    # same coefficients, to the bit, as each subset solved on its own (``nonnegative_fit_alone``, the
    # lines before), on well-posed, nearly collinear and exactly singular bases.
    rng = np.random.default_rng(28)
    for t in range(300):
        n = int(rng.integers(50, 2000))
        a = rng.normal(size=(n, 4)) * rng.uniform(0.01, 3.0, 4)
        if t % 3 == 1:
            a[:, 2] = a[:, 1] * 0.5 + a[:, 3] * 0.25 + rng.normal(size=n) * 1e-3
        if t % 3 == 2:
            a[:, 3] = a[:, 1]                       # every subset with both is singular
        y = a @ rng.normal(size=4) + rng.normal(size=n) * rng.uniform(0.01, 2.0)
        got, want = _nonnegative_fit(a, y), nonnegative_fit_alone(a, y)
        assert got.tobytes() == want.tobytes(), t
        assert (got >= 0).all()
