"""The twelfth family: the Intel RealSense D457 profile (GMSL, the d4xx driver's exposure), the kiosk's own
ring light and cars' headlamps sweeping a walk-up ATM (``keylight.py``), its own people (with their own
spectacle lenses' reflectance), and the earlier families (the eleventh included) left as they were.

Nothing here computes a verdict, a score or a quality decision on the twelfth family: it was the unseen
test family while built, evaluated once since (docs/liveness.md, *The twelfth family*). Tests open its
URIs for frames and light only."""

from dataclasses import replace

import numpy as np
import pytest

from drivers import realsense_device
from drivers.frame import StreamKind
from drivers.sim import head, keylight
from drivers.sim.families import LIGHT_LUX
from drivers.sim.identity import LENS_AR_NIR, LENS_AR_VIS, LENS_COATED_SHARE, LENS_INDICES, Identity, fresnel_normal
from drivers.sim.modes import StreamMode, color_mode, depth_intrinsics
from drivers.sim.optics import views_for
from drivers.sim.profiles import GAIN_RS16, PROFILES, get_profile
from drivers.sim.render import Lights, Placed, render_view
from drivers.sim.scene import LIGHT_NIR_SHARE
from drivers.sim.sensor import color_irradiance, illuminant_bgr
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import assert_live_queries_in_range, assert_own_pools
from tests.helpers.sim import grab, sim_camera
from tests.helpers.view_maps import flat_face_maps

EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh")
IR, COLOR = StreamKind.IR, StreamKind.COLOR


def test_d457_profile_is_the_d450_module_on_the_d4xx_drivers_exposure():
    f, d455 = get_profile("d457"), get_profile("d455")
    # [DS]: the D450 module's 87° depth field at 1280x800 and 95 mm baseline, global-shutter colour.
    native = depth_intrinsics(f, StreamMode(1280, 800, 30))
    assert np.degrees(2 * np.arctan(640 / native.fx)) == pytest.approx(87.0, abs=3.0)
    assert f.stereo_baseline_m == 0.095 and f.ir_band == "nir" and not f.structured_light and f.has_projector
    assert f.color_shutter == "global" and f.depth_shutter == "global"
    # [D457]: d4xx.c's depth exposure 1..200000 µs, 33000 by default (a USB D455 starts at 8500 µs).
    assert f.ir_exposure_range_s == (1e-6, 0.2) and f.ir_exposure_default_s == 0.033
    assert d455.ir_exposure_default_s == 0.0085 and f.ir_units.gain == GAIN_RS16 and f.ir_auto_exposure
    assert f.ir_units.exposure_us == 1.0
    # librealsense's laser power in mW (0..360, step 30) and the D455's modes.
    assert f.projector_power == d455.projector_power and f.stream_modes == d455.stream_modes
    # Another unit: no other profile shares its focal lengths.
    others = [p for n, p in PROFILES.items() if n != f.name]
    assert all(round(p.depth_intrinsics.fx) != round(f.depth_intrinsics.fx) for p in others)
    assert all(round(p.color_intrinsics.fx) != round(f.color_intrinsics.fx) for p in others)
    # >= 60 px between the eyes somewhere in 350-520 mm, in depth and in the colour mode a driver picks.
    assert f.depth_intrinsics.fx * 0.063 / 0.35 > 60
    assert color_mode("", None, 30.0, f).intrinsics.fx * 0.063 / 0.35 > 60
    # The hardware driver knows the model too: its wide colour lens and datasheet depth range.
    assert realsense_device.model_of("Intel RealSense D457") == "D457"
    assert realsense_device.MODELS["D457"] == realsense_device.MODELS["D455"]
    assert realsense_device.DEPTH_SPECS["D457"].min_z_1280_m == 0.52


def test_twelfth_family_draws_its_own_people_camera_lights_and_illuminances():
    assert_own_pools("twelfth", "d457", ("ring_light", "headlights"))
    assert LIGHT_LUX["ring_light"] == (100.0, 500.0) and LIGHT_LUX["headlights"] == (15.0, 80.0)
    # The rooms' own light is LED light; the ring and the headlamps add their own on top.
    assert LIGHT_NIR_SHARE["ring_light"] == LIGHT_NIR_SHARE["headlights"] == LIGHT_NIR_SHARE["led"]
    assert keylight.HALOGEN_NIR == LIGHT_NIR_SHARE["halogen"] and keylight.LED_NIR == LIGHT_NIR_SHARE["led"]
    assert_live_queries_in_range("twelfth", "d457")


# --- Closed forms on a synthetic flat face, facing the camera ------------------------------------
_maps = flat_face_maps


def test_the_ring_light_lights_the_face_in_its_near_field_in_closed_form():
    ring = keylight.RingLight(intensity_cd=40.0, radius_m=0.08, cct=6000.0)
    # On its axis: E = I z^2 / (z^2 + a^2)^2, the inverse square far away.
    for z in (0.35, 0.45, 0.52):
        assert float(ring.on_axis(z)) == pytest.approx(40.0 * z * z / (z * z + 0.0064) ** 2, rel=1e-12)
    assert float(ring.on_axis(20.0)) * 400.0 == pytest.approx(40.0, rel=1e-4)
    # A face at 350 mm gets ~2x what it gets at 520 mm (less than the point source's (520/350)^2 = 2.21:
    # an 80 mm ring gives 2.09); a nose 25 mm nearer than the cheeks 11 % more.
    assert float(ring.on_axis(0.35) / ring.on_axis(0.52)) == pytest.approx(2.089, abs=0.002)
    assert float(ring.on_axis(0.425) / ring.on_axis(0.45)) == pytest.approx(1.113, abs=0.002)
    # Per pixel: the distance to the camera along the pixel's ray, times the incidence (shade).
    view = views_for(get_profile("d457"))[1]
    m = _maps()
    e = ring.irradiance(view, m)
    r = 0.45 * view.ray_norm
    assert np.allclose(e, ring.on_axis(r) * m.shade, rtol=1e-5)
    i = view.intrinsics
    c = (int(round(i.ppy)), int(round(i.ppx)))
    assert e[c] == pytest.approx(float(ring.on_axis(0.45)) * m.shade[c], rel=1e-3)
    irr0 = color_irradiance(m, 150.0, 3500.0)
    irr = ring.color(irr0.copy(), view, m)
    assert irr[c] == pytest.approx(irr0[c] + e[c] * illuminant_bgr(6000.0) * m.albedo[c], rel=1e-5)
    sig = ring.ir(np.zeros(m.z.shape, np.float32), view, m)
    assert sig[c] == pytest.approx(e[c] * 0.002 * m.nir[c] * (1 - m.specular[c]), rel=1e-5)
    # Nothing rendered, nothing lit; a display keeps its own light.
    far = replace(m, z=np.full(m.z.shape, np.inf, np.float32))
    assert not ring.irradiance(view, far).any()
    screen = replace(m, emissive=np.ones(m.z.shape, bool))
    assert np.array_equal(ring.color(irr0.copy(), view, screen), irr0)
    # Drawn per session: 150-800 lux at 0.45 m on the axis, a 50-120 mm ring, its own colour.
    draws = [keylight.RingLight.draw(np.random.default_rng(k)) for k in range(60)]
    assert all(150.0 <= float(d.on_axis(0.45)) <= 800.0 and 0.05 <= d.radius_m <= 0.12 for d in draws)
    assert all(4000.0 <= d.cct <= 6500.0 for d in draws)


def _one_pass(c=0.2, sigma=0.1, peak=200.0, nir=keylight.HALOGEN_NIR, cct=3100.0, az=60.0):
    d = (np.sin(np.deg2rad(az)), 0.0, -np.cos(np.deg2rad(az)))
    return keylight.Headlights(passes=((c, sigma, peak, cct, nir) + d,), period_s=20.0)


def test_headlamps_sweep_as_gaussians_and_light_by_the_cosine_in_closed_form():
    h = _one_pass()
    for t in (0.2, 0.25, 0.4):
        (lux, cct, nir, d), = h.levels(t)
        assert lux == pytest.approx(200.0 * np.exp(-0.5 * ((t - 0.2) / 0.1) ** 2), rel=1e-12)
        assert (cct, nir) == (3100.0, keylight.HALOGEN_NIR)
    assert h.levels(20.25)[0][0] == pytest.approx(h.levels(0.25)[0][0])        # the cycle repeats
    # Dark below 0.1 lux: 200 exp(-x^2/2) < 0.1 beyond x = 3.90 sigma.
    assert h.levels(0.2 + 0.385) and not h.levels(0.2 + 0.395)
    # Drawn: FWHM 0.5-2 s, 2-6 s apart, half halogen (0.32 at 850 nm) and half LED, a fifth main beams.
    draws = [keylight.Headlights.draw(np.random.default_rng(k)) for k in range(40)]
    ps = np.array([p for d in draws for p in d.passes])
    fwhm = ps[:, 1] * keylight.FWHM_PER_SIGMA
    assert fwhm.min() >= 0.5 and fwhm.max() <= 2.0
    gaps = np.concatenate([np.diff(np.array([p[0] for p in d.passes])) for d in draws])
    assert gaps.min() >= 2.0 and gaps.max() <= 6.0
    halogen = ps[:, 4] == keylight.HALOGEN_NIR
    assert 0.4 < halogen.mean() < 0.6 and set(ps[~halogen, 4]) == {keylight.LED_NIR}
    assert ps[halogen, 3].max() <= 3300.0 and ps[~halogen, 3].min() >= 5500.0
    main = ps[:, 2] > 30.0
    assert 0.12 < main.mean() < 0.3 and ps[:, 2].min() >= 3.0 and ps[:, 2].max() <= 300.0
    side = np.abs(ps[:, 5]) / np.hypot(ps[:, 5], ps[:, 7])                     # sin of the azimuth
    assert side.min() >= np.sin(np.deg2rad(30.0)) - 1e-9 and side.max() <= np.sin(np.deg2rad(80.0)) + 1e-9
    assert {np.sign(x) for x in ps[:, 5]} == {-1.0, 1.0} and np.all(ps[:, 6] >= 0)   # either side, from below
    # On the flat face: lux x cos(normal, direction to the car); colour its lamp's colour, IR its 850 nm.
    view = views_for(get_profile("d457"))[0]
    m = _maps()
    cos = np.cos(np.deg2rad(60.0))
    lux = h.levels(0.25)[0][0]
    irr0 = color_irradiance(m, 30.0, 4000.0)
    irr = h.color(irr0.copy(), view, m, 0.25)
    inner = (slice(10, -10), slice(10, -10))
    want = irr0 + (lux * cos) * illuminant_bgr(3100.0)[None, None, :] * m.albedo
    assert np.allclose(irr[inner], want[inner], rtol=2e-3)
    sig = h.ir(np.zeros(m.z.shape, np.float32), view, m, 0.25)
    assert np.allclose(sig[inner], (lux * cos * 0.32 * m.nir * (1 - m.specular))[inner], rtol=2e-3)
    led = _one_pass(nir=keylight.LED_NIR, cct=6000.0)
    assert np.allclose(led.ir(np.zeros(m.z.shape, np.float32), view, m, 0.25)[inner], sig[inner] * 0.002 / 0.32,
                       rtol=2e-3)
    # Between sweeps the frame is left as it was; a car behind the face's plane lights nothing.
    assert h.color(irr0, view, m, 5.0) is irr0
    behind = keylight.Headlights(passes=((0.2, 0.1, 200.0, 3100.0, 0.32, 0.0, 0.0, 1.0),), period_s=20.0)
    assert not behind.ir(np.zeros(m.z.shape, np.float32), view, m, 0.2).any()


# --- Frames (no verdict, no score) -----------------------------------------------------------------
def _halves(cam, frame_number):
    truth = cam.ground_truth(COLOR, frame_number)
    face = np.isfinite(truth) & (truth < 0.6)
    cols = np.nonzero(face.any(axis=0))[0]
    mid = (cols[0] + cols[-1]) // 2
    left, right = face.copy(), face.copy()
    left[:, mid:] = False
    right[:, :mid] = False
    return face, left, right


def test_the_ring_lights_the_near_face_in_its_own_colour_in_the_frames():
    uri = ("sim://?realtime=0&seed=3&family=twelfth&light=ring_light&lux=100&cct=3000&identity=4&projector=0"
           "&distance_mm=400&yaw=0&color_mode=640x480@30")
    ratios = []
    for ring in (None, keylight.RingLight(intensity_cd=120.0, radius_m=0.08, cct=6500.0)):
        cam = sim_camera(uri)
        assert cam.profile.name == "d457"
        cam._scene.ring = ring
        cam.start()
        sets, cam = grab(uri, 2, cam=cam)
        cam.stop()
        face, _, _ = _halves(cam, sets[-1][COLOR].frame_number)
        px = sets[-1][COLOR].pixels.astype(np.float64)
        # The face's blue over red: a 6500 K ring on a 3000 K room turns the near face bluer.
        ratios.append(px[face][:, 0].mean() / px[face][:, 2].mean())
    assert ratios[1] > 1.3 * ratios[0]


def test_a_halogen_headlamp_sweeps_the_side_of_the_face_it_faces_in_colour_and_ir():
    uri = ("sim://?realtime=0&seed=3&family=twelfth&light=headlights&lux=30&identity=4&projector=0"
           "&distance_mm=450&yaw=0&color_mode=640x480@30")
    cam = sim_camera(uri)
    # A main beam from the person's image-right (+x), at its peak at 0.1 s, dark after ~0.3 s.
    cam._scene.headlights = _one_pass(c=0.1, sigma=0.05, peak=250.0, az=60.0)
    cam.start()
    sets, cam = grab(uri, 12, cam=cam)
    cam.stop()
    face, left, right = _halves(cam, sets[-1][COLOR].frame_number)

    def right_over_left(frame):
        x = frame.pixels.astype(np.float64)
        x = x if x.ndim == 2 else x[..., 2]              # colour: the red channel (a halogen lamp)
        return x[right].mean() / max(x[left].mean(), 1.0)

    # Colour: the lamp's side redder while it sweeps, not after (the canopy's light alone).
    assert right_over_left(sets[3][COLOR]) > 1.25 * right_over_left(sets[-1][COLOR])
    # IR: the halogen's 850 nm lights the face (its lamp's side more) and goes with the pass; the
    # canopy's LEDs alone leave the face nearly black at the exposure the pass set.
    ir_peak, ir_after = (s[IR].pixels.astype(np.float64) for s in (sets[3], sets[-1]))
    assert right_over_left(sets[3][IR]) > 1.3
    assert ir_after[face].mean() < 0.2 * ir_peak[face].mean()


# --- People: spectacle lenses in the twelfth family ----------------------------------------------
def test_twelfth_family_people_have_their_own_lenses_and_nobody_else_does():
    people = [Identity.draw(i, "twelfth") for i in range(400)]
    assert all(p.lens_index in LENS_INDICES for p in people)
    assert {p.lens_index for p in people} == set(LENS_INDICES)
    coated = [p for p in people if p.lens_coated]
    assert abs(len(coated) / 400 - LENS_COATED_SHARE) < 0.06
    assert all(LENS_AR_VIS[0] <= p.lens_r_vis <= LENS_AR_VIS[1] for p in coated)
    assert all(LENS_AR_NIR[0] <= p.lens_r_nir <= LENS_AR_NIR[1] for p in coated)
    # Uncoated: Fresnel at normal incidence, the same at 850 nm: CR-39 4.0 %, 1.74 7.3 %.
    assert all(p.lens_r_vis == p.lens_r_nir == fresnel_normal(p.lens_index) for p in people if not p.lens_coated)
    assert fresnel_normal(1.498) == pytest.approx(0.0398, abs=1e-4) and fresnel_normal(1.74) == pytest.approx(
        0.0730, abs=1e-4)
    for fam in ("any",) + EARLIER:
        assert all(Identity.draw(i, fam).lens_r_vis is None for i in range(30))


def test_a_coated_lens_mirrors_the_projector_by_its_850_nm_reflectance():
    p = next(q for q in (Identity.draw(i, "twelfth") for i in range(200)) if q.glasses == "clear" and q.lens_coated)
    lay = head.head_layers(p)
    assert lay.gloss is not None
    assert float(lay.gloss.max()) == pytest.approx(2 * p.lens_r_vis, rel=1e-6)
    assert lay.gloss_nir_ratio == pytest.approx(p.lens_r_nir / p.lens_r_vis) and lay.gloss_nir_ratio > 1.3
    # Through the lens, the room mirrored at 850 nm by the lens's 850 nm reflectance.
    same = head.head_layers(replace(p, lens_r_nir=p.lens_r_vis))
    lens = lay.gloss > 0
    diff = (lay.nir - same.nir)[lens]
    through = np.isclose(diff, 0.6 * 2 * (p.lens_r_nir - p.lens_r_vis), rtol=0, atol=1e-6)
    assert through.mean() > 0.99 and np.all(through | (diff == 0))   # (0: the frame drawn over a lens edge)
    assert np.array_equal(lay.albedo, same.albedo)
    # Rendered: the projector's glint on the lenses scales with it; the lamp's in colour does not.
    surf = head.live_head(p)
    assert surf.gloss_nir_ratio == lay.gloss_nir_ratio
    view = views_for(get_profile("d457"))[0]
    lights = Lights(projector_pos=np.array([0.045, 0.0, 0.0]), lamp_dir=np.array([0.0, -0.57, -0.82]))
    maps = []
    for s in (surf, replace(surf, gloss_nir_ratio=1.0)):
        T = np.array([0.0, 0.0, 0.45 + s.max_height])
        maps.append(render_view(view, [Placed(s, np.eye(3), T, s.albedo, 0)], lights=lights))
    g1, g0 = maps[0].glint, maps[1].glint
    assert g1 is not None and g0 is not None and (g0 > 0).sum() > 20
    on = g0 > 0
    assert np.allclose(g1[on], g0[on] * lay.gloss_nir_ratio, rtol=1e-5)
    assert np.array_equal(maps[0].albedo, maps[1].albedo)
    # Everyone else's lenses: the one look, the same at 850 nm.
    other = next(q for q in (Identity.draw(i, "eleventh") for i in range(200)) if q.glasses == "clear")
    assert head.head_layers(other).gloss_nir_ratio == 1.0


# --- The earlier families, the eleventh included, as main 3df7b18 drew, posed and blinked them -----
# Computed by family_digest(f, _FIELDS + the later per-person fields, skin_nir=True) with main 3df7b18's
# tree (PYTHONPATH=/work/main, session 23).
_LATER = ("skin_nir_factor", "skin_sheen", "beard_length_mm", "beard_density", "beard_rise_mm", "scarf",
          "scarf_brow_mm", "scarf_open", "scarf_standoff_mm")
_MAIN_DIGESTS = {"any": "7259c245cf89fe7a", "train": "e93193cefdeb39f3", "heldout": "b24d1453625a9c70",
                 "field": "a91e96cd23407393", "fresh": "a4920badd9589bcb", "fifth": "3ff7a9c41b8ee764",
                 "sixth": "ccf0c327929d7ea0", "seventh": "2cd55c72e8e4e6ed", "eighth": "47fb63702620c148",
                 "ninth": "72e394e2e7582839", "tenth": "cac662304c4a16a7", "eleventh": "416429e51a0204ce"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS + _LATER, skin_nir=True) == _MAIN_DIGESTS[family]
