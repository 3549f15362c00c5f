"""The judge's per-frameset work (its two tasks: the face detection, the projector's dot energy and
the digest; the alignment, the quality gate's measure with the face models, the cues; and the face
grid the fold reads) keeps its frame- and face-sized temporaries per thread in the liveness worker
(``align.keep_scratch(True)``, ``align.scratch``), issue 20: it must measure exactly what it
measures with new arrays, on two threads at once too, and make no frame-sized (>= 64 KiB) numpy
allocation at all once a thread has its temporaries.

The aligned depth is held once, in depth units; its metres are made where they are read (issue 20:
a window's kept framesets held the same depth twice). Every read gives, bit for bit, what the
frameset's whole-frame metres array gave: the units times the float32 scale, NaN where there is no
depth (the computation ``align_frameset`` made before)."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from agent.face.pose import depth_at
from agent.liveness.challenge import face_grid
from agent.liveness.features import depth_noise, face_roi
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import Judge
from agent.pipeline import align
from agent.pipeline.align import align_frameset
from bench.allocations import AllocationCounter
from bench.measure_digest import digest
from bench.windows import challenged_window
from drivers.frame import FrameSet
from tests.helpers.liveness_reference import depth_noise_on_metres

NONCE = bytes(range(32))
# A face near the camera (large ROI) and one farther and turned (a smaller one): the kept arrays
# are outgrown and taken again in smaller parts.
SCENES = ("&seed=21&identity=3&skin=3&lux=150&distance_mm=380", "&seed=5&identity=2&yaw=20&distance_mm=650")


@pytest.fixture(scope="module")
def windows():
    return [challenged_window("sim://?realtime=0" + q, 8, NONCE) for q in SCENES]


@pytest.fixture
def kept():
    align.keep_scratch(True)
    yield
    align.keep_scratch(False)


def _measured(judge: Judge, fs: FrameSet, counter: AllocationCounter | None = None) -> str:
    """Everything the judge measures of ``fs`` and the face grid in its face's box, digested (bit
    for bit); ``counter`` counts only while the measuring runs, not the digest."""
    if counter is not None:
        counter.counting = True
    seen = judge._inspect(fs)
    m = judge._measure(fs, seen)
    q = m.measurement
    assert fs.color is not None
    grid = face_grid(fs.color.pixels, [int(v) for v in q.face.detection.bbox]) if q.face is not None else None
    if counter is not None:
        counter.counting = False
    return digest([seen.detections, seen.energy, seen.digest, m.aligned.depth_m[...], m.aligned.depth_u16, m.aligned.ir,
                   q.checks, q.values, q.faces_found, q.face, q.depth, m.cues, m.skin, grid])


def test_kept_temporaries_measure_as_new_arrays_on_two_threads_and_allocate_nothing_frame_sized(windows, gate, kept):
    judges = [(Judge(gate, VerdictThresholds(), challenge=ch), sets) for ch, sets in windows]
    align.keep_scratch(False)
    fresh = [_measured(j, fs) for j, sets in judges for fs in sets]
    assert all(f is not None for f in fresh)
    align.keep_scratch(True)
    work = [(j, fs) for j, sets in judges for fs in sets]
    assert [_measured(j, fs) for j, fs in work] == fresh             # this thread's temporaries made
    me = threading.current_thread().name
    with AllocationCounter(lambda name: "measure" if name == me else None) as counter:
        counter.counting = False
        again = [_measured(j, fs, counter) for j, fs in work]        # ... and taken again
    assert again == fresh
    assert not counter.counts.sites("measure")
    # Two threads at once, each with temporaries of its own, the framesets in turn on either.
    with ThreadPoolExecutor(2) as pool:
        for _ in range(2):
            assert list(pool.map(lambda w: _measured(*w), work)) == fresh
    align.release_scratch()


def _old_metres(units: np.ndarray, scale: float) -> np.ndarray:
    """The whole frame's metres as ``align_frameset`` kept them before (its own two lines)."""
    out = np.multiply(units, np.float32(scale), out=np.empty(units.shape, np.float32))
    np.copyto(out, np.float32(np.nan), where=np.equal(units, 0))
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def aligned(windows):
    """Real aligned framesets: the last two of each scene's window."""
    return [align_frameset(fs) for _, sets in windows for fs in sets[-2:]]


def test_an_aligned_frameset_holds_its_depth_once_in_units(aligned):
    for a in aligned:
        arrays = {f.name: getattr(a, f.name) for f in dataclasses.fields(a)
                  if isinstance(getattr(a, f.name), np.ndarray)}
        assert set(arrays) == {"depth_u16", "ir"}                # no metres array beside the units
        assert arrays["depth_u16"].dtype == np.uint16
        assert a.depth_m.shape == a.depth_u16.shape


def test_metres_where_read_are_the_old_metres_bit_for_bit(aligned):
    for a in aligned:
        units = a.depth_u16
        old = _old_metres(units, a.depth_scale)
        assert np.isnan(old).any() and np.isfinite(old).any()
        assert _same(a.depth_m[...], old)                        # the whole frame
        h, w = units.shape
        for rows, cols in ((slice(100, 300), slice(200, 420)), (slice(0, 7), slice(w - 5, w)),
                           (slice(h // 2, h // 2 + 1), slice(None))):
            assert _same(a.depth_m[rows, cols], old[rows, cols])
            assert _same(a.depth_m.into((rows, cols), np.full(old[rows, cols].shape, 7, np.float32)),
                         old[rows, cols])
        mask = (np.arange(h)[:, None] + np.arange(w)[None, :]) % 3 == 0
        assert _same(a.depth_m[mask], old[mask])                 # boolean selection
        rng = np.random.default_rng(1)
        pts = np.c_[rng.uniform(0, w, 60), rng.uniform(0, h, 60)]
        assert _same(depth_at(pts, a.depth_m), depth_at(pts, old))   # the pose's 3x3 patches
        assert _same(align.deproject_aligned(a)[..., 2], old.astype(np.float64))


def test_the_cues_read_the_old_metres(aligned, gate):
    gate.reset()
    pairs = [aligned[:2], aligned[2:]]
    for pair in pairs:
        a = pair[-1]
        q = gate.evaluate(a)
        assert q.face is not None
        roi = face_roi(a, q.face)
        old = _old_metres(a.depth_u16, a.depth_scale)
        region = old[roi.y0:roi.y0 + roi.shape[0], roi.x0:roi.x0 + roi.shape[1]]
        assert _same(np.ascontiguousarray(roi.depth_m), region)
        # The last two frames' noise: the same as on whole-frame metres arrays.
        noise = depth_noise(pair)
        assert np.isfinite(noise) and noise == depth_noise_on_metres(*(_old_metres(b.depth_u16, b.depth_scale)
                                                                      for b in pair))
