"""The nineteenth family: the Orbbec Gemini 215 profile (rendered as the Gemini 2, another unit), the customer's
own phone lighting the face from below (``entrance.PhoneScreen``), daylight through the vestibule's automatic
door opening and closing behind the customer (``entrance.AutoDoor``), its people's winter scarves
(``identity.WINTER_*``, ``head.winter_scarf_alpha``), and the earlier families (the eighteenth included) left
as they were.

Nothing here computes a verdict, a score or a quality decision on the nineteenth family: it was built as the
unseen test family of the thirtieth session and evaluated once, whole, by the coordinator (docs/liveness.md,
*The nineteenth family*); a development set since. Tests open its URIs for frames, light, pools and refusals
only (rendering checks)."""

import dataclasses

import numpy as np
import pytest

from drivers.errors import InvalidUri
from drivers.sim import entrance
from drivers.sim.config import SimConfig
from drivers.sim.families import LIGHT_CCT, LIGHT_LUX, POOLS
from drivers.sim.head import head_layers, winter_scarf_alpha
from drivers.sim.identity import SCARVES, WINTER_SHARE, Identity
from drivers.sim.profiles import get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from drivers.sim.subject import MISS
from tests.drivers.sim.test_eighteenth_family import _CORNEA_CAP_MAKEUP
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.drivers.sim.test_fourteenth_family import _LATER
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import (
    assert_another_unit_resolving_eyes,
    assert_live_queries_in_range,
    assert_own_pools,
)
from tests.helpers.sim import lit_and_bare, session_camera

EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
           "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth")
LIGHTS = ("phone_screen", "auto_door")


def test_gemini215_profile_is_the_gemini2_another_unit_with_its_projector_switched():
    g, base = get_profile("gemini215"), get_profile("gemini2")
    assert g.stereo_baseline_m == base.stereo_baseline_m and g.has_projector and not g.structured_light
    assert g.projector_power is None and g.projector == base.projector          # switched on and off
    assert g.stream_modes == base.stream_modes and g.ir_band == "nir" and g.visible_response is None
    assert g.depth_range_m[0] < 0.35 < 0.52 < g.depth_range_m[1]               # the envelope's faces
    with pytest.raises(InvalidUri, match="ir_leak"):                           # rendered with an IR-pass filter
        SimConfig.from_query({"camera": "gemini215", "ir_leak": "1"})
    assert_another_unit_resolving_eyes(g)


def test_nineteenth_family_draws_its_own_pools_with_the_cornea_and_no_visible_light_in_ir():
    assert_own_pools("nineteenth", "gemini215", LIGHTS)
    assert_live_queries_in_range("nineteenth", "gemini215")
    assert POOLS["nineteenth"].cornea and not POOLS["nineteenth"].ir_leak
    # Inside the capture spec's 2300-7500 K and the envelope's 15-7500 lux.
    assert LIGHT_LUX["phone_screen"] == (30.0, 300.0) and LIGHT_CCT["phone_screen"] == (3000, 4500)
    assert LIGHT_LUX["auto_door"] == (100.0, 500.0) and LIGHT_CCT["auto_door"] == (3000, 4000)
    assert LIGHT_NIR_SHARE["phone_screen"] == LIGHT_NIR_SHARE["auto_door"] == LIGHT_NIR_SHARE["led"]
    assert entrance.DAYLIGHT_NIR_SHARE == LIGHT_NIR_SHARE["daylight"]
    for e in EARLIER:
        s = Scene(SimConfig.from_query({"family": e, "seed": "1"}))
        assert s.phone is None and s.door is None
    assert not set(LIGHTS) & {light for f, p in POOLS.items() if f != "nineteenth" for light in p.lights}


# --- The phone ------------------------------------------------------------------------------------------------
def _phones(n: int = 60) -> list:
    return [Scene(SimConfig.from_query({"family": "nineteenth", "light": "phone_screen", "seed": str(k),
                                        "distance_mm": "430"})).phone for k in range(n)]


def test_each_session_draws_its_own_phone_below_the_chin_lowered_in_some():
    phones = _phones()
    assert all(isinstance(p, entrance.PhoneScreen) for p in phones)
    assert len({p.position for p in phones}) == len(phones)
    lowered = raised = dark = warm = 0
    for p in phones:
        x, y, z = p.position
        assert abs(x) <= entrance.PHONE_SIDE_M
        assert entrance.PHONE_BELOW_M[0] <= y - entrance.CHIN_BELOW_NOSE_M <= entrance.PHONE_BELOW_M[1]
        assert entrance.PHONE_FORWARD_M[0] <= 0.43 - z <= entrance.PHONE_FORWARD_M[1] + 1e-9
        lo = entrance.SCREEN_NITS[0] * entrance.SCREEN_AREA_M2[0]
        assert lo <= p.peak_lux_m2 <= entrance.SCREEN_NITS[1] * entrance.SCREEN_AREA_M2[1]
        dark += p.dark_mode < 1.0
        warm += p.bgr[2] / p.bgr[0] > 1.5
        levels = np.array([p.level(t) for t in np.arange(0.0, 15.0, 0.01)])
        top = p.dark_mode * max(1.0, p.auto[2]) * entrance.SCROLL_LEVEL[1]
        assert levels.min() >= 0.0 and levels.max() <= top + 1e-9 and levels[0] > 0.0
        # Continuous: the flicks, the auto-brightness and the lowering are ramps, not steps.
        assert np.abs(np.diff(levels)).max() <= 0.01 / min(entrance.FLICK_S[0], entrance.LOWER_S[0]) * top * 1.5
        if len(p.held) > 1:
            lowered += 1
            t_low = p.held[2][0]
            assert entrance.LOWER_AT_S[0] <= p.held[1][0] <= entrance.LOWER_AT_S[1]
            assert p.level(t_low + 0.01) == 0.0
            if len(p.held) > 3:
                raised += 1
                assert p.level(p.held[-1][0] + 0.01) > 0.0
            else:
                assert levels[-1] == 0.0
    # 60 % lowered, half of those raised again; 30 % dark mode; 30 % a warm night-time shift.
    assert 0 < raised < lowered < len(phones) and 0 < dark < len(phones) / 2 and 0 < warm < len(phones) / 2


_PHONE = ("sim://?realtime=0&seed={seed}&family=nineteenth&identity=2&light=phone_screen&lux=60&cct=3500"
          "&projector=0&distance_mm=430&yaw=0&pitch=0&background=plain")


def test_the_phone_lights_the_face_from_below_in_colour_and_not_in_ir():
    cam, tick, dmaps, face = session_camera(_PHONE, "nineteenth", "phone_screen",
                                            lambda s: s.phone.dark_mode == 1.0 and len(s.phone.held) == 3)
    phone = cam._scene.phone
    e = phone.irradiance(cam._depth_view, dmaps.z, cam.cfg.t0_s)
    rows = np.nonzero(face)[0]
    upper = face & (np.arange(face.shape[0])[:, None] < np.percentile(rows, 30))
    lower = face & (np.arange(face.shape[0])[:, None] > np.percentile(rows, 70))
    assert e[lower].mean() > 2.0 * e[upper].mean() > 0.0                          # from below
    assert 5.0 < e[face].mean() < 400.0 and np.all(e[~np.isfinite(dmaps.z)] == 0.0)
    # Brighter while it is held up, as without it once it is lowered (the light gone), the exposure held.
    t_on, t_off = 0.0, phone.held[2][0] + 0.5
    [(_, on), (_, off)], [(ir_bare, bare_on), (_, bare_off)] = lit_and_bare(cam, face, "phone", (t_on, t_off),
                                                                            (t_on, t_off))
    assert np.all(on > bare_on + 1.0) and np.allclose(off, bare_off, atol=0.05)
    # A screen emits nothing at 850 nm: the IR is the room's alone (t_on is the tick's time, 0).
    assert t_on == 0.0 and np.array_equal(ir_bare, tick.ir_signal)


# --- The door -------------------------------------------------------------------------------------------------
def _doors(n: int = 40) -> list:
    return [Scene(SimConfig.from_query({"family": "nineteenth", "light": "auto_door", "seed": str(k)})).door
            for k in range(n)]


def test_each_session_draws_its_own_door_behind_the_customer_opening_and_closing_in_cycles():
    doors = _doors()
    assert all(isinstance(d, entrance.AutoDoor) for d in doors)
    assert len({d.phase_s for d in doors}) == len(doors)
    sides = set()
    for d in doors:
        x, y, z = d.direction
        assert z > 0.0 and y <= 0.0 and abs(np.linalg.norm(d.direction) - 1.0) < 1e-9   # behind, level or above
        sides.add(np.sign(x))
        assert entrance.DOOR_LUX[0] <= d.lux <= entrance.DOOR_LUX[1] and entrance.DOOR_CCT[0] <= d.cct
        up, hold, down = d.ramps
        assert entrance.OPEN_S[0] <= up <= entrance.OPEN_S[1] and entrance.HOLD_S[0] <= hold <= entrance.HOLD_S[1]
        assert entrance.CLOSE_S[0] <= down <= entrance.CLOSE_S[1] and d.cycle_s > up + hold + down
        ts = np.arange(0.0, 3 * d.cycle_s, 0.01)
        o = np.array([d.opening(t) for t in ts])
        assert o.min() == 0.0 and o.max() == pytest.approx(1.0, abs=0.02)
        assert np.abs(np.diff(o)).max() <= 0.01 / min(up, down) + 1e-6                 # ramps, not steps
        # Fully open for its hold time once a cycle; closed for the rest of it.
        assert np.mean(o > 0.999) == pytest.approx(hold / d.cycle_s, abs=0.02)
        assert np.mean(o == 0.0) == pytest.approx(1.0 - (up + hold + down) / d.cycle_s, abs=0.02)
    assert sides == {-1.0, 1.0}


_DOOR = ("sim://?realtime=0&seed={seed}&family=nineteenth&identity=2&light=auto_door&lux=150&cct=3500"
         "&projector=0&distance_mm=430&yaw=0&pitch=0&background=plain")


def test_the_open_door_adds_daylight_and_its_850_nm_and_nothing_while_closed():
    cam, _, _, face = session_camera(_DOOR, "nineteenth", "auto_door", lambda s: s.door.lux > 500)
    door = cam._scene.door
    ts = np.arange(0.0, door.cycle_s, 0.05)
    t_open = float(next(t for t in ts if door.opening(t + cam.cfg.t0_s) == 1.0))
    t_shut = float(next(t for t in ts if door.opening(t + cam.cfg.t0_s) == 0.0))
    [(ir_open, c_open), (ir_shut, c_shut)], [(ir_bare, c_bare)] = lit_and_bare(cam, face, "door", (t_open, t_shut),
                                                                               (t_shut,))
    assert np.array_equal(ir_shut, ir_bare) and np.allclose(c_shut, c_bare, atol=0.05)
    # Open: the face's 850 nm up by daylight's share, and its colour brighter and bluer (5000-7500 K over 3500 K).
    assert float(ir_open[face].mean()) > float(ir_bare[face].mean()) + 0.5
    assert np.all(c_open > c_bare + 1.0) and c_open[0] / c_open[2] > c_bare[0] / c_bare[2]


# --- The winter scarves ---------------------------------------------------------------------------------------
def test_a_share_of_the_nineteenths_people_wear_a_winter_scarf_and_nobody_elsewhere():
    people = [Identity.draw(i, "nineteenth") for i in range(400)]
    wearing = [p for p in people if p.winter_scarf is not None]
    assert abs(len(wearing) / len(people) - WINTER_SHARE) < 0.06
    for p in wearing:
        assert 0 <= p.winter_scarf < len(SCARVES) and 0.0 <= p.winter_reach <= 1.0
        assert 10.0 <= p.winter_standoff_mm <= 25.0
    assert all(p.winter_reach == 0.0 and p.winter_standoff_mm == 0.0 for p in people if p.winter_scarf is None)
    assert all(Identity.draw(i, f).winter_scarf is None for f in EARLIER + ("any",) for i in range(30))


def test_a_winter_scarf_covers_the_lower_face_from_below_standing_off_it():
    p = next(q for q in (Identity.draw(i, "nineteenth") for i in range(1, 300))
             if q.winter_scarf is not None and q.winter_reach > 0.6 and q.glasses == "none")
    bare = dataclasses.replace(p, winter_scarf=None, winter_reach=0.0, winter_standoff_mm=0.0)
    worn, plain = head_layers(p), head_layers(bare)
    lm = worn.landmarks
    gx, gy = worn.gx, worn.gy
    alpha = winter_scarf_alpha(p, gx, gy, lm)
    face = plain.height > MISS / 2
    # Above the mouth (eyes, nose) the face is as without it; below the chin it is the scarf's wool.
    above = face & (gy < lm.mouth[1] - 0.004)
    assert np.array_equal(worn.height[above], plain.height[above]) and np.array_equal(worn.nir[above],
                                                                                     plain.nir[above])
    chin = face & (np.abs(gx) < 0.02) & (gy > lm.chin_y - 0.005) & (gy < lm.chin_y + 0.02)
    assert alpha[chin].min() > 0.99
    _, bgr, fabric_nir = SCARVES[p.winter_scarf]
    assert np.allclose(np.median(worn.albedo[chin], axis=0), bgr, rtol=0.25, atol=0.01)
    # The wool's 850 nm reflectance, x 0.8-1.0 by its folds (as the headscarves').
    wool = worn.nir[chin]
    assert 0.79 * fabric_nir <= float(np.percentile(wool, 5)) and float(np.percentile(wool, 95)) <= 1.01 * fabric_nir
    # Its bulk stands off the skin in depth past its roll: by its standoff, within the folds' 3 mm.
    below = face & (gy > lm.chin_y + 0.025) & (np.abs(gx) < 0.03)
    rise = (worn.height - plain.height)[below]
    assert abs(float(np.median(rise)) - p.winter_standoff_mm / 1000.0) < 0.0035
    # Its top edge: between under the chin and the lower lip, as drawn.
    column = alpha[:, np.abs(gx[0]).argmin()]
    edge_y = float(gy[np.argmax(column > 0.5), 0])
    assert lm.mouth[1] < edge_y < lm.chin_y + 0.01


# --- The earlier families, the eighteenth included, as main 2d3855f drew, posed and blinked them ----------------
# Computed by family_digest(f, _FIELDS + _LATER + the corneas', the caps', the make-up's and the ages' fields,
# skin_nir=True) with main 2d3855f's tree (git archive 2d3855f; session 30: /tmp/fam30-digests.py), equal with
# this tree's.
_AGE = ("age_years", "age_photo")
_MAIN_DIGESTS = {"any": "e1a1d4c118c41eee", "train": "2f87c0d4bfb43936", "heldout": "4d9b73c7cefbd150",
                 "field": "0ade88b244d637bf", "fresh": "b22099cff50b6468", "fifth": "7ed49d3c4c511a32",
                 "sixth": "b714a0cc13b90c48", "seventh": "e9ce315967dfb696", "eighth": "5e4d4566f6f16f00",
                 "ninth": "a3d90f1d9f7b26b7", "tenth": "a39031cca2cc42f6", "eleventh": "eda89296cb257b4d",
                 "twelfth": "ec48ee2a99bb38dd", "thirteenth": "66380f4d2979ed4b", "fourteenth": "7e861c96e3f62df1",
                 "fifteenth": "35c643691aed0fa2", "sixteenth": "2837ab490fbe73e5", "seventeenth": "81661f97eee8238a",
                 "eighteenth": "5e4175973fdc7fb2"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS + _LATER + _CORNEA_CAP_MAKEUP + _AGE, skin_nir=True) == _MAIN_DIGESTS[family]
