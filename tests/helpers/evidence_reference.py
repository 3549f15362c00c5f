"""The server's evidence check as it was before its lag search was done in one array operation
(``hil.ingest.evidence.verify`` and ``agent.liveness.challenge``'s ``verify_projector``,
``verify_illumination``, ``projector_states``, ``face_response`` and the nonce's sequences at the
commit before, verbatim but for the names they import). The server must give the same verdict,
refusal and integer counts on the same evidence (``tests/hil/test_evidence_equivalence.py``).
Kept here, not in the package: nothing else runs it.

Updated deliberately with the server (review 12's terminal-against-server split, docs/liveness.md):
the frames it judges are ``check_shape``'s, which now measures every listed grid whatever its
frameset's ``face`` flag (the terminal's judge does; before, a flagged-faceless frameset's grid was a
row of NaN); the flags count the faces (``Frames.faces``) and the crops' frameset must have one
(``_check_crop``, below), the refusals they gave before."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from agent.liveness.challenge import (
    DRIFT_TERMS,
    GRID,
    ILLUMINATION_MAX_LAG,
    ILLUMINATION_MIN_SEPARATION,
    ILLUMINATION_STEPS,
    ILLUMINATION_TYPICAL_LAG,
    LABEL,
    MIN_COMPARED,
    MIN_FRAMES,
    PALETTE,
    PROJECTOR_MAX_LAG,
    PROJECTOR_MIN_SEPARATION,
    PROJECTOR_RUNS,
    Challenge,
    ChallengeError,
    Kind,
    Rgb,
    SequenceResult,
    Step,
    allowed_mismatches,
    face_grid,
    kinds_from,
)
from hil.ingest.evidence import NAMES, EvidenceFailed, EvidenceThresholds, Frames, check_shape, names
from proto.capture_agent.v1 import ingest_pb2 as pb


class _Stream:
    """Bytes from HMAC-SHA256(nonce, label || counter), drawn one at a time."""

    def __init__(self, nonce: bytes, label: bytes):
        self.nonce, self.label, self.counter, self.buf, self.pos = bytes(nonce), label, 0, b"", 0

    def byte(self) -> int:
        if self.pos == len(self.buf):
            self.buf = hmac.digest(self.nonce, LABEL + self.label + self.counter.to_bytes(4, "big"), "sha256")
            self.counter += 1
            self.pos = 0
        self.pos += 1
        return self.buf[self.pos - 1]

    def below(self, n: int) -> int:
        """Uniform in 0..n-1 (rejection sampling: no modulo bias)."""
        limit = 256 - 256 % n
        while True:
            b = self.byte()
            if b < limit:
                return b % n


def projector_schedule(nonce: bytes, frames: int) -> tuple[bool, ...]:
    s = _Stream(nonce, b"projector")
    lo, hi = PROJECTOR_RUNS
    out: list[bool] = []
    state = bool(s.below(2))
    while len(out) < frames:
        out.extend([state] * (lo + s.below(hi - lo + 1)))
        state = not state
    return tuple(out[:frames])


def _compared(steps: list[tuple[int, int, Rgb]], frames: int, lag: int) -> list[Rgb]:
    """The colours of the steps (start, framesets, colour) that keep a settled frame at ``lag``:
    their second frame is still compared."""
    return [rgb for start, n, rgb in steps if n >= 2 and start + 1 < frames - lag]


def illumination_steps(nonce: bytes, frames: int) -> tuple[Step, ...]:
    """Steps of ``ILLUMINATION_STEPS`` framesets, each colour unlike the one before. Drawn again
    (further along the same stream) until, among the steps still compared at the largest lag
    (``ILLUMINATION_MAX_LAG``), every screen channel is both on and off (so the face's response to
    each can be measured), and at a typical lag at least three steps are compared and the last of
    them shows the first step's colour again (so landmarks can be compared across the window under
    one light: the liveness judge's motion cue). Windows too short for that (under 10 framesets)
    drop the second condition, and windows too short to compare two steps the first."""
    s = _Stream(nonce, b"illumination")
    lo, hi = ILLUMINATION_STEPS
    # Plain tuples while drawing (the server derives the sequence for every probe it checks).
    while True:
        out: list[tuple[int, int, Rgb]] = []
        colour = 1 + s.below(len(PALETTE) - 1)      # the first step is never black: it must change the screen
        start = 0
        while start < frames:
            n = min(lo + s.below(hi - lo + 1), frames - start)
            out.append((start, n, PALETTE[colour]))
            start += n
            colour = (colour + 1 + s.below(len(PALETTE) - 1)) % len(PALETTE)      # any other colour
        seen = _compared(out, frames, ILLUMINATION_MAX_LAG)
        shown = _compared(out, frames, ILLUMINATION_TYPICAL_LAG)
        toggles = len(seen) < 2 or all(len({rgb[c] for rgb in seen}) > 1 for c in range(3))
        repeats = (len(shown) >= 3 and shown[-1] == shown[0]) or frames - ILLUMINATION_TYPICAL_LAG < 2 * lo + 2
        if toggles and repeats:
            return tuple(Step(*st) for st in out)


def challenge_from_nonce(nonce: bytes, frames: int, kinds: frozenset[Kind]) -> Challenge:
    """``Challenge.from_nonce`` as it was."""
    if not isinstance(nonce, (bytes, bytearray)) or len(nonce) < 16:
        raise ChallengeError("challenge nonce must be at least 16 random bytes")
    if not isinstance(frames, int) or frames < MIN_FRAMES:
        raise ChallengeError(f"a challenge needs at least {MIN_FRAMES} frames")
    ks = kinds_from(kinds)
    if not ks:
        raise ChallengeError("a challenge needs at least one kind (projector, illumination)")
    return Challenge(bytes(nonce), frames, ks,
                     projector_schedule(nonce, frames) if Kind.PROJECTOR in ks else (),
                     illumination_steps(nonce, frames) if Kind.ILLUMINATION in ks else ())


def _settled(expected: np.ndarray) -> np.ndarray:
    """Frames whose expected state is certain: not the first frame (the state before the window is
    unknown) and not the first frame of a run or step, where the edge may still be one frame late."""
    care = np.ones(len(expected), bool)
    care[0] = False
    if expected.ndim == 1:
        care[1:] &= expected[1:] == expected[:-1]
    else:
        care[1:] &= np.all(expected[1:] == expected[:-1], axis=1)
    return care


def _late_edges(observed: np.ndarray, expected: np.ndarray) -> int:
    """Edges whose uncertain frame still showed the old state (landed one frame late)."""
    k = np.nonzero(expected[1:] != expected[:-1])[0] + 1
    return int(np.sum(observed[k] == expected[k - 1]))


def _dprime(e: np.ndarray, on: np.ndarray) -> float:
    """(mean on - mean off) over the pooled standard deviation of the groups that have one (a short
    window may hold a single settled frame of one state)."""
    a, b = e[on], e[~on]
    if a.size < 1 or b.size < 1 or a.size + b.size < 4:
        return 0.0
    spreads = [g.var(ddof=1) for g in (a, b) if g.size >= 2]
    pooled = np.sqrt(np.mean(spreads))
    # A floor on the spread: a perfectly repeatable energy (no sensor noise) must not divide by ~0.
    pooled = max(pooled, 1e-3 * max(abs(a.mean()), abs(b.mean()), 1e-6))
    return float((a.mean() - b.mean()) / pooled)


def verify_projector(schedule: Sequence[bool], energies: Sequence[float] | np.ndarray, *,
                     max_lag: int = PROJECTOR_MAX_LAG,
                     min_separation: float = PROJECTOR_MIN_SEPARATION) -> SequenceResult:
    """Did the IR frames follow the projector schedule? ``energies[k]`` is frame k's dot energy.

    The frames are split on/off by their own energies (at the geometric middle of the 10th and
    90th percentiles: no knowledge of the schedule goes into the split). At the best lag every
    settled frame (see :func:`_settled`) must agree with the schedule, but for one per
    ``FRAMES_PER_ALLOWED_MISMATCH``, and the energies grouped by the schedule must differ by
    ``min_separation`` pooled standard deviations. In sunlight the dots add little energy but add
    it on every scheduled frame, so d' stays large; a stream that ignores the schedule gives d' near
    0 whatever its brightness."""
    kind = Kind.PROJECTOR
    e = np.asarray(energies, dtype=np.float64)
    n = min(len(e), len(schedule))
    if n < MIN_FRAMES or not np.all(np.isfinite(e[:n])):
        return SequenceResult(kind, False, 0, 0, 0, 0, 0.0, "too few measured frames to verify the projector "
                              "challenge")
    e = e[:n]
    observed = projector_states(e)
    sched = np.asarray(schedule[:n], dtype=bool)
    settled = _settled(sched)                 # looks only backwards: a shorter window's is a prefix
    best: tuple[tuple, SequenceResult] | None = None
    for lag in range(max_lag + 1):
        m = n - lag
        if m < MIN_COMPARED:
            break
        p, o, el = sched[:m], observed[lag:], e[lag:]
        care = settled[:m]
        mism = int(np.sum((o != p) & care))
        checked = int(care.sum())
        sep = _dprime(el[care], p[care])
        ok = mism <= allowed_mismatches(checked) and sep >= min_separation
        r = SequenceResult(kind, ok, lag, checked, mism, _late_edges(o, p), sep, "")
        key = (ok, -mism, -r.late_edges, sep)         # the lag that has the edges on time is the lag
        if best is None or key > best[0]:
            best = (key, r)
    if best is None:
        return SequenceResult(kind, False, 0, 0, 0, 0, 0.0, "too few frames to verify the projector challenge")
    r = best[1]
    if r.passed:
        return SequenceResult(kind, True, r.lag_frames, r.checked, r.mismatches, r.late_edges, r.separation,
                              "IR frames follow the projector schedule")
    # Updated deliberately (eighteenth session): why a failed window failed (a contradiction, or not
    # measurable: clipped or drowned dots) is the package's word; the refusal and counts are as before.
    from agent.liveness.challenge import verify_projector as package_verify
    why = package_verify(schedule, energies, max_lag=max_lag, min_separation=min_separation)
    return SequenceResult(kind, False, r.lag_frames, r.checked, r.mismatches, r.late_edges, r.separation, why.detail,
                          why.measurable, why.inverted)


def _drift(t: np.ndarray) -> np.ndarray:
    """Columns 1, t, t^2, t^3 (t in -1..1): the room light on a face that moves, slowly."""
    u = 2 * t - 1
    return np.stack([u ** p for p in range(DRIFT_TERMS + 1)], axis=1)


def _one_shape_for_the_room(y: np.ndarray, drift: np.ndarray, x: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The room's light on the face as ONE slow shape in time that every channel follows with its own
    size, plus each channel's gain times its commanded channel, fitted on the settled frames:
    (3, columns + 1), per channel the drift's coefficients on ``drift``'s columns, then the gain.

    Updated deliberately (twenty-second session, wave22): the check before fitted a cubic per channel,
    which bent a blind stream with common-mode waves onto another nonce's sequence (review 22); the
    server now fits the room's light as one shape for the three channels
    (``agent.liveness.challenge._fit_shared``). Worked out here in steps of its own, on the same
    numbers in the same order, so the server's outcome is asserted to the bit:

    1. the commanded colours and a constant are taken out of every channel (divided by its noise, so
       no channel weighs more for being brighter) and out of the drift's non-constant columns;
    2. what those columns explain of the channels is the room's light as the drift sees it; its
       strongest direction across the channels (the first right singular vector) is the room light's
       colour, and the columns' coefficients along it are the shape;
    3. each channel is then fitted alone as a constant, its own multiple of the shape and its gain."""
    rows, cols = drift.shape
    known = np.column_stack([np.ones(rows), x])

    def without_known(a: np.ndarray) -> np.ndarray:
        return a - known @ np.linalg.lstsq(known, a, rcond=None)[0]

    level = np.abs(np.mean(y, axis=0))
    units = np.maximum(noise, 1e-9 * np.maximum(level, 1e-9))
    channels = without_known(y / units[None, :])
    slow = without_known(drift[:, 1:])
    explained = np.linalg.lstsq(slow, channels, rcond=None)[0]
    colour = np.linalg.svd(slow @ explained, full_matrices=False)[2][0]
    shape = explained @ colour
    design = np.empty((rows, 3))
    design[:, 0] = 1.0
    design[:, 1] = drift[:, 1:] @ shape
    fitted = np.zeros((3, cols + 1))
    for c in range(3):
        design[:, 2] = x[:, c]
        offset, size, gain = np.linalg.lstsq(design, y[:, c], rcond=None)[0]
        fitted[c, 0], fitted[c, 1:cols], fitted[c, cols] = offset, size * shape, gain
    return fitted


def _within_step_noise(y: np.ndarray, care: np.ndarray, step_of: np.ndarray) -> np.ndarray:
    """One frame's noise per channel, from differences of consecutive settled frames of one step
    (the screen's colour is the same in both, and slow drift cancels); NaN-free, 0 if none."""
    pair = care[1:] & care[:-1] & (step_of[1:] == step_of[:-1])
    if not pair.any():
        return np.zeros(3)
    d = (y[1:] - y[:-1])[pair]
    return np.sqrt(np.mean(d * d, axis=0) / 2.0)


def _changes(y: np.ndarray, min_separation: float) -> bool:
    """Did the face's colour jump from frame to frame well beyond its noise, whatever the sequence?
    A screen's edge is a jump between two frames; a person moving changes the colour slowly. The
    90th percentile of a channel's frame-to-frame change (edges are a fifth of the frames) against
    twice the separation required, in units of one frame's noise (from the median change, which the
    edges do not move; pure noise reaches ~2.3 of them). A stream the screen never reached does not
    jump; a replay lit by another sequence does."""
    if len(y) < MIN_FRAMES:
        return False
    d = np.abs(np.diff(y, axis=0))
    noise = 1.4826 * np.median(d, axis=0) / np.sqrt(2.0)
    jumps = np.percentile(d, 90, axis=0)
    return bool(np.any(jumps > 2 * min_separation * np.maximum(noise, 1e-6 * np.abs(np.mean(y, axis=0)))))


def verify_illumination(steps: Sequence[Step], rgb: Sequence[Sequence[float]] | np.ndarray, *,
                        max_lag: int = ILLUMINATION_MAX_LAG,
                        min_separation: float = ILLUMINATION_MIN_SEPARATION) -> SequenceResult:
    """Did the face's colour follow the screen? ``rgb[k]``: frame k's mean linear (R, G, B) over the
    face (NaN where no face was measured), with the colour camera's exposure and white balance
    locked.

    At each lag, the settled frames are fitted as room light with a slow drift (one shape in time,
    a cubic, that the three channels follow each by its own amount: the person moving under one room
    light; :func:`_one_shape_for_the_room`) plus per channel a gain times the commanded channel: the
    gain over one frame's noise
    (measured between consecutive frames of one step, so the screen's crosstalk between channels
    does not count as noise) is the channel's separation. Then each settled frame, drift removed, is
    decoded to one of the ``PALETTE`` colours (a channel is on above half its gain). Passed: every
    settled frame shows its commanded colour (but for one per ``FRAMES_PER_ALLOWED_MISMATCH``, as for
    the projector), every step not cut off by the window's end has a face in a settled frame, and
    every channel's separation is at least ``min_separation``. A face whose colour did not change
    beyond its noise (ambient light swamping a 300-nit screen, or a stream the screen never reached)
    is reported as not measurable; one that changed otherwise contradicts the sequence."""
    kind = Kind.ILLUMINATION
    y = np.asarray(rgb, dtype=np.float64).reshape(-1, 3)
    if not steps:
        return SequenceResult(kind, False, 0, 0, 0, 0, 0.0, "no illumination sequence to verify")
    frames = steps[-1].start + steps[-1].frames
    n = min(len(y), frames)
    expected = np.zeros((frames, 3))
    step_of = np.zeros(frames, int)
    for j, st in enumerate(steps):
        expected[st.start:st.start + st.frames] = st.rgb
        step_of[st.start:st.start + st.frames] = j
    # What does not depend on the lag is worked out once (the server runs this for every probe):
    # a frame's settledness looks only backwards, so the settled frames of a shorter window are a
    # prefix of the whole window's.
    settled_all = _settled(expected)
    finite_y = np.all(np.isfinite(y), axis=1)
    code_all = (expected > 0.5) @ np.array([4, 2, 1])
    changes: bool | None = None                  # _changes(), computed when a lag first needs it
    best: tuple[tuple, SequenceResult] | None = None
    for lag in range(max_lag + 1):
        m = n - lag
        if m < MIN_COMPARED:
            break
        x, sid, yy = expected[:m], step_of[:m], y[lag:lag + m]
        settled = settled_all[:m]
        care = settled & finite_y[lag:lag + m]
        if care.sum() < MIN_COMPARED:
            continue
        t = np.arange(m, dtype=np.float64) / m
        drift = _drift(t)
        noise = _within_step_noise(yy, care, sid)
        seps, resid = [], np.zeros((m, 3))
        gains = np.zeros(3)
        # Updated deliberately (wave22): one drift shape for the three channels, not a cubic each.
        coefs = _one_shape_for_the_room(yy[care], drift[care], x[care], noise)
        for c, coef in enumerate(coefs):
            gains[c] = coef[-1]
            seps.append(coef[-1] / max(noise[c], 1e-6 * max(abs(coef[0]), 1e-6)))
            resid[:, c] = yy[:, c] - drift @ coef[:-1]
        sep = float(min(seps))
        # Every settled frame decoded on its own (a channel is on above half its gain) must show the
        # commanded colour: the same rule as the projector's, so an edge may land at the lag or one
        # frame later, never earlier, whatever the response's noise.
        observed = np.full(m, -1)
        finite = np.all(np.isfinite(resid), axis=1)
        observed[finite] = (resid[finite] > gains / 2) @ np.array([4, 2, 1])
        code = code_all[:m]
        checked = int(care.sum())
        wrong = int(np.sum((observed != code) & care)) if np.all(gains > 0) else checked
        # A step the window's end cuts to its uncertain frame is not compared; every other step
        # must have a frame with a face.
        unseen = int(np.sum((np.bincount(sid, weights=settled) > 0) & (np.bincount(sid, weights=care) == 0)))
        ok = wrong <= allowed_mismatches(checked) and unseen == 0 and sep >= min_separation
        if not ok and changes is None:
            changes = _changes(y[finite_y], min_separation)
        r = SequenceResult(kind, ok, lag, checked, wrong + unseen, _late_edges(observed, code), sep, "",
                           measurable=ok or bool(changes))
        key = (ok, -(wrong + unseen), -r.late_edges, sep)
        if best is None or key > best[0]:
            best = (key, r)
    if best is None:
        return SequenceResult(kind, False, 0, 0, 0, 0, 0.0, "too few frames with a face to verify the "
                              "illumination challenge", measurable=False)
    r = best[1]
    if r.passed:
        detail = "the face's colour follows the screen's illumination sequence"
    elif not r.measurable:
        detail = ("the screen's light on the face was too weak to measure against the room's light "
                  "(or the face did not reflect it)")
    else:
        detail = "the face's colour does not follow the screen's illumination sequence: injected or not live"
    return SequenceResult(kind, r.passed, r.lag_frames, r.checked, r.mismatches, r.late_edges, r.separation,
                          detail, r.measurable)


def projector_states(energies: Sequence[float] | np.ndarray) -> np.ndarray:
    """Each frame's projector state as its own IR shows it: energy above the geometric middle of the
    10th and 90th percentiles (the split :func:`verify_projector` uses). Unmeasured frames are off.

    Updated deliberately with ``agent.liveness.challenge.projector_states`` (issue 14, the twenty-fourth
    session's split24: a passing headlamp at night lifted the unlit frames past the window's split;
    docs/liveness.md, *A passing headlamp, split*): in a window of 11 frames or more whose 10th
    percentile is under a quarter of its 90th, each frame's levels are those of the 11 consecutive
    frames around it, written here frame by frame."""
    e = np.asarray(energies, dtype=np.float64)
    if e.size == 0 or not np.isfinite(e).any():
        return np.zeros(e.size, bool)
    f = e[np.isfinite(e)]
    lo, hi = np.percentile(f, 10), np.percentile(f, 90)
    x = np.nan_to_num(e, nan=0.0)
    # The unlit tenth taken as at least 1e-3 of the lit level (``challenge.DARK_FLOOR``, a rule changed
    # in both in the twentieth session: black unlit frames with a stray DN split as lit).
    if e.size < 11 or lo >= 0.25 * hi:
        return x > np.sqrt(max(lo, 1e-3 * hi, 1e-6) * max(hi, 1e-6))
    out = np.zeros(e.size, bool)
    for k in range(e.size):
        start = min(max(k - 5, 0), e.size - 11)
        around = x[start:start + 11]
        low, high = max(lo, float(around.min())), min(hi, float(around.max()))
        out[k] = x[k] > np.sqrt(max(low, 1e-3 * high, 1e-6) * max(high, 1e-6))
    return out


def face_response(grids: np.ndarray | Sequence) -> np.ndarray:
    """(n, 3) the face's light per frame, R, G, B, from (n, GRID*GRID, 3) cell grids (rows of NaN
    where a frame has none): each cell relative to its own mean over the window, then per channel the
    mean of the half of the cells whose relative light departs least from the cells' median over the
    window (one choice for the window), times the cells' overall level.

    Updated deliberately with ``agent.liveness.challenge.face_response``'s window-wide choice (the
    face measure of the steady branch, issue 14's bright-light refusals; docs/liveness.md, *The face
    measure: one choice of cells for the window*): the server must compute the measure the terminal
    does. Until then this copy held the interquartile mean ranked on every frame."""
    import warnings

    g = np.asarray(grids, dtype=np.float64)
    if g.size == 0:
        return np.zeros((0, 3))
    g = g.reshape(g.shape[0], -1, 3)
    if not np.isfinite(g).any():
        return np.full((g.shape[0], 3), np.nan)
    faceless = bool(np.isnan(g).any())
    cells = g.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        level = np.nanmean(g, axis=0)                                  # (cells, 3) each cell's mean
    rel = g / np.where(level > 1e-9, level, np.nan)[None]
    overall = np.nanmean(level, axis=0)
    half = cells // 2
    if faceless or not np.all(level > 1e-9):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            dev = np.square(rel - np.nanmedian(rel, axis=1)[:, None])
            score = np.nanmean(dev, axis=0)
            keep = np.argsort(np.where(np.isfinite(score), score, np.inf), axis=0, kind="stable")[:half]
            mean = np.nanmean(rel[:, keep, np.arange(3)], axis=1)
    else:
        srt = np.sort(rel, axis=1)
        centre = srt[:, half] if cells % 2 else (srt[:, half - 1] + srt[:, half]) / 2
        score = np.square(rel - centre[:, None]).mean(axis=0)
        keep = np.argsort(score, axis=0, kind="stable")[:half]
        mean = rel[:, keep, np.arange(3)].mean(axis=1)
    return mean * overall[None]


def verify(payload: pb.ProbePayload, liveness: dict[str, Any], nonce: bytes, challenges: Iterable[Kind],
           frames: int, t: EvidenceThresholds, read: Frames | None = None) -> dict[str, Any]:
    """Check the evidence of an authenticated, well-formed payload whose terminal said "live" under
    a passed challenge; returns the server's own challenge results, or raises ``EvidenceFailed``.
    ``read``: what ``check_shape`` returned for this payload (read again when not given)."""
    want = frozenset(challenges)
    if payload.device.recording:
        raise EvidenceFailed("the probe says it came from a recording: a recording cannot meet a live challenge")
    if not payload.HasField("evidence") or not payload.evidence.frames:
        raise EvidenceFailed("the probe carries no challenge evidence")
    ev = payload.evidence
    fr = read if read is not None else check_shape(payload)
    assert fr is not None                              # the payload has evidence
    got = frozenset(NAMES[c] for c in ev.challenges)
    if got != want:
        raise EvidenceFailed(f"the evidence is for the {names(got) or 'no'} challenge(s), the nonce demanded "
                             f"{names(want)}")
    digests = liveness.get("frame_digests") or []
    n = len(fr.digests)
    if frames and n != frames:
        raise EvidenceFailed(f"the evidence has {n} framesets, the challenge asked for {frames}")
    if fr.digests != list(digests):
        raise EvidenceFailed("the evidence's framesets are not the ones the liveness report judged")
    _check_timing(fr, t)
    faces = fr.faces
    if faces < t.min_face_share * n:
        raise EvidenceFailed(f"a face was measured in only {faces} of {n} framesets")
    challenge = challenge_from_nonce(nonce, n, want)
    results: dict[str, Any] = {}
    if Kind.PROJECTOR in want:
        r = verify_projector(challenge.schedule, fr.ir_energy, max_lag=t.projector_max_lag,
                             min_separation=t.projector_min_separation)
        results["projector"] = r.to_dict()
        if not r.passed:
            raise EvidenceFailed(f"projector: {r.detail} (server's check: {r.mismatches} of {r.checked} frames "
                                 f"disagree, separation {r.separation:.1f})")
    if Kind.ILLUMINATION in want:
        r = verify_illumination(challenge.steps, face_response(fr.grids), max_lag=t.illumination_max_lag,
                                min_separation=t.illumination_min_separation)
        results["illumination"] = r.to_dict()
        if not r.passed:
            raise EvidenceFailed(f"illumination: {r.detail} (server's check: {r.mismatches} of {r.checked} frames "
                                 f"disagree, separation {r.separation:.1f})")
    _check_crop(payload, digests, fr, t)
    return results


def _median(v: np.ndarray) -> float:
    """``np.median`` of a short, finite vector, without its general machinery (the same value)."""
    s = np.sort(v)
    k = len(s) // 2
    return float(s[k]) if len(s) % 2 else float((s[k - 1] + s[k]) / 2)


def _check_timing(fr: Frames, t: EvidenceThresholds) -> None:
    for what, c, s in (("IR/depth", fr.counters, fr.stamps), ("colour", fr.color_counters, fr.color_stamps)):
        if len(c) > 1 and (np.any(np.diff(c) <= 0) or np.any(np.diff(s) <= 0)):
            raise EvidenceFailed(f"{what} frame counters or timestamps do not increase frame after frame")
        if len(s) > 2:
            d = np.diff(s)
            period = _median(d / np.diff(c))                  # per counted frame (drops leave gaps)
            if not 1000.0 / t.max_fps <= period <= 1000.0 / t.min_fps:
                raise EvidenceFailed(f"{what} frames arrive at {1000.0 / max(period, 1e-9):.1f} fps, not a camera's "
                                     "rate")
            if np.max(d) > t.max_gap_frames * period:
                raise EvidenceFailed(f"{what} frames have a gap of {np.max(d):.0f} ms in the window")


def _check_crop(payload: pb.ProbePayload, digests: list[str], fr: Frames, t: EvidenceThresholds) -> None:
    """The face grid of the crops' frameset must be what the colour crop shows in the evidence's box."""
    ev, crop, grids = payload.evidence, payload.color, fr.grids
    if payload.frame_digest not in digests:
        raise EvidenceFailed("the crops' frameset is not among the evidence's")
    k = digests.index(payload.frame_digest)
    if len(ev.face_box) != 4 or not fr.face[k] or not np.isfinite(grids[k]).all():
        raise EvidenceFailed("the evidence has no face grid for the frameset the crops came from")
    x0, y0, x1, y1 = (int(v) for v in ev.face_box)
    cx0, cy0 = x0 - crop.x, y0 - crop.y
    cx1, cy1 = x1 - crop.x, y1 - crop.y
    if crop.format != "bgr8" or cx0 < 0 or cy0 < 0 or cx1 > crop.width or cy1 > crop.height or cx1 - cx0 < GRID \
            or cy1 - cy0 < GRID:
        raise EvidenceFailed("the evidence's face box is not inside the probe's colour crop")
    px = np.frombuffer(crop.pixels, dtype=np.uint8).reshape(crop.height, crop.width, 3)
    mine = face_grid(px, (cx0, cy0, cx1, cy1)).reshape(GRID * GRID, 3)
    diff = float(np.max(np.abs(mine - grids[k])))
    if diff > t.crop_tolerance:
        raise EvidenceFailed(f"the evidence's face grid differs from the probe's own colour crop by {diff:.4f}")
