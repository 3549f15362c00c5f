"""The fourteenth family: the Intel RealSense D456 profile (the D455 in an IP65 casing, on USB), low sun
through venetian blinds striping the face and the wall (``sun.Blinds``), the cornea on every URI
(``cornea.py``), its own people (their own corneal radius and diameter), and the earlier families (the
thirteenth included) left as they were.

Nothing here computes a verdict, a score or a quality decision on the fourteenth family: it was built as the
unseen test family and evaluated once in the twenty-fifth session (docs/liveness.md, *The fourteenth
family*). Tests open its URIs for frames, light, pools and refusals only."""

import numpy as np
import pytest

from drivers import realsense_device
from drivers.sim import cornea, species, sun
from drivers.sim.config import SimConfig
from drivers.sim.families import LIGHT_CCT, LIGHT_LUX, POOLS, presentation_query
from drivers.sim.identity import CORNEA_DIAMETER_MM, CORNEA_RADIUS_MM, Identity
from drivers.sim.modes import StreamMode, color_mode, depth_intrinsics
from drivers.sim.profiles import PROFILES, get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from drivers.sim.sensor import SCREEN_LUMINANCE_LUX
from tests.drivers.sim.test_eighth_family import _FIELDS, NIR_SCALE, _cct, _direct_beam, _tail
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import assert_live_queries_in_range, assert_own_pools
from tests.helpers.sim import sim_camera

EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
           "twelfth", "thirteenth")


def test_d456_profile_is_the_d455_in_an_ip65_casing_on_usb():
    f, d455 = get_profile("d456"), get_profile("d455")
    native = depth_intrinsics(f, StreamMode(1280, 800, 30))
    assert np.degrees(2 * np.arctan(640 / native.fx)) == pytest.approx(87.0, abs=3.0)
    assert f.stereo_baseline_m == 0.095 and f.ir_band == "nir" and not f.structured_light and f.has_projector
    assert f.color_shutter == "global" and f.depth_shutter == "global"
    assert f.projector_power == d455.projector_power and f.stream_modes == d455.stream_modes
    # A USB D455's controls (not the D457's GMSL 33 ms start); no filter named in a source: no leak.
    assert f.ir_exposure_default_s == d455.ir_exposure_default_s == 0.0085
    assert f.visible_response is None
    with pytest.raises(Exception, match="ir_leak"):
        SimConfig.from_query({"family": "fourteenth", "ir_leak": "1"})
    # Another unit: no other profile shares its focal lengths.
    others = [p for n, p in PROFILES.items() if n != f.name]
    assert all(round(p.depth_intrinsics.fx) != round(f.depth_intrinsics.fx) for p in others)
    assert all(round(p.color_intrinsics.fx) != round(f.color_intrinsics.fx) for p in others)
    # >= 60 px between the eyes somewhere in 350-520 mm, in depth and in the colour mode a driver picks.
    assert f.depth_intrinsics.fx * 0.063 / 0.35 > 60
    assert color_mode("", None, 30.0, f).intrinsics.fx * 0.063 / 0.52 > 60
    # The hardware driver's tables know the D456 as the D455.
    assert realsense_device.model_of("Intel RealSense D456") == "D456"
    assert realsense_device.MODELS["D456"] == realsense_device.MODELS["D455"]
    assert realsense_device.DEPTH_SPECS["D456"] == realsense_device.DEPTH_SPECS["D455"]


def test_fourteenth_family_draws_its_own_pools_with_the_cornea_on_every_uri():
    assert_own_pools("fourteenth", "d456", ("blinds",))
    assert_live_queries_in_range("fourteenth", "d456")
    assert POOLS["fourteenth"].cornea and not POOLS["fourteenth"].ir_leak
    assert not any(POOLS[f].cornea for f in EARLIER)
    assert LIGHT_LUX["blinds"] == (1000.0, 7500.0) and LIGHT_CCT["blinds"] == (3200, 4500)
    for i in range(40):
        q = presentation_query("fourteenth", "live", i)
        assert q["camera"] == "d456" and q["light"] == "blinds"
        cfg = SimConfig.from_query(q)
        assert cfg.cornea_on and not cfg.cornea                       # the family's flag, no key needed
    for fam in ("any",) + EARLIER:
        assert not SimConfig.from_query({"family": fam}).cornea_on
        assert SimConfig.from_query({"family": fam, "cornea": "1"}).cornea_on


def _air_mass(elevation_deg: float) -> float:
    """Kasten and Young's relative optical air mass."""
    return 1.0 / (np.sin(np.deg2rad(elevation_deg)) + 0.50572 * (elevation_deg + 6.07995) ** -1.6364)


def test_the_low_suns_beam_through_the_blinds_carries_the_nir_and_colour_of_the_eighths_beam_model():
    # The direct beam alone (the face in a stripe sees the sun through clear glass, taken as neutral) on
    # the eighth family's extinction model, at 15° and beta 0.1: 0.17 per lux, ~3650 K.
    beam = _direct_beam(_air_mass(15.0), 0.1)
    assert LIGHT_NIR_SHARE["blinds"] == pytest.approx(NIR_SCALE * _tail(beam), rel=0.03)
    assert 3500 < _cct(beam) < 3800
    # Over the family's 10-25° and clear to average air the beam's colour stays inside its CCT range (and
    # the capture spec's), its NIR per lux 0.12-0.23; lower suns are redder than the spec admits.
    lo, hi = LIGHT_CCT["blinds"]
    for el in (10.0, 25.0):
        for beta in (0.05, 0.1):
            b = _direct_beam(_air_mass(el), beta)
            assert lo - 60 <= _cct(b) <= hi and 0.11 < NIR_SCALE * _tail(b) < 0.24
    assert _cct(_direct_beam(_air_mass(5.0), 0.1)) < 2400
    assert sun.BLIND_ELEVATION_DEG == (10.0, 25.0)
    # Redder than the eighth's sun mix, so more 850 nm per lux; less than its halogen shop.
    assert LIGHT_NIR_SHARE["direct_sun"] < LIGHT_NIR_SHARE["blinds"] < LIGHT_NIR_SHARE["shop_halogen"]


# --- Blinds: closed forms ------------------------------------------------------------------------------
def _brute_sunlit(d: float, period: float, open_width: float, blur: float, n: int = 200_001) -> float:
    x = np.linspace(d - blur / 2, d + blur / 2, n)
    r = np.abs((x + period / 2) % period - period / 2)             # distance to the nearest stripe's centre
    return float((r <= open_width / 2).mean())


def test_a_blinds_open_fraction_and_its_stripes_against_the_closed_forms():
    w, s = 0.025, 0.85 * 0.025
    # Level slats in a level beam hide nothing but their thickness (none here); a 45° beam through level
    # slats is hidden by w sin 45° of the s cos 45° between two edges.
    assert sun.open_fraction(w, s, 0.0, 0.0) == 1.0
    phi = np.deg2rad(20.0)
    assert sun.open_fraction(w, s, 0.0, phi) == pytest.approx(1 - w * np.sin(phi) / (s * np.cos(phi)))
    assert sun.open_fraction(w, s, np.deg2rad(-20.0), phi) == pytest.approx(1.0)   # slats along the beam
    assert sun.open_fraction(w, s, np.deg2rad(70.0), phi) == 0.0                  # closed
    # The stripes: a box train of open width W in period P, averaged over the sun's blur (any blur).
    period, open_w = 0.03, 0.012
    for blur in (0.002, 0.01, 0.02, 0.05):
        d = np.array([-0.031, -0.004, 0.0, 0.0055, 0.006, 0.0123, 0.015, 0.0449], np.float64)
        got = sun.stripe_sunlit(d, period, open_w, blur)
        assert got.dtype == np.float32
        for di, gi in zip(d, got, strict=True):
            assert gi == pytest.approx(_brute_sunlit(float(di), period, open_w, blur), abs=2e-4)
        # Over a period the sun lets through its open share, whatever the blur; the pattern repeats.
        grid = np.linspace(0.0, period, 3001)[:-1]
        assert float(sun.stripe_sunlit(grid, period, open_w, blur).mean()) == pytest.approx(open_w / period, abs=1e-4)
        assert np.allclose(sun.stripe_sunlit(d + 3 * period, period, open_w, blur), got, atol=1e-4)
    # A sharp blur: the centre is sunlit, the middle of a slat's shadow dark.
    assert sun.stripe_sunlit(np.array([0.0, period / 2]), period, open_w, 0.002) == pytest.approx([1.0, 0.0], abs=1e-6)


def test_each_session_draws_its_own_blinds_within_their_ranges_fixed_in_the_world():
    scenes = [Scene(SimConfig.from_query({"family": "fourteenth", "seed": str(k), "distance_mm": "450"}))
              for k in range(60)]
    blinds = [sc.sun_edge for sc in scenes]
    assert all(isinstance(b, sun.Blinds) for b in blinds) and len({b.phase for b in blinds}) == 60
    for b in blinds:
        n = np.asarray(b.normal)
        assert np.linalg.norm(n) == pytest.approx(1.0)
        # Two slat edges 0.85 w apart vertically: the stripes' period along the normal is s |n_y|.
        assert any(b.period == pytest.approx(sun.BLIND_PITCH * w / 1000.0 * abs(n[1])) for w, _ in sun.BLIND_SLAT_MM)
        assert sun.BLIND_MIN_OPEN <= b.open_width / b.period <= 1.0
        assert 0.6 * sun.SUN_DISC_RAD <= b.penumbra_m <= 2.0 * sun.SUN_DISC_RAD
        assert sun.BLIND_SHADE_LUX[0] <= b.shade_lux == b.shade_nir <= sun.BLIND_SHADE_LUX[1]
        # Horizontal slats: the planes hold a horizontal line, so the normal's horizontal part is
        # perpendicular to it and a point's stripe does not change along the slats.
        assert abs(n[1]) > 0.5
        # The window frame's edge up to 150 mm either side of the face's centre.
        m = np.asarray(b.frame_normal)
        assert np.linalg.norm(m) == pytest.approx(1.0)
        assert abs(b.frame_offset - m @ np.array([0.0, 0.0, 0.45])) <= sun.BLIND_FRAME_OFFSET_M + 1e-12
    # Some faces are striped whole, some stand outside the patch (its edge beyond the face either way).
    sides = [np.sign(b.frame_offset - np.asarray(b.frame_normal) @ np.array([0.0, 0.0, 0.45])) for b in blinds]
    assert {-1.0, 1.0} <= set(sides)
    # The stripes are the world's: a surface point's sunlit share is its distance along the normal,
    # whichever pixel sees it (here the depth view's rays at two depths).
    cam = sim_camera("sim://?realtime=0&seed=5&family=fourteenth&identity=2&distance_mm=450")
    b, view = cam._scene.sun_edge, cam._depth_view
    z = np.full((view.intrinsics.height, view.intrinsics.width), 0.45, np.float32)
    z[:, 320:] = 1.2
    lit = b.sunlit(view, z)
    for v, u in ((100, 40), (240, 300), (400, 500), (50, 620)):
        p = np.array([view.rays[v, u, 0], view.rays[v, u, 1], 1.0]) * z[v, u]
        want = sun.stripe_sunlit(np.array([np.asarray(b.normal) @ p - b.phase]), b.period, b.open_width, b.penumbra_m)
        inside = np.clip(0.5 - (np.asarray(b.frame_normal) @ p - b.frame_offset) / b.penumbra_m, 0.0, 1.0)
        assert lit[v, u] == pytest.approx(float(want[0]) * inside, abs=1e-3)
    assert float(lit.min()) < 0.05 and float(lit.max()) > 0.95


# --- Blinds: frames --------------------------------------------------------------------------------------
# Seed 3: 25 mm slats passing 0.46 of the beam in 40 mm stripes, 8 mm penumbrae (a 0.9 m window) across
# the face; another session's (seed 6: 20 mm stripes under a 17 mm penumbra) washes them out to 0.3-0.46.
_URI = ("sim://?realtime=0&seed=3&family=fourteenth&identity=3&lux=3000&cct=4000&projector=0"
        "&distance_mm=430&yaw=0&pitch=0&background=plain")


def test_the_blinds_stripe_the_ir_ambient_by_their_shade_share_and_the_colour_frame_with_it():
    cam = sim_camera(_URI)
    cam.start()
    cam.stop()
    b = cam._scene.sun_edge
    assert isinstance(b, sun.Blinds)
    t = 0.2
    striped, dmaps = cam._render_depth(t, False, cam.POWER_RANGE.default)
    c_striped = cam._render_color(t, (0.0, 0.0, 0.0), update_ae=False)
    cam._scene.sun_edge = None
    plain, _ = cam._render_depth(t, False, cam.POWER_RANGE.default)
    c_plain = cam._render_color(t, (0.0, 0.0, 0.0), update_ae=False)
    cam._scene.sun_edge = b
    # IR, projector off: the ambient alone, kept whole in the stripes and shade_nir of it between.
    lit = b.sunlit(cam._depth_view, dmaps.z)
    face = (dmaps.object_id == 0) & np.isfinite(dmaps.z) & (plain.ir_signal > 1e-3)
    assert face.sum() > 5000
    want = 1.0 - (1.0 - lit) * (1.0 - b.shade_nir)
    assert np.allclose(striped.ir_signal[face], plain.ir_signal[face] * want[face], rtol=2e-3, atol=1e-5)
    # The face carries both stripes and shade (this session's stripes cross it).
    assert (lit[face] > 0.7).mean() > 0.1 and (lit[face] < 0.3).mean() > 0.1
    # Colour (the same frame, exposure and noise seed): darker between the stripes, in step with them.
    assert c_striped.exposure_us == c_plain.exposure_us
    ratio = c_striped.color.astype(np.float64).mean(axis=2) / np.maximum(c_plain.color.astype(np.float64).mean(axis=2),
                                                                         1.0)
    clit = b.sunlit(cam._color_view, np.where(np.isfinite(c_plain.color_truth), c_plain.color_truth, np.inf))
    seen = np.isfinite(c_plain.color_truth) & (c_plain.color.mean(axis=2) > 20)
    assert np.corrcoef(ratio[seen], clit[seen])[0, 1] > 0.8
    assert float(np.median(ratio[seen & (clit < 0.01)])) < 0.75 < float(np.median(ratio[seen & (clit > 0.99)]))


# --- The cornea on every URI, each person's own -------------------------------------------------------
def test_every_fourteenth_eye_mirrors_the_projector_with_its_own_corneas_shape():
    cam = sim_camera("sim://?realtime=0&seed=4&family=fourteenth&identity=6&glasses=none&lux=2000&distance_mm=400"
                     "&yaw=0&pitch=0&background=plain")
    cam.start()
    cam.stop()
    person = cam._scene.identity
    _, maps = cam._render_depth(0.0, True, cam.POWER_RANGE.default)
    objs, _, _ = cam._scene_at(0.0)
    eyes = objs[0].eyes
    assert len(eyes) == 2 and maps.corneal is not None and len(maps.corneal) == 2
    assert all(e.radius_m == person.cornea_radius_mm / 1000 and e.limbus_m == person.cornea_diameter_mm / 2000
               for e in eyes)
    # The glint's equivalent albedo scales as the radius squared: the same eye at the schematic 7.8 mm.
    view, head = cam._depth_view, objs[0]
    src = cam._lights.projector_pos
    mine = cornea.glints(view, head.R, head.T, eyes, 0.0, maps.z, src, None, 1.0, True)
    fixed = tuple(cornea.Eye(e.apex, e.lens_t2_nir, e.lens_t2_vis) for e in eyes)
    schematic = cornea.glints(view, head.R, head.T, fixed, 0.0, maps.z, src, None, 1.0, True)
    for a, b in zip(mine, schematic, strict=True):
        assert a.albedo / b.albedo == pytest.approx((person.cornea_radius_mm / 7.8) ** 2, rel=2e-3)
    # A narrower cornea shows no glint where the schematic one does (the limbus bounds it).
    narrow = tuple(cornea.Eye(e.apex, 1.0, 1.0, cornea.RADIUS_M, 0.0002) for e in eyes)
    assert cornea.glints(view, head.R, head.T, narrow, 0.0, maps.z, src, None, 1.0, True) == []
    # The same scene in an earlier family draws no cornea.
    other = sim_camera("sim://?realtime=0&seed=4&family=eighth&identity=6&glasses=none&lux=2000&distance_mm=400"
                       "&yaw=0&pitch=0&background=plain")
    other.start()
    other.stop()
    assert other._render_depth(0.0, True, other.POWER_RANGE.default)[1].corneal is None


def test_fourteenth_people_have_their_own_corneas_and_nobody_else_does():
    people = [Identity.draw(i, "fourteenth") for i in range(400)]
    for (mean, sd, lo, hi), got in ((CORNEA_RADIUS_MM, [p.cornea_radius_mm for p in people]),
                                    (CORNEA_DIAMETER_MM, [p.cornea_diameter_mm for p in people])):
        x = np.array(got)
        assert x.min() >= lo and x.max() <= hi and abs(x.mean() - mean) < 0.05 and abs(x.std() - sd) < 0.05
        assert lo == pytest.approx(mean - 2 * sd) and hi == pytest.approx(mean + 2 * sd)
    # Rüfer et al. 2005's normal range and the schematic eye's radius lie inside the draws.
    assert CORNEA_DIAMETER_MM[2] < 11.0 and CORNEA_DIAMETER_MM[3] > 12.5 and CORNEA_RADIUS_MM[0] == 7.8
    for fam in ("any",) + EARLIER:
        assert all(Identity.draw(i, fam).cornea_radius_mm is None and Identity.draw(i, fam).cornea_diameter_mm is None
                   for i in range(30))
    # Their attack displays follow the thirteenth's logic, from their own stream.
    got = [species.screen_instrument(Identity.draw(i, "fourteenth"), "screen_video", i) for i in range(100)]
    assert all(np.pi * 350.0 <= g[0] <= np.pi * 1000.0 for g in got) and min(g[0] for g in got) > SCREEN_LUMINANCE_LUX
    assert got != [species.screen_instrument(Identity.draw(i, "thirteenth"), "screen_video", i) for i in range(100)]


# --- The earlier families, the thirteenth included, as main ea28dbe drew, posed and blinked them ----
# Computed by family_digest(f, _FIELDS + _LATER, skin_nir=True) with main ea28dbe's tree
# (PYTHONPATH=/work/main, session 25: /tmp/fourteenth/digests.py).
_LATER = ("skin_nir_factor", "skin_sheen", "beard_length_mm", "beard_density", "beard_rise_mm", "scarf",
          "scarf_brow_mm", "scarf_open", "scarf_standoff_mm", "lens_index", "lens_coated", "lens_r_vis", "lens_r_nir",
          "fissure_mm")
_MAIN_DIGESTS = {"any": "a83d7b00afd070ed", "train": "17aed0763756baac", "heldout": "dd4ad21c4bc2afa9",
                 "field": "525d93638be0790c", "fresh": "20c96c13638a32ee", "fifth": "b87b1111af46b9a5",
                 "sixth": "4c995e5d41bbe03a", "seventh": "0d5ef5ed148f6199", "eighth": "6f674a799b05bae3",
                 "ninth": "da91dee64c9a5bf3", "tenth": "6dfd058b0f21cdbd", "eleventh": "9306fb64d3973fb7",
                 "twelfth": "9126e70b9c2304ea", "thirteenth": "89953d0584d238b8"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS + _LATER, skin_nir=True) == _MAIN_DIGESTS[family]
