"""The projector's own dot pattern, recorded per camera, and the test that a pair's light carries it.

Physics. An active-stereo camera's projector (a laser through a diffractive element) sends a fixed
pattern of dots into a fixed fan of rays. Seen from the left IR imager, a dot that leaves the
projector at column ``u_p`` lands on a surface at depth ``z`` at column ``u = u_p + f·b/z``, where
``f`` is the imager's focal length in pixels and ``b`` the projector's offset from the imager along
the baseline (rows do not move: the projector sits on the imagers' baseline). So the pattern, once
recorded in *projector* coordinates, predicts where every dot of a lit frame must be from that
frame's own depth, and how bright relative to its neighbours.

The surface multiplies the pattern by its albedo and shading (slow across a dot) and, if it is
skin, spreads each dot under the surface (a millimetre or two): the on-off difference on the face
is ``A(x) · (K * pattern)(x)`` with ``K`` the surface's scattering kernel. Light that is not the
projector's (an attacker's synced LED array or second diffractive element, switched with the
projector) adds a term that is *not* that pattern: at another place, another scale, another
parallax. The measure (:func:`match_pattern`) fits each pair's difference, divided by its local
mean, to the predicted pattern sharp and blurred at a few scales; what the fit explains is the
projector's light as the surface returned it, and the rest is energy at the dots' scale that is not
on the pattern: an attacker's light, and also the surface's own NIR texture under the projector's
light (which multiplies the pattern's flood between the dots as much as the dots). The second is
why the measure is reported and does not score yet (docs/liveness.md, "Review 4 (a)").

Enrolment (:func:`enrol`) records the pattern from the camera's own on-off frames and depth: each
pair's difference divided by its local mean, moved into projector coordinates ``u - f·b/z`` and
averaged over pairs. ``f·b`` is found in the same data: pairs at two depths (a matte board held near
the camera, then the bare wall) agree in projector coordinates only at the true ``f·b``. No model of
any particular camera is read: the sim camera is enrolled from its frames like any other.

The reference file is a NumPy ``.npz`` (no pickles) with exactly the keys of :data:`FILE_KEYS`,
checked strictly on loading (``ReferenceInvalid``); its SHA-256 is the reference's digest.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# The file's format and its checks are ``dotref_file``'s (no OpenCV: the daemon reads the file too).
from agent.liveness.dotref_file import (  # noqa: F401  (re-exported)
    FILE_KEYS,
    FORMAT,
    MARGIN_PX,
    MAX_FILE_BYTES,
    MAX_PARALLAX,
    MAX_SIDE,
    ReferenceFile,
    ReferenceInvalid,
)
from drivers.errors import CaptureAgentError

# The local mean a difference is divided by (its albedo and shading, slow across a dot).
LOCAL_SIGMA = 4.0
# A difference's local mean must reach this (DN) for its pixels to say anything about the pattern.
MIN_LOCAL_DN = 1.0
# Enrolment needs pairs whose depths differ by at least this in 1/z (1/m): at f·b ~ 10 px·m the
# pattern then moves ~5 px between them, which pins f·b to a fraction of a pixel.
MIN_INVERSE_DEPTH_SPREAD = 0.5
# The blurs (sigma, px) of the predicted pattern the fit combines: sharp (a hard surface) to well
# spread (skin's subsurface scattering at kiosk range is 1-2 px).
FIT_SIGMAS = (0.0, 0.8, 1.6, 2.4)
# The band the fit works in: the difference minus its blur at this sigma (the dots and anything of
# their scale; the surface's shading and even light are slower).
BAND_SIGMA = 5.6
# A reference covering less than this share of a pair's skin pixels cannot test it.
MIN_COVERED = 0.9


class EnrolmentFailed(CaptureAgentError):
    code = "LIV_DOT_ENROLMENT_FAILED"


class PatternNotSeen(EnrolmentFailed):
    """The pairs showed no fixed projector pattern (too little of the projector's light, or near and
    far pairs that do not agree): typically bright infrared behind the board (a window, a sunlit
    street) drowning the dots. Its code is :class:`EnrolmentFailed`'s; ``projector-enrol`` adds what
    the technician can change."""


@dataclass(frozen=True)
class DotReference(ReferenceFile):
    """The projector's pattern in projector coordinates (columns ``origin_u`` .. ``origin_u + W``,
    rows as the IR imager's), each covered pixel normalised to its neighbourhood's mean (1 on
    average), with ``f·b`` (px·m) that moves it into the imager's pixels and the imager's ``fx`` it
    was recorded at (a pair at another resolution cannot use it). Its fields, ``fits``, ``load``
    and ``parse`` are :class:`dotref_file.ReferenceFile`'s."""

    # --- the file ----------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, format=np.array(FORMAT), pattern=self.pattern.astype(np.float32),
                            covered=self.covered.astype(np.bool_), parallax_px_m=np.float64(self.parallax_px_m),
                            origin_u=np.int64(self.origin_u), fx=np.float64(self.fx))
        return buf.getvalue()

    def save(self, path: str | Path) -> str:
        """Write the file; returns its SHA-256."""
        raw = self.to_bytes()
        Path(path).write_bytes(raw)
        return hashlib.sha256(raw).hexdigest()

    # --- prediction --------------------------------------------------------------------------------
    def predict(self, x0: int, y0: int, z_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pattern where it must fall on the imager's pixels ``[y0:y0+h, x0:x0+w]`` with depth
        ``z_m`` (metres, finite): ``(pattern, covered)``."""
        h, w = z_m.shape
        cols = np.arange(x0, x0 + w, dtype=np.float32)[None, :] - np.float32(self.origin_u)
        map_x = (cols - np.float32(self.parallax_px_m) / z_m.astype(np.float32)).astype(np.float32)
        map_y = np.broadcast_to(np.arange(y0, y0 + h, dtype=np.float32)[:, None], (h, w)).astype(np.float32)
        pat = cv2.remap(self.pattern, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        cov = cv2.remap(self.covered.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        return pat, cov > 0.999


def normalised(diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A difference divided by its local mean (the surface's albedo and shading, slow across a dot):
    the pattern's relative brightness as the surface returned it, and where the mean is enough."""
    local = cv2.GaussianBlur(diff, (0, 0), LOCAL_SIGMA)
    ok = local > MIN_LOCAL_DN
    return np.where(ok, diff / np.maximum(local, MIN_LOCAL_DN), 0.0).astype(np.float32), ok


# --- enrolment ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EnrolPair:
    """One on-off pair for enrolment: the lit minus the unlit IR frame and the lit frame's depth
    (metres, NaN where none), both in the IR imager's pixels."""
    diff: np.ndarray
    z_m: np.ndarray


def _splat(acc: np.ndarray, wsum: np.ndarray, n: np.ndarray, weight: np.ndarray, up: np.ndarray, rows: np.ndarray,
           width: int) -> None:
    """Add ``n`` with ``weight`` at projector columns ``up`` (fractional, bilinear) of ``rows`` into
    ``acc``/``wsum``."""
    c0 = np.floor(up)
    f = (up - c0).astype(np.float32)
    c0 = c0.astype(np.int64)
    for dc, wt in ((0, 1.0 - f), (1, f)):
        c = c0 + dc
        keep = (weight > 0) & (c >= 0) & (c < width)
        idx = rows[keep] * width + c[keep]
        w = wt[keep] * weight[keep]
        acc += np.bincount(idx, weights=n[keep] * w, minlength=acc.size)
        wsum += np.bincount(idx, weights=w, minlength=acc.size)


@dataclass(frozen=True)
class _Samples:
    """Pairs' pixels that carry weight, flattened together: projector-coordinate accumulation then
    runs over them alone (the f·b search repeats it ~120 times)."""
    rows: np.ndarray             # index among the sampled rows
    cols: np.ndarray
    n: np.ndarray
    weight: np.ndarray
    inv_z: np.ndarray
    height: int                  # rows sampled


def _samples(pairs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], shape: tuple[int, int],
             row_step: int = 1) -> _Samples:
    """The weighted pixels of pairs (``n``, each pixel's weight, inverse depth) on every
    ``row_step``-th row."""
    h, w_img = shape
    sub = slice(None, None, row_step)
    height = len(range(0, h, row_step))
    rows = np.broadcast_to(np.arange(height)[:, None], (height, w_img))
    cols = np.broadcast_to(np.arange(w_img, dtype=np.float64)[None, :], (h, w_img))[sub]
    parts: list[tuple[np.ndarray, ...]] = []
    for n, weight, inv_z in pairs:
        keep = weight[sub] > 0
        parts.append((rows[keep], cols[keep], n[sub][keep], weight[sub][keep], inv_z[sub][keep]))
    if not parts:
        empty = np.zeros(0)
        return _Samples(empty.astype(np.int64), empty, empty, empty, empty, height)
    rows_, cols_, n_, w_, z_ = (np.concatenate([p[i] for p in parts]) for i in range(5))
    return _Samples(rows_, cols_, n_, w_, z_, height)


def _accumulate(samples: _Samples, parallax: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs' normalised differences averaged in projector coordinates at ``parallax`` (f·b):
    (mean image, weight image), one row per sampled row."""
    h, w_img = samples.height, shape[1]
    width = w_img + MARGIN_PX
    acc = np.zeros(h * width)
    wsum = np.zeros(h * width)
    up = samples.cols + MARGIN_PX - parallax * samples.inv_z
    _splat(acc, wsum, samples.n, samples.weight, up, samples.rows, width)
    mean = np.where(wsum > 0, acc / np.maximum(wsum, 1e-9), 0.0)
    return mean.reshape(h, width), wsum.reshape(h, width)


def _band(x: np.ndarray) -> np.ndarray:
    return np.asarray(x - cv2.GaussianBlur(x, (0, 0), 2.0))


def _agreement(near: _Samples, far: _Samples, parallax: float, shape: tuple[int, int]) -> float:
    """Correlation, at the dots' scale, of the near pairs' and the far pairs' patterns moved into
    projector coordinates with ``parallax``: it peaks where both land on the same projector rays."""
    a, wa = _accumulate(near, parallax, shape)
    b, wb = _accumulate(far, parallax, shape)
    both = (wa > 0.5) & (wb > 0.5)
    if both.sum() < 500:
        return -1.0
    # Rows were sampled: the band filter runs along the columns only.
    ba = a - cv2.GaussianBlur(a.astype(np.float32), (0, 1), 2.0).astype(np.float64)
    bb = b - cv2.GaussianBlur(b.astype(np.float32), (0, 1), 2.0).astype(np.float64)
    x, y = ba[both], bb[both]
    den = float(np.sqrt(np.sum(x * x) * np.sum(y * y)))
    return float(np.sum(x * y) / den) if den > 0 else -1.0


def enrol(pairs: Sequence[EnrolPair], fx: float, *, parallax_px_m: float | None = None) -> DotReference:
    """The projector's pattern from on-off pairs of the camera's own frames (see the module doc).

    ``f·b`` is searched (0 .. ``MAX_PARALLAX`` px·m) for the value at which the pairs nearer than
    the median inverse depth and those further agree best; the pairs must then span at least
    ``MIN_INVERSE_DEPTH_SPREAD`` in 1/z (a board at ~0.5 m and the wall behind it), unless
    ``parallax_px_m`` is given (a camera whose projector offset is known). Raises
    ``EnrolmentFailed`` when the pairs cannot determine the pattern."""
    if len(pairs) < 2:
        raise EnrolmentFailed("enrolment needs at least two on-off pairs")
    shape = pairs[0].diff.shape
    prepared = []
    for p in pairs:
        if p.diff.shape != shape or p.z_m.shape != shape:
            raise EnrolmentFailed("enrolment pairs differ in size")
        diff = p.diff.astype(np.float32)
        n, ok = normalised(diff)
        ok &= np.isfinite(p.z_m) & (p.z_m > 0.1)
        if ok.mean() < 0.05:
            continue
        inv_z = np.where(ok, 1.0 / np.where(ok, p.z_m, 1.0), 0.0)
        # Brighter light (a nearer surface) shows the pattern with less noise: weighted by its level.
        weight = np.where(ok, cv2.GaussianBlur(diff, (0, 0), LOCAL_SIGMA), 0.0)
        prepared.append((n, weight, inv_z))
    if len(prepared) < 2:
        raise PatternNotSeen("fewer than two pairs show the projector's light with depth behind it")
    if parallax_px_m is None:
        # Split the pixels (not the pairs: a board fills part of a frame) at the middle of the
        # inverse depths seen; the two groups must be far enough apart to move the pattern.
        inv = np.concatenate([p[2][p[1] > 0][::17] for p in prepared])
        lo, hi = (float(np.percentile(inv, q)) for q in (2, 98))
        mid = (lo + hi) / 2
        near_pairs = [(p[0], np.where(p[2] > mid, p[1], 0.0), p[2]) for p in prepared]
        far_pairs = [(p[0], np.where(p[2] <= mid, p[1], 0.0), p[2]) for p in prepared]
        n_near = sum(int((x[1] > 0).sum()) for x in near_pairs)
        spread = hi - lo
        if n_near < 2000 or spread < MIN_INVERSE_DEPTH_SPREAD:
            raise EnrolmentFailed(f"the pairs' depths span {spread:.2f} 1/m in inverse depth ({n_near} near pixels), "
                                  f"under {MIN_INVERSE_DEPTH_SPREAD}: enrol with a board near the camera and the "
                                  "wall behind it")
        # Each search on a share of the rows (every 8th for the whole range, every 4th within 1 px·m,
        # every 2nd within 0.1): the agreement's peak is ~1 px·m wide, and every row has hundreds of dots.
        best, agree = 0.0, -1.0
        for step, span, rows in ((1.0, None, 8), (0.1, 1.0, 4), (0.02, 0.1, 2)):
            grid = (np.arange(0.0, MAX_PARALLAX + 1e-9, step) if span is None else
                    np.arange(max(best - span, 0.0), min(best + span, MAX_PARALLAX) + 1e-9, step))
            near, far = _samples(near_pairs, shape, row_step=rows), _samples(far_pairs, shape, row_step=rows)
            scores = [_agreement(near, far, float(c), shape) for c in grid]
            best, agree = float(grid[int(np.argmax(scores))]), max(scores)
        parallax_px_m = best
        if agree < 0.3:
            raise PatternNotSeen(f"near and far pairs agree at best {agree:.2f} (at f·b "
                                  f"{parallax_px_m:.1f} px·m): no fixed projector pattern seen")
    if not 0.0 <= parallax_px_m <= MAX_PARALLAX:
        raise EnrolmentFailed(f"f·b {parallax_px_m} px·m outside 0..{MAX_PARALLAX}")
    mean, wsum = _accumulate(_samples(prepared, shape), parallax_px_m, shape)
    covered = wsum >= 1.0
    pattern = np.where(covered, np.clip(mean, 0.0, 100.0), 0.0).astype(np.float32)
    return DotReference(pattern, covered, float(parallax_px_m), -MARGIN_PX, float(fx))


# --- the measure ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PatternMatch:
    """One pair's difference fitted to the projector's predicted pattern (:func:`match_pattern`).

    ``unmatched``: the band energy the fit leaves (noise removed) over the band energy it explains:
    light at the dots' scale that is not on the projector's pattern (an attacker's synced blobs, and
    also the surface's own NIR texture under the projector's light, which multiplies the pattern's
    flood as much as its dots). ``covered``: the share of the skin the reference could predict
    (under ``MIN_COVERED`` ``unmatched`` is NaN)."""
    unmatched: float
    covered: float


def _bands(x: np.ndarray) -> np.ndarray:
    return np.asarray(x - cv2.GaussianBlur(x, (0, 0), BAND_SIGMA))


@functools.cache
def _subsets(k: int) -> tuple[list[list[int]], list[np.ndarray]]:
    """Every non-empty subset of ``k`` bases, in the order of their bit masks 1 .. 2**k - 1, and the
    same subsets grouped by size (one index array of a row per subset, each size's in that order)."""
    masks = [[i for i in range(k) if mask >> i & 1] for mask in range(1, 1 << k)]
    return masks, [np.array([m for m in masks if len(m) == size], np.intp) for size in range(1, k + 1)]


def _subset_solutions(g: np.ndarray, b: np.ndarray) -> dict[tuple[int, ...], np.ndarray | None]:
    """``np.linalg.solve`` of ``g`` and ``b`` restricted to each subset of the bases (None where that
    is singular): each size's subsets solved in one stacked call (the same LAPACK solve of each
    matrix as one call per subset, to the bit), one by one when some matrix of a size is singular."""
    by_size = _subsets(b.shape[0])[1]
    out: dict[tuple[int, ...], np.ndarray | None] = {}
    for idx in by_size:
        try:
            solved = np.linalg.solve(g[idx[:, :, None], idx[:, None, :]], b[idx][..., None])[..., 0]
        except np.linalg.LinAlgError:
            for row in idx:
                try:
                    out[tuple(row.tolist())] = np.linalg.solve(g[np.ix_(row, row)], b[row])
                except np.linalg.LinAlgError:
                    out[tuple(row.tolist())] = None
            continue
        out.update(zip(map(tuple, idx.tolist()), solved, strict=True))
    return out


def _nonnegative_fit(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares ``a @ c ~ y`` with every ``c >= 0``: a surface's scattering kernel is a
    non-negative mixture of the blurs (a negative weight would sharpen, which no surface does, and
    would let light off the pattern push the reading either way). The bases are few, so every
    subset of them is solved (``_subset_solutions``) and the best admissible one kept."""
    g = a.T @ a
    b = a.T @ y
    k = a.shape[1]
    best, best_cost = np.zeros(k), float(y @ y)
    solutions = _subset_solutions(g, b)
    for idx in _subsets(k)[0]:
        c = solutions[tuple(idx)]
        if c is None or (c < 0).any():
            continue
        full = np.zeros(k)
        full[idx] = c
        cost = float(y @ y - 2 * full @ b + full @ g @ full)
        if cost < best_cost:
            best, best_cost = full, cost
    return best


class PairBands:
    """What :func:`match_pattern` reads of one pair's difference (and its noise pair's) whatever the
    pattern it is fitted to: its local mean, the difference over it and their bands, each worked
    out once, when first read, for every pattern the same difference is fitted to (the measure tries
    the predicted pattern at several shifts: ``features.PATTERN_SHIFTS``). The numbers are those a
    single fit computes. One thread's (no lock: a judge thread reads its own pairs)."""

    def __init__(self, diff: np.ndarray, noise_diff: np.ndarray | None = None):
        self.diff, self.noise_diff = diff, noise_diff
        self._local: tuple[np.ndarray, np.ndarray] | None = None
        self._band: np.ndarray | None = None
        self._noise_bands: np.ndarray | None = None

    def local(self) -> tuple[np.ndarray, np.ndarray]:
        """The difference's local mean and where it is over ``MIN_LOCAL_DN``."""
        if self._local is None:
            local = np.asarray(cv2.GaussianBlur(self.diff, (0, 0), LOCAL_SIGMA))
            self._local = local, local > MIN_LOCAL_DN
        return self._local

    def bands(self) -> np.ndarray:
        """The band of the difference over its local mean."""
        if self._band is None:
            self._band = _bands(self._relative(self.diff))
        return self._band

    def noise_bands(self) -> np.ndarray | None:
        """The band of the noise pair's difference over the pair's local mean (None: no noise pair)."""
        if self._noise_bands is None and self.noise_diff is not None:
            self._noise_bands = _bands(self._relative(self.noise_diff))
        return self._noise_bands

    def _relative(self, x: np.ndarray) -> np.ndarray:
        local, lit = self.local()
        return np.where(lit, x / np.maximum(local, MIN_LOCAL_DN), 0.0).astype(np.float32)


class PatternBands:
    """What :func:`match_pattern` reads of the predicted pattern whatever difference is fitted to it:
    the band of the pattern blurred at each of ``FIT_SIGMAS`` (the fit's bases, as whole arrays;
    each fit takes them on its own pixels), worked out once, when first read, or ahead by
    :meth:`bases` on another thread (the judge reads a lit frame's side of its pair before the
    unlit frame comes). The numbers are those a single fit computes. Not locked: worked out on one
    thread, then handed over whole (a judge task's result)."""

    def __init__(self, predicted: np.ndarray):
        self.predicted = predicted
        self._bases: list[np.ndarray] | None = None

    def bases(self) -> list[np.ndarray]:
        """The band of the pattern blurred at each of ``FIT_SIGMAS`` (the sharp one as it is)."""
        if self._bases is None:
            p = self.predicted
            self._bases = [_bands(p if s == 0.0 else cv2.GaussianBlur(p, (0, 0), s)) for s in FIT_SIGMAS]
        return self._bases


def match_pattern(diff: np.ndarray | PairBands, skin: np.ndarray, predicted: np.ndarray | PatternBands,
                  covered: np.ndarray, noise_diff: np.ndarray | None = None, noise_scale: float = 0.0
                  ) -> PatternMatch:
    """Fit the on-off difference on the skin to the predicted pattern, sharp and blurred.

    The difference divided by its local mean is the pattern as the surface returned it; in the band
    below ``BAND_SIGMA`` it is fitted by least squares to the predicted pattern blurred at each of
    ``FIT_SIGMAS`` (a hard surface: the sharp one; skin: the spread ones), the weights non-negative.
    The residual's band energy, less the noise's (``noise_diff``, two frames in one projector state,
    its energy times ``noise_scale``), over the explained band energy is ``unmatched``. Light the
    projector did not send is uncorrelated with its pattern, so it lands in the residual whatever
    its scale. ``diff`` may be given as :class:`PairBands` (with its noise pair; ``noise_diff`` is
    then not read): what is read of it is worked out once for every pattern it is fitted to; and
    ``predicted`` as :class:`PatternBands`: what is read of the pattern, once for every difference."""
    nan = float("nan")
    pair = diff if isinstance(diff, PairBands) else PairBands(diff, noise_diff)
    covered_share = float(covered[skin].mean()) if skin.any() else 0.0
    if covered_share < MIN_COVERED:
        return PatternMatch(nan, covered_share)
    ok = skin & covered & pair.local()[1]
    if ok.sum() < 50:
        return PatternMatch(nan, covered_share)
    pattern = predicted if isinstance(predicted, PatternBands) else PatternBands(predicted)
    a = np.stack([b[ok] for b in pattern.bases()], axis=1).astype(np.float64)
    y = pair.bands()[ok].astype(np.float64)
    coef = _nonnegative_fit(a, y)
    fit = a @ coef
    resid = y - fit
    noise = 0.0
    if (noise_bands := pair.noise_bands()) is not None:
        noise = noise_scale * float(np.var(noise_bands[ok]))
    explained_energy = float(np.var(fit))
    unmatched = max(float(np.var(resid)) - noise, 0.0) / explained_energy if explained_energy > 0 else float("inf")
    return PatternMatch(unmatched, covered_share)
