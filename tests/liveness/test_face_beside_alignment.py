"""The face's landmarks beside the alignment (issue 20): the window's last frameset is measured on two
threads, one aligning while the other detects the face. With a single detection (the detections
alone say which face is the subject's) the landmark model (face mesh and irises, the face models'
larger part) runs on the detecting thread too, and is handed to the measurement before the dot
energy and the digest, so the measuring thread goes on from the alignment to the gate's own checks
and the cues. What is measured is the same to the bit as the gate running the landmarks itself."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import agent.liveness.judge as J
import agent.quality.gate as G
import drivers
from agent.liveness.challenge import Challenge, Kind
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import Judge
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from bench.measure_digest import digest

SINGLE = "sim://?realtime=0&seed=21&identity=3&skin=3&lux=150"
MULTI = "sim://?realtime=0&subject=multi&seed=3"    # two faces: which is the subject's needs depth


@pytest.fixture(scope="module")
def windows():
    """Two framesets of each scene, as the camera delivers them (no challenge: it changes nothing here)."""
    out = {}
    for name, uri in (("single", SINGLE), ("multi", MULTI)):
        with drivers.open(uri) as cam:
            out[name] = (None, list(FramesetReader(cam).take(2)))
    align_frameset(out["single"][1][0])      # the camera's alignment table, made once (one camera model)
    return out


def _counting(monkeypatch) -> list[str]:
    """Each landmark run of the quality gate, by the name of the thread that ran it."""
    calls: list[str] = []
    real = G.face_mesh

    def counted(*args, **kw):
        calls.append(threading.current_thread().name)
        return real(*args, **kw)
    monkeypatch.setattr(G, "face_mesh", counted)
    return calls


def test_a_single_face_is_landmarked_in_the_inspection_and_measured_as_the_gate_measures_it(gate, windows,
                                                                                           monkeypatch):
    calls = _counting(monkeypatch)
    checked = {"single": 0, "multi": 0}
    meshes = []
    for name, (challenge, sets) in windows.items():
        judge = Judge(gate, VerdictThresholds(), challenge=challenge)
        for fs in sets:
            calls.clear()
            seen = judge._inspect(fs)
            in_inspection = len(calls)
            m = judge._measure(fs, seen)
            in_measurement = len(calls) - in_inspection
            # The gate measuring the aligned frameset with the same detections, landmarks its own.
            ref = gate.measure(align_frameset(fs), seen.detections)
            q = m.measurement
            assert digest([q.checks, q.values, q.faces_found, q.face, q.depth]) == digest(
                [ref.checks, ref.values, ref.faces_found, ref.face, ref.depth]), name
            assert seen.detections
            if len(seen.detections) == 1:
                assert (in_inspection, in_measurement) == (1, 0), name
                assert seen.mesh is not None and q.face is not None and q.face.mesh is seen.mesh
                meshes.append(seen.mesh)
            else:
                # Several detections: which is the subject's face is decided with the aligned depth.
                assert seen.mesh is None and in_inspection == 0 and in_measurement >= 1, name
            checked[name] += 1
    assert checked == {"single": 2, "multi": 2}
    # A mesh run ahead belongs to a single detection: the gate refuses it beside several.
    other = windows["multi"][1][0]
    with pytest.raises(ValueError):
        gate.measure(align_frameset(other), gate.detector.detect(other.color.pixels), meshes[0])


def test_the_measurement_goes_on_with_the_landmarks_before_the_inspections_energy_and_digest(gate, windows,
                                                                                               monkeypatch):
    # Two judge threads, one frameset: the inspection's digest is held until the gate has measured
    # the frameset. The measurement must get the face (detections and landmarks) without waiting for
    # the rest of the inspection; on the code before, it waited for the whole inspection (the hold
    # then only ends at its long timeout, which a passing run never reaches).
    challenge, sets = windows["single"]
    measured = threading.Event()
    held: list[bool] = []
    measure, digest_ = G.QualityGate.measure, J.frameset_digest

    def measure_then_release(self, *args, **kw):
        try:
            return measure(self, *args, **kw)
        finally:
            measured.set()

    def digest_after_measure(fs):
        held.append(measured.wait(timeout=30))
        return digest_(fs)
    monkeypatch.setattr(G.QualityGate, "measure", measure_then_release)
    monkeypatch.setattr(J, "frameset_digest", digest_after_measure)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-judge") as pool:
        judge = Judge(gate, VerdictThresholds(), challenge=challenge, pool=pool)
        judge.add(sets[0])
        m = judge._submitted[-1][1].result()
        judge.close()
    assert held == [True]
    assert m.measurement.face is not None and m.digest == digest_(sets[0])


class _Recording(ThreadPoolExecutor):
    """Judge threads that note the name of each task in the order it was queued."""

    def __init__(self) -> None:
        super().__init__(max_workers=2, thread_name_prefix="test-judge")
        self.queued: list[str] = []

    def submit(self, fn, /, *args, **kw):
        self.queued.append(fn.__name__)
        return super().submit(fn, *args, **kw)


def test_the_last_framesets_pairs_are_queued_first_of_the_work_beside_its_measurement(gate, windows):
    # The inspecting thread is longer by the landmarks; the on-off pairs the last frameset settles
    # (at times several pairs, the longest task beside the measurement) go first, so that whichever
    # thread is free takes them, then the grids, the depth noise and the challenges' verification
    # (the noise before the verification: perf25).
    _, sets = windows["single"]
    challenge = Challenge.from_nonce(bytes(range(32)), 8, (Kind.PROJECTOR, Kind.ILLUMINATION))
    with _Recording() as pool:
        judge = Judge(gate, VerdictThresholds(), challenge=challenge, pool=pool)
        for k in range(challenge.frames):           # the two framesets over again: only the queue is read
            judge.add(sets[k % 2])
            if k < challenge.frames - 1:
                judge._submitted[-1][1].result()
        before = pool.queued[2 * (challenge.frames - 2):2 * (challenge.frames - 1) + 1]
        last = pool.queued[2 * (challenge.frames - 1) + 1:]
        judge.close()
    # The last frameset but one queues the grids in the box guessed from its face (perf26).
    assert before == ["_inspect", "_measure", "_grids_guessed"]
    # Under a projector challenge a pair lit by the last frameset is read beside its measurement too,
    # its pattern predicted and warmed on one thread while the other reads the rest (perf28): both
    # before the verification.
    assert last == ["_inspect", "_measure", "_final_lights", "_final_grids", "_final_noise", "_final_lit_last_fit",
                    "_final_lit_last", "_final_challenge"]
