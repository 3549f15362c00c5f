"""The eighteenth family: the Orbbec Gemini 335Lg profile (the 335L's stereo on GMSL2, another unit, no IR-pass
filter), a lobby's multicoloured holiday string lights flickering in antiphase at the mains frequency under their
controller's pattern (``holiday.StringLights``), a ceiling time-of-flight people counter's pulsed 850 nm flood
(``holiday.TofCounter``), its older people (``identity.AGE_*``, ``head.aged_relief``), and the earlier families
(the seventeenth included) left as they were.

Nothing here computes a verdict, a score or a quality decision on the eighteenth family: it was built as the
unseen test family of the twenty-ninth session and evaluated once, whole, on main 98a456e's judge
(docs/liveness.md, *The eighteenth family*); a development set since. Tests open its URIs for frames, light,
pools and refusals only (rendering checks)."""

import dataclasses

import numpy as np
import pytest

from drivers.sim import holiday
from drivers.sim.config import SimConfig
from drivers.sim.families import LIGHT_CCT, LIGHT_LUX, POOLS
from drivers.sim.head import aged_relief, face_height, head_grid, head_layers
from drivers.sim.identity import AGE_SHARE, PORTRAIT_FISSURE_MM, Identity, age_severity
from drivers.sim.night import irradiance_lux_eq
from drivers.sim.profiles import get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from drivers.sim.vestibule import BLUE_BGR, RED_BGR
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.drivers.sim.test_fourteenth_family import _LATER
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import assert_another_unit_resolving_eyes, assert_leak_and_cornea_on_every_uri
from tests.helpers.sim import colour_face_mean, session_camera

EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
           "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth")
LIGHTS = ("string_lights", "tof_counter")


def _brute(pulse_train, t0: float, e: float, n: int = 20001) -> float:
    """A pulse train's share of [t0, t0 + e] by sampling it (against the closed form)."""
    return float(np.mean([pulse_train.factor(x, 0.0) for x in np.linspace(t0, t0 + e, n)]))


def test_gemini335lg_profile_is_the_335l_another_unit_without_an_ir_pass_filter():
    g, base = get_profile("gemini335lg"), get_profile("gemini335l")
    assert g.stereo_baseline_m == base.stereo_baseline_m == 0.095 and g.has_projector and not g.structured_light
    assert g.projector_power is None and g.projector == base.projector          # switched on and off
    assert g.stream_modes == base.stream_modes and g.color_shutter == "global" and g.depth_shutter == "global"
    assert g.ir_band == "nir" and g.visible_response == base.visible_response == (1.0, 1.0, 1.0)
    assert g.depth_range_m[0] < 0.35                                            # the envelope's nearest face
    assert SimConfig.from_query({"camera": "gemini335lg", "ir_leak": "1"}).ir_leak_on
    assert_another_unit_resolving_eyes(g)


def test_eighteenth_family_draws_its_own_pools_with_visible_light_in_ir_and_the_cornea():
    assert_leak_and_cornea_on_every_uri("eighteenth", "gemini335lg", LIGHTS)
    # Inside the capture spec's 2300-7500 K and the envelope's 15-7500 lux.
    assert LIGHT_LUX["string_lights"] == (100.0, 400.0) and LIGHT_CCT["string_lights"] == (2700, 3500)
    assert LIGHT_LUX["tof_counter"] == (50.0, 300.0) and LIGHT_CCT["tof_counter"] == (3000, 4500)
    assert LIGHT_NIR_SHARE["string_lights"] == LIGHT_NIR_SHARE["tof_counter"] == LIGHT_NIR_SHARE["led"]
    for e in EARLIER:
        s = Scene(SimConfig.from_query({"family": e, "seed": "1"}))
        assert s.strings is None and s.tof is None
    assert not set(LIGHTS) & {light for f, p in POOLS.items() if f != "eighteenth" for light in p.lights}


# --- The string lights ---------------------------------------------------------------------------------------
def _strings(n: int = 40) -> list:
    return [Scene(SimConfig.from_query({"family": "eighteenth", "light": "string_lights", "seed": str(k)})).strings
            for k in range(n)]


def test_each_session_draws_its_own_string_lights_in_antiphase_at_the_mains_frequency():
    strings = _strings()
    assert all(isinstance(s, holiday.StringLights) for s in strings)
    assert {s.mode for s in strings} == set(holiday.MODES)
    assert len({s.channels[0].phase_s for s in strings}) == len(strings)
    for s in strings:
        a, b = s.channels
        hz = 1.0 / a.period_s
        assert any(abs(hz - m) <= m * holiday.GRID_DEVIATION for m in holiday.MAINS_HZ) and a.period_s == b.period_s
        assert holiday.STRING_LUX[0] <= s.lux <= holiday.STRING_LUX[1]
        share = a.length_s[0] / (a.period_s / 2)
        assert holiday.CONDUCTION[0] <= share <= holiday.CONDUCTION[1]
        # Never both conducting: one on the positive half-cycle, the other on the negative.
        ts = np.arange(0.0, 3 * a.period_s, a.period_s / 500)
        on_a = np.array([a.factor(t, 0.0) for t in ts])
        on_b = np.array([b.factor(t, 0.0) for t in ts])
        assert on_a.any() and on_b.any() and not (on_a * on_b).any()
        # Over whole mains cycles each channel gives its lux at full; an exposure collects its conduction's share.
        assert a.peak_lux * a.factor(0.123, 5 * a.period_s) == pytest.approx(s.lux, rel=1e-6)
        for t0, e in ((0.0, 0.002), (0.377, 0.0073), (1.9, 0.033)):
            assert a.factor(t0, e) == pytest.approx(_brute(a, t0, e), abs=2e-3)
            la, lb = s.levels(t0 + e / 2)
            want = la * a.peak_lux * a.factor(t0, e) * holiday.CHANNEL_BGR[0] \
                + lb * b.peak_lux * b.factor(t0, e) * holiday.CHANNEL_BGR[1]
            assert np.allclose(s.bgr(t0, e), want, rtol=1e-5, atol=1e-6)
        # The controller's pattern.
        levels = np.array([s.levels(t) for t in np.arange(0.0, 10.0, 0.01)])
        assert levels.min() >= 0.0 and levels.max() <= 1.0
        if s.mode == "steady":
            assert np.all(levels == 1.0)
        elif s.mode in ("sequential", "chasing"):
            assert set(np.unique(levels)) == {0.0, 1.0} and np.all(levels.sum(axis=1) == 1.0)
            assert holiday.MODE_STEP_S[s.mode][0] <= s.step_s <= holiday.MODE_STEP_S[s.mode][1]
        elif s.mode == "waves":
            assert np.allclose(levels.sum(axis=1), 1.0) and levels[:, 0].max() > 0.99 and levels[:, 0].min() < 0.01
        else:
            assert np.array_equal(levels[:, 0], levels[:, 1]) and levels[:, 0].max() > 0.99
    # The colours: luminance 1 per lux; green has no red or blue, amber no blue; the channels' mixes.
    for bgr in (holiday.GREEN_BGR, holiday.AMBER_590_BGR):
        assert 0.0722 * bgr[0] + 0.7152 * bgr[1] + 0.2126 * bgr[2] == pytest.approx(1.0, rel=1e-5)
    assert holiday.GREEN_BGR[0] == holiday.GREEN_BGR[2] == 0.0 and holiday.AMBER_590_BGR[0] == 0.0
    assert np.allclose(holiday.CHANNEL_BGR[0], 0.5 * (RED_BGR + BLUE_BGR))
    assert np.allclose(holiday.CHANNEL_BGR[1], 0.5 * (holiday.GREEN_BGR + holiday.AMBER_590_BGR))


_STRINGS = ("sim://?realtime=0&seed={seed}&family=eighteenth&identity=2&light=string_lights&lux=150&cct=3000"
            "&projector=0&distance_mm=430&yaw=0&pitch=0&background=plain")


def test_the_string_lights_channels_colour_the_frame_in_turn_and_leak_into_the_ir():
    cam, tick, _, face = session_camera(_STRINGS, "eighteenth", "string_lights",
                                        lambda s: s.strings.mode == "sequential" and s.strings.lux > 8)
    s = cam._scene.strings
    offset, e = cam.cfg.t0_s + cam.cfg.color_offset_ms / 1000, cam._ae.exposure_s
    ts = np.arange(0.0, 3.0, 1 / 30)
    t_a = next(t for t in ts if s.levels(t + offset + e / 2) == (1.0, 0.0))
    t_b = next(t for t in ts if s.levels(t + offset + e / 2) == (0.0, 1.0))
    ma, mb = colour_face_mean(cam, t_a, face), colour_face_mean(cam, t_b, face)
    # The red and blue bulbs' channel: bluer and redder; the green and amber bulbs' channel: greener.
    assert ma[0] - mb[0] > 10 and mb[1] > ma[1] and ma[2] > mb[2]
    # Without an IR-pass filter (ir_leak on every URI) the two channels reach the IR frames, each by its weight.
    assert cam.cfg.ir_leak_on and len(tick.pulsed_ir) == 2 and tick.beacon_ir is None and tick.ambient is None
    seen = []
    for k in range(0, 60, 7):
        wa, wb = s.ir_weights(k / 30 + cam.cfg.t0_s, 0.004)
        want = tick.ir_signal + wa * tick.pulsed_ir[0] + wb * tick.pulsed_ir[1]
        got = cam._flickered(tick, k, 0.004)
        assert np.allclose(got, want, atol=1e-3)
        seen.append(float(got[face].mean()))
    assert max(seen) - min(seen) > 0.5


# --- The time-of-flight counter ----------------------------------------------------------------------------------
def _counters(n: int = 40) -> list:
    return [Scene(SimConfig.from_query({"family": "eighteenth", "light": "tof_counter", "seed": str(k),
                                        "distance_mm": "430"})).tof for k in range(n)]


def test_each_session_draws_its_own_counter_above_the_face_pulsing_near_the_frame_rate():
    counters = _counters()
    assert all(isinstance(c, holiday.TofCounter) for c in counters)
    assert len({c.pulses.phase_s for c in counters}) == len(counters)
    lo = irradiance_lux_eq(holiday.TOF_MW_SR[0], float(np.hypot(holiday.TOF_RISE_M[1], holiday.TOF_OFFSET_M[1])))
    hi = irradiance_lux_eq(holiday.TOF_MW_SR[1], float(np.hypot(holiday.TOF_RISE_M[0], holiday.TOF_OFFSET_M[0])))
    behind = 0
    for c in counters:
        x, y, z = np.array(c.flood.position) - np.array(c.flood.centre)
        assert holiday.TOF_RISE_M[0] <= -y <= holiday.TOF_RISE_M[1]
        assert holiday.TOF_OFFSET_M[0] - 1e-9 <= np.hypot(x, z) <= holiday.TOF_OFFSET_M[1] + 1e-9
        behind += z > 0
        assert lo <= c.flood.lux_eq <= hi
        p = c.pulses
        assert any(abs(1.0 / p.period_s - f) <= f * holiday.TOF_CLOCK for f in holiday.TOF_FPS)
        assert len(p.starts_s) in holiday.TOF_SUBFRAMES and p.peak_lux == 1.0
        assert all(holiday.TOF_PULSE_S[0] <= d <= holiday.TOF_PULSE_S[1] for d in p.length_s)
        assert p.starts_s[-1] + p.length_s[-1] < p.period_s                        # one burst a sensor frame
        for t0, e in ((0.0, 0.0005), (0.211, 0.0085), (3.3, 0.033)):
            assert c.ir_weights(t0, e)[0] == pytest.approx(_brute(p, t0, e), abs=2e-3)
    assert 0 < behind < len(counters)


_TOF = ("sim://?realtime=0&seed={seed}&family=eighteenth&identity=2&light=tof_counter&lux=100&cct=3500"
        "&projector=0&distance_mm=430&yaw=0&pitch=0&background=plain")


def test_the_counters_bursts_light_some_ir_frames_and_not_the_colour():
    cam, tick, _, face = session_camera(_TOF, "eighteenth", "tof_counter",
                                        lambda s: s.tof.flood.position[2] < 0.43 and s.tof.flood.lux_eq > 60)
    tof = cam._scene.tof
    assert len(tick.pulsed_ir) == 1 and float(tick.pulsed_ir[0][face].mean()) > 1.0
    weights = [tof.ir_weights(k / 30 + cam.cfg.t0_s, 0.005)[0] for k in range(300)]
    lit = [k for k, w in enumerate(weights) if w > 0.05]
    dark = [k for k, w in enumerate(weights) if w == 0.0]
    assert lit and dark                                     # uncorrelated with the projector's commands
    for k in (lit[0], dark[0]):
        assert np.allclose(cam._flickered(tick, k, 0.005), tick.ir_signal + weights[k] * tick.pulsed_ir[0],
                           atol=1e-3)
    assert float(cam._flickered(tick, lit[0], 0.005)[face].mean()) > float(tick.ir_signal[face].mean()) + 0.05
    # The colour camera's IR-cut filter: a colour frame in a burst is the one without the counter (within noise).
    with_counter = colour_face_mean(cam, lit[0] / 30, face)
    cam._scene.tof = None
    assert np.allclose(with_counter, colour_face_mean(cam, lit[0] / 30, face), atol=0.05)


# --- The older people ----------------------------------------------------------------------------------------
def test_a_share_of_the_eighteenths_people_are_older_in_range_and_nobody_elsewhere():
    people = [Identity.draw(i, "eighteenth") for i in range(400)]
    older = [p for p in people if p.age_years is not None]
    assert abs(len(older) / len(people) - AGE_SHARE) < 0.06
    for p in older:
        assert 60.0 <= p.age_years <= 85.0 and 0.6 <= p.age_photo <= 1.4
        assert p.fissure_mm == pytest.approx(PORTRAIT_FISSURE_MM - 0.5 - 1.5 * age_severity(p.age_years))
        assert 0.0 < p.lid_rest <= 0.2
    assert all(p.fissure_mm is None and p.lid_rest == 0.0 for p in people if p.age_years is None)
    assert all(Identity.draw(i, f).age_years is None for f in EARLIER + ("any",) for i in range(30))


def test_an_older_face_has_its_lines_folds_and_thinner_cheeks_in_depth():
    p = next(q for q in (Identity.draw(i, "eighteenth") for i in range(1, 300))
             if q.age_years is not None and q.age_years > 75 and q.age_photo > 1.0)
    young = dataclasses.replace(p, age_years=None, fissure_mm=None)
    gx, gy = head_grid()
    old_h, young_h = face_height(p, gx, gy), face_height(young, gx, gy)
    grooves = aged_relief(p, gx, gy)
    s = age_severity(p.age_years)
    assert grooves.min() >= 0.0
    # Deepest: the nasolabial folds and the cheeks' lost fullness, within their drawn depths (and the overlaps).
    assert 0.0005 * p.age_photo < float(grooves.max()) < 0.006 * 0.5 + (0.0005 + 0.0015 * s) + 0.0015 * 1.4 + 1e-4
    face = (young_h > 0) & (old_h > 0)
    diff = (young_h - old_h)[face]
    assert diff.min() >= -1e-6 and diff.max() > 0.001
    # Lines at the dots' scale: the forehead's height changes by 0.1-1 mm within 2 mm vertically.
    lm = head_layers(p).landmarks
    ex = np.abs(gx[0] - 0.0).argmin()
    rows = (gy[:, 0] > lm.face_top_y) & (gy[:, 0] < lm.eyes[0][1] - 0.03)
    column = grooves[rows, ex]
    assert column.max() > 0.0001 and column.max() - column.min() > 0.0001
    assert np.array_equal(aged_relief(p, gx, gy), grooves)                     # deterministic per person


# --- The earlier families, the seventeenth included, as main 53f11c2 drew, posed and blinked them --------------
# Computed by family_digest(f, _FIELDS + _LATER + the corneas', the caps' and the make-up's fields, skin_nir=True)
# with main 53f11c2's tree (git archive 53f11c2; session 29: /tmp/fam29-digests.py), equal with this tree's.
_CORNEA_CAP_MAKEUP = ("cornea_radius_mm", "cornea_diameter_mm", "cap", "cap_brim_mm", "cap_width_mm", "cap_tilt_deg",
                      "cap_root_mm", "makeup_cover", "makeup_shade", "makeup_nir", "makeup_sharpen", "lipstick")
_MAIN_DIGESTS = {"any": "49eb089115db39db", "train": "31aa76cd24b70872", "heldout": "300630aa605f58b6",
                 "field": "ab6f962f8ba5e7e7", "fresh": "b1488c7c7acb8845", "fifth": "0f2198216889c469",
                 "sixth": "0de17bc956935950", "seventh": "e7d159896f4ee85c", "eighth": "7b04756c47e4d628",
                 "ninth": "edca0173431b84c9", "tenth": "26f620817b670af1", "eleventh": "88a098b07c0d4eb0",
                 "twelfth": "87a752636a09d497", "thirteenth": "065f48234a48d414", "fourteenth": "5bed3ae5ebf63dcd",
                 "fifteenth": "58c6e255b458f868", "sixteenth": "9b61af2800c5a600", "seventeenth": "16392954819495dd"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS + _LATER + _CORNEA_CAP_MAKEUP, skin_nir=True) == _MAIN_DIGESTS[family]
