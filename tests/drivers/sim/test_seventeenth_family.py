"""The seventeenth family: the Intel RealSense D436 profile (the D435 rendered with an IR-pass filter, another
unit), a vestibule's dim-to-warm downlights fading once on an occupancy sensor (``vestibule.Fade``), an
emergency vehicle's red and blue light bar at a night street (``vestibule.LightBar``), its people's make-up
(``identity.MAKEUP_*``, ``head._makeup_layer``), and the earlier families (the sixteenth included) left as
they were.

Nothing here computes a verdict, a score or a quality decision on the seventeenth family: it was built as the
unseen test family of the twenty-eighth session and evaluated once, whole, on main 7b843aa's judge
(docs/liveness.md, *The seventeenth family*); a development set since. Tests open its URIs for frames, light,
pools and refusals only."""

import dataclasses

import numpy as np
import pytest

from drivers.errors import InvalidUri
from drivers.sim import vestibule
from drivers.sim.config import SimConfig
from drivers.sim.families import LIGHT_CCT, LIGHT_LUX, POOLS, presentation_query
from drivers.sim.head import head_layers, lips_alpha, makeup_alpha
from drivers.sim.identity import LIPSTICKS, MAKEUP_SHARE, Identity
from drivers.sim.profiles import get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from drivers.sim.sensor import illuminant_bgr
from drivers.sim.subject import RESIN, SKIN
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.drivers.sim.test_fourteenth_family import _LATER
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import (
    assert_another_unit_resolving_eyes,
    assert_live_queries_in_range,
    assert_own_pools,
)
from tests.helpers.sim import colour_face_mean, session_camera

EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
           "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth")
LIGHTS = ("occupancy_fade", "lightbar")


def test_d436_profile_is_the_d435_another_unit_rendered_with_an_ir_pass_filter():
    g, d435 = get_profile("d436"), get_profile("d435")
    assert g.stereo_baseline_m == d435.stereo_baseline_m == 0.050 and g.has_projector and not g.structured_light
    assert g.projector_power == d435.projector_power and g.projector_power is not None   # the agent sets mW
    assert g.stream_modes == d435.stream_modes and g.color_shutter == d435.color_shutter == "rolling"
    assert g.ir_band == "nir" and g.visible_response is None
    with pytest.raises(InvalidUri):
        SimConfig.from_query({"camera": "d436", "ir_leak": "1"})
    assert_another_unit_resolving_eyes(g)


def test_seventeenth_family_draws_its_own_pools_with_the_cornea_and_no_visible_light_in_ir():
    assert_own_pools("seventeenth", "d436", LIGHTS)
    assert_live_queries_in_range("seventeenth", "d436")
    assert POOLS["seventeenth"].cornea and not POOLS["seventeenth"].ir_leak
    assert {presentation_query("seventeenth", "live", i)["light"] for i in range(40)} == set(LIGHTS)
    for i in range(10):
        cfg = SimConfig.from_query(presentation_query("seventeenth", "live", i))
        assert cfg.cornea_on and not cfg.ir_leak_on
    # Inside the capture spec's 2300-7500 K and the envelope's 15-7500 lux, at standby too.
    assert LIGHT_LUX["occupancy_fade"] == (150.0, 600.0) and LIGHT_CCT["occupancy_fade"] == (2900, 3100)
    assert LIGHT_LUX["lightbar"] == (15.0, 80.0) and LIGHT_CCT["lightbar"] == (3500, 5000)
    assert LIGHT_LUX["occupancy_fade"][0] * vestibule.STANDBY[0] >= 15.0
    assert LIGHT_NIR_SHARE["occupancy_fade"] == LIGHT_NIR_SHARE["led"]
    assert LIGHT_NIR_SHARE["lightbar"] == LIGHT_NIR_SHARE["beacon"]


# --- The occupancy fade --------------------------------------------------------------------------------------
def _fades(n: int = 40) -> list:
    return [Scene(SimConfig.from_query({"family": "seventeenth", "light": "occupancy_fade", "seed": str(k)})).flicker
            for k in range(n)]


def test_each_session_draws_its_own_fade_up_or_down_in_range():
    fades = _fades()
    assert all(isinstance(f, vestibule.Fade) for f in fades) and {f.direction for f in fades} == {"up", "down"}
    assert len({f.start_s for f in fades}) == len(fades)
    for f in fades:
        assert vestibule.FADE_START_S[0] <= f.start_s <= vestibule.FADE_START_S[1]
        assert f.length_s in vestibule.FADE_TIMES_S and vestibule.STANDBY[0] <= f.standby <= vestibule.STANDBY[1]
        # Monotonic, once: the start level before, the end level after.
        levels = [f.level(t) for t in np.arange(0.0, 12.0, 0.05)]
        assert levels[0] == f.start_level and levels[-1] == f.end_level
        assert np.all(np.diff(levels) >= -1e-12) if f.direction == "up" else np.all(np.diff(levels) <= 1e-12)
        # Dim-to-warm: the URI's CCT at full, warmer at standby, inside the capture spec.
        assert f.cct(0.0 if f.direction == "down" else 20.0, 3000.0) == pytest.approx(3000.0)
        assert 2300.0 <= f.cct(20.0 if f.direction == "down" else 0.0, 2900.0) < 2900.0
    f = fades[0]
    assert vestibule.Fade("down", 0.0, 1.0, 0.1).cct(5.0, 3000.0) == pytest.approx(vestibule.WARM_AT_10PCT_K)
    assert {Scene(SimConfig.from_query({"family": e, "seed": "1"})).flicker.__class__ for e in EARLIER} \
        .isdisjoint({vestibule.Fade})
    assert {Scene(SimConfig.from_query({"family": e, "seed": "1"})).lightbar for e in EARLIER} == {None}


def test_an_exposure_integrates_the_fades_ramp():
    for f in _fades(6):
        for t0 in (0.0, f.start_s - 0.01, f.start_s + 0.3 * f.length_s, f.start_s + f.length_s - 0.004, 9.0):
            for e in (0.001, 0.005, 0.033):
                ts = np.linspace(t0, t0 + e, 4001)
                assert f.factor(t0, e) == pytest.approx(np.mean([f.level(x) for x in ts]), abs=1e-5)
        assert f.factor(f.start_s + 0.5 * f.length_s, 0.0) == pytest.approx(0.5 * (f.start_level + f.end_level))


_FADE = ("sim://?realtime=0&seed={seed}&family=seventeenth&identity=2&light=occupancy_fade&lux=400&cct=3000"
         "&projector=0&distance_mm=430&yaw=0&pitch=0&background=plain")


@pytest.mark.parametrize("direction", vestibule.FADE_DIRECTIONS)
def test_the_fade_changes_the_colour_frames_level_and_warmth_and_the_ir_ambient(direction):
    cam, tick, dmaps, face = session_camera(_FADE, "seventeenth", "occupancy_fade",
                                            lambda s: s.flicker.direction == direction)
    f = cam._scene.flicker
    assert isinstance(f, vestibule.Fade)
    assert tick.ambient is not None
    for k in range(0, 300, 11):
        want = tick.ir_signal + (f.factor(k / 30 + cam.cfg.t0_s, 0.005) - 1) * tick.ambient
        assert np.allclose(cam._flickered(tick, k, 0.005), want, atol=1e-4)
    # Colour: a frame at standby against one at full, the same scene and exposure: the face's light in
    # proportion to the level, warmer (more red against blue) at standby.
    offset = cam.cfg.t0_s + cam.cfg.color_offset_ms / 1000
    before, after = f.start_s - offset - 0.2, f.start_s + f.length_s - offset + 0.2
    full, standby = (after, before) if direction == "up" else (before, after)
    ma, mb = colour_face_mean(cam, full, face), colour_face_mean(cam, standby, face)
    assert mb[1] < ma[1] * (0.5 + 0.5 * f.standby)             # dimmer (the colour is gamma-encoded)
    assert mb[2] / mb[0] > 1.05 * ma[2] / ma[0]                  # warmer
    tint = f.tint(standby + offset, cam._ae.exposure_s, 3000.0)
    assert tint[2] == pytest.approx(1.0, abs=0.3) and tint[0] < 0.9 and tint[1] == pytest.approx(
        (illuminant_bgr(f.cct(standby + offset, 3000.0)) / illuminant_bgr(3000.0))[1])


# --- The light bar -------------------------------------------------------------------------------------------
def _bars(n: int = 40) -> list:
    return [Scene(SimConfig.from_query({"family": "seventeenth", "light": "lightbar", "seed": str(k)})).lightbar
            for k in range(n)]


def test_each_session_draws_its_own_light_bar_alternating_red_and_blue():
    bars = _bars()
    assert all(isinstance(b, vestibule.LightBar) for b in bars)
    assert len({b.red.phase_s for b in bars}) == len(bars)
    for b in bars:
        r, bl = b.red, b.blue
        assert vestibule.BAR_RED_PEAK_LUX[0] <= r.peak_lux <= vestibule.BAR_RED_PEAK_LUX[1]
        assert bl.peak_lux == pytest.approx(r.peak_lux * 0.091 / 0.321) and r.nir_share == bl.nir_share == 0.0
        assert r.period_s == bl.period_s and vestibule.BAR_PERIOD_S[0] <= r.period_s <= vestibule.BAR_PERIOD_S[1]
        assert vestibule.BAR_FLASHES[0] <= len(r.starts_s) <= vestibule.BAR_FLASHES[1]
        assert all(vestibule.BAR_FLASH_S[0] <= d <= vestibule.BAR_FLASH_S[1] for d in r.length_s)
        # Half a cycle apart, and never both lit: the colours alternate.
        assert (r.phase_s - bl.phase_s) % r.period_s == pytest.approx(r.period_s / 2)
        ts = np.arange(0.0, 3 * r.period_s, 0.001)
        on_r = np.array([r.factor(t, 0.0) for t in ts])
        on_b = np.array([bl.factor(t, 0.0) for t in ts])
        assert on_r.any() and on_b.any() and not (on_r * on_b).any()
        # An exposure collects each colour's share of it (the beacon's closed form).
        for t0 in (0.0, 0.377):
            e = 0.033
            xs = np.linspace(t0, t0 + e, 4001)
            want = (r.peak_lux * np.mean([r.factor(x, 0.0) for x in xs]) * vestibule.RED_BGR
                    + bl.peak_lux * np.mean([bl.factor(x, 0.0) for x in xs]) * vestibule.BLUE_BGR)
            assert np.allclose(b.bgr(t0, e), want, atol=2e-3 * r.peak_lux * 5)
    # The colours: luminance 1 per lux; red has no blue or green, blue no red.
    for bgr in (vestibule.RED_BGR, vestibule.BLUE_BGR):
        assert 0.0722 * bgr[0] + 0.7152 * bgr[1] + 0.2126 * bgr[2] == pytest.approx(1.0, rel=1e-5)
    assert vestibule.RED_BGR[0] == vestibule.RED_BGR[1] == 0.0 and vestibule.BLUE_BGR[2] == 0.0
    assert Scene(SimConfig.from_query({"family": "seventeenth", "light": "occupancy_fade", "seed": "1"})).lightbar \
        is None


_BAR = ("sim://?realtime=0&seed={seed}&family=seventeenth&identity=2&light=lightbar&lux=40&cct=4000&projector=0"
        "&distance_mm=430&yaw=0&pitch=0&background=plain")


def test_the_light_bars_flashes_redden_then_blue_the_colour_frame_and_leave_the_ir_alone():
    cam, tick, _, face = session_camera(_BAR, "seventeenth", "lightbar", lambda s: s.lightbar.red.peak_lux > 20)
    bar = cam._scene.lightbar
    assert tick.beacon_ir is None and tick.ambient is None              # no 850 nm, an IR-pass filter
    assert np.array_equal(cam._flickered(tick, 5, 0.005), tick.ir_signal)
    offset, e = cam.cfg.t0_s + cam.cfg.color_offset_ms / 1000, cam._ae.exposure_s
    ts = np.arange(0.0, 4.0, 1 / 30)
    red = [bar.red.factor(x + offset, e) for x in ts]
    blue = [bar.blue.factor(x + offset, e) for x in ts]
    t_red, t_blue = ts[int(np.argmax(red))], ts[int(np.argmax(blue))]
    t_off = next(x for x, a, b in zip(ts, red, blue, strict=True) if a == 0.0 and b == 0.0)
    assert max(red) > 0.2 and max(blue) > 0.2
    off, r, b = (colour_face_mean(cam, t, face) for t in (t_off, t_red, t_blue))
    assert r[2] - off[2] > 5 and abs(r[0] - off[0]) < 1 and abs(r[1] - off[1]) < 1        # red only
    assert b[0] - off[0] > 5 and b[0] - off[0] > 3 * abs(b[2] - off[2])                    # blue, no red


# --- The make-up ---------------------------------------------------------------------------------------------
def test_a_share_of_the_seventeenths_people_wear_make_up_in_range_and_nobody_elsewhere():
    people = [Identity.draw(i, "seventeenth") for i in range(400)]
    made = [p for p in people if p.makeup_cover > 0]
    assert abs(len(made) / len(people) - MAKEUP_SHARE) < 0.06
    assert 0.3 < sum(p.lipstick is not None for p in made) / len(made) < 0.7
    assert all(p.lipstick is None and p.makeup_sharpen == 0.0 for p in people if p.makeup_cover == 0.0)
    for p in made:
        assert 0.3 <= p.makeup_cover <= 0.9 and all(0.85 <= s <= 1.15 for s in p.makeup_shade)
        assert 0.8 <= p.makeup_nir <= 1.3 and 0.2 <= p.makeup_sharpen <= 0.5
        assert p.lipstick is None or 0 <= p.lipstick < len(LIPSTICKS)
    assert all(Identity.draw(i, f).makeup_cover == 0.0 for f in EARLIER + ("any",) for i in range(30))


def test_foundation_covers_the_cheeks_not_the_eyes_and_sharpens_the_dots_in_proportion():
    p = next(q for q in (Identity.draw(i, "seventeenth") for i in range(1, 200))
             if q.makeup_cover > 0.6 and q.lipstick is not None and q.glasses == "none" and not q.fringe)
    bare = dataclasses.replace(p, makeup_cover=0.0, lipstick=None)
    made, plain = head_layers(p), head_layers(bare)
    lm = made.landmarks
    alpha = makeup_alpha(p, made.gx, made.gy, lm)
    assert float(alpha.max()) == pytest.approx(p.makeup_cover, rel=0.02)
    # The eyes' centres and the lips are spared; the cheeks (below and beside the eyes) covered.
    for x, y in lm.eyes:
        i, j = np.abs(made.gy[:, 0] - y).argmin(), np.abs(made.gx[0] - x).argmin()
        assert alpha[i, j] < 0.01
        ci = np.abs(made.gy[:, 0] - (y + 0.025)).argmin()
        assert alpha[ci, j] > 0.9 * p.makeup_cover
        cheek = (slice(ci - 2, ci + 3), slice(j - 2, j + 3))
        # The film's colour, 850 nm and the dots' blur where it covers (no hair there).
        film = np.array(p.skin_bgr) * np.array(p.makeup_shade)
        a = float(alpha[ci, j])
        got = made.albedo[cheek].mean(axis=(0, 1))
        want = plain.albedo[cheek].mean(axis=(0, 1)) * (1 - a) + film * a
        assert np.allclose(got, want, rtol=0.03, atol=0.005)
        blur = SKIN.dot_blur_px - a * p.makeup_sharpen * (SKIN.dot_blur_px - RESIN.dot_blur_px)
        assert float(made.dot_blur[ci, j]) == pytest.approx(blur, abs=1e-4)
        assert float(made.dot_blur[ci, j]) < float(plain.dot_blur[ci, j]) == pytest.approx(SKIN.dot_blur_px)
    # The height field (what depth sees) is the bare face's: make-up is colour, 850 nm and the dots' blur.
    assert np.array_equal(made.height, plain.height)
    # Lipstick: the lips take its colour.
    lips = lips_alpha(p, made.gx, made.gy, lm) > 0.95
    _, bgr = LIPSTICKS[p.lipstick]
    assert np.allclose(made.albedo[lips].mean(axis=0), 0.9 * np.array(bgr) + 0.1 * plain.albedo[lips].mean(axis=0),
                       atol=0.02)


# --- The earlier families, the sixteenth included, as main a1e6124 drew, posed and blinked them ----------
# Computed by family_digest(f, _FIELDS + _LATER + the corneas' + the caps', skin_nir=True) with main a1e6124's
# tree (git archive a1e6124; session 28: /tmp/fam28-digests.py), equal with this tree's.
_CORNEA_CAP = ("cornea_radius_mm", "cornea_diameter_mm", "cap", "cap_brim_mm", "cap_width_mm", "cap_tilt_deg",
               "cap_root_mm")
_MAIN_DIGESTS = {"any": "4b779038e3a90b03", "train": "f7467146f1691b08", "heldout": "b20e3e0bcd0c5849",
                 "field": "324d01026f668f85", "fresh": "82ca4eed9dedc162", "fifth": "2f1df4bdbeb2b533",
                 "sixth": "46b9660c158e8f5c", "seventh": "926162584df760e5", "eighth": "e43050cc7dc56087",
                 "ninth": "f637f7942cc9f29f", "tenth": "471d74a759838256", "eleventh": "1b9153bca4a17313",
                 "twelfth": "068faedaa3e12daa", "thirteenth": "e1b3e48726ed7a09", "fourteenth": "afc93adf39c6104a",
                 "fifteenth": "ca4333eee9681fd3", "sixteenth": "4cf459d22fe8f2a7"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS + _LATER + _CORNEA_CAP, skin_nir=True) == _MAIN_DIGESTS[family]
