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
    # The last frameset's cues and material skin are shared once its face is known (perf29): the
    # other thread's share goes after all the work beside the measurement (a thread free of it helps).
    # Then its motion steps from its inspection's landmarks (perf33), taken by a thread free of all the rest.
    assert last == ["_inspect", "_measure", "_final_lights", "_final_grids", "_final_noise", "_final_lit_last_fit",
                    "_final_lit_last", "_final_challenge", "_last_face_share", "_final_steps"]


def _judged(gate, sets, challenge, pool, *, ahead: str, monkeypatch) -> tuple[Judge, object, list[tuple]]:
    """``sets`` over again as a window of ``challenge`` judged on ``pool`` (None: one thread); ``ahead``: "waited"
    (the last frameset's steps task done before ``finish``), "moved" (done, then its landmarks changed: no longer
    the last cues'), "none". The judge (not closed), its result and every ``motion_step`` of ``finish`` (its
    thread, its two landmark arrays)."""
    calls: list[tuple] = []
    real = J.motion_step

    def counted(*args):
        calls.append((threading.current_thread().name, *args))
        return real(*args)
    monkeypatch.setattr(J, "motion_step", counted)
    judge = Judge(gate, VerdictThresholds(), challenge=challenge, pool=pool)
    for k in range(challenge.frames):
        judge.add(sets[k % 2])
        if pool is not None and k < challenge.frames - 1:
            judge._submitted[-1][1].result()
            judge.fold_ready()
    if ahead != "none":
        assert judge._last_steps is not None
        judge._last_steps.result()
        judge._submitted[-1][1].result()
        if ahead == "moved":
            got = judge._steps_ahead_of
            assert got is not None
            got.landmarks[0, 0] += 1.0
    calls.clear()                              # (the earlier folds' and the task's)
    r = judge.finish()
    return judge, r, calls


@pytest.mark.parametrize("ahead", ["waited", "moved"])
def test_the_last_framesets_motion_steps_are_worked_out_ahead_to_the_bit(gate, windows, monkeypatch, ahead):
    # perf33: the last frameset's steps (against the first cue frame; under the illumination challenge, against
    # the frames the screen showed its colour a third of the window before it) were ~3 ms of its fold on the
    # caller's thread after its measurement; a judge thread works them out from its inspection's landmarks. The
    # fold takes them only where its cues' landmarks are those to the bit: the same steps and verdict as one
    # thread's judge either way; none measured by the caller when they were ready, all when the landmarks moved.
    _, sets = windows["single"]
    challenge = Challenge.from_nonce(bytes(range(32)), 12, (Kind.PROJECTOR, Kind.ILLUMINATION))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-judge") as pool:
        threaded, r, calls = _judged(gate, sets, challenge, pool, ahead=ahead, monkeypatch=monkeypatch)
        taken, last = threaded._steps_ahead_of, threaded.cues[-1].landmarks
        refs = [ref.landmarks for ref, _ in taken.steps] if taken is not None else []
        steps = digest([threaded.motion_steps, sorted(threaded.pair_steps.items())])
        threaded.close()
    alone, r1, _ = _judged(gate, sets, challenge, None, ahead="none", monkeypatch=monkeypatch)
    assert taken is not None and len(taken.steps) >= 2     # the first cue frame's and same-colour frames' steps
    # The caller's steps from a frame the task took to the last (finish's lag may pair the last with others too).
    mine = [c for c in calls if c[0] == threading.current_thread().name and c[2] is last
            and any(c[1] is ref for ref in refs)]
    assert len(mine) == (0 if ahead == "waited" else len(taken.steps))
    assert steps == digest([alone.motion_steps, sorted(alone.pair_steps.items())])
    assert digest([r.verdict.to_dict(), r.evidence]) == digest([r1.verdict.to_dict(), r1.evidence])


@pytest.mark.parametrize("order", ["the other thread takes both", "the measuring thread takes both",
                                   "each takes one"])
def test_the_last_framesets_cues_and_skin_are_shared_once_its_face_is_known(gate, windows, monkeypatch, order):
    # The window's last frameset: once the gate has its main face, its cues (``frame_cues``) and
    # material skin (``material_skin``) are worked out once each by whichever thread asks first, the
    # measuring thread after the gate's checks (the skin first), the other in its share task (the
    # cues first); perf29. Each interleaving is forced with events (no timing): every part is
    # worked out once, and the measurement is the one measured on one thread, to the bit.
    _, sets = windows["single"]
    fs = sets[0]
    ran: list[tuple[str, str]] = []
    cues_, skin_, depth_ = J.frame_cues, J.material_skin, G.face_depth
    share_done, cues_started, skin_started = threading.Event(), threading.Event(), threading.Event()
    held: list[bool] = []

    def cues(*args):
        ran.append(("cues", threading.current_thread().name))
        cues_started.set()
        if order == "each takes one":            # until the measuring thread has taken the skin
            held.append(skin_started.wait(timeout=30))
        return cues_(*args)

    def skin(*args):
        if order == "each takes one":            # once the other thread has taken the cues
            held.append(cues_started.wait(timeout=30))
        ran.append(("skin", threading.current_thread().name))
        skin_started.set()
        return skin_(*args)

    def depth(*args):
        if order == "the other thread takes both":   # held after the face is handed over
            held.append(share_done.wait(timeout=30))
        return depth_(*args)
    monkeypatch.setattr(J, "frame_cues", cues)
    monkeypatch.setattr(J, "material_skin", skin)
    monkeypatch.setattr(G, "face_depth", depth)
    judge = Judge(gate, VerdictThresholds(), challenge=None)
    seen = judge._inspect(fs)
    share = J._LastFace()

    def other() -> None:
        threading.current_thread().name = "other"
        Judge._last_face_share(share)
        share_done.set()
    helper = threading.Thread(target=other)
    if order != "the measuring thread takes both":
        helper.start()
    m = judge._measure(fs, seen, None, None, share)
    if order == "the measuring thread takes both":
        helper.start()
    helper.join(timeout=60)
    assert not helper.is_alive() and all(held)
    me = threading.current_thread().name
    assert sorted(ran) == sorted({
        "the other thread takes both": [("cues", "other"), ("skin", "other")],
        "the measuring thread takes both": [("cues", me), ("skin", me)],
        "each takes one": [("cues", "other"), ("skin", me)]}[order])
    # The same measurement as one thread's: the gate's, the cues and the skin.
    alone = judge._measure(fs, seen)
    assert digest([m.measurement.checks, m.measurement.values, m.measurement.face, m.cues, m.skin]) == digest(
        [alone.measurement.checks, alone.measurement.values, alone.measurement.face, alone.cues, alone.skin])
    assert m.cues is not None and m.skin is not None


def test_the_share_of_a_last_frameset_without_a_face_ends_at_once(gate, windows):
    # No face (here: the measurement fails before the gate): the share task is handed None and ends.
    _, sets = windows["single"]
    judge = Judge(gate, VerdictThresholds(), challenge=None)
    share = J._LastFace()
    with pytest.raises(AttributeError):
        judge._measure(sets[0], None, None, None, share)     # (no inspection: not a frameset's error)
    assert share.observed.result(timeout=0) is None
    Judge._last_face_share(share)
    assert share.threads == [None, None]
