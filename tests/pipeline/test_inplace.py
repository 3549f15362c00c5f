"""``agent.pipeline.inplace``: numpy's variance and standard deviation to the last bit, in a work
array the caller lends."""

import numpy as np
import pytest

from agent.pipeline import inplace


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (129,), (33, 17), (160, 120), (480, 640), (800, 1280), (5, 6, 7)])
def test_var_and_std_are_numpys_bit_for_bit(shape, dtype):
    rng = np.random.default_rng(hash((shape, np.dtype(dtype).str)) % 2**32)
    for scale, offset in ((1.0, 0.0), (37.5, 120.0), (1e-3, -4.0), (3e4, 1e5)):
        x = (rng.standard_normal(shape) * scale + offset).astype(dtype)
        work = np.full_like(x, np.nan)                 # stale contents do not matter
        v, s = inplace.var(x, work), inplace.std(x, np.empty_like(x))
        assert v.dtype == np.var(x).dtype and v.tobytes() == np.var(x).tobytes()
        assert s.dtype == np.std(x).dtype and s.tobytes() == np.std(x).tobytes()


def test_blurred_high_pass_of_an_8_bit_image_as_dot_energy_takes_it():
    rng = np.random.default_rng(3)
    ir = rng.integers(0, 256, (480, 640), dtype=np.uint8).astype(np.float32)
    hp = ir - np.roll(ir, 1, axis=1)
    assert inplace.std(hp, np.empty_like(hp)).tobytes() == np.std(hp).tobytes()


def test_refuses_what_it_cannot_match():
    x = np.ones((4, 6), np.float32)
    with pytest.raises(ValueError):
        inplace.var(x[:, ::2], np.empty((4, 3), np.float32))      # a strided view: another summation order
    with pytest.raises(ValueError):
        inplace.var(x, np.empty((4, 6), np.float64))              # a work array of another dtype
    with pytest.raises(ValueError):
        inplace.var(np.ones((4, 6), np.int32), np.empty((4, 6), np.int32))


def test_bright_end_by_histogram_is_the_percentile_of_the_selected_values():
    from agent.liveness.features import bright_end

    rng = np.random.default_rng(11)
    for k in range(40):
        shape = (480, 640) if k % 4 else (7, 9)
        ir = rng.integers(0, 256 if k % 3 else 40, shape, dtype=np.uint8)
        valid = rng.random(shape) < (0.7 if k % 5 else 0.001)
        for q in (99.0, 50.0, 0.0, 100.0, 97.3):
            want = float(np.percentile(ir[valid], q)) if valid.any() else 0.0
            assert bright_end(ir, valid, q) == want
            assert bright_end(ir, valid[:, ::-1].copy()[:, ::-1], q) == want       # a strided mask: numpy's way
    assert bright_end(np.zeros((5, 5), np.uint8), np.zeros((5, 5), bool)) == 0.0


def test_select_is_boolean_indexing_into_a_kept_array():
    from agent.pipeline import align

    rng = np.random.default_rng(5)
    image = rng.standard_normal((120, 160)).astype(np.float32)
    align.keep_scratch(True)
    try:
        kept = []
        for k, (x0, y0, h, w) in enumerate([(0, 0, 120, 160), (17, 9, 40, 31), (150, 100, 20, 10), (3, 5, 1, 1)]):
            mask = rng.random((h, w)) < (0.4 if k != 3 else 0.0)
            got = inplace.select(image, mask, (x0, y0), "test.select")
            want = image[y0:y0 + h, x0:x0 + w][mask]
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
            kept.append(got.__array_interface__["data"][0] if got.size else None)
            strided = np.asfortranarray(mask)            # not C-contiguous: indexed as before
            assert inplace.select(image, strided, (x0, y0), "test.select").tobytes() == want.tobytes()
        assert kept[1] == kept[2] == kept[0]            # the same kept array each time
    finally:
        align.keep_scratch(False)


def _median_cases():
    """1-D float64 samples as the fusion takes medians of, and the edges of numpy's own path: ties,
    zeros of both signs (a zero sum of the middle two), infinities, NaNs, sizes 1-600."""
    rng = np.random.default_rng(25)
    for n in (*range(1, 40), 64, 101, 128, 255, 468, 600):
        yield rng.standard_normal(n)
        yield rng.integers(-3, 4, n).astype(np.float64)                     # ties and zeros
        yield rng.choice([-0.0, 0.0, 1.5, -1.5], n)                         # signed zeros, opposite pairs
        v = rng.standard_normal(n) * 1e3
        v[rng.random(n) < 0.2] = np.inf
        v[rng.random(n) < 0.2] = -np.inf
        yield v
        w = rng.random(n)
        w[rng.random(n) < 0.3] = np.nan
        yield w
    yield np.array([np.nan] * 5)
    yield np.array([-0.0])
    yield np.array([-0.0, -0.0])
    yield np.array([np.inf, -np.inf])


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_median_is_numpys_bit_for_bit():
    for v in _median_cases():
        for given in (v, list(v), v[::-1]):
            got, want = inplace.median(given), np.median(given)
            assert type(got) is type(want) and got.tobytes() == want.tobytes(), (v, got, want)
    # another dtype or shape, and an empty array: numpy's own answer
    for other in (np.arange(7, dtype=np.float32), np.arange(12.0).reshape(3, 4), np.arange(5)):
        assert np.asarray(inplace.median(other)).tobytes() == np.asarray(np.median(other)).tobytes()


@pytest.mark.filterwarnings("ignore:All-NaN slice")
@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_nanmedian_is_numpys_bit_for_bit():
    for v in _median_cases():
        for given in (v, list(v)):
            got, want = inplace.nanmedian(given), np.nanmedian(given)
            assert type(got) is type(want) and got.tobytes() == want.tobytes(), (v, got, want)


def test_median_leaves_its_input_as_it_was():
    v = np.random.default_rng(4).standard_normal(33)
    before = v.copy()
    inplace.median(v)
    inplace.nanmedian(v)
    assert v.tobytes() == before.tobytes()
