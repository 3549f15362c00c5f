"""The judge's per-frameset work (its two tasks: the face detection, the projector's dot energy and
the digest; the alignment, the quality gate's measure with the face models, the cues; and the face
grid the fold reads) keeps its frame- and face-sized temporaries per thread in the liveness worker
(``align.keep_scratch(True)``, ``align.scratch``), issue 20: it must measure exactly what it
measures with new arrays, on two threads at once too, and make no frame-sized (>= 64 KiB) numpy
allocation at all once a thread has its temporaries."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.liveness.challenge import face_grid
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import Judge
from agent.pipeline import align
from bench.allocations import AllocationCounter
from bench.measure_digest import digest
from bench.windows import challenged_window
from drivers.frame import FrameSet

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
    return digest([seen.detections, seen.energy, seen.digest, m.aligned.depth_m, m.aligned.depth_u16, m.aligned.ir,
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
