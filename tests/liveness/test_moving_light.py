"""Light that moves between the two frames of a same-state pair (a sunfleck, a lamp waved over the
face) is not photon noise: the dots' shape is not read on such a pair (``features.dot_shape_read``),
a session left without a shape reading is not measurable, never 0 by a NaN and never live
(``detectors.evaluate``), and the discs over the eyes likewise (docs/liveness.md, fleck24's section).

Synthetic IR frames in DN as in test_projector_measure.py: the simulator's projected dots (skin
spreads 0.6 of each dot's light, resin 0.16) on 20 DN of shade, a soft-edged fleck of 120 DN (the
eleventh family's flecks are 2-50 times the shade) on the surface, photon noise, clipped at 255. The
fleck moves only between two frames in one projector state (inside the noise pairs), the case where
what is subtracted as noise is all moving light; held still it is part of the ambient light.

And light that changes inside an on-off pair itself (pairs25): a lamp moved on the projector's edges
(review24), which leaves the difference darker than nothing where it was (``features.light_gone``),
and a dimmer caught at another phase in a pair's lit frame than in its unlit one, whose level steps
off the projector's (``features.level_steps``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.liveness import features
from agent.liveness.challenge import projector_schedule
from agent.liveness.detectors import MIN_EYE_READINGS, active_ramps, evaluate, material_light
from agent.liveness.features import (
    MAX_GONE_SHARE,
    MAX_SAME_STATE_MID_SHARE,
    ProjectorLight,
    ProjectorMeasure,
    pair_light,
)
from agent.liveness.judge import DROWNED_SCORE_CAP, _edges, _noise_pair
from hil.padeval import rescore
from tests.liveness.test_projector_measure import (
    FULL_WELL_E,
    RESIN_SCATTER,
    SKIN_SCATTER,
    projected_dots,
    summary,
)

SHARPNESS = active_ramps()["projector_sharpness"]
SIDE = 80
SHAPE = (SIDE + 24, 2 * SIDE + 36)          # the skin on the left, the discs over the eyes on the right
SKIN = np.zeros(SHAPE, bool)
SKIN[12:-12, 12:12 + SIDE] = True
EYES = np.zeros(SHAPE, bool)
EYES[12:-12, 24 + SIDE:24 + 2 * SIDE] = True


def fleck(centre: np.ndarray, radius: float = 14.0, edge: float = 2.5, dn: float = 120.0) -> np.ndarray:
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    return dn / (1 + np.exp((np.hypot(yy - centre[0], xx - centre[1]) - radius) / edge))


def window(skin_scatter: float, step: float, *, eyes_scatter: float | None = None, over_eyes: bool = False,
           synced: float = 0.0, until: int | None = None, seed: int = 0, nonce: bytes = b"\0" * 16,
           n: int = 32, on_edges: bool = False, fleck_dn: float = 120.0, dimmer: list[float] | None = None,
           eye_texture: float = 0.0, everywhere: bool = False) -> list[ProjectorLight]:
    """The judge's pairs over a challenge window (``_edges``, ``_noise_pair``): the fleck (``fleck_dn``)
    moves by ``step`` px between two frames in one projector state (before frame ``until`` only), or,
    ``on_edges``, only between two frames in different states (review24's edge lamp: still inside each
    run, so every noise pair is clean), over the skin (or over the eyes); ``synced``: an attacker's even
    lamp of that many DN switched with the projector (it lowers the speckle contrast toward skin's and
    leaves the dots' shape). ``dimmer``: each frame's factor on the room's light (a PWM dimmer sampled
    at its phase); ``eye_texture``: the room's light on the discs over the eyes has a fine texture of
    that relative deviation which the projector's does not (the eye in leaked visible light: iris
    pigment, lashes; docs/liveness.md, eyes24). ``everywhere``: the fleck moves between every two frames,
    inside the noise pairs and the on-off pairs alike (a sunfleck drifting through the whole window)."""
    pattern = projected_dots(SHAPE, skin_scatter)
    if eyes_scatter is not None:
        pattern = np.where(EYES, projected_dots(SHAPE, eyes_scatter, seed=2), pattern)
    texture = np.random.default_rng(seed + 7).normal(size=SHAPE).astype(np.float32)
    albedo = 1 + 0.05 * cv2.GaussianBlur(texture, (0, 0), 3)
    seen = np.ones(SHAPE, np.float32)
    if eye_texture:
        fine = np.clip(1 + eye_texture * np.random.default_rng(seed + 11).normal(size=SHAPE), 0.2, 2.5)
        seen = np.where(EYES, cv2.GaussianBlur(fine.astype(np.float32), (0, 0), 0.5), seen)
    rng = np.random.default_rng(seed)
    lit = list(projector_schedule(nonce, n))
    start = np.array([40.0, (64.0 + SIDE) if over_eyes else 52.0])
    at = [start]
    for k in range(1, n):
        sign = 1 if (k // 4) % 2 else -1
        moves = (everywhere or (lit[k] != lit[k - 1] if on_edges else lit[k] == lit[k - 1])) \
            and (until is None or k < until)
        at.append(at[-1] + (np.array([step, step / 2]) * sign if moves else 0.0))
    frames = []
    for k in range(n):
        room = 20.0 * (dimmer[k] if dimmer is not None else 1.0) * seen
        dn = albedo * (room + fleck(at[k], dn=fleck_dn) + ((16.0 * pattern + synced) if lit[k] else 0.0))
        e = dn * FULL_WELL_E / 255
        noisy = e + rng.normal(size=e.shape) * np.sqrt(e + 16)
        frames.append(np.clip(np.floor(noisy * 255 / FULL_WELL_E), 0, 255).astype(np.float32))
    out = []
    for k, on, off in _edges(lit):
        p = _noise_pair(lit, k, n)
        out.append(pair_light(frames[on], frames[off], SKIN, (frames[p[0]], frames[p[1]]) if p is not None else None,
                              eyes=EYES if eyes_scatter is not None else None))
    return out


# A person who moves and blinks in the window, eyes recessed: every detector but the projector's says live
# (a mask with eye holes blinks through them too).
ALIVE = {"blink_drop": 0.5, "motion_snr": 5.0, "nonrigid_peak": 0.03, "eye_recess_mm": 12.0}


def judged(lights: list[ProjectorLight], **cues: float):
    m = ProjectorMeasure.pool(lights)
    s = evaluate({**summary(m), **ALIVE, **cues}, challenged=True)
    return m, s


def session_score(s) -> float:
    """The judge's fused score for these detectors (``hil.padeval.rescore``: the judge's own rules)."""
    return rescore({"detectors": s.as_dict(), "cues": s.cues}, active_ramps())


@pytest.mark.parametrize("seed", [0, 1])
def test_a_fleck_moving_inside_the_noise_pairs_leaves_skin_unread_not_hard(seed):
    # Held still, the fleck is ambient light: every pair's noise pair is white noise, the dots read
    # skin's and material is 1. Moving 3 px between the noise pairs' frames, main subtracted its
    # change as noise and read the skin as harder than any mask (4.6-5.1, material 0: attack); now
    # no pair's shape is read and the session is not measurable, held under any live threshold.
    still = window(SKIN_SCATTER, 0.0, seed=seed)
    assert all(x.moving < 0.01 and not x.unshaped for x in still)
    m, s = judged(still)
    assert m.sharpness < SHARPNESS.live and s.material == 1.0 and not s.unmeasured and session_score(s) == 1.0

    moving = window(SKIN_SCATTER, 3.0, seed=seed)
    assert all(x.moving > 10 * MAX_SAME_STATE_MID_SHARE and x.unshaped for x in moving)
    assert all(np.isnan(x.sharpness) and np.isnan(x.coarse) for x in moving)
    m, s = judged(moving)
    # Nor their speckle (fleck26): no pair left to read.
    assert m.pairs == 0 and m.unshaped == 9 and np.isnan(m.speckle) and np.isnan(m.sharpness)
    assert np.isnan(m.sharpness_floor) and np.isnan(m.floor)
    assert s.material is None and s.material_drowned and s.unmeasured and s.material_bound == 1.0
    assert any("light moved on the face between frames" in note and "9 pairs with neither" in note
               for note in s.notes)
    assert material_light(s.cues) == "moved"
    assert 0.0 < session_score(s) <= DROWNED_SCORE_CAP


def test_a_nan_sharpness_beside_a_measurable_speckle_is_not_measurable_never_zero():
    # Whatever emptied the shape (here no pair was read at all), a speckle that could decide is half
    # the measure: main scored the missing sharpness 0 and refused the session as an attack.
    cues = {"projector_speckle": 0.18, "projector_speckle_low": 0.17, "projector_speckle_high": 0.19,
            "projector_pairs": 6.0, "projector_share": 0.5, "projector_snr": 20.0}
    m = {**summary(ProjectorMeasure.pool([])), **cues, **ALIVE}
    s = evaluate(m, challenged=True)
    assert s.material is None and s.material_drowned and s.material_bound == 1.0
    assert any("shape could not be read on any pair" in note for note in s.notes)
    assert 0.0 < session_score(s) <= DROWNED_SCORE_CAP
    # A hard speckle still holds the session down to 0; a hard one-sided floor of the shape too.
    hard = evaluate({**m, "projector_speckle": 0.34, "projector_speckle_low": 0.33, "projector_speckle_high": 0.35},
                    challenged=True)
    assert hard.material is None and hard.material_bound == 0.0 and session_score(hard) == 0.0
    floor = evaluate({**m, "projector_sharpness_floor": 2.0}, challenged=True)
    assert floor.material_bound == 0.0 and session_score(floor) == 0.0


@pytest.mark.parametrize("step", [2.0, 3.0])
def test_a_lamp_waved_over_a_mask_never_makes_it_live(step):
    # The attacker's side: resin under a lamp waved between the noise pairs' frames through the whole
    # window. Its shape goes unread as skin's does, and so does its speckle (fleck26: what such a pair
    # reads is neither an estimate nor a floor; on main resin's speckle held it at 0): not measurable,
    # held under any live threshold, a refusal and a lockout strike, never live.
    m, s = judged(window(RESIN_SCATTER, step))
    assert m.unshaped == 9 and np.isnan(m.sharpness) and np.isnan(m.speckle)
    assert s.material is None and s.unmeasured and 0.0 < session_score(s) <= DROWNED_SCORE_CAP


def test_a_waved_lamp_cannot_hide_the_shape_that_holds_a_mask_whose_speckle_reads_skin():
    # Attack B (an even lamp switched with the projector: resin's speckle falls into skin's range, only
    # the dots' shape holds it) with a lamp waved in the first half of the window's noise pairs: those
    # pairs' shape and speckle go unread, but the shape is the pairs' left, still resin's, and material
    # stays 0. Waved through the whole window: not measurable, never live.
    SPECKLE = active_ramps()["projector_speckle"]
    lights = window(RESIN_SCATTER, 3.0, synced=16.0, until=16)
    m, s = judged(lights)
    assert 0 < m.unshaped and m.pairs == sum(not x.unshaped for x in lights) >= 3
    assert m.speckle < SPECKLE.live and m.sharpness > SHARPNESS.attack
    assert s.material == 0.0 and session_score(s) == 0.0
    m, s = judged(window(RESIN_SCATTER, 3.0, synced=16.0))
    assert m.unshaped == 9 and m.pairs == 0 and np.isnan(m.speckle) and np.isnan(m.sharpness)
    assert s.material is None and s.unmeasured and session_score(s) <= DROWNED_SCORE_CAP


def test_a_lamp_waved_over_a_printed_eye_band_leaves_the_eye_region_not_measurable():
    # A printed band pressed onto the face keeps the wearer's eye recess (12 mm here): the dots on
    # the discs over the eyes are what refuses it. Still, the paper's dots read hard there; with a
    # lamp waved over the eyes between the noise pairs' frames none is read, and on main the recess
    # alone decided (eye region 1, the session live-able). Now the eye region is not measurable.
    still = window(SKIN_SCATTER, 0.0, eyes_scatter=RESIN_SCATTER, over_eyes=True)
    m, s = judged(still)
    assert m.eyes_sharpness > active_ramps()["eye_dots"].attack and s.eye_region == 0.0 and session_score(s) == 0.0

    lights = window(SKIN_SCATTER, 3.0, eyes_scatter=RESIN_SCATTER, over_eyes=True)
    assert all(x.eyes_unshaped for x in lights) and not any(x.unshaped for x in lights)
    m, s = judged(lights)
    assert np.isnan(m.eyes_sharpness) and m.eyes_unshaped == 9 and m.sharpness < SHARPNESS.live
    assert s.material == 1.0 and s.eye_region == 1.0 and s.eyes_unmeasured and s.unmeasured
    assert any("dots over the eyes could not be read" in note for note in s.notes)
    assert 0.0 < session_score(s) <= DROWNED_SCORE_CAP
    # A recess that already says no eyes behind still refuses outright.
    _, flat = judged(lights, eye_recess_mm=1.0)
    assert flat.eye_region == 0.0 and session_score(flat) == 0.0


def test_a_lamp_moved_on_the_projectors_edges_never_reads_a_mask_as_skin():
    # review24's edge lamp: an attacker who sees the schedule moves a 140 DN spot 3.2 px on every
    # projector edge and holds it still inside each run, so every noise pair is clean and the on-off
    # difference carries the move, whose mid band lowers resin's fine/mid ratio toward skin's; with
    # attack B's synced lamp (16 DN: resin's speckle in skin's range) main scored it live (1.0). The
    # projector only adds light: where the spot was, the difference is dark (``light_gone``), and no
    # pair's shape is read.
    lights = window(RESIN_SCATTER, 3.2, synced=16.0, on_edges=True, fleck_dn=140.0)
    assert all(x.moving < MAX_SAME_STATE_MID_SHARE for x in lights)          # the noise pairs are clean
    assert all(x.gone > MAX_GONE_SHARE and x.unshaped and np.isnan(x.sharpness) for x in lights)
    m, s = judged(lights)
    assert m.unshaped == 9 and m.pairs == 0 and np.isnan(m.sharpness) and np.isnan(m.speckle)
    assert s.material is None and s.unmeasured and session_score(s) <= DROWNED_SCORE_CAP


def test_a_still_window_is_read_as_before(monkeypatch):
    # Without moving light nothing is dropped, and every pair reads what it read without the on-off
    # checks (their thresholds lifted): skin, resin, and resin under attack B's synced lamp.
    for scatter, synced in ((SKIN_SCATTER, 0.0), (RESIN_SCATTER, 0.0), (RESIN_SCATTER, 40.0)):
        lights = window(scatter, 0.0, synced=synced)
        assert all(x.gone == 0.0 and not x.unshaped for x in lights)
        with monkeypatch.context() as mp:
            mp.setattr(features, "MAX_GONE_SHARE", float("inf"))
            mp.setattr(features, "MAX_LEVEL_STEP", float("inf"))
            unchecked = window(scatter, 0.0, synced=synced)
            before = ProjectorMeasure.pool(unchecked)
        assert [x.sharpness for x in lights] == [x.sharpness for x in unchecked]
        assert [x.contrast2 for x in lights] == [x.contrast2 for x in unchecked]
        after = ProjectorMeasure.pool(lights)
        assert repr(after) == repr(before) and after.unshaped == 0      # every field, NaN as NaN


@pytest.mark.parametrize("seed", [0, 1])
def test_pairs_whose_level_a_dimmer_stepped_are_not_read(seed, monkeypatch):
    # A PWM dimmer sampled at another phase in a pair's lit frame than in its unlit one puts the room's
    # light, times the change, in the difference (eyes24): over the eyes the eye's own texture in the
    # room's light, read as paper's sharp dots. Here three pairs' lit frames caught it at twice the
    # room's light (their eye discs read 1.6-1.9 against the steady pairs' 0.98) and three other pairs'
    # unlit frames did (their level falls under what measures anything). The pairs' median lit-frame
    # level less their median unlit one is still the projector's (16 DN): the three are ``stepped``,
    # their dots' shape not read on the skin or the eyes, and the eyes read the steady pairs'. Main's
    # eye discs were the median of the three steady and three stepped pairs: over the ramp, refused.
    lit = list(projector_schedule(b"\0" * 16, 32))
    edges = _edges(lit)
    dimmer = [1.0] * 32
    for i in (1, 3, 4):                               # lit frames (no pair's noise pair holds them)
        dimmer[edges[i][1]] = 2.0
    for i in (0, 2, 5):                               # unlit frames (only in their own pair's noise pair)
        dimmer[edges[i][2]] = 2.0
    lights = window(SKIN_SCATTER, 0.0, eyes_scatter=SKIN_SCATTER, dimmer=dimmer, eye_texture=0.5, fleck_dn=0.0,
                    seed=seed)
    steady = [lights[i] for i in (6, 7, 8)]
    assert all(np.isnan(lights[i].contrast2) for i in (0, 2, 5))                # too faint to measure
    assert all(lights[i].eyes_sharpness > active_ramps()["eye_dots"].attack for i in (1, 3, 4))
    assert all(x.eyes_sharpness < SHARPNESS.live for x in steady)
    m, s = judged(lights)
    assert m.unshaped == 3 and m.eyes_unshaped == 3
    assert m.eyes_sharpness == float(np.median([x.eyes_sharpness for x in steady]))
    assert m.sharpness == float(np.median([x.sharpness for x in steady]))
    assert s.eye_region == 1.0 and s.material == 1.0 and session_score(s) == 1.0
    with monkeypatch.context() as mp:                 # without the check: main's reading
        mp.setattr(features, "MAX_LEVEL_STEP", float("inf"))
        m0, s0 = judged(lights)
    assert m0.unshaped == 0 and m0.eyes_sharpness > active_ramps()["eye_dots"].attack
    assert s0.eye_region == 0.0 and session_score(s0) == 0.0


def flutter_pair(on_dn: float, off_dn: float = 120.0, seed: int = 0) -> ProjectorLight:
    """One on-off pair of skin whose fleck (1.5 px edges) is ``off_dn`` in the unlit frame and ``on_dn`` in
    the lit one (a fleck that flutters between the pair's frames), its noise pair (two lit frames) still."""
    rng = np.random.default_rng(seed)
    pattern = projected_dots(SHAPE, SKIN_SCATTER)
    centre = np.array([40.0, 52.0])

    def frame(extra: np.ndarray, lit: bool) -> np.ndarray:
        e = (20.0 + extra + (16.0 * pattern if lit else 0.0)) * FULL_WELL_E / 255
        return np.clip(np.floor((e + rng.normal(size=e.shape) * np.sqrt(e + 16)) * 255 / FULL_WELL_E),
                       0, 255).astype(np.float32)
    on = fleck(centre, edge=1.5, dn=on_dn)
    return pair_light(frame(on, True), frame(fleck(centre, edge=1.5, dn=off_dn), False), SKIN,
                      (frame(on, True), frame(on, True)))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_pair_the_fleck_fluttered_in_gives_no_speckle_either(seed, monkeypatch):
    # fleck25's 3 of the eleventh's 8 attacks (live/52, /103, /122): the session's speckle was one
    # two-sided pair's, 0.32-0.39, a pair whose dots' shape fleck24/pairs25 already left unread, and the
    # bound of what the projector "did show" held the score at 0. A fleck dimmer in the lit frame than in
    # the unlit one leaves its edge in the difference's high band: skin reads as hard as resin. Such a
    # pair gives no speckle now (``features.speckled``): not measurable, a retry, never live.
    SPECKLE = active_ramps()["projector_speckle"]
    still = flutter_pair(120.0, seed=seed)
    assert not still.unshaped and not still.one_sided and _root_of(still) < SPECKLE.live
    pair = flutter_pair(60.0, seed=seed)
    assert pair.unshaped and not pair.one_sided and _root_of(pair) > SPECKLE.attack
    m, s = judged([pair])
    assert m.pairs == 0 and np.isnan(m.speckle) and np.isnan(m.floor) and m.unshaped == 1
    assert s.material is None and s.material_drowned and s.material_bound == 1.0
    assert 0.0 < session_score(s) <= DROWNED_SCORE_CAP and material_light(s.cues) == "moved"
    with monkeypatch.context() as mp:                 # main: the pair's speckle kept, the score held at 0
        mp.setattr(features, "speckled", lambda lights: lights)
        m0, s0 = judged([pair])
    assert m0.pairs == 1 and m0.speckle > SPECKLE.attack and s0.material_bound == 0.0 and session_score(s0) == 0.0
    # Beside still pairs, the session is theirs: skin, as it was with the fluttered pair in the median.
    m, s = judged([pair] + [flutter_pair(120.0, seed=seed + k) for k in range(2, 6)])
    assert m.pairs == 4 and m.unshaped == 1 and m.speckle < SPECKLE.live and s.material == 1.0


def _root_of(x: ProjectorLight) -> float:
    return float(np.sqrt(max(x.contrast2, 0.0)))


def test_an_eye_reading_of_one_pair_beside_unshaped_ones_is_not_measurable():
    # fleck25's live/90: the discs over the eyes read on one two-sided pair (1.364, the ramp's attack end
    # 1.325), four others left unread by moving light: the eye region 0, attack, on one pair's scatter.
    # Fewer than MIN_EYE_READINGS beside unshaped ones are as none: not measurable (the recess alone
    # does not answer a printed band), held under any live threshold.
    base = {**summary(ProjectorMeasure.pool(window(SKIN_SCATTER, 0.0))), **ALIVE}
    one = {**base, "projector_sharpness_eyes": 1.364, "projector_eyes_unshaped_pairs": 4.0,
           "projector_eyes_read_pairs": 1.0}
    s = evaluate(one, challenged=True)
    assert s.material == 1.0 and s.eye_region == 1.0 and s.eyes_unmeasured and s.unmeasured
    assert any(f"4 pairs; 1 read, fewer than {MIN_EYE_READINGS}" in note for note in s.notes)
    assert 0.0 < session_score(s) <= DROWNED_SCORE_CAP
    # Enough readings decide as before; so does any number without unshaped ones, and a summary from
    # before the count was kept; a recess that says "no eyes behind" still refuses outright.
    for cues in ({**one, "projector_eyes_read_pairs": float(MIN_EYE_READINGS)},
                 {k: v for k, v in one.items() if k != "projector_eyes_unshaped_pairs"},
                 {k: v for k, v in one.items() if k != "projector_eyes_read_pairs"}):
        s = evaluate(cues, challenged=True)
        assert s.eye_region == 0.0 and not s.eyes_unmeasured and session_score(s) == 0.0
    assert session_score(evaluate({**one, "eye_recess_mm": 1.0}, challenged=True)) == 0.0


def test_a_lamp_waved_over_a_printed_band_in_all_but_two_pairs_is_not_measurable():
    # The attacker's side: a printed band (the paper's hard dots over the eyes) under a lamp waved over
    # the eyes until the window's last frames, leaving two pairs read: main decided on them (paper, 0);
    # now not measurable, never live. A live face so lit is not measurable too (the rule's cost).
    band = window(SKIN_SCATTER, 3.0, eyes_scatter=RESIN_SCATTER, over_eyes=True, until=26)
    m, s = judged(band)
    assert m.eyes_read == 2 and m.eyes_unshaped == 7 and m.eyes_sharpness > active_ramps()["eye_dots"].attack
    assert s.eyes_unmeasured and 0.0 < session_score(s) <= DROWNED_SCORE_CAP
    m, s = judged(window(SKIN_SCATTER, 3.0, eyes_scatter=SKIN_SCATTER, over_eyes=True, until=26))
    assert m.eyes_read == 2 and m.eyes_sharpness < SHARPNESS.live
    assert s.eyes_unmeasured and 0.0 < session_score(s) <= DROWNED_SCORE_CAP


def _fan_window(scatter: float, drop_dn: float, seed: int = 0, pairs: tuple[int, ...] = (1, 4),
                room: float = 2.4) -> list[ProjectorLight]:
    """A window under a room of ``room`` x 20 DN whose light falls by ``drop_dn`` in the lit frames of
    ``pairs`` (a ceiling fan's blade over the lamp then, fanmat27; the fifteenth family's fan lives:
    unlit skin 65-150 DN, the dots 25-40 DN, their lit frames 15-30 DN under the window's)."""
    lit = list(projector_schedule(b"\0" * 16, 32))
    edges = _edges(lit)
    dimmer = [room] * 32
    for i in pairs:
        dimmer[edges[i][1]] = room - drop_dn / 20.0
    return window(scatter, 0.0, dimmer=dimmer, fleck_dn=0.0, seed=seed)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("drop_dn", [8.0, 12.0])
def test_a_pair_whose_lit_frame_a_fan_darkened_is_no_floor_under_skin(seed, drop_dn, monkeypatch):
    # The fifteenth family's fan lives (live/73, /154, /257): one or two pairs whose lit frame caught
    # the blade's shadow read their level 8-10 DN against the window's 22-38, so under
    # MIN_PROJECTOR_SNR (one-sided), and their contrast, the dots' whole high band over that low mean,
    # 0.36-0.67 squared against the steady pairs' 0.03-0.06: a "floor" harder than resin's that held
    # the material at 0 (a lockout strike). Their level stepped off the window's (``level_steps``):
    # now they give no speckle (``features.speckled``), and skin reads as the steady pairs read it.
    lights = _fan_window(SKIN_SCATTER, drop_dn, seed)
    assert all(lights[i].one_sided and lights[i].contrast2 > 3 * lights[0].contrast2 for i in (1, 4))
    m, s = judged(lights)
    assert m.unshaped == 2 and m.floor_pairs == 0 and m.pairs == 7
    assert s.material == 1.0 and session_score(s) == 1.0
    with monkeypatch.context() as mp:                 # main f5d8786: the stepped pairs' speckle kept
        mp.setattr(features, "speckled", lambda ls: [x for x in ls if not x.moved])
        m0, s0 = judged(lights)
    assert m0.floor_pairs == 2 and s0.material == 0.0 and session_score(s0) == 0.0
    # A mask under the same fan: its steady pairs still read resin.
    m, s = judged(_fan_window(RESIN_SCATTER, drop_dn, seed))
    assert m.pairs == 7 and s.material == 0.0 and session_score(s) == 0.0


@pytest.mark.parametrize("frame", ["lit", "unlit"])
def test_an_attacker_stepping_pairs_under_a_mask_never_makes_it_live(frame):
    # An injector that sees every command steps the room's light in the lit (or unlit) frames of a set
    # of pairs, dimmer or brighter, with or without attack B's lamp switched with the projector
    # (bench.fan_pairs' searched attacker, a subset): the pairs it steps give nothing, and what is left
    # is the mask's own steady pairs, or too few of them to measure (never live).
    edges = _edges(list(projector_schedule(b"\0" * 16, 32)))
    for pairs in ((0, 2, 4, 6, 8), tuple(range(len(edges) - 2))):
        for factor in (0.5, 2.0):
            for lamp in (0.0, 40.0):
                dimmer = [2.4] * 32
                for i in pairs:
                    dimmer[edges[i][1] if frame == "lit" else edges[i][2]] = 2.4 * factor
                m, s = judged(window(RESIN_SCATTER, 0.0, dimmer=dimmer, fleck_dn=0.0, synced=lamp))
                assert s.material != 1.0 and session_score(s) <= DROWNED_SCORE_CAP, (pairs, factor, lamp)


@pytest.mark.parametrize("lamp", [16.0, 40.0])
def test_a_dimmer_that_keeps_only_the_softest_pairs_never_makes_a_mask_live(lamp):
    # review28: a pair whose room light fell in its lit frame gives nothing (fanmat27), so an injector
    # that sees every command and reads each pair as it passes can choose which pairs fall: it dims the
    # lit frames of all but the pairs whose dots read softest (their speckle attack B's lamp took toward
    # skin's). Dimming fewer than half, what it keeps is the mask's own softest pairs, still resin's
    # (a pair's scatter here 0.09 in sharpness, the mask 0.4 over the ramp's attack end); dimming more
    # moves the window's own projector level to the dimmed frames' (``level_steps``' medians), and the
    # pairs it kept step over it (no shape) while the dimmed ones are read. Never live either way
    # (bench.dim_select: every subset of the pairs dropped, masks, prints and painted resin).
    nonce = b"\1" * 16
    edges = _edges(list(projector_schedule(nonce, 32)))
    drawn = window(RESIN_SCATTER, 0.0, dimmer=[2.4] * 32, fleck_dn=0.0, synced=lamp, nonce=nonce)
    softest = np.argsort([x.sharpness for x in drawn])
    for keep in range(1, len(drawn) + 1):
        dimmer = [2.4] * 32
        for i in softest[keep:]:
            dimmer[edges[i][1]] = 2.4 * 0.5
        m, s = judged(window(RESIN_SCATTER, 0.0, dimmer=dimmer, fleck_dn=0.0, synced=lamp, nonce=nonce))
        assert s.material != 1.0 and session_score(s) == 0.0, (lamp, keep)
        if 2 * keep > len(drawn):
            assert m.pairs == keep and m.unshaped == len(drawn) - keep, (lamp, keep)
            assert m.sharpness >= min(x.sharpness for x in drawn) > SHARPNESS.attack, (lamp, keep)
