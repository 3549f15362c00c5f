"""The challenge bench's session model (``bench/challenge_stats.py``): the face's own light it keeps
carries no ghost of the session's own sequence where an edge landed a frame after the model's lag."""

from __future__ import annotations

import numpy as np

from agent.liveness.challenge import Challenge, Kind, face_response, verify
from bench import challenge_stats as cs


def evidence(lag: int, late: tuple[int, ...] = (), seed: int = 4):
    """A judged window's evidence (the numbers the server receives): the projector at lag 1, the
    screen's colours landing ``lag`` frames late (the edges at the frames ``late`` a frame later still),
    a face of 16 cells of their own albedo under a room light drifting slowly, a little noise."""
    rng = np.random.default_rng(seed)
    ch = Challenge.from_nonce(b"s" * 32, 32, (Kind.PROJECTOR, Kind.ILLUMINATION))
    sched = np.array(ch.schedule)
    e = np.where(np.r_[True, sched[:-1]], 12.0, 4.0) + rng.normal(0, 0.1, 32)
    x = ch.colours()
    src = np.maximum(np.arange(32) - lag, -1)
    for k in late:
        src[k] = src[k] - 1                                      # this edge's first frame shows the old colour
    shown = np.where((src < 0)[:, None], 0.0, x[np.maximum(src, 0)])
    gain = 0.01 * np.array([0.78, 0.84, 0.88])
    own = np.array([0.30, 0.22, 0.15]) * (1 + 0.01 * np.linspace(0, 1, 32))[:, None]
    y = own + shown @ (gain[:, None] * cs.CROSSTALK).T
    albedo = rng.uniform(0.7, 1.3, 16)
    grids = albedo[None, :, None] * y[:, None, :] * (1 + rng.normal(0, 2e-5, (32, 16, 3)))
    ev = {"frames": [{"ir_energy": float(e[k]), "face_grid": grids[k].ravel().tolist()} for k in range(32)]}
    return ch, ev, verify(ch, e, face_response(grids)), gain


def largest_own_change(m: cs.SessionModel, gain: np.ndarray) -> float:
    """The own light's largest frame-to-frame change, in its channel's gains."""
    return float(np.max(np.abs(np.diff(m.base, axis=0)) / gain))


def test_the_own_light_has_no_ghost_of_the_sessions_edges_at_the_wrong_lag():
    ch, ev, result, gain = evidence(lag=1)
    assert result.passed
    right = cs.model_from_evidence("q", ev, ch, result, illumination_lag=1)
    wrong = cs.model_from_evidence("q", ev, ch, result, illumination_lag=0)
    assert right is not None and wrong is not None
    assert largest_own_change(right, gain) < 0.1
    # Modelled a frame early, every edge's first frame shows the colour before: taken as such, not
    # left as a spike of a whole gain in the face's own light (the old model's 5,000 lux artefact).
    assert largest_own_change(wrong, gain) < 0.1
    np.testing.assert_allclose(wrong.gain, right.gain, rtol=0.02)


def test_an_edge_landing_a_frame_late_leaves_no_ghost_and_a_real_change_stays():
    ch, ev, result, _ = evidence(lag=1)
    x = ch.colours()
    edges = np.flatnonzero(np.any(x[1:] != x[:-1], axis=1)) + 1
    late = tuple(int(k) + 1 for k in edges[[1, 3]])              # two edges landing a frame later
    ch, ev, result, gain = evidence(lag=1, late=late)
    m = cs.model_from_evidence("q", ev, ch, result, illumination_lag=1)
    assert m is not None and largest_own_change(m, gain) < 0.1
    # A face whose own light steps within a step (a frame that is no edge's) keeps that step.
    st = next(s for s in ch.steps[1:] if s.frames >= 4)
    k = st.start + 2                                             # the command's frame; measured at k + 1
    assert np.all(x[k] == x[k - 1])
    rows = np.array([f["face_grid"] for f in ev["frames"]])
    rows[k + 1:] *= 1.1
    ev2 = {"frames": [{"ir_energy": f["ir_energy"], "face_grid": r.tolist()}
                      for f, r in zip(ev["frames"], rows, strict=True)]}
    m2 = cs.model_from_evidence("q", ev2, ch, result, illumination_lag=1)
    assert m2 is not None and largest_own_change(m2, gain) > 1.0
    assert int(np.argmax(np.abs(np.diff(m2.base, axis=0)).max(axis=1))) == k - 1
