"""Judging: framesets, through align, the quality gate's measurements and the physical cues, to a verdict.

The same code runs in the sandboxed liveness worker (the daemon) and in-process (offline analysis
and the PAD bench). Face data lives only in memory here.
"""

from __future__ import annotations

import bisect
import collections
import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import numpy as np

from agent.face import Detection, Mesh
from agent.face.models import manifest, wipe_thread_interpreters
from agent.liveness.challenge import (
    FLICKER,
    GRID,
    PALETTE,
    UNIT_CHECK,
    UNIT_MIN_PAIRS,
    Challenge,
    ChallengeResult,
    Kind,
    SequenceResult,
    dot_energy,
    evidence_box,
    explain_flicker,
    face_grid,
    face_response,
    ir_grid,
    projector_states,
    relabelable,
    unit_checked,
    unit_status,
    verify,
    verify_illumination,
)
from agent.liveness.detectors import score
from agent.liveness.dotref import DotReference
from agent.liveness.features import (
    FrameCues,
    IrSkin,
    PatternFit,
    ProjectorLight,
    ProjectorMeasure,
    Run,
    depth_noise,
    frame_cues,
    material_skin,
    measure_frame,
    motion_from_steps,
    motion_snr,
    motion_step,
    one_light_runs,
    pattern_fit,
    projector_light_on,
)
from agent.liveness.fusion import ALGORITHM_VERSION, LivenessVerdict, VerdictThresholds, decide, fuse
from agent.liveness.power import same_power
from agent.liveness.wire import frameset_digest
from agent.pipeline import inplace
from agent.pipeline.align import AlignedFrameSet, align_frameset
from agent.quality import FaceObservation, QualityGate, QualityReport
from agent.quality.gate import Measurement
from drivers.frame import FrameSet

MIN_FACE_FRAMES = 5
DROWNED_SCORE_CAP = 0.45          # material unmeasurable under a challenge (sunlight, clipped dots)


def model_versions() -> dict[str, str]:
    return dict(_model_versions())


@functools.lru_cache(maxsize=1)
def _model_versions() -> dict[str, str]:
    """The manifest is read once: its models are the ones this process loaded and verified."""
    out = {name: digest[:16] for name, digest in manifest()["models"].items()}
    out["liveness"] = ALGORITHM_VERSION
    return out


@dataclass
class JudgeResult:
    verdict: LivenessVerdict
    quality: QualityReport | None
    max_skew_ms: float
    timing_ms: dict[str, float] = field(default_factory=dict)
    framesets: int = 0
    best_index: int | None = None            # the frameset a probe's crops come from
    best_face: FaceObservation | None = None  # its face (landmarks stay in memory)
    evidence: dict | None = None             # per-frame measurements of a challenged window (for the server)


def injection_signals(sets: list[FrameSet], aligned_noise: float) -> dict:
    """Signs that frames did not come from a physical sensor streaming now."""
    numbers = [fs.depth.frame_number for fs in sets if fs.depth is not None]
    stamps = [fs.depth.timestamp_ms for fs in sets if fs.depth is not None]
    monotonic = bool(np.all(np.diff(numbers) > 0)) and bool(np.all(np.diff(stamps) > 0)) if len(numbers) > 1 else True
    noisy = bool(np.isfinite(aligned_noise) and aligned_noise > 0.5)
    return {"frame_counter_monotonic": monotonic, "depth_noise_per_m2_mm": round(aligned_noise, 3)
            if np.isfinite(aligned_noise) else None, "sensor_noise_present": noisy,
            "suspicious": (not monotonic) or (bool(np.isfinite(aligned_noise)) and not noisy)}


log = logging.getLogger(__name__)
JUDGE_THREADS = max(1, min(2, os.cpu_count() or 1))
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def judge_pool() -> ThreadPoolExecutor:
    """The process's threads for measuring framesets side by side (two, or one on a single core).
    The heavy work (alignment, the face models, filters) runs in numpy, OpenCV and LiteRT, which
    release the GIL, and each thread has its own interpreters."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=JUDGE_THREADS, thread_name_prefix="liveness-judge")
        return _POOL


def wipe_face_models(timeout_s: float = 5.0) -> list[Future]:
    """Every judge thread overwrites its face-model interpreters' inputs and activations with a blank
    image's (``models.wipe_thread_interpreters``): one task per thread, queued behind whatever the
    pool has and held at a barrier until all have started, so each runs on a thread of its own and
    before any task queued after them (a next session's). Does not wait: the tasks are returned. A
    thread not free within ``timeout_s`` breaks the barrier and the wipe is logged as skipped."""
    met = threading.Barrier(JUDGE_THREADS, timeout=timeout_s)

    def wipe() -> None:
        try:
            met.wait()
        except threading.BrokenBarrierError:
            log.warning("face models' inputs not wiped: a judge thread was not free within %g s", timeout_s)
            return
        wipe_thread_interpreters()
    return [judge_pool().submit(wipe) for _ in range(JUDGE_THREADS)]


@dataclass
class _Measured:
    aligned: AlignedFrameSet
    measurement: Measurement
    cues: FrameCues | None
    skin: IrSkin | None                  # the material measure's skin in the IR imager's pixels (material_skin)
    energy: float | None
    digest: str
    ms: tuple[float, float, float]       # align, quality, liveness
    cpu_ms: tuple[float, float, float] = (0.0, 0.0, 0.0)   # the same, the judge threads' CPU time
    ir_sum: float | None = None          # the IR frame's whole sum (``ir_total``), taken by its inspection
    relit_cpu_ms: float | None = None    # the second landmark try worked out ahead (``Judge._relit``): its CPU


@dataclass(frozen=True)
class _Face:
    """The face on the colour image, found before the alignment: the detections and, when a single
    detection says which face is the main one, its landmarks (``QualityGate.main_face_mesh``)."""
    detections: list[Detection] | None     # None: no colour frame (alignment refuses the frameset)
    mesh: Mesh | None
    ms: tuple[float, float] = (0.0, 0.0)   # detection, landmarks
    cpu_ms: tuple[float, float] = (0.0, 0.0)


class _RelitUnneeded(Exception):
    """The last frameset's second landmark try worked out ahead stopped: its colour landmarks do not need it."""


@dataclass(frozen=True)
class _Seen:
    detections: list[Detection] | None     # None: no colour frame (alignment refuses the frameset)
    energy: float | None
    digest: str
    detect_ms: float
    rest_ms: float
    detect_cpu_ms: float = 0.0
    rest_cpu_ms: float = 0.0
    mesh: Mesh | None = None               # the single detection's landmarks (``_Face``)
    mesh_ms: float = 0.0
    mesh_cpu_ms: float = 0.0
    ir_sum: float | None = None            # ``ir_total`` of the IR frame (None: none, or not exact)

    @property
    def face(self) -> _Face:
        return _Face(self.detections, self.mesh, (self.detect_ms, self.mesh_ms), (self.detect_cpu_ms, self.mesh_cpu_ms))


@dataclass(frozen=True)
class _Grid:
    """A frame's face grid in one evidence box, and as the evidence carries it."""
    box: tuple[int, int, int, int]
    grid: np.ndarray
    listed: list[float]


@dataclass(frozen=True)
class _Verified:
    """The window's challenges verified beside its last frameset's measurement, with the inputs they
    were verified on: ``finish`` takes the result only when its own inputs are these to the bit."""
    energies: bytes                                    # the window's IR energies, float64, NaN unmeasured
    box: tuple[int, int, int, int] | None              # the evidence box the grids were read in
    grids: list[_Grid | None] | None                   # every frame's grid in it (None: not known ahead)
    rgb: np.ndarray | None                             # ``face_response`` of the grids
    result: ChallengeResult | None                     # None: the illumination's grids were not known


_T = TypeVar("_T")


class MakeInterrupted(RuntimeError):
    """A ``_Once`` value whose maker was interrupted by a ``BaseException`` that is not an ``Exception``: what
    the other askers get (one error, the same each time), the interruption itself its cause."""


class _Once(Generic[_T]):
    """A value worked out by whichever of several judge tasks asks for it first (``get``); the others
    wait for it (a lock) and take the very same object, or the same error. ``make`` may wait only for
    tasks queued before every asker (so it never waits for an asker)."""

    def __init__(self, make: Callable[[], _T]):
        self._make: Callable[[], _T] | None = make
        self._lock = threading.Lock()
        self._value: tuple[_T] | None = None     # (the value,) once made
        self._error: Exception | None = None

    def get(self) -> _T:
        with self._lock:
            if self._make is not None:
                make, self._make = self._make, None
                try:
                    self._value = (make(),)
                except Exception as exc:
                    self._error = exc
                except BaseException as exc:
                    # Not an error of the value's (a KeyboardInterrupt, SystemExit, a generator closed in
                    # ``make``): it goes on up the thread that made it, unchanged, and every later asker gets
                    # the stable error that says so (final30: they found no value and no error, an assert).
                    self._error = MakeInterrupted(f"the value was not made: its maker was interrupted "
                                                  f"({type(exc).__name__})")
                    self._error.__cause__ = exc
                    raise
        if self._error is not None:
            raise self._error
        assert self._value is not None             # made, or an error kept: nothing else leaves the lock
        return self._value[0]


class _LastFace:
    """The window's last frameset's cues (``features.frame_cues``) and material skin
    (``features.material_skin``): the two parts of its measurement that need its main face (with its
    pose) and nothing of the quality gate's checks, nor of each other. Once the gate has the face
    (``QualityGate.measure``'s ``on_face``: ``observed``), each is worked out once (``_Once``) by
    whichever judge thread asks first: the measuring one once the gate's checks are done (the skin
    first), the other in a task queued after all the work beside the measurement (the cues first),
    so a thread with nothing else to do takes what the measuring one has not begun; the
    measurement takes both (perf29)."""

    def __init__(self) -> None:
        # (the aligned frameset, its main face) from the gate, or None: no face, or the measurement failed.
        self.observed: Future[tuple[AlignedFrameSet, FaceObservation] | None] = Future()
        self.cues: _Once[FrameCues] = _Once(functools.partial(self._part, 0, frame_cues))
        self.skin: _Once[IrSkin | None] = _Once(functools.partial(self._part, 1, material_skin))
        self.cpu_ms = [0.0, 0.0]                  # cues, skin: the thread CPU of each, whichever thread
        self.threads: list[int | None] = [None, None]   # the thread that worked each out
        self.measuring: int | None = None        # the measuring thread
        self.face_cpu = 0.0                       # the measuring thread's CPU clock when the face came (s)
        self.to_face_ms = 0.0                     # the gate's CPU before it had the face (its checks: the rest)

    def _part(self, k: int, fn: Callable[[AlignedFrameSet, FaceObservation], _T]) -> _T:
        got = self.observed.result()
        assert got is not None                    # asked for only once the face came
        self.threads[k] = threading.get_ident()
        c = time.thread_time()
        try:
            return fn(*got)
        finally:
            self.cpu_ms[k] = (time.thread_time() - c) * 1000

    def seen(self, aligned: AlignedFrameSet, face: FaceObservation) -> None:
        """``on_face``: the gate found the main face (on the measuring thread)."""
        self.face_cpu, self.measuring = time.thread_time(), threading.get_ident()
        self.observed.set_result((aligned, face))


@dataclass(frozen=True)
class _StepsAhead:
    """The window's last frameset's motion steps worked out ahead (``Judge._final_steps``): its landmarks as its
    inspection found them, and each earlier cue frame's step to them."""
    landmarks: np.ndarray
    steps: list[tuple[FrameCues, _Once[tuple[float, float]]]]

    def holds(self, landmarks: np.ndarray) -> bool:
        """Whether ``landmarks`` are these to the bit (dtype, shape and bytes: the steps would be the same)."""
        mine = self.landmarks
        return (landmarks.dtype == mine.dtype and landmarks.shape == mine.shape
                and landmarks.tobytes() == mine.tobytes())


def _energy_bytes(energies: list[float]) -> bytes:
    return np.asarray(energies, dtype=np.float64).tobytes()


# The window's last frameset's second landmark try is worked out as soon as its IR is aligned where the
# frameset before needed it (``Judge._relit``; perf31). False: after the colour landmarks, as before.
RELIT_AHEAD = True

# Face grids and the illumination's motion pairs are worked out ahead once a challenged window is
# this far along (framesets before its end): its evidence box has mostly settled, and the screen's
# lag is guessed from the frames so far.
AHEAD_BEFORE_END = 4
# A lit frame this many framesets before a projector-challenged window's end, or fewer (the last one
# excepted), has the pattern's side of its pairs' reading worked out as soon as it is measured
# (``_pattern_ahead``): an on-off pair whose edge is within this of the end can have its noise pair
# settled only by the last frameset (``_near``: the six frames nearest the edge), and is then read
# beside the last measurement.
PATTERN_BEFORE_END = 5

_PairKey = tuple[int, int, tuple[int, int] | None]      # an on-off pair: (on, off, its noise pair)
# The window's measurements but the last, its framesets, its lit frames and their usual power (``_window_split``).
_Split = tuple[list[_Measured], list[FrameSet], list[bool], Callable[[int], bool]]


class Judge:
    """One session judged a frameset at a time, as the frames arrive, then decided by ``finish``.

    ``add`` hands the per-frameset work (alignment, the quality gate's checks, the physical cues,
    the projector's dot energy, the digest) to the judge threads, so framesets are measured side by
    side while the capture goes on; their results are folded in strictly in arrival order (the
    gate's progress and prompts, motion against the first face frame). A caller that feeds frames
    during the capture only waits for the last ones and the fusion at the end. ``judge`` is the
    batch form of the same thing.

    Some of the fusion's inputs depend on the whole window: the evidence box (the median face box)
    that every frame's face grid is read in, which frames the projector lit (a split between the
    window's energy percentiles), and the screen's lag (from verifying the whole sequence). Their
    expensive parts are pure functions of a few frames (a grid in a box, the projector's light on an
    on-off pair, the landmark motion between two frames), so the fold computes them as each frame
    comes, with the window's answers as they stand so far, and keeps them by their inputs; ``finish``
    decides with the whole window exactly as before and computes only what the guesses missed. The
    window's last frameset brings the rest, which the judge threads work out beside its measurement
    when the judge has them (``add``): the challenges' verification (every frame's IR energy and
    face grid are known once the last frameset's face is detected), the pairs its IR energy settles
    and the last two framesets' depth noise; ``finish`` takes them when their inputs are its own.
    The grids go ahead once more, a frameset before the end: every one so far in the box the window
    would end with if its last face came where the last but one is (a face held still moves the
    median box at its last frame, if at all, as that guess does); taken beside the last measurement
    when the window's box is that one.
    The result is the same to the last bit (``tests/liveness/test_fusion_equivalence.py``).
    """

    def __init__(self, gate: QualityGate, thresholds: VerdictThresholds, *, challenge: Challenge | None,
                 notes: list[str] | None = None, pool: ThreadPoolExecutor | None = None,
                 on_measured: Callable[[], None] | None = None, dot_reference: DotReference | None = None,
                 on_best: Callable[[int], None] | None = None):
        self.gate, self.thresholds, self.challenge = gate, thresholds, challenge
        # The camera's projector pattern (``dotref``): each on-off pair is tested against it.
        self.dot_reference = dot_reference
        self.notes = list(notes or [])
        self.pool = pool
        # Called (on a judge thread) when a frameset's measurement is done: the caller's thread then
        # calls ``fold_ready`` to fold it at once, not only when the next frameset comes.
        self.on_measured = on_measured
        # Called (on the caller's thread, at a fold) with the index of the frameset the probe's crops
        # would come from if the window ended now, each time that changes (``best_so_far``), from
        # ``AHEAD_BEFORE_END`` framesets before a challenged window's end (where the illumination's lag
        # is guessed; earlier names were mostly aligned in vain): the daemon aligns it for the probe
        # while the capture goes on.
        self.on_best = on_best
        self._best_named: int | None = None
        self._pending: collections.deque = collections.deque()
        self._submitted: list[tuple[FrameSet, Future[_Measured]]] = []
        self._last_grids: Future | None = None
        self._guessed_grids: Future | None = None
        self._last_challenge: Future[_Verified | None] | None = None
        self._last_lights: Future[dict[_PairKey, ProjectorLight] | None] | None = None
        # The on-off pairs lit by the window's last frameset itself (``_final_lit_last``).
        self._lit_last: Future[dict[_PairKey, ProjectorLight] | None] | None = None
        # The window's last frameset's cues and material skin, shared by the two threads (``_LastFace``).
        self._last_face: _LastFace | None = None
        # The window's last frameset's motion steps against earlier cue frames, worked out from its inspection's
        # landmarks (``_final_steps``; perf33): the task, and what it took on (None until it has).
        self._last_steps: Future[None] | None = None
        self._steps_ahead_of: _StepsAhead | None = None
        self._last_noise: Future[tuple[AlignedFrameSet, AlignedFrameSet, float] | None] | None = None
        # Lit frames' predicted patterns with their side of the pairs' reading worked out, by lit
        # frameset (``_pattern_ahead``), by the frameset whose coming queued the task: the lit one
        # or the next.
        self._patterns: dict[int, Future[dict[int, PatternFit]]] = {}
        self._tasks: list[Future] = []           # every task of this judge on the pool (``close``)
        self.sets: list[FrameSet] = []
        self.aligned: list[AlignedFrameSet] = []
        self.faces: list[FaceObservation | None] = []
        self.skins: list[IrSkin | None] = []
        # Each frame's IR sums for the foreign flood's background levels, taken as it comes (perf31).
        self.background: list[BackgroundSum | None] = []
        self.boxes: list = []                    # every face box so far, in order (the evidence box's)
        self.cues: list[FrameCues] = []
        self.motion_steps: list[tuple[float, float]] = []
        self.cue_frames: list[int] = []          # the frameset index of each entry of ``cues``
        self.energies: list[float] = []          # per frameset (NaN without an IR frame)
        self.digests: list[str] = []
        self.last_report: QualityReport | None = None
        self.ranks: list[tuple[tuple, int, FaceObservation]] = []
        self.ms = {"align": 0.0, "quality": 0.0, "liveness": 0.0}
        # The same parts in the judge threads' CPU time: on a busy machine the times above (spans on
        # the judge threads) include waiting for a core, and can be several times these.
        self.cpu_ms = {"align": 0.0, "quality": 0.0, "liveness": 0.0}
        # Worked out ahead, by their inputs: a frame's grid (with its box), the projector's light on
        # (on, off, noise pair) and the motion between two cue frames.
        self.grids: list[_Grid | None] = []
        self.lights: dict[_PairKey, ProjectorLight] = {}
        self.pair_steps: dict[tuple[int, int], tuple[float, float]] = {}
        self.lag_guess: int | None = None
        self._grids_from = 0                     # frames before this have a grid worked out ahead
        self.ahead_ms = 0.0
        gate.reset()

    def _inspect(self, fs: FrameSet, face: Future[_Face] | None = None,
                 found: Future[list[Detection] | None] | None = None) -> _Seen:
        """What needs no alignment: the face detections on the colour image and, with a single
        detection, its landmarks (the face models' larger part, ``QualityGate.main_face_mesh``),
        handed to ``face`` as soon as they are known (the measurement waits for them once
        aligned); then the projector's dot energy in the IR imager's own pixels (one fixed geometry
        for every frame: aligned IR has holes wherever that frame's depth has none, and unlit
        frames have far fewer depth pixels), and the digest. ``found``: the detections, handed over before
        the landmarks (``_relit``)."""
        try:
            t0, c0 = time.perf_counter(), time.thread_time()
            dets = self.gate.detector.detect(fs.color.pixels) if fs.color is not None else None
            if found is not None:
                found.set_result(dets)
            t1, c1 = time.perf_counter(), time.thread_time()
            mesh = self.gate.main_face_mesh(fs.color.pixels, dets) if fs.color is not None and dets else None
            t2, c2 = time.perf_counter(), time.thread_time()
        except BaseException as exc:
            for f in (face, found):
                if f is not None and not f.done():
                    f.set_exception(exc)
            raise
        if face is not None:
            face.set_result(_Face(dets, mesh, ((t1 - t0) * 1000, (t2 - t1) * 1000),
                                  ((c1 - c0) * 1000, (c2 - c1) * 1000)))
        e = dot_energy(fs.ir.pixels) if fs.ir is not None else None
        digest = frameset_digest(fs)
        total = ir_total(fs.ir.pixels) if FLOOD_FRAMES and fs.ir is not None else None
        t3, c3 = time.perf_counter(), time.thread_time()
        return _Seen(dets, e, digest, (t1 - t0) * 1000, (t3 - t2) * 1000, (c1 - c0) * 1000, (c3 - c2) * 1000,
                     mesh, (t2 - t1) * 1000, (c2 - c1) * 1000, total)

    def _measure(self, fs: FrameSet, inspected: Future[_Seen] | _Seen,
                 aligned: Future[AlignedFrameSet] | None = None, face: Future[_Face] | None = None,
                 last: _LastFace | None = None, found: Future[list[Detection] | None] | None = None,
                 before: Future[_Measured] | None = None) -> _Measured:
        """One frameset measured; its alignment is also handed to ``aligned`` as soon as it is done
        (the window's last frameset: the depth noise is worked out beside the rest of its measurement).
        ``face``: the inspection's detections and landmarks, handed over before its dot energy and
        digest (else they are taken from ``inspected``). ``last`` (the window's last frameset): its
        main face is handed over as soon as the gate has it, and its cues and material skin are
        taken from there, worked out by this thread or the other (``_LastFace``). ``found`` and ``before``
        (the window's last frameset): its detections as the inspection hands them over, and the frameset
        before's measurement, for the second landmark try worked out ahead (``_relit``)."""
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            a = align_frameset(fs)
        except BaseException as exc:
            if aligned is not None:
                aligned.set_exception(exc)
            if last is not None:
                last.observed.set_result(None)
            raise
        if aligned is not None:
            aligned.set_result(a)
        t1, c1 = time.perf_counter(), time.thread_time()
        try:
            tried: list[bool] = []
            relit, relit_ms = self._relit(a, found, face, before, tried), (time.perf_counter() - t1) * 1000
            relit_cpu = (time.thread_time() - c1) * 1000 if tried else None
            seen_face = face.result() if face is not None else (
                inspected.result() if isinstance(inspected, Future) else inspected).face
            t2, c2 = time.perf_counter(), time.thread_time()
            m = self.gate.measure(a, seen_face.detections, seen_face.mesh,
                                  on_face=functools.partial(last.seen, a) if last is not None else None, relit=relit)
        finally:
            if last is not None and not last.observed.done():
                last.observed.set_result(None)
        t3, c3 = time.perf_counter(), time.thread_time()
        if m.face is None:
            c, skin, shared = None, None, 0.0
        elif last is not None:
            last.to_face_ms = (last.face_cpu - c2) * 1000
            skin, c = last.skin.get(), last.cues.get()
            shared = sum(last.cpu_ms)            # (partly the other thread's)
        else:
            (c, skin), shared = measure_frame(a, m.face), 0.0
        t4, c4 = time.perf_counter(), time.thread_time()
        seen = inspected.result() if isinstance(inspected, Future) else inspected
        own = (c4 - c3) * 1000 if last is None or m.face is None else shared
        return _Measured(a, m, c, skin, seen.energy, seen.digest,
                         ((t1 - t0) * 1000, sum(seen_face.ms) + relit_ms + (t3 - t2) * 1000,
                          seen.rest_ms + (t4 - t3) * 1000),
                         ((c1 - c0) * 1000, sum(seen_face.cpu_ms) + (relit_cpu or 0.0) + (c3 - c2) * 1000,
                          seen.rest_cpu_ms + own), seen.ir_sum, relit_cpu)

    def _relit(self, a: AlignedFrameSet, found: Future[list[Detection] | None] | None,
               face: Future[_Face] | None, before: Future[_Measured] | None,
               tried: list[bool] | None = None) -> tuple[Detection, Mesh | None] | None:
        """The window's last frameset's second landmark try (``QualityGate.relit_mesh``: FaceMesh on the colour
        relit by the light its aligned IR shows, ~20 ms of CPU), worked out on the measuring thread as soon
        as the IR is aligned and the single detection found, beside the colour landmarks on the other thread,
        where the frameset before tried it (``QualityGate.relit_tried``: its colour landmarks under the
        presence limit, as a face in stripes of sun through blinds is frame after frame) and the colour
        landmarks are not in yet (perf31). The gate takes it only where its main face is that detection and
        the colour landmarks need it (``QualityGate.measure``'s ``relit``): the same landmarks as it would
        find after them, to the bit; elsewhere ~20 ms of the measuring thread's CPU spent for nothing. An
        error in it is not this frameset's (the gate may not need the try): None, and the gate's own try, if
        it makes one, meets it. Between its steps it stops (None) once the colour landmarks are in and do not
        need it (their presence at the limit, or no landmarks for that detection: the gate then takes no
        second try, or runs its own), so the measuring thread goes on to them (perf32). ``tried``: True is
        appended once the try starts (its CPU then counts in the measurement's, stopped or not)."""
        if (not RELIT_AHEAD or found is None or face is None or face.done() or before is None or not before.done()
                or before.cancelled() or before.exception() is not None
                or not self.gate.relit_tried(before.result().measurement)):
            return None
        try:
            dets = found.result()
            if dets is None or len(dets) != 1 or a.ir is None or face.done():
                return None
            if tried is not None:
                tried.append(True)
            limit = self.gate.thresholds.presence_min

            def needed() -> None:
                if not face.done():
                    return
                got = None if face.cancelled() or face.exception() is not None else face.result()
                if got is None or got.detections is not dets or got.mesh is None or got.mesh.presence >= limit:
                    raise _RelitUnneeded
            return dets[0], self.gate.relit_mesh(a, dets[0], needed)
        except Exception:
            return None

    def add(self, fs: FrameSet) -> None:
        if self.pool is None:
            self._fold(fs, self._measure(fs, self._inspect(fs)))
            return
        # Two tasks per frameset, so that the last frameset of a window is measured on both threads:
        # one detects the face and runs its landmark model (then takes the energy and digest) while
        # the other aligns, then goes on with the detections and landmarks (handed over through
        # ``face`` before the energy and digest). The inspection is queued first, so it has started
        # by the time its measurement waits for it: no task ever waits for one that no thread has
        # taken (an inspection cancelled before it started cancels ``face`` with it).
        ch = self.challenge
        last = ch is not None and len(self._submitted) + 1 == ch.frames
        face: Future[_Face] = Future()
        # The window's last frameset: its detections handed over before its landmarks (``_relit``).
        found: Future[list[Detection] | None] | None = Future() if last else None
        inspected = self.pool.submit(self._inspect, fs, face, found)
        inspected.add_done_callback(lambda f: [g.cancel() for g in (face, found) if g is not None]
                                    if f.cancelled() else None)
        aligned: Future[AlignedFrameSet] | None = Future() if last and self._submitted else None
        # The window's last frameset: its cues and material skin shared by both threads once the
        # gate has its face (``_LastFace``; the other thread's share is queued after all the work
        # beside the measurement, below).
        share = self._last_face = _LastFace() if last else None
        before = self._submitted[-1][1] if last and self._submitted else None
        measured = self.pool.submit(self._measure, fs, inspected, aligned, face, share, found, before)
        self._tasks += (inspected, measured)
        k = len(self._submitted)
        if (ch is not None and self.dot_reference is not None and Kind.PROJECTOR in ch.kinds
                and ch.frames - 1 - PATTERN_BEFORE_END <= k < ch.frames - 1):
            # Near the window's end, a lit frame's side of its pairs' reading (the predicted
            # pattern's shifts and blurs) once it is measured and has an unlit neighbour: the pair's
            # unlit frame or its noise pair may be the last frameset, and is then all that is left
            # to read of it.
            task = self.pool.submit(self._pattern_ahead, [*self._submitted, (fs, measured)], ch.frames)
            self._patterns[k] = task
            self._tasks.append(task)
        if ch is not None and ch.frames >= 2 and len(self._submitted) + 2 == ch.frames:
            # The window's last frameset but one: once a thread is free of it (its inspection
            # done), the grids of every frame so far are read in the box the window would end with
            # if the last face came where this one is (``_grids_guessed``), while the last frameset
            # is still to come; ``_final_grids`` takes them when that was the box.
            self._guessed_grids = self.pool.submit(self._grids_guessed, [*self._submitted, (fs, measured)],
                                                   inspected)
            self._tasks.append(self._guessed_grids)
        if self.on_measured is not None:
            on_measured = self.on_measured
            measured.add_done_callback(lambda _: on_measured())
        self._pending.append((fs, measured))
        self._submitted.append((fs, measured))
        if last:
            # The window's last frameset: while one thread measures it, the other, once it has
            # inspected it, reads the on-off pairs whose lit frame is an earlier one (the last
            # frameset's IR energy settles which frames the projector lit; at times several pairs,
            # the longest of these tasks, so it goes first), works out every frame's face grid in
            # the window's final box (its detections say what it is), then the depth noise of the
            # last two framesets once the last is aligned, then verifies the challenges on the
            # window's IR energies and those grids: what ``finish`` would otherwise do after the last
            # measurement. Whichever thread is free takes the next of them. The noise goes before the
            # verification (perf25): where the grids are read again in a box the last face moved, the
            # inspecting thread is the later one, and the verification (2 ms) then falls to the
            # measuring thread once it is free rather than the noise (up to 6 ms).
            submitted = list(self._submitted)
            # The window's lit/unlit split, made once by whichever of the tasks reading pairs comes
            # first (they all need it, and the pairs lit by the last frameset only to see there are
            # none in most windows).
            split = _Once(functools.partial(self._window_split, submitted, inspected))
            self._last_lights = self.pool.submit(self._final_lights, submitted, split)
            self._last_grids = self.pool.submit(self._final_grids, submitted, inspected)
            self._tasks += (self._last_lights, self._last_grids)
            if aligned is not None:
                self._last_noise = self.pool.submit(self._final_noise, submitted[-2][1], aligned)
                self._tasks.append(self._last_noise)
            if ch is not None and Kind.PROJECTOR in ch.kinds:
                # A pair lit by the last frameset itself needs its skin, the last thing its
                # measurement finds: read on the judge threads once that measurement is done, not
                # by ``finish`` on the caller's thread (perf28), and in two: one thread predicts
                # the lit frame's pattern and works out its side of the fit (``PatternFit.warm``)
                # while the other reads the pair's difference, which waits for that side only where
                # the fit reads it. Both before the verification, which any thread can take meanwhile.
                fit: Future[PatternFit | None] = Future()
                warming = self.pool.submit(self._final_lit_last_fit, submitted, split, fit)
                warming.add_done_callback(lambda f: fit.cancel() if f.cancelled() else None)
                self._lit_last = self.pool.submit(self._final_lit_last, submitted, split, fit)
                self._tasks += (warming, self._lit_last)
            self._last_challenge = self.pool.submit(self._final_challenge, submitted, inspected, self._last_grids)
            self._tasks.append(self._last_challenge)
            # Last, the other thread's share of the measurement's cues and skin: a thread free of
            # every task above while the measurement goes on takes what is left of them (where the
            # measurement is the longer path: a face whose landmarks were found again on the IR,
            # a busy core). Queued first it ended no window sooner (perf29's bench): the work
            # beside the measurement then waited for it.
            assert share is not None
            self._tasks.append(self.pool.submit(self._last_face_share, share))
            # Then the last frameset's motion steps (``_final_steps``), from its inspection's landmarks: a thread
            # free of everything above takes them off the fold's hands (perf33).
            self._last_steps = self.pool.submit(self._final_steps, submitted, face)
            self._tasks.append(self._last_steps)
        self._drain(block=False)

    def close(self, timeout: float | None = None) -> bool:
        """End this judge's work on the pool, whatever state it is in (a session aborted, failed or
        replaced, or after ``finish``): its tasks no thread has started are cancelled, so they never
        run, and the ones running are waited for, at most ``timeout`` seconds. True when none is
        left running: from then on no task of this judge aligns a frameset, so nothing its tasks
        would keep (a judge thread's alignment temporaries, the aligned results' pool) comes back
        after the caller's ``release_scratch()``. Its framesets, measurements and what it worked
        out are dropped either way. Calling it again does nothing more.

        Why cancel and wait rather than let late tasks run and drop what they make: a cancelled
        task costs nothing (a session aborted with a backlog no longer delays the next one's
        framesets, which queue behind it on the same threads), and once this returns True the
        alignment's kept state is touched only by tasks that started after it, so
        ``release_scratch`` needs no generation or lock in the alignment's path."""
        tasks, self._tasks = self._tasks, []
        # Newest first: a measurement before the inspection it waits for (one that runs while its
        # inspection is cancelled fails). ``cancel`` is False for a task running or done: those are
        # waited for (``wait`` on a cancelled one would wait until a thread takes it off the queue).
        started = [f for f in reversed(tasks) if not f.cancel()]
        running = wait(started, timeout=timeout).not_done if started else set()
        self._pending.clear()
        self._submitted = []
        self._last_grids = self._guessed_grids = self._last_challenge = self._last_lights = self._last_noise = None
        self._lit_last = self._last_face = self._last_steps = self._steps_ahead_of = None
        self._patterns = {}
        self.sets, self.aligned, self.faces, self.skins, self.boxes, self.background = [], [], [], [], [], []
        self.cues, self.motion_steps, self.cue_frames, self.energies, self.digests = [], [], [], [], []
        self.ranks, self.grids, self.lights, self.pair_steps = [], [], {}, {}
        self.last_report = None
        self._best_named = None
        return not running

    @staticmethod
    def _last_face_share(share: _LastFace) -> None:
        """The other thread's share of the window's last frameset's measurement: once the gate has
        its main face, its cues, then its material skin, each unless the measuring thread has taken
        it already (``_LastFace``). Runs on a judge thread; waits only for the measurement, queued
        before it (which hands it None without a face, or on an error before the face; a gate that fails
        after handing over its face leaves this share computing cues nothing reads: wasted, never a hang)."""
        if share.observed.result() is None:
            return
        try:
            share.cues.get()
            share.skin.get()
        except Exception:                        # the measurement takes the same error, and fails with it
            pass

    def _final_steps(self, submitted: list[tuple[FrameSet, Future[_Measured]]], face: Future[_Face]) -> None:
        """The motion steps the fold of the window's last frameset would measure (``motion_step``), worked out
        on a judge thread from its inspection's landmarks while its measurement goes on (perf33): against the
        first earlier frameset with cues (``motion_steps``) and, under the illumination challenge, against each
        earlier one with cues that the screen showed the last frame's colour under the lag guessed so far, a
        third of the window before it (``_steps_ahead``'s pairs). Each is a ``_Once`` that the fold takes when
        its cues' landmarks are these to the bit and its reference frame's cues are the very ones (else it
        measures the step itself, as before): the same function on the same arrays. Runs on a judge thread;
        waits only for tasks queued before it. A step no fold asks for costs only this task's time."""
        try:
            mesh = face.result().mesh
            ch = self.challenge
            if mesh is None or ch is None:
                return
            n = len(submitted)
            cued = [(k, m.cues) for k, m in enumerate(f.result() for _, f in submitted[:-1]) if m.cues is not None]
            if not cued:
                return
            refs = [cued[0][1]]
            lag = self.lag_guess                 # (set once by the caller's fold, a few framesets before the end)
            if Kind.ILLUMINATION in ch.kinds and ch.steps and lag is not None:
                shown = shown_colours(ch, lag, ch.frames)
                code = shown[n - 1] if n - 1 < len(shown) else None
                if code is not None:
                    refs += [c for k, c in cued
                             if shown[k] == code and 3 * (n - 1 - k) >= len(shown) and c is not refs[0]]
            landmarks = mesh.landmarks[:, :2].copy()    # as ``frame_cues`` keeps them
            ahead = self._steps_ahead_of = _StepsAhead(landmarks, [
                (ref, _Once(functools.partial(motion_step, ref.landmarks, landmarks))) for ref in refs])
            # The last first: the fold asks for them from the first, so where it comes before this task is done the
            # two meet in the middle rather than one waiting on each step the other is on.
            for _, once in reversed(ahead.steps):
                once.get()
        except Exception:                        # the frameset's own error reaches the caller at its fold
            return

    def _motion(self, ref: FrameCues, cur: FrameCues) -> tuple[float, float]:
        """``motion_step`` from cue frame ``ref`` to ``cur``: worked out ahead by ``_final_steps`` when ``cur`` is
        the window's last frameset's, its landmarks the ones the task read (to the bit) and ``ref`` one it
        took (that step, waited for if a thread is on it, else worked out here), else measured here."""
        task, last = self._last_steps, self._submitted[-1][1] if self._submitted else None
        if (task is not None and last is not None and last.done() and not last.cancelled()
                and last.exception() is None and last.result().cues is cur
                and not task.cancel()):          # (a task no thread has taken is cancelled: the steps are here)
            ahead = self._steps_ahead_of
            if ahead is not None and ahead.holds(cur.landmarks):
                for r, once in ahead.steps:
                    if r is ref:
                        return once.get()
        return motion_step(ref.landmarks, cur.landmarks)

    def _final_grids(self, submitted: list[tuple[FrameSet, Future[_Measured]]], last: Future[_Seen]
                     ) -> tuple[tuple[int, int, int, int], list[_Grid | None]] | None:
        """Every frame's grid in the evidence box of the whole window, or None when the last
        frameset's face box is not known before its measurement (several detections: which is the
        face depends on depth). Runs on a judge thread; waits only for tasks queued before it."""
        try:
            box = self._box_with(submitted, last, repeat=1)
            if box is None:
                return None
            guessed = self._guessed_grids.result() if self._guessed_grids is not None else None
            # The grids read in the box guessed a frameset ahead (``_grids_guessed``), when it was
            # this box: the same pixels and box, the same numbers.
            return box, self._grids_in(submitted, box, guessed[1] if guessed is not None and guessed[0] == box else [])
        except Exception:                        # the frameset's own error reaches the caller at its fold
            return None

    def _grids_guessed(self, submitted: list[tuple[FrameSet, Future[_Measured]]], last: Future[_Seen]
                       ) -> tuple[tuple[int, int, int, int], list[_Grid | None]] | None:
        """Every grid so far (the window's last frameset but one included) in the box the whole
        window's would be if its last face box were this frameset's again: the evidence box is the
        median of the window's face boxes, and a face held still moves it by at most a pixel at its
        last frame, so where the last face comes makes the box one of very few; a wrong guess costs
        only this task's time, off the window's end (``_final_grids`` reads the grids again in the
        box it finds). None when the box cannot be guessed (several detections). Runs on a judge
        thread while the last frameset is still to come; waits only for tasks queued before it."""
        try:
            box = self._box_with(submitted, last, repeat=2)
            return (box, self._grids_in(submitted, box, [])) if box is not None else None
        except Exception:                        # the frameset's own error reaches the caller at its fold
            return None

    @staticmethod
    def _box_with(submitted: list[tuple[FrameSet, Future[_Measured]]], last: Future[_Seen], repeat: int
                  ) -> tuple[int, int, int, int] | None:
        """The evidence box of the face boxes of ``submitted``'s measurements but the last's, and of
        the last frameset's detection ``repeat`` times (none: no box of its own; None with several:
        which is the face depends on its depth)."""
        boxes = [m.measurement.face.detection.bbox for m in (f.result() for _, f in submitted[:-1])
                 if m.measurement.face is not None]
        dets = last.result().detections
        if dets is None or len(dets) > 1:
            return None
        return evidence_box(boxes + [d.bbox for d in dets] * repeat, _shape(submitted[0][0]))

    def _grids_in(self, submitted: list[tuple[FrameSet, Future[_Measured]]], box: tuple[int, int, int, int],
                  known: list[_Grid | None]) -> list[_Grid | None]:
        """Each of ``submitted``'s face grids in ``box``: one of ``known`` (by frame) or the fold's
        already read in it (the same pixels: the same numbers), else read here. The fold runs on the
        caller's thread meanwhile, and a _Grid never changes."""
        grids: list[_Grid | None] = []
        mine, folded = self.grids, self.sets
        for k, (fs, _) in enumerate(submitted):
            g = known[k] if k < len(known) else None
            if g is None and k < len(mine) and k < len(folded) and folded[k] is fs:
                g = mine[k]
            if g is not None and g.box == box:
                grids.append(g)
                continue
            grid = face_grid(fs.color.pixels, box) if fs.color is not None else None
            grids.append(_Grid(box, grid, [round(float(v), 6) for v in grid.reshape(-1)])
                         if grid is not None else None)
        return grids

    def _final_challenge(self, submitted: list[tuple[FrameSet, Future[_Measured]]], last: Future[_Seen],
                         grids: Future[tuple[tuple[int, int, int, int], list[_Grid | None]] | None]
                         ) -> _Verified | None:
        """The challenges verified on the whole window (``challenge.verify``, as ``finish`` calls it),
        with the inputs it took: every frameset's IR energy (the last one's from its inspection) and,
        when the window's final face grids are known (``_final_grids``), the face's light read from
        them (``face_response``). The verification needs the whole window (the projector's on/off
        split at the energies' percentiles, the illumination's fit of every lag over every frame), so
        it runs once, here, not frame by frame. Runs on a judge thread; waits only for tasks queued
        before it. None when a frameset failed."""
        ch = self.challenge
        assert ch is not None
        try:
            measured = [f.result() for _, f in submitted[:-1]]
            seen = last.result()
            energies = _window_energies([m.energy for m in measured] + [seen.energy])
            ready = grids.result()
            box, used = ready if ready is not None else (None, None)
            rgb = _face_light(used) if used is not None else None
            if Kind.ILLUMINATION in ch.kinds and rgb is None:
                result = None
            else:
                result = verify(ch, energies, rgb)
            return _Verified(_energy_bytes(energies), box, used, rgb, result)
        except Exception:                        # the frameset's own error reaches the caller at its fold
            return None

    def _final_lights(self, submitted: list[tuple[FrameSet, Future[_Measured]]], split: _Once[_Split]
                      ) -> dict[_PairKey, ProjectorLight] | None:
        """The projector's light on every on-off pair of the whole window whose lit frame is not the
        last (its skin comes with its measurement) and that the fold has not read, with the
        projector's states as the whole window's IR energies split them and each pair's noise pair
        as ``finish`` picks it: the pairs ``finish`` would read itself. The last frameset's IR is
        read as the camera delivered it (only the IR imager's pixels are read, no alignment); ``split``:
        the window's ``_window_split``, shared with the tasks reading the pairs lit by the last
        frameset. Runs on a judge thread; waits only for tasks queued before it. None when a
        frameset failed."""
        return self._window_pairs(submitted, split, lit_last=None)

    def _final_lit_last(self, submitted: list[tuple[FrameSet, Future[_Measured]]], split: _Once[_Split],
                        fit: Future[PatternFit | None]) -> dict[_PairKey, ProjectorLight] | None:
        """The projector's light on the on-off pairs lit by the window's last frameset, as
        ``_final_lights`` reads the others: once its inspection's IR energy says the projector lit
        it (else none, at once), after its measurement (the skin), against its pattern as
        ``_final_lit_last_fit`` predicts it into ``fit`` (queued before this). Runs on a judge
        thread; waits only for tasks queued before it. None when a frameset failed."""
        return self._window_pairs(submitted, split, lit_last=fit)

    def _final_lit_last_fit(self, submitted: list[tuple[FrameSet, Future[_Measured]]], split: _Once[_Split],
                            fit: Future[PatternFit | None]) -> PatternFit | None:
        """The pattern of the window's last frameset predicted (``features.pattern_fit``) once it is
        measured, when its IR energy says the projector lit it after an unlit frame and a face is
        on it at the usual power, handed to ``fit`` at once (None otherwise), then its side of the
        fit worked out (``PatternFit.warm``) while ``_final_lit_last`` reads the rest of the pair.
        Runs on a judge thread; waits only for tasks queued before it."""
        got = None
        try:
            _, sets, lit, usual = split.get()
            n = len(sets)
            if self.dot_reference is not None and n >= 2 and lit[n - 1] and not lit[n - 2]:
                m = submitted[-1][1].result()
                if m.measurement.face is not None and m.skin is not None and usual(n - 1):
                    got = pattern_fit(self.dot_reference, m.skin, m.aligned)
        except Exception:                        # the frameset's own error reaches the caller at its fold
            got = None
        finally:
            fit.set_result(got)
        return got.warm() if got is not None else None

    @staticmethod
    def _window_split(submitted: list[tuple[FrameSet, Future[_Measured]]], last: Future[_Seen]) -> _Split:
        """The window's measurements but the last, its framesets, the frames the projector lit as
        the whole window's IR energies split them (the last one's from its inspection) and
        ``_usual_power`` of them. Made once per window (``_Once``: the tasks beside the last
        measurement share it; none changes it)."""
        measured = [f.result() for _, f in submitted[:-1]]
        energies = _window_energies([m.energy for m in measured] + [last.result().energy])
        sets = [fs for fs, _ in submitted]
        lit = [bool(v) for v in projector_states(energies)]
        return measured, sets, lit, _usual_power(sets, lit)

    def _window_pairs(self, submitted: list[tuple[FrameSet, Future[_Measured]]], split: _Once[_Split], *,
                      lit_last: Future[PatternFit | None] | None) -> dict[_PairKey, ProjectorLight] | None:
        """``_final_lights`` (``lit_last`` None) or ``_final_lit_last`` (its pattern's future)."""
        try:
            measured, sets, lit, usual = split.get()
            n = len(sets)
            edges = [(k, on, off) for k, on, off in _edges(lit) if (on == n - 1) == (lit_last is not None)]
            reference: DotReference | PatternFit | None = self.dot_reference
            if lit_last is not None and edges:
                measured = [*measured, submitted[-1][1].result()]     # (a new list: the split is shared)
                reference = lit_last.result() or reference
            out: dict[_PairKey, ProjectorLight] = {}
            for k, on, off in edges:
                if measured[on].measurement.face is None or not usual(on):
                    continue
                pair = _noise_pair(lit, k, n)
                key = (on, off, pair)
                if key not in self.lights:
                    out[key] = projector_light_on(measured[on].skin, measured[on].aligned, sets[off],
                                                  (sets[pair[0]], sets[pair[1]]) if pair is not None else None,
                                                  reference if lit_last is not None else self._pattern_of(on))
            return out
        except Exception:                        # the frameset's own error reaches the caller at its fold
            return None

    def _pattern_ahead(self, submitted: list[tuple[FrameSet, Future[_Measured]]], frames: int
                       ) -> dict[int, PatternFit]:
        """The predicted pattern (``features.pattern_fit``) with its side of a pair's reading worked
        out (``PatternFit.warm``) of each lit frame that the window's IR energies so far give an
        unlit neighbour, by frameset: the last of ``submitted`` when the frame before it is unlit
        (or it is the window's last but one: the last frameset, still to come, may be its unlit
        one), and the one before it when that is the second of two lit frames and the last is
        unlit; each only with a face at the usual projector power. It depends on the lit frame's
        measurement alone, so whichever pair reads it later (its unlit frame or its noise pair still
        to come) takes it as it is: the same numbers. A frame the whole window splits otherwise costs
        only this task's time, before the window's end. Runs on a judge thread; waits only for tasks
        queued before it."""
        out: dict[int, PatternFit] = {}
        try:
            measured = [f.result() for _, f in submitted]
            lit = [bool(v) for v in projector_states(_window_energies([m.energy for m in measured]))]
            usual = _usual_power([fs for fs, _ in submitted], lit)
            m = len(submitted) - 1
            wanted = [k for k in (m - 1, m) if k >= 1 and lit[k] and (
                (k == m and (not lit[k - 1] or k == frames - 2)) or
                (k == m - 1 and lit[k - 1] and not lit[m] and k != frames - 2))]
            for k in wanted:
                got = measured[k]
                if self.dot_reference is None or got.measurement.face is None or got.skin is None or not usual(k):
                    continue
                fit = pattern_fit(self.dot_reference, got.skin, got.aligned)
                if fit is not None:
                    out[k] = fit.warm()
        except Exception:                        # the frameset's own error reaches the caller at its fold
            pass
        return out

    def _pattern_of(self, on: int) -> DotReference | PatternFit | None:
        """What a pair lit by frameset ``on`` is read against (``projector_light_on``'s reference):
        its pattern worked out ahead when there is one (waited for: it was queued before any task
        or fold that reads a pair of it), else the projector's reference."""
        for ahead in (self._patterns.get(on), self._patterns.get(on + 1)):
            fit = ahead.result().get(on) if ahead is not None and not ahead.cancelled() else None
            if fit is not None:
                return fit
        return self.dot_reference

    @staticmethod
    def _final_noise(before: Future[_Measured], last: Future[AlignedFrameSet]
                     ) -> tuple[AlignedFrameSet, AlignedFrameSet, float] | None:
        """The depth noise of the window's last two framesets (``features.depth_noise``), with the
        two aligned framesets it was read on, as soon as the last is aligned (its measurement goes
        on meanwhile on the other thread). Runs on a judge thread; waits only for tasks queued
        before it (the last frameset's measurement sets ``last`` once aligned, or its error)."""
        try:
            a, b = before.result().aligned, last.result()
            return a, b, depth_noise([a, b])
        except Exception:                        # the frameset's own error reaches the caller at its fold
            return None

    def _depth_noise(self) -> float:
        """``depth_noise`` of the window, as worked out beside the last measurement when it was read
        on the very framesets the window ends with."""
        aligned = self.aligned
        got = self._last_noise.result() if self._last_noise is not None else None
        if got is not None and len(aligned) >= 2 and got[0] is aligned[-2] and got[1] is aligned[-1]:
            return got[2]
        return depth_noise(aligned)

    def fold_ready(self) -> None:
        """Fold every frameset measured so far, in order (not waiting for any)."""
        self._drain(block=False)

    def _drain(self, block: bool) -> None:
        while self._pending and (block or self._pending[0][1].done()):
            fs, fut = self._pending.popleft()
            self._fold(fs, fut.result())

    def _fold(self, fs: FrameSet, r: _Measured) -> None:
        k = len(self.sets)
        report = self.gate.apply(r.measurement)
        self.last_report = report
        if report.face is not None:
            # Ranked now, chosen at ``finish`` (where the challenge's lag says which frames were lit
            # by a neutral screen): passes the gate, then the most confident detection, then the latest.
            self.ranks.append(((report.ok, report.face.detection.score, k), k, report.face))
            self.boxes.append(report.face.detection.bbox)
            c = r.cues
            if c is not None:
                if self.cues:                    # motion against the first face frame, as it comes
                    self.motion_steps.append(self._motion(self.cues[0], c))
                self.cues.append(c)
                self.cue_frames.append(k)
        self.faces.append(report.face)
        self.skins.append(r.skin)
        if FLOOD_FRAMES and fs.ir is not None:
            self.background.append(background_sum(fs.ir.pixels, [s.box for s in self.skins if s is not None],
                                                  r.ir_sum))
        else:
            self.background.append(None)
        self.energies.append(r.energy if r.energy is not None else float("nan"))
        self.digests.append(r.digest)
        self.sets.append(fs)
        self.aligned.append(r.aligned)
        for name, v, cpu in zip(("align", "quality", "liveness"), r.ms, r.cpu_ms, strict=True):
            self.ms[name] += v
            self.cpu_ms[name] += cpu
        t0 = time.perf_counter()
        self._ahead()
        self.ahead_ms += (time.perf_counter() - t0) * 1000
        ch = self.challenge
        near_end = ch is None or len(self.sets) >= ch.frames - AHEAD_BEFORE_END
        if self.on_best is not None and near_end and (best := self.best_so_far()) is not None \
                and best != self._best_named:
            self._best_named = best
            self.on_best(best)

    def best_so_far(self) -> int | None:
        """The frameset ``finish`` would name best (the probe's crops) if the window ended with the
        framesets folded so far: its rule (``best_rank``) on the ranks so far, and, under the
        illumination challenge, the frames the screen lit neutrally as the lag guessed ahead says
        (``lag_guess``, from a few framesets before the window's end; before it, none is told apart).
        ``finish``'s own choice can differ (a later frameset, another lag); it alone is the verdict's."""
        ch = self.challenge
        neutral = None
        if ch is not None and Kind.ILLUMINATION in ch.kinds and ch.steps and self.lag_guess is not None:
            neutral = neutral_frames(ch, self.lag_guess, len(self.sets))
        best = best_rank(self.ranks, neutral)
        return best[1] if best is not None else None

    # --- worked out ahead ----------------------------------------------------------------------------
    def _ahead(self) -> None:
        """The newest frame's share of the fusion, with the window's answers as they stand. Only a
        challenged window needs face grids (the illumination's colours, the server's evidence):
        from a few framesets before its end, when its box has mostly settled, each frame's grid in
        the box as it stands (every frame's, the first time: the lag's guess reads them)."""
        self.grids.append(None)
        ch = self.challenge
        if ch is None:
            return
        n = len(self.sets)
        if n >= ch.frames - AHEAD_BEFORE_END and (box := self._box()) is not None:
            # The window's last frameset folded: its grid was read beside its measurement when this
            # is the box (``_final_grids``, most often done by now; not waited for): taken, not read
            # again on the caller's thread (perf30).
            beside = self._grids_beside(box, block=False) if self._last_grids is not None else None
            for k in range(self._grids_from, n):
                if beside is not None and k < len(beside) and beside[k] is not None:
                    self.grids[k] = beside[k]
                self._grid(k, box)
            self._grids_from = n
        if Kind.PROJECTOR in ch.kinds:
            self._lights_ahead()
        if Kind.ILLUMINATION in ch.kinds and ch.steps and n >= ch.frames - AHEAD_BEFORE_END:
            self._steps_ahead()

    def _box(self) -> tuple[int, int, int, int] | None:
        return evidence_box(self.boxes, _shape(self.sets[0]) if self.sets else None)

    def _grids_beside(self, box: tuple[int, int, int, int], *, block: bool) -> list[_Grid | None] | None:
        """Every frame's grid as read beside the window's last measurement (``_final_grids``) when it
        read them in ``box``, else None (and None while it runs, unless ``block``)."""
        task = self._last_grids
        if task is None or task.cancelled() or not (block or task.done()):
            return None
        ready = task.result()
        return ready[1] if ready is not None and ready[0] == box else None

    def _grid(self, k: int, box: tuple[int, int, int, int]) -> _Grid | None:
        """Frame ``k``'s face grid in ``box`` (None without a colour frame), computed once per box."""
        color = self.sets[k].color
        if color is None:
            return None
        g = self.grids[k]
        if g is None or g.box != box:
            grid = face_grid(color.pixels, box)
            g = self.grids[k] = _Grid(box, grid, [round(float(v), 6) for v in grid.reshape(-1)])
        return g

    def _light(self, on: int, off: int, pair: tuple[int, int] | None) -> ProjectorLight:
        """The projector's light on the pair (on, off), the noise measured on ``pair``."""
        key = (on, off, pair)
        light = self.lights.get(key)
        if light is None:
            sets = self.sets
            light = self.lights[key] = projector_light_on(self.skins[on], self.aligned[on], sets[off],
                                                          (sets[pair[0]], sets[pair[1]]) if pair is not None
                                                          else None, self._pattern_of(on))
        return light

    def _step(self, i: int, j: int) -> tuple[float, float]:
        """Landmark motion from cue frame ``i`` to cue frame ``j``."""
        step = self.pair_steps.get((i, j))
        if step is None:
            step = self.pair_steps[(i, j)] = self._motion(self.cues[i], self.cues[j])
        return step

    def _lights_ahead(self) -> None:
        """Every on-off pair whose noise pair the window's later frames can no longer change, with
        the projector's states as the energies so far split them. The window's last frameset's
        pairs are read beside its measurement (``_final_lights``) and by ``finish``."""
        ch = self.challenge
        assert ch is not None
        n = len(self.sets)
        if self._last_lights is not None and n >= ch.frames:
            return
        lit = [bool(v) for v in projector_states(self.energies)]
        usual = _usual_power(self.sets, lit)
        for k, on, off in _edges(lit):
            if self.faces[on] is None or not usual(on):
                continue
            settled, pair = _settled_noise_pair(lit, k, max(ch.frames, n))
            if settled:
                self._light(on, off, pair)

    def _steps_ahead(self) -> None:
        """Motion between frames the screen lit alike, under the lag the frames so far show best:
        guessed once, a few framesets before the window's end, then each new frame's pairs."""
        ch = self.challenge
        assert ch is not None
        if self.lag_guess is None:
            rgb = face_response([g.grid.reshape(-1, 3) if g is not None else np.full((GRID * GRID, 3), np.nan)
                                 for g in self.grids])
            self.lag_guess = verify_illumination(ch.steps, rgb).lag_frames
        shown = shown_colours(ch, self.lag_guess, ch.frames)
        for i, j in same_colour_pairs(shown, self.cue_frames):
            self._step(i, j)

    # --- the decision ----------------------------------------------------------------------------------
    def finish(self) -> JudgeResult:
        backlog = len(self._pending)             # framesets not yet folded when the window ended
        t_drain = time.perf_counter()
        self._drain(block=True)
        t0, c0 = time.perf_counter(), time.thread_time()
        sets, faces, challenge, notes = self.sets, self.faces, self.challenge, self.notes
        noise = self._depth_noise()
        injection = injection_signals(sets, noise)
        digests = list(self.digests)
        sel, verified = self._selection()
        ch_result: ChallengeResult | None = None
        ch_dict = None
        if challenge is not None:
            ch_result = verified if verified is not None else verify(challenge, self.energies, sel.rgb)
            if FLICKER:
                ch_result = self._flicker(challenge, ch_result, sel)
            # Binds the verdict to the server's nonce: the server checks it against the probe header.
            ch_dict = {**ch_result.to_dict(), "nonce_sha256": hashlib.sha256(challenge.nonce).hexdigest()}
            sel.settle(challenge, ch_result)
        if len(self.cues) < MIN_FACE_FRAMES:
            verdict = LivenessVerdict("inconclusive", 0.0, {}, digests, model_versions(), challenge is not None,
                                      ch_dict, injection,
                                      notes + [f"a face was measured in only {len(self.cues)} framesets"])
        else:
            # Material cues need the projector; with a challenge, judge them on the lit frames only.
            # Under a projector challenge the frames' own dots say whether it lit them (the check
            # below), not their metadata, which an injector on the camera link rewrites at will: a
            # window whose every frame claims the projector off while its dots follow the schedule
            # is not the camera's own (``claimed_off``).
            reported = [fs.ir.metadata.projector_on for fs in sets if fs.ir is not None]
            claimed_off = bool(reported) and all(r is False for r in reported)
            projector_check = ch_result.get(Kind.PROJECTOR) if ch_result is not None else None
            projector_seen = projector_check is not None or not claimed_off
            lights = []
            if (drowned := lit_when_drowned(projector_check, sets)) is not None:
                sel.lit = drowned
            lit = sel.lit
            for task in (self._last_lights, self._lit_last):
                ready = task.result() if task is not None else None
                for key, light in (ready or {}).items():
                    self.lights.setdefault(key, light)
            flood_edges = 0
            if lit is not None:
                # Pairs of consecutive frames where the projector went on->off or off->on, as the IR
                # frames themselves show it (an edge that landed a frame late is paired where it landed).
                # A power change that landed inside the window (a camera's latency) must not mix
                # powers within the session's pairs: lit frames at another power are left out.
                # Frames a foreign flood's burst lit (``flood_frames``) are read in no pair: the pairs
                # are then ``flood_pairs``' (the window's very pairs when no frame carries one).
                usual_power = _usual_power(sets, lit)
                flooded = None
                if FLOOD_FRAMES:
                    levels = background_levels(sets, self.skins, self.background)
                    flooded = flood_frames(levels, lit)
                    if any(flooded):       # the colour only where IR flagged a frame: ~0.3 s of CPU a window
                        flooded = flood_frames(levels, lit, colour_levels(sets, self.boxes))
                pairs, flood_edges = flood_pairs(lit, flooded)
                for on, off, pair in pairs:
                    if faces[on] is not None and usual_power(on):
                        lights.append(self._light(on, off, pair))
                if flood_edges and flooded is not None:
                    notes.append(f"a foreign NIR light lit {sum(flooded)} of the window's IR frames over the "
                                 f"projector's schedule ({flood_edges} of its on-off pairs touched): those frames "
                                 f"were read in no pair")
            motion = motion_from_steps(self.cues, sel.motion_steps(self.cues, self.cue_frames, self.motion_steps,
                                                                   step=self._step))
            motion["motion_snr"] = motion_snr(self.cues, sel.light_runs(self.cue_frames), len(sets))
            notes.extend(sel.notes)
            s = score(self.cues, projector_on=[lit[k] for k in self.cue_frames] if lit is not None else None,
                      projector_seen=projector_seen,
                      projector=(replace(ProjectorMeasure.pool(lights), flood_edges=flood_edges)
                                 if lights or flood_edges else None),
                      motion=motion)
            notes.extend(s.notes)
            detectors = s.as_dict()
            fused = min(fuse(detectors), s.material_bound)
            result = decide(fused, self.thresholds)
            if s.unmeasured:
                # Unmeasured is not evidence of life, nor of an attack: the score stays below any
                # live threshold and, unless another detector already says attack, the verdict
                # is inconclusive (the person is asked to retry out of direct light).
                result = "attack" if result == "attack" else "inconclusive"
                fused = min(fused, DROWNED_SCORE_CAP)
            if ch_result is not None and self.dot_reference is not None and UNIT_CHECK:
                # The projector's dots against this unit's enrolled pattern (``unit_status``): another
                # unit's stream obeying this terminal's commands follows the schedule with the wrong dots.
                status = unit_status(s.cues)
                if status == "unmeasured" and projector_check is not None and projector_check.passed:
                    notes.append(f"the unit check did not run: {s.cues.get('projector_pattern_pairs', 0.0):.0f} "
                                 f"pairs tested against this unit's dot pattern (fewer than {UNIT_MIN_PAIRS})")
                elif status in ("other", "unsure") and projector_check is not None and not projector_check.passed:
                    # The projector's own failure stands (``unit_checked``), but what the dots say of the unit is
                    # kept for the operator and the audit (review33a: a swept light could hide "another unit").
                    notes.append(f"the projector's dots also do not fit this unit's enrolled dot pattern (unit check: "
                                 f"{status})")
                checked = unit_checked(ch_result, status)
                if checked is not ch_result:
                    ch_result = checked
                    assert challenge is not None and ch_dict is not None
                    ch_dict = {**ch_result.to_dict(), "nonce_sha256": ch_dict["nonce_sha256"]}
            if ch_result is not None and not ch_result.passed:     # (set exactly when there is a challenge)
                if ch_result.unmeasurable:
                    # Too weak to tell (bright room) is not a contradiction: never live, retry elsewhere.
                    result = "attack" if result == "attack" else "inconclusive"
                    fused = min(fused, DROWNED_SCORE_CAP)
                else:
                    result, fused = "attack", 0.0
                notes.append("challenge failed: " + ch_result.detail)
            if injection["suspicious"]:
                result, fused = "attack", 0.0
                notes.append("stream does not look like a physical sensor streaming now")
            if claimed_off and projector_check is not None and projector_check.passed:
                result, fused = "attack", 0.0
                notes.append("the IR frames' metadata says the projector was off, yet their dots follow the "
                             "challenge's schedule: the frames are not the camera's own")
            verdict = LivenessVerdict(result, fused, detectors, digests, model_versions(), challenge is not None,
                                      ch_dict, injection, notes, s.cues)
        n = max(len(sets), 1)
        skew = max((fs.skew_ms for fs in sets), default=float("nan"))
        best = sel.best(self.ranks)
        evidence = sel.evidence(challenge, sets, self.energies, digests, faces) if challenge is not None else None
        finish_ms = (time.perf_counter() - t0) * 1000
        cpu_finish = (time.thread_time() - c0) * 1000
        liveness_ms = self.ms["liveness"] + self.ahead_ms + finish_ms
        total = self.ms["align"] + self.ms["quality"] + liveness_ms
        timing = {"align": self.ms["align"], "quality": self.ms["quality"], "liveness": liveness_ms,
                  "ahead": self.ahead_ms, "finish": finish_ms, "cpu_finish": cpu_finish, "total": total,
                  "per_frameset": total / n,
                  "backlog": float(backlog), "drain": (t0 - t_drain) * 1000,
                  **{f"cpu_{name}": v for name, v in self.cpu_ms.items()},
                  "cpu_per_frameset": sum(self.cpu_ms.values()) / n}
        return JudgeResult(verdict, self.last_report, skew, timing, len(sets),
                           best[1] if best else None, best[2] if best else None, evidence)

    def _flicker(self, challenge: Challenge, result: ChallengeResult, sel: FrameSelection) -> ChallengeResult:
        """``result`` with a contradiction that a flickering bright ambient explains relabelled not
        measurable (``explain_flicker``; a projector that "did not switch" under a PWM dimmer's pulses
        named as such): read only for a window that failed as a contradiction or so, on
        the registered IR in the evidence box's cells (the colour's cells) and the frames the camera
        reports lit."""
        if sel.box is None or not any(relabelable(r) for r in result.results):
            return result
        cells = np.stack([g.reshape(-1, 3) if g is not None else np.full((GRID * GRID, 3), np.nan)
                          for g in sel.grids])
        ir = np.stack([ir_grid(a.ir, sel.box).reshape(-1) if a.ir is not None else np.full(GRID * GRID, np.nan)
                       for a in self.aligned])
        reported = [fs.ir.metadata.projector_on if fs.ir is not None else None for fs in self.sets]
        lit = None if any(r is None for r in reported) else [bool(r) for r in reported]
        return explain_flicker(challenge, result, cells, ir, lit, self.energies)

    def _selection(self) -> tuple[FrameSelection, ChallengeResult | None]:
        """The window's frame selection, and the challenges' result verified beside the last
        measurement when it was verified on this window's very energies and grids (else None:
        ``finish`` verifies them)."""
        box = self._box()
        if box is not None and (beside := self._grids_beside(box, block=True)) is not None:
            # The grids read beside the last measurement, in this box: the same numbers as any
            # already read in it (the same pixels and box), and the very objects the challenges
            # were verified on.
            for k, g in enumerate(beside[:len(self.grids)]):
                if g is not None:
                    self.grids[k] = g
        # Without a challenge nothing reads the grids (no colours to verify, no evidence).
        grids = ([self._grid(k, box) for k in range(len(self.sets))] if box is not None and self.challenge is not None
                 else [None] * len(self.sets))
        v = self._last_challenge.result() if self._last_challenge is not None else None
        same_grids = (v is not None and v.grids is not None and v.box == box and len(v.grids) == len(grids)
                      and all(a is b for a, b in zip(v.grids, grids, strict=True)))
        sel = FrameSelection(box, [g.grid if g is not None else None for g in grids], self.energies,
                             [g.listed if g is not None else None for g in grids],
                             rgb=v.rgb if v is not None and same_grids else None)
        ch = self.challenge
        if (v is None or ch is None or v.result is None or v.energies != _energy_bytes(self.energies)
                or (Kind.ILLUMINATION in ch.kinds and not same_grids)):
            return sel, None
        return sel, v.result


def _window_energies(energies: list[float | None]) -> list[float]:
    """Each frameset's IR energy as the judge keeps it (NaN without an IR frame)."""
    return [e if e is not None else float("nan") for e in energies]


def _face_light(grids: list[_Grid | None]) -> np.ndarray:
    """``FrameSelection.rgb`` of these grids (``face_response``)."""
    return face_response([g.grid.reshape(-1, 3) if g is not None else np.full((GRID * GRID, 3), np.nan)
                          for g in grids])


def lit_when_drowned(check: SequenceResult | None, sets: list[FrameSet]) -> list[bool] | None:
    """The frames the projector lit by the frames' own metadata, for a projector window whose dots
    were drowned (failed, not measurable, not inverted): their energies split by themselves say
    nothing of which frames were lit, and depth read on unlit frames of a structured-light camera
    is none (geometry then said attack). The metadata is the camera's word (an injector writes its
    own), which is enough here: such a window is never live, this decides only attack or
    inconclusive. None otherwise, or when a frame does not say."""
    if check is None or check.passed or check.measurable or check.inverted:
        return None
    reported = [fs.ir.metadata.projector_on if fs.ir is not None else None for fs in sets]
    if not reported or any(r is None for r in reported):
        return None
    return [bool(r) for r in reported]


def _shape(fs: FrameSet) -> tuple[int, ...] | None:
    """The colour image's shape (the evidence box is clipped to it)."""
    return fs.color.pixels.shape if fs.color is not None else None


def _edges(lit: list[bool]) -> list[tuple[int, int, int]]:
    """(k, on, off) for each k where the projector's state changed between frames k - 1 and k."""
    return [(k, *((k, k - 1) if lit[k] else (k - 1, k))) for k in range(1, len(lit)) if lit[k] != lit[k - 1]]


def _near(k: int, n: int) -> list[int]:
    """The six frames nearest frame ``k`` among 1 .. n - 1, nearest first, earlier first at a tie.
    (They lie within 6 of k: a stretch of 13 frames around k holds six of them unless the window
    is shorter, and then it holds all.)"""
    return sorted(range(max(1, k - 6), min(n, k + 7)), key=lambda j: abs(j - k))[:6]


def _settled_noise_pair(lit: list[bool], k: int, frames: int) -> tuple[bool, tuple[int, int] | None]:
    """(settled, pair): the noise pair ``_noise_pair`` picks around edge ``k`` of a window of
    ``frames`` framesets, of which the first ``len(lit)`` are known, and whether the frames still to
    come can change it (not once a pair was found before any of them in the search's order, or none
    of them is among the nearest)."""
    near, n = _near(k, frames), len(lit)
    for want in (False, True):
        for j in near:
            if j >= n:
                return False, None
            if lit[j] == want and lit[j - 1] == want:
                return True, (j - 1, j)
    return True, None


def _noise_pair(lit: list[bool], k: int, n: int, flooded: list[bool] | None = None, gap: int = 1
                ) -> tuple[int, int] | None:
    """The nearest two consecutive frames in one projector state around edge ``k`` of a window of
    ``n`` framesets: they measure the noise. Dark pairs first: a lit pair also differs by the dots
    moving with the face. ``gap``: two frames that far apart instead (``_near``'s six nearest of
    ``gap`` .. n - 1 as their later frame); ``flooded``: neither of them a frame a foreign flood lit
    (``flood_pairs``)."""
    near = _near(k, n) if gap == 1 else sorted(range(max(gap, k - 6), min(n, k + 7)), key=lambda j: abs(j - k))[:6]
    for want in (False, True):
        for j in near:
            if lit[j] == want and lit[j - gap] == want and not (flooded and (flooded[j] or flooded[j - gap])):
                return j - gap, j
    return None


# A foreign 850 nm light that switches at and near the frame rate on its own clock (the eighteenth family's
# ceiling time-of-flight people counter: bursts of 4-8 pulses once a sensor frame, 5-30 fps; issue 14,
# counter30) lights some IR frames and not others whatever the projector does: in a pair's lit or unlit frame
# it is in the on-off difference as the projector's own light (its shading and cast shadows then read as
# light that moved, ``features.light_gone``, or a level off the window's), and in a noise pair's frame as
# light that moved between them (``features.dot_shape_read``): the eighteenth's refused counter lives lost
# their eye discs' reading so (docs/liveness.md, "A foreign 850 nm light's bursts in a projector pair").
# Such a light lies on the whole scene: the wall and the clothes behind and around the face rise with it as
# much as the face (it comes from the ceiling, a metre or more away), where the projector at the camera lights
# the room behind the face a fraction of what it puts on the face and the same on every lit frame. A frame's
# *background level* is its IR's mean outside the window's face box (``background_levels``); a frame carries
# a flood when that level stands over the least of its projector state's ``FLOOD_REACH`` nearest frames on
# either side (it among them) by more than ``FLOOD_RISE_DN`` (light only adds: the least is a frame the light
# missed; a flood steady over the frames, as the counter's at the camera's own rate, lifts them all alike and
# is ambient). With frames of its state on both sides (``FLOOD_RAMP``, door31) the floor is the lowest straight
# line through one of them on each side, read at the frame: daylight ramping in as an automatic door opens (the
# nineteenth family, 0.5-2 s, 15-60 frames) lifts every frame along a line, so the least of eight neighbours
# sat up to ~2.5 DN under a frame the ramp alone explained; a burst, short, stands over the line through the
# frames it missed (light only adds: a burst on a neighbour raises its lines, the least is one it missed). A
# line counts only when no neighbour stands under it by more than ``FLOOD_LINE_DN`` and a third stands on it
# (a step's or a burst run's line does not: its frames sit on two levels, off any line between them). A
# line's value lies between its ends' levels, so the floor is never under counter30's least: the rule only
# lets frames go. A frame let go is read in the window's very pairs, main's before counter30, never more.
# ``FLOOD_LINE_DN``: half the rise, over three times the train family's largest rise over the line (0.30 DN).
# ``flood_pairs`` then reads no pair on such a frame. ``FLOOD_RISE_DN``: fitted on train (the
# fit split; no foreign pulsed light), whose frames' background levels stand at most 0.45 DN over that least
# one (lives 0-7, the per-window maximum; more in docs/liveness.md): over four times that.
#
# A visible light that leaks into the IR frames (the eighteenth's holiday string lights on a camera without an
# IR-pass filter, stepping between their two channels' colours with their controller's pattern) lifts the
# background as a burst does, but the colour camera sees it too: its frames' background changes with it, in
# the same frameset (flood30). A frame the IR rule flags is a foreign *IR* flood only when its colour background
# (``colour_levels``) stands within ``FLOOD_COLOUR_STEP`` (relative, in any channel) of that of the nearest frame
# the IR rule left clear on one side or the other (the lesser of the two: a screen step of the illumination
# challenge, or of the room, lands between a frame and one of them, not both at once). An 850 nm flood does
# not pass the colour camera's IR-cut filter: its frames stay flagged. A frame with a colour step is read as
# before counter30 (main's pairs): an injector that adds colour steps to its own IR frames gains main's reading
# of them, never more. ``FLOOD_COLOUR_STEP``: fitted on train (docs/liveness.md, flood30).
FLOOD_FRAMES = True
FLOOD_REACH = 4
FLOOD_RISE_DN = 2.0
FLOOD_COLOUR_STEP = 0.01
FLOOD_RAMP = True
FLOOD_LINE_DN = 1.0
# A pair or a noise pair on frames up to this far apart (a frame between them lit by the flood).
FLOOD_PAIR_REACH = 2


def _skins_bounds(boxes: list[tuple[slice, slice]], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The bounds y0, y1, x0, x1 round every skin box of ``boxes`` (not empty) on an IR frame of ``shape``, as
    ``background_levels`` slices the frame with them."""
    y0, y1 = min(b[0].start or 0 for b in boxes), max(b[0].stop or shape[0] for b in boxes)
    x0, x1 = min(b[1].start or 0 for b in boxes), max(b[1].stop or shape[1] for b in boxes)
    return y0, y1, x0, x1


def _skins_box(boxes: list[tuple[slice, slice]], shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """``_skins_bounds`` within the frame (the pixels the slices take); None where a bound is negative (a
    slice from the frame's end: not a box the running sums take, ``BackgroundSum``)."""
    y0, y1, x0, x1 = _skins_bounds(boxes, shape)
    if min(y0, y1, x0, x1) < 0:
        return None
    y0, x0 = min(y0, shape[0]), min(x0, shape[1])
    return y0, max(min(y1, shape[0]), y0), x0, max(min(x1, shape[1]), x0)


def _box_sum(ir: np.ndarray, box: tuple[int, int, int, int]) -> float:
    return float(ir[box[0]:box[1], box[2]:box[3]].sum(dtype=np.float64))


@dataclass(frozen=True)
class BackgroundSum:
    """One IR frame's sums for ``background_levels``, taken as the frameset is measured and folded (perf31):
    the whole frame's and that of the box round the skins folded so far, its own included (``box``: y0, y1,
    x0, x1 within the frame; empty before any skin). The window's box only grows as skins come, so
    ``finish`` adds the strips between the two boxes instead of summing every frame again. The pixels are 8-
    or 16-bit integers (``background_sum``): every sum is an integer well under 2**53, exact in float64
    whatever the order, so the levels are the direct sums' to the bit."""
    total: float
    box: tuple[int, int, int, int]
    inner: float


def _exact_sums(ir: np.ndarray) -> bool:
    """Whether float64 sums of ``ir``'s pixels are exact in any order (8- or 16-bit integers)."""
    return ir.dtype.kind in "ui" and ir.dtype.itemsize <= 2


def ir_total(ir: np.ndarray) -> float | None:
    """The IR frame's whole sum for ``background_sum`` (None where its sums would not be exact)."""
    return float(ir.sum(dtype=np.float64)) if _exact_sums(ir) else None


def background_sum(ir: np.ndarray, boxes: list[tuple[slice, slice]], total: float | None = None
                   ) -> BackgroundSum | None:
    """``BackgroundSum`` of an IR frame with the skin boxes folded so far (``total``: ``ir_total``, when
    taken already); None where the sums would not be exact, or the box not one within the frame."""
    if not _exact_sums(ir):
        return None
    box = _skins_box(boxes, ir.shape) if boxes else (0, 0, 0, 0)
    if box is None:
        return None
    return BackgroundSum(float(ir.sum(dtype=np.float64)) if total is None else total, box, _box_sum(ir, box))


def _grown_sum(ir: np.ndarray, s: BackgroundSum, box: tuple[int, int, int, int]) -> float | None:
    """The sum of ``ir`` in ``box`` from ``s``'s, adding the strips round ``s.box`` (None where ``box`` does
    not hold it)."""
    y0, y1, x0, x1 = s.box
    if y0 == y1 or x0 == x1:
        return _box_sum(ir, box)
    if not (box[0] <= y0 and y1 <= box[1] and box[2] <= x0 and x1 <= box[3]):
        return None
    return s.inner + sum(_box_sum(ir, b) for b in ((box[0], y0, box[2], box[3]), (y1, box[1], box[2], box[3]),
                                                     (y0, y1, box[2], x0), (y0, y1, x1, box[3])))


def background_levels(sets: list[FrameSet], skins: list[IrSkin | None],
                      sums: list[BackgroundSum | None] | None = None) -> list[float]:
    """Each frameset's IR mean outside the box around every skin patch of the window (``IrSkin.box``, the
    IR imager's own pixels; NaN without an IR frame, the whole frame without any skin). ``sums``: each
    frame's ``BackgroundSum`` where the judge took one as it came (the same levels to the bit, with
    only the box's growth summed here)."""
    boxes = [s.box for s in skins if s is not None]
    out = []
    for k, fs in enumerate(sets):
        if fs.ir is None:
            out.append(float("nan"))
            continue
        ir = fs.ir.pixels
        s = sums[k] if sums is not None else None
        box = _skins_box(boxes, ir.shape) if boxes and s is not None else None
        inner = _grown_sum(ir, s, box) if s is not None and box is not None else None
        if s is not None and (not boxes or inner is not None):
            total, count = s.total, ir.size
            if box is not None and inner is not None:
                total, count = total - inner, count - (box[1] - box[0]) * (box[3] - box[2])
            out.append(total / count if count > 0 else float("nan"))
            continue
        total, count = float(ir.sum(dtype=np.float64)), ir.size
        if boxes:
            y0, y1, x0, x1 = _skins_bounds(boxes, ir.shape)
            inner_px = ir[y0:y1, x0:x1]
            total, count = total - float(inner_px.sum(dtype=np.float64)), count - inner_px.size
        out.append(total / count if count > 0 else float("nan"))
    return out


def colour_levels(sets: list[FrameSet], boxes: list) -> list[np.ndarray | None]:
    """Each frameset's colour background: the mean of each channel outside the box round every face box of the
    window (``boxes``: x0, y0, x1, y1 in colour pixels; the whole frame without any), linearised (an 8-bit
    value over 255 to the power 2.2) and divided by the frame's exposure times its gain where it states them
    (an exposure that moved is not a light that moved). None without a colour frame."""
    out: list[np.ndarray | None] = []
    for fs in sets:
        c = fs.color
        if c is None or c.pixels.ndim != 3:
            out.append(None)
            continue
        px = c.pixels
        keep = np.ones(px.shape[:2], bool)
        if boxes:
            x0, y0 = (max(int(min(float(b[i]) for b in boxes)), 0) for i in (0, 1))
            x1, y1 = (int(max(float(b[i]) for b in boxes)) + 1 for i in (2, 3))
            keep[y0:y1, x0:x1] = False
        if not keep.any():
            out.append(None)
            continue
        means = px[keep].mean(axis=0, dtype=np.float64) / 255.0
        scale = (c.metadata.exposure_us or 1.0) * (c.metadata.gain or 1.0)
        out.append(np.power(means, 2.2) / scale if scale > 0 else None)
    return out


def _colour_step(a: np.ndarray, b: np.ndarray) -> float:
    """The largest relative difference of two colour levels (``colour_levels``) over their channels."""
    return float(np.max(np.abs(a - b) / np.maximum(np.maximum(a, b), 1e-12)))


def _flood_neighbours(levels: np.ndarray, lit: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's ``FLOOD_REACH`` frames of its projector state with a level nearest it before and after it
    (``before``: the latest of them last; ``after``: the earliest first), each an (n, ``FLOOD_REACH``) array of
    frame indices, -1 where it has fewer (the last of ``before``'s row is the nearest)."""
    n, reach = len(levels), FLOOD_REACH
    finite = np.isfinite(levels)
    before, after = np.full((n, reach), -1, np.intp), np.full((n, reach), -1, np.intp)
    for state in (False, True):
        same = [j for j in range(n) if lit[j] == state and finite[j]]
        for k in (k for k in range(n) if lit[k] == state):
            p = bisect.bisect_left(same, k)
            b, a = same[max(p - reach, 0):p], same[bisect.bisect_right(same, k):][:reach]
            before[k, reach - len(b):] = b
            after[k, :len(a)] = a
    return before, after


def _flood_floors(levels: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The level each frame would have without a foreign flood (``_flood_neighbours``' frames of its state
    before and after it; +inf without any): with frames on both sides (``FLOOD_RAMP``), the least, at the
    frame, of the lines through a frame before and a frame after that the others bear out: none of them stands
    under it by more than ``FLOOD_LINE_DN`` (light only adds: the room's light is under every frame) and a
    third stands on it within that (a ramp lies on a line, a step or a burst's run does not). A slow ramp of
    the room's light, the daylight's as a door opens, lies on such a line; a burst on one frame only raises
    the lines through it, so the least is a line through frames it missed. Without such a line, or without
    ``FLOOD_RAMP``, or with frames on one side only: the least of their levels (counter30's). Never under that
    least: a line's level at the frame lies between its two ends'.

    Every frame at once (perf33: 32 frames' loops of Python were ~1.6 ms of ``finish``'s CPU): a line's level
    at frame m is ``levels[i] + (levels[j] - levels[i]) * (m - i) / (j - i)``, the very operations in the very
    order of perf32's line per frame (``tests/helpers/liveness_reference.py``'s ``flood_floor_before33``), each
    rounded once in float64, so every floor is the same to the bit."""
    n = len(levels)
    near = np.concatenate([before, after], axis=1)                          # (n, 2R)
    has = near >= 0
    safe = np.where(has, near, 0)
    least = np.where(has, levels[safe], np.inf).min(axis=1)
    if not FLOOD_RAMP or n == 0:
        return least
    i, j = before[:, :, None], after[:, None, :]                            # (n, R, 1), (n, 1, R)
    pair = (i >= 0) & (j >= 0)                                              # (n, R, R)
    i, j = np.where(pair, i, 0), np.where(pair, j, 0)           # (a pair that is none: read, never taken)
    li, lj = levels[i], levels[j]
    rise, span = lj - li, (j - i).astype(np.float64)
    m = safe[:, None, None, :]                                              # (n, 1, 1, 2R)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        line = li[..., None] + rise[..., None] * (m - i[..., None]).astype(np.float64) / span[..., None]
        lm = levels[m]
        under = has[:, None, None, :] & ~(lm >= line - FLOOD_LINE_DN)      # a frame under the line
        on = (has[:, None, None, :] & (m != i[..., None]) & (m != j[..., None])
              & (np.abs(lm - line) <= FLOOD_LINE_DN))                       # a third frame on it
        held = pair & ~under.any(axis=3) & on.any(axis=3)
        k = np.arange(n, dtype=np.float64)[:, None, None]
        at = li + rise * (k - i) / span
    lowest = np.where(held, at, np.inf).min(axis=(1, 2))
    return np.where(held.any(axis=(1, 2)), lowest, least)


def flood_frames(levels: list[float], lit: list[bool], colour: list[np.ndarray | None] | None = None
                 ) -> list[bool]:
    """Which frames a foreign light flooded: a background level (``background_levels``) over its floor
    (``_flood_floors``: of the ``FLOOD_REACH`` frames of its projector state nearest it on either side, the lowest
    line through one on each side, a ramp of the room's light de-trended; the least of them with frames on one side
    only) by more than ``FLOOD_RISE_DN``. A frame with no level is none; so is a frame with no other frame of its
    state in the window (nothing to tell a flood from). With ``colour`` (``colour_levels``): nor a frame whose
    colour background stands more than ``FLOOD_COLOUR_STEP`` from that of both the nearest frames the levels left
    clear before and after it (one where it has only one; a visible light that leaks into IR, not a foreign IR
    flood); a frame without a colour level, or without a clear frame with one, stays flagged."""
    n = len(levels)
    lv = np.asarray(levels, dtype=np.float64).reshape(n)
    before, after = _flood_neighbours(lv, lit)
    floors = _flood_floors(lv, before, after)
    found = np.isfinite(lv) & ((before[:, -1] >= 0) | (after[:, 0] >= 0))
    with np.errstate(invalid="ignore"):
        out = [bool(v) for v in found & (lv > floors + FLOOD_RISE_DN)]
    return _colour_cleared(out, colour)


def _colour_cleared(out: list[bool], colour: list[np.ndarray | None] | None) -> list[bool]:
    """``flood_frames``' IR flags ``out`` less the frames ``colour`` says a visible light lit (its docstring)."""
    n = len(out)
    if colour is None or not any(out):
        return out
    clear = {j: c for j, c in enumerate(colour) if not out[j] and c is not None}
    seen = []
    for k in range(n):
        ck = colour[k]
        sides = [j for j in clear if j < k][-1:] + [j for j in clear if j > k][:1]
        seen.append(out[k] and not (ck is not None and bool(sides)
                                    and min(_colour_step(ck, clear[j]) for j in sides) > FLOOD_COLOUR_STEP))
    return seen


def flood_pairs(lit: list[bool], flooded: list[bool] | None
                ) -> tuple[list[tuple[int, int, tuple[int, int] | None]], int]:
    """The window's on-off pairs ``(on, off, noise pair)`` with no frame a flood lit (``flood_frames``), and
    how many of its edges had one in their pair or noise pair. With none flooded: each edge's pair and its
    ``_noise_pair``, the window's very pairs. Else an edge whose frames and noise pair are clear is kept as
    it is; one whose two frames are clear keeps them with the nearest clear noise pair of consecutive frames
    (of frames ``FLOOD_PAIR_REACH`` apart when there is none; ``_noise_pair``); an edge with a flooded
    frame is read instead on the clear frames nearest it on its two sides, ``FLOOD_PAIR_REACH`` apart (the
    earlier side's second frame first), with a clear noise pair as far apart. A touched edge without a clear
    noise pair gives no pair (read without one, its noise would stay in it and read the surface hard: a
    strike against a person for a light in the room). No edge gives more than one pair and no pair is read
    twice: a window never has more pairs than edges, nor reads a flooded frame."""
    n = len(lit)
    edges = _edges(lit)
    if flooded is None or not any(flooded):
        return [(on, off, _noise_pair(lit, k, n)) for k, on, off in edges], 0
    out: list[tuple[int, int, tuple[int, int] | None]] = []
    touched = 0
    for k, on, off in edges:
        pair = _noise_pair(lit, k, n)
        if not (flooded[on] or flooded[off] or (pair is not None and (flooded[pair[0]] or flooded[pair[1]]))):
            out.append((on, off, pair))
            continue
        touched += 1
        if not (flooded[on] or flooded[off]):
            quiet = _noise_pair(lit, k, n, flooded) or _noise_pair(lit, k, n, flooded, FLOOD_PAIR_REACH)
            if quiet is not None:
                out.append((on, off, quiet))
            continue
        # The frames either side of the edge: a, b on the side before (k - 1 and k - 2), c, d after.
        for i, j in ((k - FLOOD_PAIR_REACH, k), (k - 1, k - 1 + FLOOD_PAIR_REACH)):
            if i < 0 or j >= n or lit[i] != lit[k - 1] or lit[j] != lit[k] or flooded[i] or flooded[j]:
                continue
            if any(lit[m] != lit[i] for m in range(i, k)) or any(lit[m] != lit[j] for m in range(k, j + 1)):
                continue
            got = (j, i) if lit[j] else (i, j)
            quiet = _noise_pair(lit, k, n, flooded, j - i)
            if quiet is not None and all(got != (a, b) for a, b, _ in out):
                out.append((*got, quiet))
            break
    return out, touched


def _usual_power(sets: list[FrameSet], lit: list[bool]) -> Callable[[int], bool]:
    """Whether frame k's projector power is the window's usual one for lit frames (unknown: yes)."""
    power = [fs.ir.metadata.projector_power_mw if fs.ir is not None else None for fs in sets]
    lit_power = [p for p, on in zip(power, lit, strict=True) if on and p]
    usual = float(inplace.median(lit_power)) if lit_power else None

    def usual_power(k: int) -> bool:
        p = power[k]
        return usual is None or p is None or same_power(p, usual)
    return usual_power


def shown_colours(challenge: Challenge, lag: int, n: int) -> list[int | None]:
    """Per frameset of a window of ``n``: the palette index of the screen colour it showed at
    ``lag``, when certain (the frame before it was commanded the same colour), else None."""
    shown: list[int | None] = []
    for k in range(n):
        j = k - lag
        c, prev = (challenge.colour_at(j), challenge.colour_at(j - 1)) if j >= 1 else (None, None)
        shown.append(PALETTE.index(c) if c is not None and c == prev else None)
    return shown


def same_colour_pairs(shown: list[int | None], frames: list[int]) -> list[tuple[int, int]]:
    """(i, j) cue indices of frames the screen showed one colour, at least a third of the window
    (``len(shown)``) apart; ``frames``: each cue's frameset index."""
    groups: dict[int, list[tuple[int, int]]] = {}
    for i, k in enumerate(frames):
        code = shown[k] if k < len(shown) else None
        if code is not None:
            groups.setdefault(code, []).append((i, k))
    return [(i, j) for members in groups.values() for a, (i, k) in enumerate(members) for j, m in members[a + 1:]
            if 3 * (m - k) >= len(shown)]


class FrameSelection:
    """Which frames of a challenged window carry which cue, and what the server gets of them.

    * The face's colour for the illumination challenge is read from one fixed box (the median face
      box of the window, shrunk to the skin): the same pixels every frame, so the face's texture
      does not move in and out of the measurement with each frame's landmarks.
    * Depth geometry, the cross-modal cues and dot sharpness need the projector: under the
      projector challenge they use the frames the IR energies show lit (an unlit D4xx frame under
      LED light has almost no depth on skin). Material pairs are consecutive frames the IR shows
      in opposite states, wherever each edge landed.
    * The probe's crops come preferably from a frame the screen lit neutrally (before the first
      colour landed, or under black or white), so a colour cast does not reach the template."""

    def __init__(self, box: tuple[int, int, int, int] | None, grids: list[np.ndarray | None],
                 energies: list[float], listed: list[list[float] | None] | None = None, *,
                 rgb: np.ndarray | None = None):
        self.box = box
        self.grids = grids
        self.energies = energies
        # Each grid as the evidence lists it (rounded), when the judge has it already.
        self.listed = listed if listed is not None else [
            [round(float(v), 6) for v in g.reshape(-1)] if g is not None else None for g in grids]
        # The face's light per frame (``rgb``: already read from these very grids, when the judge has it).
        self.rgb = rgb if rgb is not None else face_response(
            [g.reshape(-1, 3) if g is not None else np.full((GRID * GRID, 3), np.nan) for g in grids])
        self.lit: list[bool] | None = None
        self.neutral: list[bool] | None = None
        self.shown: list[int | None] | None = None        # the screen colour each frame showed, if certain
        self.notes: list[str] = []

    def settle(self, challenge: Challenge, result: ChallengeResult) -> None:
        n = len(self.grids)
        if Kind.PROJECTOR in challenge.kinds:
            # A clipped IR image's lit frames are its low ones (``SequenceResult.inverted``: the
            # schedule followed the wrong way round): the cues that need the projector are read on
            # them. That window is not measurable, so this decides only attack or inconclusive.
            p = result.get(Kind.PROJECTOR)
            flip = p is not None and p.inverted
            self.lit = [bool(v) != flip for v in projector_states(self.energies)]
        ill = result.get(Kind.ILLUMINATION)
        if ill is not None and challenge.steps:
            lag = ill.lag_frames
            self.neutral = neutral_frames(challenge, lag, n)
            self.shown = shown_colours(challenge, lag, n)

    def motion_steps(self, cues: list[FrameCues], frames: list[int], steps: list[tuple[float, float]], *,
                     step: Callable[[int, int], tuple[float, float]] | None = None) -> list[tuple[float, float]]:
        """Landmark motion between frames the screen lit alike. The face models place landmarks a
        little differently under another colour of light (a head model under the illumination
        sequence "moved" 0.005 IPD, as much as a still person); so under the illumination challenge
        frames are compared in pairs shown the same colour, frames at an edge (either colour) left
        out, and only pairs at least a third of the window apart count (a living face's drift shows
        over time; the sequence repeats its first colour at its end for this). Without
        the illumination challenge, or without such pairs, ``steps`` (every frame against the
        first) as measured. ``step(i, j)``: the motion between cues i and j, if the caller has it."""
        shown = self.shown
        if shown is None:
            return steps
        measure = step or (lambda i, j: motion_step(cues[i].landmarks, cues[j].landmarks))
        out = [measure(i, j) for i, j in same_colour_pairs(shown, frames)]
        if len(out) < 3:
            self.notes.append("motion measured across the screen's colours (too few frames under one colour "
                              "a third of the window apart)")
            return steps
        return out

    def light_runs(self, frames: list[int]) -> list[Run]:
        """The window's runs for ``motion_snr``: frames in a row the screen showed one colour
        (the frames at an edge left out), under the illumination challenge; otherwise the whole
        window is under one light, and its first and last thirds are the runs."""
        shown = self.shown
        if shown is None:
            return one_light_runs(frames, len(self.grids))
        runs: list[Run] = []
        for i, k in enumerate(frames):
            code = shown[k] if k < len(shown) else None
            if code is None:
                continue
            if runs and runs[-1][0] == code and runs[-1][1][-1][1] == k - 1:
                runs[-1][1].append((i, k))
            else:
                runs.append((code, [(i, k)]))
        return runs

    def best(self, ranks: list[tuple[tuple, int, FaceObservation]]) -> tuple[tuple, int, FaceObservation] | None:
        return best_rank(ranks, self.neutral)

    def evidence(self, challenge: Challenge, sets: list[FrameSet], energies: list[float], digests: list[str],
                 faces: list[FaceObservation | None]) -> dict:
        """What the server re-verifies (``hil/ingest/evidence.py``): per frameset its counters,
        timestamps, IR energy and the 4 x 4 linear colour grid of the face box."""
        frames = []
        for fs, e, d, g, f in zip(sets, energies, digests, self.listed, faces, strict=True):
            ref = fs.depth or fs.ir
            frames.append({
                "frame_counter": int(ref.frame_number) if ref is not None else 0,
                "timestamp_ms": float(ref.timestamp_ms) if ref is not None else 0.0,
                "color_frame_counter": int(fs.color.frame_number) if fs.color is not None else 0,
                "color_timestamp_ms": float(fs.color.timestamp_ms) if fs.color is not None else 0.0,
                "ir_energy": float(e) if np.isfinite(e) else 0.0,
                "face_grid": list(g) if g is not None else [],
                "digest": d, "face": f is not None})
        return {"challenges": sorted(k.value for k in challenge.kinds),
                "face_box": list(self.box) if self.box is not None else [], "frames": frames}


def neutral_frames(challenge: Challenge, lag: int, n: int) -> list[bool]:
    """Which of a window's ``n`` frames the screen lit neutrally when its colours land ``lag`` frames late."""
    neutral = []
    for k in range(n):
        j = k - lag
        c = challenge.colour_at(j) if j >= 0 else None
        # Before the first step lands the screen shows the app's own picture; black and white
        # add no colour. The frame after an edge may still show the previous colour.
        prev = challenge.colour_at(j - 1) if j >= 1 else None
        neutral.append(j < 0 or (c in ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)) and (prev is None or prev == c)))
    return neutral


def best_rank(ranks: list[tuple[tuple, int, FaceObservation]], neutral: list[bool] | None
              ) -> tuple[tuple, int, FaceObservation] | None:
    """The probe's frameset among the ranked face frames: passes the gate, then (when ``neutral``
    says) lit neutrally by the screen, then the most confident detection, then the latest."""
    def key(r: tuple[tuple, int, FaceObservation]) -> tuple:
        ok, score_, k = r[0]
        return (ok, bool(neutral[k]) if neutral is not None and k < len(neutral) else True, score_, k)
    return max(ranks, key=key, default=None)


def judge(sets: list[FrameSet], gate: QualityGate, thresholds: VerdictThresholds, *, challenge: Challenge | None,
          notes: list[str] | None = None, dot_reference: DotReference | None = None) -> JudgeResult:
    """Judge a whole session at once (offline analysis, the PAD bench)."""
    j = Judge(gate, thresholds, challenge=challenge, notes=notes, pool=judge_pool(), dot_reference=dot_reference)
    for fs in sets:
        j.add(fs)
    return j.finish()
