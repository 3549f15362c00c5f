"""Face analysis + quality gate cost per frameset, on sim framesets of a D435 (640x480 colour) and
a D455 (1280x720 colour, searched in tiles as well as whole).

Each figure is a median over repeated calls. The gate is also timed against the straightforward
whole-frame path of the same measurements (``tests/helpers/quality_reference.py``: whole-frame
masks, gray and RGB conversions), alternating call by call in this process, so the ratio holds on a
shared, noisy machine; both paths give the same numbers and decisions
(``tests/quality/test_gate_equivalence.py``). Budget: the issue's 70 ms median per frameset.

The daemon's quality loop runs the gate in the liveness worker (``LivenessSupervisor.open_quality``):
its step per frameset, as the person's prompt waits for it, is the frameset into the ring, the
request, the worker's alignment, gate and IR skin level, and the checked reply. It is timed against
the same step in this process (alignment and gate), alternating call by call.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Callable, Iterator
from unittest import mock

import drivers
from agent.face import FaceDetector, face_mesh
from agent.liveness.supervisor import LivenessSupervisor
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import framesets
from agent.quality import QualityGate
from bench.targets import issue20

CAMERAS = {"D435 640x480": "sim://?realtime=0&seed=5", "D455 1280x720": "sim://?realtime=0&seed=5&camera=d455"}
FRAMESETS = 12
CALLS = 36
BUDGET_MS = 70.0


def _ms(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


@contextlib.contextmanager
def _whole_frame_path() -> Iterator[None]:
    from tests.helpers import quality_reference as ref
    with mock.patch("agent.quality.gate.face_mesh", ref.face_mesh), \
            mock.patch("agent.quality.gate.face_depth", ref.face_depth), \
            mock.patch("agent.quality.metrics.face_exposure", ref.face_exposure), \
            mock.patch("agent.quality.metrics.sharpness", ref.sharpness), \
            mock.patch("agent.quality.metrics.skin_linear_level", ref.skin_linear_level):
        yield


def camera_rows(label: str, uri: str) -> list[dict]:
    cam = drivers.open(uri)
    cam.start()
    try:
        aligned = [align_frameset(fs) for fs in framesets(cam, FRAMESETS)]
    finally:
        cam.stop()
    gate = QualityGate()
    det = FaceDetector()
    img = aligned[0].color.pixels
    d = det.detect(img)[0]
    gate.measure(aligned[0])
    with _whole_frame_path():
        gate.measure(aligned[0])
    detect = [_ms(lambda: det.detect(img)) for _ in range(CALLS)]
    mesh = [_ms(lambda: face_mesh(img, d)) for _ in range(CALLS)]
    fast, whole = [], []
    for i in range(CALLS):                      # alternating: both paths see the same load
        measure = functools.partial(gate.measure, aligned[i % len(aligned)])
        fast.append(_ms(measure))
        with _whole_frame_path():
            whole.append(_ms(measure))
    f, w, models = statistics.median(fast), statistics.median(whole), statistics.median(detect) + \
        statistics.median(mesh)
    return [
        {"name": f"{label}: face detection (BlazeFace{', + tiles' if img.shape[1] > img.shape[0] * 4 / 3 else ''})",
         "value": statistics.median(detect), "unit": "ms"},
        {"name": f"{label}: landmarks + irises (FaceMesh, Iris)", "value": statistics.median(mesh), "unit": "ms"},
        issue20({"name": f"{label}: quality gate per frameset, median", "value": f, "unit": "ms"}, "quality"),
        {"name": f"{label}: gate vs whole-frame path (same process)", "value": f, "unit": "ms", "reference": w,
         "ratio": f / w},
        {"name": f"{label}: gate vs its face models alone (same process)", "value": f, "unit": "ms",
         "reference": models, "ratio": f / models},
    ]


def worker_rows(label: str, uri: str, sup: LivenessSupervisor) -> list[dict]:
    cam = drivers.open(uri)
    cam.start()
    try:
        sets = list(framesets(cam, FRAMESETS))
    finally:
        cam.stop()
    gate = QualityGate()
    remote, local = [], []
    with sup.open_quality("kiosk") as worker:
        worker.evaluate(sets[0])                # the worker's alignment table for this camera
        gate.evaluate(align_frameset(sets[0]))  # and this process's
        for i in range(CALLS):                  # alternating: both see the same load
            fs = sets[i % len(sets)]
            remote.append(_ms(lambda: worker.evaluate(fs)))      # noqa: B023 (called at once)
            local.append(_ms(lambda: gate.evaluate(align_frameset(fs))))      # noqa: B023
    r, w = statistics.median(remote), statistics.median(local)
    return [
        issue20({"name": f"{label}: quality step through the worker (ring, align, gate), median", "value": r,
                 "unit": "ms"}, "quality"),
        {"name": f"{label}: quality step, worker vs in this process (same process)", "value": r, "unit": "ms",
         "reference": w, "ratio": r / w},
    ]


def run() -> list[dict]:
    rows = [row for label, uri in CAMERAS.items() for row in camera_rows(label, uri)]
    with LivenessSupervisor() as sup:
        rows += [row for label, uri in CAMERAS.items() for row in worker_rows(label, uri, sup)]
    return rows
