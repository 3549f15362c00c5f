"""numpy's reductions to the last bit, with the caller's temporary instead of a new array.

``np.std(x)`` makes an array of ``x``'s size for the deviations from the mean (numpy's
``_methods._var``); on a whole frame that is a frame-sized allocation per call. :func:`std` does the
same operations in the same order and dtypes in an array the caller lends (``np.var`` likewise) (a kept scratch array,
``agent.pipeline.align.scratch``), so its result is numpy's, bit for bit
(``tests/pipeline/test_inplace.py`` holds it to numpy's on floats of every size and layout it is
used with). :func:`select` is boolean indexing into a kept array likewise.

:func:`median` and :func:`nanmedian` are ``np.median`` and ``np.nanmedian`` of a short 1-D float64
sequence, to the bit, without numpy's generic path around them (``_ureduce``, ``mean`` of the
middle two, the NaN check's own pass): on the 10-500 values the fusion takes medians of (about 75
a verdict, on the thread that waits for it) that path cost 10-20 us a call, the partition itself
about 1-3 (docs/liveness.md, "The other judge thread, the window's grids and the fusion's medians").
"""

from __future__ import annotations

import numpy as np


def var(x: np.ndarray, work: np.ndarray) -> np.floating:
    """``np.var(x)`` (all elements, ``ddof=0``) of a C-contiguous floating array, its deviations
    written into ``work`` (same shape and dtype, C-contiguous; its contents are overwritten)."""
    if x.dtype.kind != "f" or work.dtype != x.dtype or work.shape != x.shape:
        raise ValueError("var needs a floating array and a work array of its shape and dtype")
    if not (x.flags.c_contiguous and work.flags.c_contiguous):
        raise ValueError("var needs C-contiguous arrays (numpy's summation order depends on the layout)")
    count = np.intp(x.size)                          # as numpy counts the items (an intp, not an int)
    mean = np.add.reduce(x, axis=None, keepdims=True)
    np.true_divide(mean, count, out=mean, casting="unsafe")
    np.subtract(x, mean, out=work)
    np.square(work, out=work)
    total = np.add.reduce(work, axis=None)
    return total.dtype.type(total / np.maximum(count, 0))


def std(x: np.ndarray, work: np.ndarray) -> np.floating:
    """``np.std(x)``: the square root of :func:`var`, as numpy takes it."""
    v = var(x, work)
    return v.dtype.type(np.sqrt(v))


def median(values: object) -> np.floating:
    """``np.median(values)`` of a 1-D float64 sequence (an array, or a list of floats), to the bit:
    the middle value, or the middle two's sum over 2, read off a partition (numpy's own, in a copy).

    Where numpy's result rests on what its ``mean`` does beyond that sum (a zero sum, whose sign
    numpy's reduction decides from its start at 0.0), on a NaN (numpy's answer, NaN, by its own
    path) or on another dtype or shape, numpy is asked: the answer is always ``np.median``'s.
    ``tests/pipeline/test_inplace.py`` holds it to numpy's on sizes 1-600 with ties, zeros of both
    signs, infinities and NaNs."""
    a = np.asarray(values)
    n = a.size
    if a.dtype != np.float64 or a.ndim != 1 or n == 0:
        return np.median(a)
    h = n // 2
    p = a.copy()
    p.partition((h - 1, h, n - 1) if n % 2 == 0 else (h, n - 1))     # NaN sorts last
    if p[n - 1] != p[n - 1]:
        return np.median(a)
    r = p[h] if n % 2 else (p[h - 1] + p[h]) / 2
    if r == 0:
        return np.median(a)
    return r


def nanmedian(values: object) -> np.floating:
    """``np.nanmedian(values)`` of a 1-D float64 sequence, to the bit: :func:`median` of its values
    that are not NaN (numpy's takes the median of the same values, moved about). All NaN, empty,
    or another dtype or shape: numpy's own (its warning and NaN)."""
    a = np.asarray(values)
    if a.dtype != np.float64 or a.ndim != 1:
        return np.nanmedian(a)
    kept = a[~np.isnan(a)]
    if kept.size == 0:
        return np.nanmedian(a)
    return median(kept)


def select(image: np.ndarray, mask: np.ndarray, origin: tuple[int, int], name: str) -> np.ndarray:
    """``image[y0:y0 + h, x0:x0 + w][mask]`` for a (h, w) ``mask`` at ``origin`` (x0, y0): the
    values in row-major order, as boolean indexing lists them, in the calling thread's kept array
    ``name`` (``agent.pipeline.align.scratch``: valid until the next call with that name on the
    thread). numpy selects only into a new array (boolean indexing, ``compress``); OpenCV lists the
    mask's pixels into a kept one (``findNonZero``) and ``take`` reads them. A mask or image that is
    not C-contiguous is indexed as before, into a new array."""
    import cv2  # here: the daemon imports this module's reductions without OpenCV

    from agent.pipeline.align import scratch

    x0, y0 = origin
    h, w = mask.shape
    if not (mask.dtype == np.bool_ and mask.flags.c_contiguous and image.flags.c_contiguous and image.ndim == 2):
        return image[y0:y0 + h, x0:x0 + w][mask]
    n = int(np.count_nonzero(mask))
    out = scratch(name, (n,), image.dtype)
    if n == 0:
        return out
    xy = cv2.findNonZero(mask.view(np.uint8), scratch(f"{name}.xy", (n, 1, 2), np.int32))
    flat = scratch(f"{name}.flat", (n,), np.intp)
    np.copyto(flat, xy[:, 0, 1])
    flat += y0
    flat *= image.shape[1]
    flat += xy[:, 0, 0]
    flat += x0
    return np.take(image.reshape(-1), flat, out=out, mode="clip")
