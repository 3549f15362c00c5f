"""The sixteenth family: the Orbbec Gemini 330 profile (the 335's stereo without its IMU, no IR-pass filter:
visible light in IR on every URI), fluorescent troffers one of whose tubes is failing and blinks on and off
at random (``beacon.FailingTube``), an amber warning beacon's flashes at a night street (``beacon.Beacon``),
its people's peaked caps (``identity.CAP_*``, ``head._cap_layer``), and the earlier families (the fifteenth
included) left as they were.

Nothing here computes a verdict, a score or a quality decision on the sixteenth family: it was built as the
unseen test family of the twenty-seventh session and evaluated once, whole, on main 46c04a4's judge
(docs/liveness.md, *The sixteenth family*); a development set since. Tests open its URIs for frames, light,
pools and refusals only."""

import dataclasses

import numpy as np
import pytest

from drivers.sim import beacon
from drivers.sim.config import SimConfig
from drivers.sim.families import LIGHT_CCT, LIGHT_LUX
from drivers.sim.head import LID_ABOVE_EYE_M, cap_geometry, head_layers, landmarks
from drivers.sim.identity import CAP_SHARE, SCARVES, Identity
from drivers.sim.modes import StreamMode, depth_intrinsics
from drivers.sim.night import MAINS_HZ
from drivers.sim.profiles import get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from drivers.sim.subject import MISS
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.drivers.sim.test_fourteenth_family import _LATER
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import assert_another_unit_resolving_eyes, assert_leak_and_cornea_on_every_uri
from tests.helpers.sim import colour_face_mean, session_camera, sim_camera

EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
           "twelfth", "thirteenth", "fourteenth", "fifteenth")


def test_gemini330_profile_is_the_335s_stereo_another_unit():
    g, g335 = get_profile("gemini330"), get_profile("gemini335")
    native = depth_intrinsics(g, StreamMode(1280, 800, 30))
    assert np.degrees(2 * np.arctan(640 / native.fx)) == pytest.approx(90.0, abs=3.0)
    assert g.stereo_baseline_m == g335.stereo_baseline_m == 0.050 and g.has_projector and not g.structured_light
    assert g.projector_power is None and g.ir_band == "nir" and g.visible_response == (1.0, 1.0, 1.0)
    assert g.stream_modes == g335.stream_modes and g.color_shutter == g335.color_shutter
    # Only the name and this unit's calibration differ from the 335 (dataclasses.replace).
    assert_another_unit_resolving_eyes(g)


def test_sixteenth_family_draws_its_own_pools_with_visible_light_in_ir_and_the_cornea():
    assert_leak_and_cornea_on_every_uri("sixteenth", "gemini330", ("failing_tube", "beacon"))
    # Inside the capture spec's 2300-7500 K and the envelope's 15-7500 lux.
    assert LIGHT_LUX["beacon"] == (15.0, 80.0) and LIGHT_CCT["beacon"] == (3000, 4500)
    assert LIGHT_LUX["failing_tube"] == (100.0, 800.0) and LIGHT_CCT["failing_tube"] == (3000, 4000)
    assert LIGHT_NIR_SHARE["failing_tube"] == LIGHT_NIR_SHARE["fluorescent"]
    assert LIGHT_NIR_SHARE["beacon"] == pytest.approx(LIGHT_NIR_SHARE["street_led"], abs=5e-4)


# --- The failing tube ----------------------------------------------------------------------------------------
def _tubes(n: int = 40) -> list:
    return [Scene(SimConfig.from_query({"family": "sixteenth", "light": "failing_tube", "seed": str(k)})).flicker
            for k in range(n)]


def test_each_session_draws_its_own_failing_tube_with_random_spells_in_range():
    tubes = _tubes()
    assert all(isinstance(t, beacon.FailingTube) for t in tubes)
    assert len({float(t.edges[1]) for t in tubes}) == len(tubes)
    for t in tubes:
        assert beacon.TUBE_SHARE[0] <= t.share <= beacon.TUBE_SHARE[1]
        assert beacon.TUBE_RIPPLE[0] <= t.ripple.depth <= beacon.TUBE_RIPPLE[1]
        assert round(t.ripple.hz / 2, -1) in MAINS_HZ
        # [edges[2i], edges[2i + 1]) lit: the first and the last lit spells may be cut by 0 and the horizon.
        lit, dark = np.diff(t.edges)[0::2][1:-1], np.diff(t.edges)[1::2]
        assert lit.min() >= beacon.TUBE_ON_S[0] - 1e-9 and lit.max() <= beacon.TUBE_ON_S[1] + 1e-9
        assert dark.min() >= beacon.TUBE_OFF_S[0] - 1e-9 and dark.max() <= beacon.TUBE_OFF_S[1] + 1e-9
        assert t.edges.size % 2 == 0 and t.edges[-1] <= beacon.TUBE_HORIZON_S
    # No period: the spells' lengths spread over their ranges (a periodic light has one length).
    allspells = np.concatenate([np.diff(t.edges)[1:-1] for t in tubes])
    assert allspells.std() / allspells.mean() > 0.5
    # Lit about 0.6 of the time on average over the drawn ranges (log-uniform means 0.95 s and 0.85 s).
    lit_share = np.mean([np.diff(t.edges)[0::2].sum() / beacon.TUBE_HORIZON_S for t in tubes])
    assert 0.4 < lit_share < 0.7
    assert {Scene(SimConfig.from_query({"family": f, "seed": "1"})).flicker.__class__ for f in EARLIER} \
        .isdisjoint({beacon.FailingTube})


def test_an_exposure_integrates_the_tubes_spells_and_the_ballasts_ripple():
    t = _tubes(3)[2]
    for t0 in (0.0, float(t.edges[3]) - 0.004, 13.37, beacon.TUBE_HORIZON_S - 0.01):
        for e in (0.001, 0.005, 0.033):
            ts = np.linspace(t0, t0 + e, 8001)
            want = float(np.mean([t.factor(x, 0.0) for x in ts]))
            assert t.factor(t0, e) == pytest.approx(want, abs=2e-3)
    # Instantaneous light: the room's ripple, with the tube's share gone while it is dark.
    for x in np.linspace(0.0, 30.0, 301):
        room = t.ripple.factor(x, 0.0)
        assert t.factor(x, 0.0) == pytest.approx(room * (1.0 if t.lit(x) else 1.0 - t.share))
    # A dark spell's exposure: the rest of the room's light alone.
    i = 1 if t.edges[0] == 0.0 else 3
    mid = 0.5 * (t.edges[i] + t.edges[i + 1])
    assert not t.lit(mid)
    assert t.factor(mid, 0.01) == pytest.approx((1 - t.share) * t.ripple.factor(mid, 0.01), rel=1e-6)


_TUBE = ("sim://?realtime=0&seed=1&family=sixteenth&identity=2&light=failing_tube&lux=400&cct=3500&projector=0"
         "&distance_mm=430&yaw=0&pitch=0&background=plain")


def test_the_failing_tube_steps_the_ir_ambient_and_the_colour_frames_light():
    cam = sim_camera(_TUBE)
    cam.start()
    cam.stop()
    tube = cam._scene.flicker
    assert isinstance(tube, beacon.FailingTube)
    tick, dmaps = cam._render_depth(0.0, False, cam.POWER_RANGE.default)
    assert tick.ambient is not None and tick.beacon_ir is None
    for k in range(0, 300, 7):
        want = tick.ir_signal + (tube.factor(k / 30 + cam.cfg.t0_s, 0.005) - 1) * tick.ambient
        assert np.allclose(cam._flickered(tick, k, 0.005), want, atol=1e-4)
    # Colour: the frame's light is the room's lux times the tube's factor over the exposure.
    offset, e = cam.cfg.t0_s + cam.cfg.color_offset_ms / 1000, cam._ae.exposure_s
    lit = [x for x in np.arange(0.0, 20.0, 1 / 30) if tube.factor(x + offset, e) > 0.95]
    dark = [x for x in np.arange(0.0, 20.0, 1 / 30) if tube.factor(x + offset, e) < 0.9 - tube.share / 2]
    assert lit and dark
    a = cam._render_color(lit[0], (0.0, 0.0, 0.0), update_ae=False).color.astype(np.float64)
    b = cam._render_color(dark[0], (0.0, 0.0, 0.0), update_ae=False).color.astype(np.float64)
    assert b.mean() < 0.95 * a.mean()


# --- The beacon ----------------------------------------------------------------------------------------------
def _beacons(n: int = 60) -> list:
    return [Scene(SimConfig.from_query({"family": "sixteenth", "light": "beacon", "seed": str(k)})).beacon
            for k in range(n)]


def test_each_session_draws_its_own_beacon_of_either_kind_in_range():
    bs = _beacons()
    assert all(isinstance(b, beacon.Beacon) for b in bs) and {b.kind for b in bs} == set(beacon.BEACON_KINDS)
    for b in bs:
        assert beacon.BEACON_PEAK_LUX[0] <= b.peak_lux <= beacon.BEACON_PEAK_LUX[1]
        if b.kind == "rotating_halogen":
            assert beacon.ROTATING_HZ[0] <= 1 / b.period_s <= beacon.ROTATING_HZ[1] and len(b.starts_s) == 1
            width_deg = b.length_s[0] / b.period_s * 360
            assert beacon.ROTATING_BEAM_DEG[0] <= width_deg <= beacon.ROTATING_BEAM_DEG[1]
            assert b.nir_share == 0.9
        else:
            assert 1 <= len(b.starts_s) <= 3 and b.nir_share == 0.0
            assert all(beacon.LED_FLASH_S[0] <= d <= beacon.LED_FLASH_S[1] for d in b.length_s)
            assert beacon.LED_BURST_PERIOD_S[0] <= b.period_s <= beacon.LED_BURST_PERIOD_S[1]
            assert b.starts_s[-1] + b.length_s[-1] < b.period_s
    assert {Scene(SimConfig.from_query({"family": f, "seed": "1"})).beacon for f in EARLIER} == {None}
    assert Scene(SimConfig.from_query({"family": "sixteenth", "light": "failing_tube", "seed": "1"})).beacon is None


def test_an_exposure_collects_the_flashes_share_of_it():
    for b in _beacons(8):
        for t0 in (0.0, 0.123, 7.77):
            for e in (0.002, 0.005, 0.033):
                ts = np.linspace(t0, t0 + e, 8001)
                assert b.factor(t0, e) == pytest.approx(np.mean([b.factor(x, 0.0) for x in ts]), abs=2e-3)
        # Over a whole period the flashes' duty cycle.
        assert b.factor(0.31, b.period_s) == pytest.approx(sum(b.length_s) / b.period_s, rel=1e-9)


_BEACON = ("sim://?realtime=0&seed={seed}&family=sixteenth&identity=2&light=beacon&lux=40&cct=4000&projector=0"
           "&distance_mm=430&yaw=0&pitch=0&background=plain")


@pytest.mark.parametrize("kind", beacon.BEACON_KINDS)
def test_the_beacons_flash_adds_amber_light_to_the_colour_frame_and_its_ir_to_the_ir_frame(kind):
    cam, tick, dmaps, face = session_camera(_BEACON, "sixteenth", "beacon", lambda s: s.beacon.kind == kind)
    b = cam._scene.beacon
    assert tick.beacon_ir is not None and float(tick.beacon_ir[face].mean()) > 0
    for k in range(0, 90):
        on = b.factor(k / 30 + cam.cfg.t0_s, 0.005)
        assert np.allclose(cam._flickered(tick, k, 0.005), tick.ir_signal + on * tick.beacon_ir, rtol=1e-5, atol=1e-4)
    # An LED beacon has no 850 nm of its own: without the leak its flash would not show in IR at all.
    gains, cam._leak_gains = cam._leak_gains, None       # the beacon's own 850 nm alone, without the leak
    own_ir = cam._beacon_ir(dmaps)
    cam._leak_gains = gains
    assert own_ir is not None and (float(own_ir[face].max()) == 0.0) == (kind == "led_flash")
    # Colour: a frame inside a flash against one outside it, the same scene: the flash adds amber
    # (red and green, no blue), at the flash's share of the exposure.
    offset = cam.cfg.t0_s + cam.cfg.color_offset_ms / 1000
    e = cam._ae.exposure_s
    ts = np.arange(0.0, 4.0, 1 / 30)
    shares = [b.factor(x + offset, e) for x in ts]
    inside, outside = ts[int(np.argmax(shares))], next(x for x, f in zip(ts, shares, strict=True) if f == 0.0)
    assert max(shares) > 0.1
    gain = colour_face_mean(cam, inside, face) - colour_face_mean(cam, outside, face)
    assert gain[2] > 1 and gain[1] > 0.3 and abs(gain[0]) < 0.25 * gain[2]
    assert gain[2] / max(gain[1], 1e-6) > 1.2          # redder than the street's own light


# --- The caps ------------------------------------------------------------------------------------------------
def test_a_share_of_the_sixteenths_people_wear_a_cap_in_range_and_nobody_elsewhere():
    people = [Identity.draw(i, "sixteenth") for i in range(400)]
    capped = [p for p in people if p.cap is not None]
    assert abs(len(capped) / len(people) - CAP_SHARE) < 0.06
    for p in capped:
        assert 0 <= p.cap < len(SCARVES) and 60 <= p.cap_brim_mm <= 90 and 170 <= p.cap_width_mm <= 200
        assert 5 <= p.cap_tilt_deg <= 25 and 10 <= p.cap_root_mm <= 35
    assert all(Identity.draw(i, f).cap is None for f in EARLIER + ("any",) for i in range(30))


def test_a_caps_brim_stands_in_front_of_the_brow_above_the_eyes_and_its_crown_covers_the_head():
    p = next(Identity.draw(i, "sixteenth") for i in range(1, 60) if Identity.draw(i, "sixteenth").cap is not None)
    bare = dataclasses.replace(p, cap=None)
    capped, plain = head_layers(p), head_layers(bare)
    lm = landmarks(p)
    root_y, tilt, length = cap_geometry(p, lm)
    eye_y = lm.eyes[0][1]
    gx, gy = capped.gx, capped.gy
    # Its front edge (seen from in front) above the upper lid; the eyes and below unchanged.
    assert root_y + length * np.sin(tilt) <= eye_y - LID_ABOVE_EYE_M + 1e-9
    below = gy > eye_y - LID_ABOVE_EYE_M + 0.001
    assert np.array_equal(capped.height[below], plain.height[below])
    assert np.array_equal(capped.albedo[below], plain.albedo[below])
    # The brim reaches 60-90 mm forward at the centre: its front ~ its length x cos(tilt) in front of the brow.
    centre = np.abs(gx) < 0.005
    band = centre & (gy >= root_y) & (gy <= root_y + length * np.sin(tilt))
    forward = float(capped.height[band].max() - plain.height[centre & (np.abs(gy - root_y) < 0.002)].max())
    assert forward == pytest.approx(length * np.cos(tilt), abs=0.004)
    assert float(capped.height.max()) > float(plain.face_height.max()) + 0.02    # in front of the nose tip
    # The crown: the fabric's 850 nm above the root, 3 mm off the head.
    _, _, fabric_nir = SCARVES[p.cap]
    above = (gy < root_y - 0.003) & (plain.height > MISS / 2)
    assert capped.nir[above].min() >= 0.9 * fabric_nir - 1e-6 and capped.nir[above].max() <= fabric_nir + 1e-6
    assert np.allclose(capped.height[above], plain.height[above] + 0.003, atol=1e-6)


# --- The earlier families, the fifteenth included, as main f5d8786 drew, posed and blinked them ----------
# Computed by family_digest(f, _FIELDS + _LATER + the corneas', skin_nir=True) with main f5d8786's tree
# (git archive f5d8786; session 27: /tmp/fam27-digests.py), equal with this tree's.
_CORNEA = ("cornea_radius_mm", "cornea_diameter_mm")
_MAIN_DIGESTS = {"any": "2ca71f224cce9c49", "train": "91707bc55d4a4d0f", "heldout": "7acee5fd46fe66c9",
                 "field": "625b07557bf269a4", "fresh": "b3f30d9d893b9361", "fifth": "28ef67a8b93306c3",
                 "sixth": "1b57e5c22bac8e06", "seventh": "65a717233a481589", "eighth": "598a201712a47b37",
                 "ninth": "761182c12291061e", "tenth": "133330414814f64f", "eleventh": "75ff464b8a3d66b2",
                 "twelfth": "ae40be6c3df9c3b3", "thirteenth": "da32ae3e91abbdbf", "fourteenth": "2d400abc61a35feb",
                 "fifteenth": "7121c316ef0dd668"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS + _LATER + _CORNEA, skin_nir=True) == _MAIN_DIGESTS[family]


def test_cap_0_takes_a_wearers_cap_off_and_changes_nobody_else():
    from drivers.sim.scene import resolve_identity
    wearer = next(i for i in range(1, 60) if Identity.draw(i, "sixteenth").cap is not None)
    bare = next(i for i in range(1, 60) if Identity.draw(i, "sixteenth").cap is None)
    off = resolve_identity(SimConfig.from_query({"family": "sixteenth", "identity": str(wearer), "cap": "0"}))
    assert off == dataclasses.replace(Identity.draw(wearer, "sixteenth"), cap=None, cap_brim_mm=0.0,
                                      cap_width_mm=0.0, cap_tilt_deg=0.0, cap_root_mm=0.0)
    assert head_layers(off).height.max() < head_layers(Identity.draw(wearer, "sixteenth")).height.max()
    for cap in ("0", "1"):
        q = {"family": "sixteenth", "identity": str(bare), "cap": cap}
        assert resolve_identity(SimConfig.from_query(q)) == Identity.draw(bare, "sixteenth")
    q = {"family": "sixteenth", "identity": str(wearer), "cap": "1"}
    assert resolve_identity(SimConfig.from_query(q)) == Identity.draw(wearer, "sixteenth")
