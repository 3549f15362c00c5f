"""Depth-to-color registration (T/IIFAA 3001.1 §7.5 g), as pure functions.

Each depth pixel is a small surface patch at its measured depth. It is deprojected with the depth
intrinsics, moved into the color camera by the extrinsics, and projected with the color intrinsics,
lens distortion included. Where several depth pixels land on one color pixel the nearest surface
wins (z-buffer); a depth pixel covers its footprint in the color image (a 2x2 minimum filter fills
the gaps between splatted centres, since color has ~1.6x the depth camera's angular resolution);
color pixels no depth pixel reaches stay holes: depth is never invented.

Speed: for a fixed calibration the color position of a depth pixel is a function of inverse depth
w = 1/z only. :class:`AlignmentTable` precomputes, per depth pixel, the exact quadratic in w through
z = ∞, 0.5 m and 0.25 m (sub-0.1 px error over 0.2–3 m), so a frame costs a few vector operations
on the depth pixels that can reach the color image at all, one uint16 z-buffer scatter, and the 2x2
filter as shifted slices of one flat, bordered buffer. Selections are written as arithmetic (a
product with a comparison) rather than masked writes or ``np.where``, which cost several times as
much on 300k pixels. Streams that share depth's imager (IR) are carried through the same z-buffer,
in 64-bit keys whose depth and carried value are whole uint16 lanes, read in place. The work goes
in pieces of ``BAND_CELLS`` elements (candidate depth pixels, then color rows), whose temporaries
stay in a core's cache from one step to the next: every step is element by element, so the values
are those of one piece. ``python -m bench syncalign`` times it against librealsense's ``rs.align``
(docs/liveness.md, "The alignment in pieces").

Memory: a process that aligns every frameset of a session (the liveness worker) calls
``keep_scratch(True)``: each thread then keeps its temporaries (about 4.4 MiB at 640x480: the
z-buffer and the depth units frame-sized, the rest a piece's) from one
frameset to the next instead of allocating ~25 frame-sized arrays per frameset, and pixels that miss
the colour image go to a sink cell of the z-buffer instead of being selected out (a selection is a
new array per frame). The kept temporaries never leave the call that fills them; what a caller keeps
(aligned depth in units, IR) is an array of its own, lent by a ``BufferPool`` only once nobody holds
the aligned frameset it was part of; the depth is kept once, in units, and its metres are made
where they are read, only the region read (``AlignedFrameSet.depth_m``). ``release_scratch()``
drops both (the worker: whenever a session ends, once none of its alignments runs any more, so
nothing of a session stays between sessions). One-off alignments (the daemon's probe, tools) keep nothing.
"""

from __future__ import annotations

import mmap
import sys
import threading
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from agent.pipeline.camera_model import deproject, pixel_rays, project
from drivers.buffers import BufferPool
from drivers.errors import CaptureAgentError
from drivers.frame import Extrinsics, Frame, FrameSet, Intrinsics, StreamKind

_INDEX_BITS = 20                 # up to 1,048,576 depth pixels (1280x800 fits)
# A z-buffer key carrying a value: depth << 48 | depth pixel index << 16 | carried value, so the
# depth and the carried value are whole uint16 lanes of the key, read in place (``_lane``).
_KEY_DEPTH_SHIFT = 48
# Elements of one piece of a frame's alignment (candidate depth pixels, or color pixels by whole rows):
# a piece's temporaries (about 30 bytes an element) then stay in a core's cache between its steps.
BAND_CELLS = 24_000
_HI, _LO = (3, 0) if sys.byteorder == "little" else (0, 3)    # those lanes among a key's four uint16
MIN_Z_M = 0.1                    # nearer depth is not registered (below every depth camera's range)


class AlignmentError(CaptureAgentError):
    """A frameset lacks what alignment needs (streams, calibration) or its inputs disagree."""

    code = "SYN_ALIGN_INPUT"


@dataclass(frozen=True)
class AlignmentTable:
    """Per-depth-pixel coefficients: u_c = u0 + u1*w + u2*w², v_c likewise, z_c = z*az + tz."""

    u: tuple[np.ndarray, np.ndarray, np.ndarray]
    v: tuple[np.ndarray, np.ndarray, np.ndarray]
    az: np.ndarray
    tz: float
    color: Intrinsics
    depth: Intrinsics
    # The depth pixels that can land in the color image at any depth >= MIN_Z_M, and their
    # coefficients, compressed: the per-frame work runs on these only (a wide-angle depth imager
    # sees much that a narrower color camera does not). u0/v0 carry +1.5 so that truncation rounds
    # to nearest, one pixel to the right and down (the z-buffer has a border row and column).
    cand: np.ndarray = field(init=False)
    cand_key: np.ndarray = field(init=False)      # the same indices as uint64 (a view where intp is 64-bit)
    cu: tuple[np.ndarray, np.ndarray, np.ndarray] = field(init=False)
    cv: tuple[np.ndarray, np.ndarray, np.ndarray] = field(init=False)
    # Depth along the color axis from depth along the depth axis, per color pixel:
    # z_c = (z_d + r3t) * color_axis with r3 = R[:, 2]: X_d = R^T (X_c - t), so z_d = z_c (r3 . ray_c) - r3 . t.
    color_axis: np.ndarray
    r3t: float = 0.0

    def __post_init__(self) -> None:
        self._compress()

    def _compress(self) -> None:
        ws = np.linspace(0.0, 1.0 / MIN_Z_M, 24, dtype=np.float32)
        w, h = self.color.width, self.color.height
        reach = np.zeros(self.u[0].shape, bool)
        for wi in ws:
            uc = self.u[0] + wi * (self.u[1] + wi * self.u[2])
            vc = self.v[0] + wi * (self.v[1] + wi * self.v[2])
            reach |= (uc > -3) & (uc < w + 2) & (vc > -3) & (vc < h + 2)
        cand = np.flatnonzero(reach)
        pick = lambda arr: np.ascontiguousarray(arr.ravel()[cand])  # noqa: E731
        cand = cand.astype(np.intp)
        object.__setattr__(self, "cand", cand)
        object.__setattr__(self, "cand_key", cand.view(np.uint64) if cand.itemsize == 8 else cand.astype(np.uint64))
        object.__setattr__(self, "cu", (pick(self.u[0]) + np.float32(1.5), pick(self.u[1]), pick(self.u[2])))
        object.__setattr__(self, "cv", (pick(self.v[0]) + np.float32(1.5), pick(self.v[1]), pick(self.v[2])))


# The tables a process keeps: 13.8 MiB each at 640x480. Two hold the calibration in use and the one
# before it (a camera that re-reads its calibration, a second rig); at 8 a camera whose calibration
# changes now and then piled up ~110 MiB (issue 20). A third calibration evicts the least recently used.
TABLES_KEPT = 2


@lru_cache(maxsize=TABLES_KEPT)
def alignment_table(depth: Intrinsics, color: Intrinsics, depth_to_color: Extrinsics) -> AlignmentTable:
    x, y = pixel_rays(depth)
    rays = np.stack([x, y, np.ones_like(x)], axis=-1)               # point at depth z is z * ray
    R, t = depth_to_color.R, depth_to_color.t
    a = rays @ R.T                                                   # direction in the color frame

    def uv_at(w: float) -> np.ndarray:
        # Point z*ray -> z*a + t; dividing by z: a + t*w (projection is scale-invariant).
        return project(a + t * w, color)

    w1, w2 = 2.0, 4.0                                                # 0.5 m and 0.25 m
    p0, p1, p2 = uv_at(0.0), uv_at(w1), uv_at(w2)
    # Quadratic through (0, p0), (w1, p1), (w2, p2).
    c2 = ((p2 - p0) / w2 - (p1 - p0) / w1) / (w2 - w1)
    c1 = (p1 - p0) / w1 - c2 * w1
    f32 = lambda arr: np.ascontiguousarray(arr, dtype=np.float32)  # noqa: E731
    xc, yc = pixel_rays(color)
    r3 = R[:, 2]
    color_axis = 1.0 / (r3[0] * xc + r3[1] * yc + r3[2])
    return AlignmentTable((f32(p0[..., 0]), f32(c1[..., 0]), f32(c2[..., 0])),
                          (f32(p0[..., 1]), f32(c1[..., 1]), f32(c2[..., 1])),
                          f32(a[..., 2]), float(t[2]), color, depth, color_axis=f32(color_axis),
                          r3t=float(r3 @ t))


@lru_cache(maxsize=8)
def _inverse_depth_lut(depth_scale: float) -> np.ndarray:
    z = np.arange(65536, dtype=np.float64) * depth_scale
    with np.errstate(divide="ignore"):
        w = np.where(z > 0, 1.0 / np.maximum(z, 1e-12), 0.0)
    return w.astype(np.float32)


@lru_cache(maxsize=4)
def _pixel_index(shape: tuple[int, int]) -> np.ndarray:
    return np.arange(shape[0] * shape[1], dtype=np.int32).reshape(shape)


def forget_calibrations() -> None:
    """Drop every cached alignment table and pixel index (a camera's calibration held in memory):
    for a process that aligned frames of a calibration it will not see again (the liveness
    worker's synthetic warm-up)."""
    alignment_table.cache_clear()
    _pixel_index.cache_clear()


def _stride(nbytes: int) -> int:
    """Bytes a scratch array of ``nbytes`` takes of a thread's block (64-byte aligned)."""
    return -(-nbytes // 64) * 64


class _Scratch:
    """One thread's reused arrays for :func:`_splat` and :func:`_to_color_axis`, by name: each is
    taken again only by the next call on the same thread, and nothing of them leaves the call that
    filled it (the results the caller keeps are arrays of their own). ``size``: bytes of one block
    to carve them from (what this thread used last session), so that a session's temporaries are one
    allocation per thread; what does not fit is an array of its own."""

    def __init__(self, size: int = 0) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        # A mapping of its own, not malloc's: given back whole when the last view goes, and it does
        # not raise malloc's mmap threshold (which follows the largest block freed where it is not
        # fixed; the daemon and the worker fix it, agent/allocator.py), so the frame-sized arrays of
        # a session stay mapped and unmapped apart, as before.
        self.block = np.frombuffer(mmap.mmap(-1, size), np.uint8) if size else None
        self.size = size
        self.used = 0                                   # bytes of the block carved
        self.carved = 0                                 # bytes of every array made, as carved

    @property
    def needed(self) -> int:
        """Bytes the next session's block takes (``release_scratch``): every array this thread
        made, outgrown ones too (a session like this one then makes them all in the block), never
        fewer than this block's, so that it is the most any phase needed and not the last phase's
        (a quality loop needs less than a window, whose measurements would then begin outside the
        block). A block's pages are only in memory once written."""
        return max(self.size, self.carved)

    def get(self, name: str, n: int, dtype) -> np.ndarray:
        a = self.arrays.get(name)
        if a is None or a.dtype != dtype or a.size < n:
            # Outgrown (a face's region grows as the face comes nearer): a quarter more than asked,
            # so that a face coming closer frame by frame does not take a new one each frame.
            n_new = n + n // 4 if a is not None and a.dtype == dtype else n
            a = self.arrays[name] = self._new(n_new, np.dtype(dtype))
        return a[:n]

    def _new(self, n: int, dtype: np.dtype) -> np.ndarray:
        nbytes = n * dtype.itemsize
        stride = _stride(nbytes)
        self.carved += stride
        if self.block is not None and self.used + stride <= self.block.size:
            a = self.block[self.used:self.used + nbytes].view(dtype)
            self.used += stride
            return a
        return np.empty(n, dtype)


class _Fresh:
    """No scratch kept: every array new, as any one-off alignment wants (the daemon's probe, tools)."""

    @staticmethod
    def get(name: str, n: int, dtype) -> np.ndarray:
        return np.empty(n, dtype)


_FRESH = _Fresh()
# By thread object, not ``threading.get_ident()``: an ended thread's ident is given to the next
# thread started (glibc reuses its stack), which would inherit the dead thread's arrays and bytes.
# The key holds the ended thread's object until ``release_scratch``, so no live thread shares it.
_SCRATCH: dict[threading.Thread, _Scratch] = {}      # only while ``keep_scratch(True)``
# The results' arrays (aligned depth units, IR) while ``keep_scratch(True)``: one is lent again
# only once nobody holds the aligned frameset it was part of (``drivers/buffers.py``). A session's
# quality loop drops each frameset once assessed; a judge keeps its window's, which get new ones.
_RESULTS = BufferPool(per_shape=2)
_keep = False
# Bytes each thread's temporaries took last session, by thread: its next block. By thread, since
# threads need very different amounts: a judge thread aligns and measures (about 28 MiB at 640x480
# before the alignment went in pieces, 17.6 of them the alignment's, now 4.4), the worker's judge
# loop only reads the face grids (0.14 MiB).
_scratch_sizes: dict[threading.Thread, int] = {}


def keep_scratch(on: bool) -> None:
    """Keep each thread's alignment temporaries between calls (the liveness worker, which aligns
    every frameset of a session on its judge threads), or not (the default: one-off alignments).
    Off drops what is kept."""
    global _keep
    _keep = on
    if not on:
        release_scratch()
        _scratch_sizes.clear()


def release_scratch() -> None:
    """Drop every thread's kept temporaries and the results' pool (at a session's end: no memory of
    a session kept between sessions), remembering how much a thread used for the next session's
    blocks (each thread its own; a thread that kept none this session keeps its size, one that has
    ended is forgotten). Call it once no alignment of the session is running or queued (the worker
    closes the session's judge first, ``Judge.close``): one that runs afterwards keeps its
    temporaries and results again, and one running now may register new ones on its next step."""
    for thread, s in list(_SCRATCH.items()):
        _scratch_sizes[thread] = s.needed
    for thread in [t for t in _scratch_sizes if not t.is_alive()]:
        del _scratch_sizes[thread]
    _SCRATCH.clear()
    _RESULTS.clear()


def _result(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A new array for a result the caller keeps (one nobody holds any more, from ``_RESULTS``,
    while temporaries are kept)."""
    return _RESULTS.take(shape, dtype) if _keep else np.empty(shape, dtype)


def _scratch() -> _Scratch | _Fresh:
    if not _keep:
        return _FRESH
    thread = threading.current_thread()
    s = _SCRATCH.get(thread)
    if s is None:
        # The thread's own size from its last session; a thread new to it, the most any took.
        size = _scratch_sizes.get(thread)
        s = _SCRATCH[thread] = _Scratch(size if size is not None else max(_scratch_sizes.values(), default=0))
    return s


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A C-contiguous temporary of ``shape`` and ``dtype`` for the calling thread, its contents stale.

    While temporaries are kept (``keep_scratch(True)``: the liveness worker) it is the thread's kept
    array named ``name``, the same memory at every call with that name on this thread until
    ``release_scratch()``; otherwise a new array. So a caller fills it, reads it and lets go of it
    before it returns (nothing that outlives the call may be a view of it), and names it apart from
    every other temporary alive on the thread meanwhile (the convention: ``module.function.what``).
    The per-frameset measurements beyond alignment (``agent/liveness``, ``agent/face``) use it for
    their frame- and face-sized temporaries (docs/liveness.md, "Per-frame allocations")."""
    n = 1
    for d in shape:
        n *= int(d)
    return _scratch().get(name, n, dtype).reshape(shape)


def _lane(keys: np.ndarray, lane: int) -> np.ndarray:
    """The ``lane``-th uint16 of each uint64 of ``keys`` (1-D, contiguous): a strided view."""
    return keys.view(np.uint16)[lane::4]


def _splat(depth_u16: np.ndarray, depth_scale: float, table: AlignmentTable, carry: np.ndarray | None = None,
           empty: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Per color pixel: the winning depth value (units, 0 = none) and, with ``carry`` (an array of
    the depth image's shape: IR, or pixel indices), the carried value of a depth pixel that won
    (``empty`` where none). Among depth pixels of equal depth on one color pixel any one wins:
    they carry the same surface.

    The buffers are bordered (an empty row 0 and column 0) and flat, so the 2x2 neighbourhood of
    every pixel is four contiguous, shifted slices of one array. The work goes in pieces of about
    ``BAND_CELLS`` elements (candidate depth pixels, then rows of the color image), so that a
    piece's temporaries stay in the core's cache between its steps; every step is element by
    element (the 2x2 minimum reads the z-buffer, whole before the first row is resolved), so the
    values are the same as in one piece. Every temporary is the thread's scratch
    (:func:`keep_scratch`), the depth units too: a strided (h, w) view of it, valid until this
    thread aligns again, so the caller reads it at once. The carried values are a new array."""
    h, w = table.color.height, table.color.width
    s = _scratch()
    count = table.cand.size
    kdt: type[np.unsignedinteger]
    if carry is None:
        kdt, shift = np.uint16, 0
    else:
        if carry.dtype.itemsize > 2 and carry.dtype != np.int32:
            raise AlignmentError("only 8/16-bit values or pixel indices can be carried")
        kdt, shift = np.uint64, _KEY_DEPTH_SHIFT
    wp = w + 1
    n = (h + 1) * wp
    # Empty: depth field 65535 (decoded as "no depth"), everything below it all ones. One spare
    # cell at the end so the result reshapes to (h, wp), and a sink after it, where depth pixels
    # that miss the image (or have no depth) go.
    zbuf = s.get("zbuf", n + 2, kdt)
    zbuf.fill((65536 << shift) - 1)
    for i0 in range(0, count, BAND_CELLS):
        _scatter(depth_u16, depth_scale, table, slice(i0, min(i0 + BAND_CELLS, count)), carry, zbuf, shift, s)
    units = s.get("units", h * wp, np.uint16)
    carried: np.ndarray | None = None
    if carry is not None:
        carried = _result((h, w), carry.dtype if carry.dtype.itemsize <= 2 else np.int32)
    rows = max(1, min(h, BAND_CELLS // wp))
    for r0 in range(0, h, rows):
        r1 = min(r0 + rows, h)
        _resolve(zbuf, r0, r1, w, shift, units[r0 * wp:r1 * wp], None if carried is None else carried[r0:r1],
                 empty, s)
    return units.reshape(h, wp)[:, :w], carried


def _scatter(depth_u16: np.ndarray, depth_scale: float, table: AlignmentTable, part: slice,
             carry: np.ndarray | None, zbuf: np.ndarray, shift: int, s: _Scratch | _Fresh) -> None:
    """The candidate depth pixels ``part`` (of ``table.cand``) into the z-buffer: each one's key
    (its depth; with ``carry``, then its pixel index and the carried value) at its color pixel,
    the minimum kept."""
    h, w = table.color.height, table.color.width
    cand = table.cand[part]
    count = cand.size
    f32 = np.float32
    # np.take with an ``out`` and mode "raise" buffers through a temporary; the indices are in
    # range by construction (candidates of this table; uint16 depths into a 65536-entry table).
    d = np.take(depth_u16.ravel(), cand, out=s.get("d", count, np.uint16), mode="clip")
    # np.take makes its indices intp: here, in the keys' buffer (not yet in use), not anew.
    index = s.get("key", count, np.uint64).view(np.intp)
    np.copyto(index, d)
    w_inv = np.take(_inverse_depth_lut(depth_scale), index, out=s.get("w_inv", count, f32), mode="clip")
    u0, u1, u2 = (c[part] for c in table.cu)
    v0, v1, v2 = (c[part] for c in table.cv)
    uc = np.multiply(u2, w_inv, out=s.get("uc", count, f32))
    uc += u1
    uc *= w_inv
    uc += u0
    vc = np.multiply(v2, w_inv, out=s.get("vc", count, f32))
    vc += v1
    vc *= w_inv
    vc += v0
    ui = s.get("ui", count, np.int32)               # = round(u) + 1: column in the bordered buffer
    np.copyto(ui, uc, casting="unsafe")             # truncation, as astype
    vi = s.get("vi", count, np.int32)
    np.copyto(vi, vc, casting="unsafe")
    ok, t = s.get("ok", count, np.bool_), s.get("ok_part", count, np.bool_)
    np.greater_equal(ui, 1, out=ok)
    ok &= np.less_equal(ui, w, out=t)
    ok &= np.greater_equal(vi, 1, out=t)
    ok &= np.less_equal(vi, h, out=t)
    ok &= np.greater(d, 0, out=t)
    wp = w + 1
    sink = (h + 1) * wp + 1                         # a cell past the image: where pixels that miss it go
    vi *= wp
    vi += ui                                        # flat position in the bordered buffer
    # Pixels that miss the image (or have no depth) are scattered into the sink rather than
    # selected out: a selection is a new array (and np.compress another of indices) per frame.
    vi -= sink
    vi *= ok
    vi += sink
    target = vi
    # One z-buffer key per depth pixel: its depth in the high bits, then (with ``carry``) its pixel
    # index, then the carried value. The minimum key is the nearest surface, ties between equal
    # depths broken by pixel index (not by the carried value, which would bias it), and the
    # winner's carried value comes back with it: one scatter, no second pass.
    if carry is None:
        key = d
    else:
        kdt = np.uint64
        key = s.get("key", count, kdt)
        np.copyto(key, d)
        key <<= kdt(shift - 16)
        key |= table.cand_key[part]                 # the pixel indices
        key <<= kdt(16)
        if carry.dtype.itemsize <= 2:
            carried_src = np.take(carry.ravel(), cand, out=s.get("carry_src", count, carry.dtype), mode="clip")
            value = s.get("key_part", count, kdt)
            np.copyto(value, carried_src)
            key |= value
    np.minimum.at(zbuf, target, key)


def _resolve(zbuf: np.ndarray, r0: int, r1: int, w: int, shift: int, units: np.ndarray,
             carried: np.ndarray | None, empty: int, s: _Scratch | _Fresh) -> None:
    """Color rows ``r0:r1`` from the filled z-buffer: their depth units into ``units`` (those rows,
    bordered: ``wp`` cells a row) and, with ``carried`` (those rows), the winners' carried values.

    Each depth pixel covers ~1.6 color pixels, so centres leave one-pixel gaps, and a far
    surface's centre can fall into a gap of a nearer one. A 2x2 minimum (this pixel, the one to
    the left, above, above-left) gives each pixel the nearest surface whose footprint reaches it.
    Keep a pixel's own centre unless a clearly nearer surface (2 %, at least 3 units) covers it,
    so noise on one surface does not bias the result toward the nearest one."""
    kdt = zbuf.dtype.type
    wp = w + 1
    p0, m = (r0 + 1) * wp + 1, (r1 - r0) * wp      # flat position of pixel (r0, 0); cells
    centre = zbuf[p0:p0 + m]                        # the last row's runs into the spare cell
    grown = np.minimum(centre, zbuf[p0 - 1:p0 - 1 + m], out=s.get("grown", m, kdt))
    np.minimum(grown, zbuf[p0 - wp:p0 - wp + m], out=grown)
    np.minimum(grown, zbuf[p0 - wp - 1:p0 - wp - 1 + m], out=grown)
    cd: np.ndarray
    gd: np.ndarray
    if shift:
        # The depth field is the key's top 16 bits: read in place as every fourth uint16 of the
        # keys (no shift), once into an array of its own since it is read three times.
        cd = s.get("cd", m, np.uint16)
        np.copyto(cd, _lane(centre, _HI))
        gd = _lane(grown, _HI)
    else:
        cd, gd = centre, grown
    # A nearer neighbour wins when it is nearer by more than max(3, c // 50) units (grown <= centre,
    # so the difference cannot wrap). Arithmetic, not masks: masked writes cost ten times as much.
    margin = np.floor_divide(cd, np.uint16(50), out=s.get("margin", m, np.uint16))
    np.maximum(margin, np.uint16(3), out=margin)
    diff = np.subtract(cd, gd, out=s.get("diff", m, np.uint16))
    take = np.greater(diff, margin, out=s.get("take", m, np.bool_))
    diff *= take
    np.subtract(cd, diff, out=units)                # grown where taken, else centre
    units *= np.not_equal(units, 65535, out=s.get("not_empty", m, np.bool_))   # empty (65535) is 0
    if carried is None:
        return
    rows = r1 - r0
    if carried.dtype.itemsize <= 2:
        # The carried value is the key's low 16 bits: the winner's (grown's where taken, else
        # centre's) as centre - (centre - grown) * take on those bits alone, modulo 2**16 as the
        # whole keys' arithmetic is, so the same value; the keys' other bits are never touched.
        c_lo = _lane(centre, _LO)
        won16 = np.subtract(c_lo, _lane(grown, _LO), out=s.get("won16", m, np.uint16))
        won16 *= take
        np.subtract(c_lo.reshape(rows, wp)[:, :w], won16.reshape(rows, wp)[:, :w], out=carried, casting="unsafe")
    else:                                           # the pixel index itself
        won = np.subtract(centre, grown, out=s.get("won", m, kdt))   # the winner's key, as above
        won *= take
        np.subtract(centre, won, out=won)
        np.right_shift(won, kdt(16), out=won)
        np.bitwise_and(won, kdt((1 << _INDEX_BITS) - 1), out=won)
        np.copyto(carried, won.reshape(rows, wp)[:, :w], casting="unsafe")
    no_depth = np.equal(units.reshape(rows, wp)[:, :w], 0, out=s.get("no_depth", rows * w, np.bool_).reshape(rows, w))
    if empty == 0:
        carried *= np.logical_not(no_depth, out=no_depth)                           # 0 where no depth
    else:
        np.copyto(carried, carried.dtype.type(empty), where=no_depth)              # ``empty`` where no depth


def _to_color_axis(units: np.ndarray, depth_scale: float, table: AlignmentTable) -> np.ndarray:
    """Depth-axis units to color-axis units (uint16, a new array), per color pixel (see
    ``color_axis``). The factor is the color pixel's own ray, not the exact sub-pixel point: the
    difference is below a micrometre for real extrinsics (rotation of a few milliradians).
    In bands of rows, as :func:`_splat` works (element by element: the same values)."""
    s = _scratch()
    h, w = units.shape
    out = _result(units.shape, np.uint16)
    rows = max(1, min(h, BAND_CELLS // w))
    offset = np.float32(table.r3t / depth_scale)
    for r0 in range(0, h, rows):
        r1 = min(r0 + rows, h)
        u, o = units[r0:r1], out[r0:r1]
        z = s.get("z", u.size, np.float32).reshape(u.shape)
        np.copyto(z, u)
        z += offset
        z *= table.color_axis[r0:r1]
        np.rint(z, out=z)
        np.clip(z, 1, 65535, out=z)
        np.copyto(o, z, casting="unsafe")
        o *= np.not_equal(u, 0, out=s.get("has_depth", u.size, np.bool_).reshape(u.shape))
    return out                                      # no depth stays 0 (arithmetic: no masked write)


def align_depth_to_color(depth_u16: np.ndarray, depth_scale: float, depth_intr: Intrinsics,
                         color_intr: Intrinsics, depth_to_color: Extrinsics, *,
                         depth_axis: bool = False) -> np.ndarray:
    """Depth registered to the color image, as uint16 in the same units (0 = no depth).

    Values are distances along the color camera's axis, so deprojecting them with the color
    intrinsics gives true 3D points. ``depth_axis=True`` keeps the depth camera's own z instead,
    as librealsense's ``rs.align`` does (they differ by the small rotation between the sensors).
    """
    table = _checked_table(depth_u16, depth_scale, depth_intr, color_intr, depth_to_color)
    units, _ = _splat(depth_u16, depth_scale, table)
    return units.copy() if depth_axis else _to_color_axis(units, depth_scale, table)


def align_depth_to_color_with_index(depth_u16, depth_scale, depth_intr, color_intr, depth_to_color, *,
                                    depth_axis: bool = False):
    """Like :func:`align_depth_to_color`, plus, per color pixel, the flat index of the depth pixel
    that won (-1 where none): use it to carry streams that share depth's geometry (IR)."""
    table = _checked_table(depth_u16, depth_scale, depth_intr, color_intr, depth_to_color)
    units, index = _splat(depth_u16, depth_scale, table, carry=_pixel_index(depth_u16.shape), empty=-1)
    out = units.copy() if depth_axis else _to_color_axis(units, depth_scale, table)
    return out, index


def _checked_table(depth_u16, depth_scale, depth_intr, color_intr, depth_to_color) -> AlignmentTable:
    if depth_u16.dtype != np.uint16 or depth_u16.shape != (depth_intr.height, depth_intr.width):
        raise AlignmentError(f"depth must be uint16 {depth_intr.width}x{depth_intr.height}, got "
                             f"{depth_u16.dtype} {depth_u16.shape[::-1]}")
    if depth_u16.size > (1 << _INDEX_BITS):
        raise AlignmentError("depth image too large for alignment")
    return alignment_table(depth_intr, color_intr, depth_to_color)


def align_color_to_depth(color: np.ndarray, depth_u16: np.ndarray, depth_scale: float, depth_intr: Intrinsics,
                         color_intr: Intrinsics, depth_to_color: Extrinsics) -> np.ndarray:
    """Color resampled into the depth image's geometry (zeros where there is no depth)."""
    import cv2  # here: alignment itself needs no OpenCV (the daemon aligns without it)

    table = alignment_table(depth_intr, color_intr, depth_to_color)
    w_inv = _inverse_depth_lut(depth_scale)[depth_u16]
    uc = table.u[0] + w_inv * (table.u[1] + w_inv * table.u[2])
    vc = table.v[0] + w_inv * (table.v[1] + w_inv * table.v[2])
    out = cv2.remap(color, uc, vc, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out[depth_u16 == 0] = 0
    return out


def to_metres(units: np.ndarray, depth_scale: float, out: np.ndarray | None = None) -> np.ndarray:
    """Depth units (uint16, 0 = no depth) in metres: float32, the units times ``depth_scale`` as a
    float32, NaN where there is no depth; into ``out`` (float32, the units' shape) or a new array.
    Element by element, so a region's metres are the same values as that region of the whole
    frame's."""
    if out is None:
        out = np.empty(units.shape, np.float32)
    np.multiply(units, np.float32(depth_scale), out=out)
    no_depth = np.equal(units, 0, out=scratch("align.to_metres.no_depth", units.shape, np.bool_))
    np.copyto(out, np.float32(np.nan), where=no_depth)
    return out


@dataclass(frozen=True)
class Metres:
    """An aligned depth in metres, computed where it is read: ``m[key]`` (any index numpy takes:
    slices, boolean masks, index arrays) is :func:`to_metres` of ``units[key]``, a new float32
    array of only what was indexed (``m[...]``: the whole frame). Nothing is kept: the units are
    the aligned frameset's own array."""

    units: np.ndarray
    depth_scale: float

    @property
    def shape(self) -> tuple[int, ...]:
        return self.units.shape

    def __getitem__(self, key) -> np.ndarray:
        return to_metres(np.asarray(self.units[key]), self.depth_scale)

    def into(self, key, out: np.ndarray) -> np.ndarray:
        """``self[key]`` written into ``out`` (a caller's temporary of that shape, float32)."""
        return to_metres(np.asarray(self.units[key]), self.depth_scale, out=out)


@dataclass(frozen=True, eq=False)
class AlignedFrameSet:
    """A frameset registered to the color image: every array has the color image's size.

    The depth is held once, in depth units (``depth_u16``); ``depth_m`` gives it in metres where it
    is read (:class:`Metres`: only the indexed region is converted, into a new array), so that a
    kept frameset (a liveness window's, until its verdict) does not hold the same depth twice."""

    frameset: FrameSet
    color: Frame
    depth_u16: np.ndarray            # depth along the color axis in depth units (0 = no depth)
    ir: np.ndarray | None            # IR values carried with their depth pixel (0 where none)
    depth_scale: float

    @property
    def depth_m(self) -> Metres:
        """The depth in metres (float32, NaN where no depth), converted where indexed."""
        return Metres(self.depth_u16, self.depth_scale)

    @property
    def valid(self) -> np.ndarray:
        return self.depth_u16 > 0


def align_frameset(fs: FrameSet) -> AlignedFrameSet:
    """Register depth (and IR, which shares depth's imager) to the color frame of ``fs``."""
    color, depth = fs.color, fs.depth
    if color is None or depth is None:
        raise AlignmentError("alignment needs a color and a depth frame")
    try:
        d2c = fs.extrinsics_between(StreamKind.DEPTH, StreamKind.COLOR)
    except KeyError:
        raise AlignmentError("frameset carries no depth-to-color extrinsics") from None
    if fs.ir is not None and fs.ir.pixels.shape != depth.pixels.shape:
        raise AlignmentError("IR must share the depth imager's geometry to be carried along")
    table = _checked_table(depth.pixels, depth.depth_scale, depth.intrinsics, color.intrinsics, d2c)
    units, ir = _splat(depth.pixels, depth.depth_scale, table, carry=fs.ir.pixels if fs.ir is not None else None)
    aligned = _to_color_axis(units, depth.depth_scale, table)
    return AlignedFrameSet(fs, color, aligned, ir, depth.depth_scale)


def deproject_aligned(aligned: AlignedFrameSet) -> np.ndarray:
    """(H, W, 3) points in the color camera frame for the aligned depth (NaN where none)."""
    i = aligned.color.intrinsics
    u, v = np.meshgrid(np.arange(i.width, dtype=np.float64), np.arange(i.height, dtype=np.float64))
    return deproject(u, v, aligned.depth_m[...].astype(np.float64), i)
