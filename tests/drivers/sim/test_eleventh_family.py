"""The eleventh family: the Intel RealSense D455f profile, an LED advertising panel beside the kiosk and
sunflecks through a tree (``lobby.py``), its own people (with their own headscarves), and the earlier
families (the tenth included) left as they were.

Nothing here computes a verdict, a score or a quality decision on the eleventh family: it is the unseen
test family (docs/liveness.md, *The eleventh family*). Tests open its URIs for frames and light only."""

from dataclasses import replace

import numpy as np
import pytest

from drivers.frame import StreamKind
from drivers.sim import head, lobby
from drivers.sim.families import LIGHT_LUX, POOLS
from drivers.sim.identity import SCARF_BROW_MM, SCARF_OPEN, SCARF_SHARE, SCARF_STANDOFF_MM, SCARVES, Identity
from drivers.sim.modes import StreamMode, color_mode, depth_intrinsics
from drivers.sim.optics import views_for
from drivers.sim.profiles import GAIN_RS16, PROFILES, get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE
from drivers.sim.sensor import color_irradiance, illuminant_bgr
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import assert_live_queries_in_range, assert_own_pools
from tests.helpers.sim import grab, sim_camera
from tests.helpers.view_maps import flat_face_maps

OTHERS = [f for f in POOLS if f != "eleventh"]
EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
IR, COLOR = StreamKind.IR, StreamKind.COLOR


def test_d455f_profile_is_the_d455_behind_an_ir_pass_filter_on_librealsense():
    f, d455 = get_profile("d455f"), get_profile("d455")
    # [DS]: the D455's 87° depth field at 1280x800 and 95 mm baseline; [D455F]: the filter keeps the NIR band.
    native = depth_intrinsics(f, StreamMode(1280, 800, 30))
    assert np.degrees(2 * np.arctan(640 / native.fx)) == pytest.approx(87.0, abs=3.0)
    assert f.stereo_baseline_m == 0.095 and f.ir_band == "nir" and not f.structured_light
    assert f.color_shutter == "global" and f.projector_power is not None
    # librealsense's controls: laser power in mW (0..360, step 30), IR exposure in µs, RS16 gain.
    assert f.projector_power == d455.projector_power
    assert (f.projector_power.minimum, f.projector_power.maximum, f.projector_power.step) == (0.0, 360.0, 30.0)
    assert f.ir_exposure_range_s == d455.ir_exposure_range_s and f.ir_units.gain == GAIN_RS16 and f.ir_auto_exposure
    assert f.stream_modes == d455.stream_modes
    # Another unit: no other profile shares its focal lengths.
    others = [p for n, p in PROFILES.items() if n != f.name]
    assert all(round(p.depth_intrinsics.fx) != round(f.depth_intrinsics.fx) for p in others)
    assert all(round(p.color_intrinsics.fx) != round(f.color_intrinsics.fx) for p in others)
    # >= 60 px between the eyes somewhere in 350-520 mm, in depth and in the colour mode a driver picks.
    assert f.depth_intrinsics.fx * 0.063 / 0.35 > 60
    assert color_mode("", None, 30.0, f).intrinsics.fx * 0.063 / 0.35 > 60


def test_eleventh_family_draws_its_own_people_camera_lights_and_illuminances():
    assert_own_pools("eleventh", "d455f", ("signage", "dappled_sun"))
    assert LIGHT_LUX["signage"] == (100.0, 500.0) and LIGHT_LUX["dappled_sun"] == (200.0, 1500.0)
    # The panel adds nothing at 850 nm: the lobby's share is its LEDs'; the canopy's shade is NIR-rich.
    assert LIGHT_NIR_SHARE["signage"] == LIGHT_NIR_SHARE["led"]
    assert LIGHT_NIR_SHARE["dappled_sun"] == lobby.CANOPY_NIR_SHARE > LIGHT_NIR_SHARE["daylight"]
    assert_live_queries_in_range("eleventh", "d455f")


# --- Closed forms on a synthetic flat face at 0.45 m, facing the camera -------------------------------
_maps = flat_face_maps


def _signage(**kw):
    red, blue = (0.02, 0.02, 1.0), (1.0, 0.02, 0.02)
    red = tuple(c / float(np.dot(red, lobby.REC709_BGR)) for c in red)
    blue = tuple(c / float(np.dot(blue, lobby.REC709_BGR)) for c in blue)
    d = (np.sin(np.deg2rad(60.0)), 0.0, -np.cos(np.deg2rad(60.0)))
    base = dict(direction=d, peak_lux=200.0, colours=(red, blue, red), levels=(1.0, 0.5, 0.8),
                durations_s=(2.0, 3.0, 4.0), fades_s=(0.0, 0.0, 0.5), phase_s=0.0)
    base.update(kw)
    return lobby.Signage(**base)


def test_the_panels_colour_cuts_and_fades_between_adverts_in_closed_form():
    s = _signage()
    red, blue = np.array(s.colours[0]), np.array(s.colours[1])
    assert float(red @ lobby.REC709_BGR) == pytest.approx(1.0)          # unit luminance: lux are lux
    assert s.period_s == 9.0
    assert s.light(1.0) == pytest.approx(200.0 * red, rel=1e-6)
    assert s.light(2.0) == pytest.approx(200.0 * 0.5 * blue, rel=1e-6)  # a hard cut at 2 s
    assert s.light(1.999) == pytest.approx(200.0 * red, rel=1e-6)
    # The third advert fades in over 0.5 s from the second: half-way at 5.25 s.
    assert s.light(5.25) == pytest.approx(200.0 * (0.5 * 0.5 * blue + 0.5 * 0.8 * red), rel=1e-5)
    assert s.light(5.6) == pytest.approx(200.0 * 0.8 * red, rel=1e-6)
    assert s.light(9.0 + 1.0) == pytest.approx(s.light(1.0))            # the cycle repeats
    first_fades = replace(s, fades_s=(0.4, 0.0, 0.0))                   # the first fades from the last
    assert first_fades.light(0.2) == pytest.approx(200.0 * (0.5 * 0.8 * red + 0.5 * red), rel=1e-5)
    # Drawn per session from its own stream, within the ranges; half the adverts cut, half fade.
    draws = [lobby.Signage.draw(np.random.default_rng(k)) for k in range(60)]
    assert all(20.0 <= d.peak_lux <= 300.0 and len(d.colours) == lobby.N_ADVERTS for d in draws)
    fades = np.array([f for d in draws for f in d.fades_s])
    assert 0.35 < (fades == 0.0).mean() < 0.65 and fades[fades > 0].min() >= 0.3 and fades.max() <= 1.0
    assert all(float(np.dot(c, lobby.REC709_BGR)) == pytest.approx(1.0) for d in draws for c in d.colours)
    assert {np.sign(d.direction[0]) for d in draws} == {-1.0, 1.0}      # either side of the kiosk


def test_the_panel_lights_a_surface_by_its_cosine_and_adds_no_near_infrared():
    view = views_for(get_profile("d455f"))[1]
    m = _maps()
    n = lobby.surface_normals(view, m.z)
    inner = n[5:-5, 5:-5]
    assert np.allclose(inner, [0.0, 0.0, -1.0], atol=2e-3)              # a plane facing the camera
    s = _signage()
    d = view.depth_to_view.R @ np.asarray(s.direction)
    irr0 = color_irradiance(m, 150.0, 4000.0)
    irr = s.color(irr0.copy(), view, m, 1.0)
    c = (240, 320)
    assert irr[c] == pytest.approx(irr0[c] + float(-d[2]) * 200.0 * np.array(s.colours[0]) * m.albedo[c], rel=1e-3)
    # A surface turned towards the panel gets more of it, one turned away none: a tilted plane.
    tilt = view.rays[..., 0] * 0.45 * np.tan(np.deg2rad(40.0))
    towards = replace(m, z=(0.45 + tilt).astype(np.float32))             # its normal turns toward +x
    away = replace(m, z=(0.45 - tilt * 1.5).astype(np.float32))          # 51° toward -x: 111° from the panel
    def red_gain(mm):
        lit = s.color(np.zeros_like(irr0), view, mm, 1.0)[..., 2] / mm.albedo[..., 2]
        return float(np.median(lit[100:380, 200:440]))

    gain = [red_gain(mm) for mm in (towards, m, away)]
    assert gain[0] > 1.2 * gain[1] and gain[2] == 0.0
    assert gain[1] == pytest.approx(200.0 * s.colours[0][2] * float(-d[2]), rel=1e-3)
    # The panel has no IR method: the camera leaves the IR to the room's LEDs (camera._street_ir).
    assert not hasattr(s, "ir")


def test_sunflecks_follow_their_cosines_drift_and_carry_the_suns_near_infrared_in_closed_form():
    ds = lobby.DappledSun(sun=(0.0, -np.sin(np.deg2rad(40.0)), -np.cos(np.deg2rad(40.0))), fleck_lux=5000.0,
                          fleck_cct=5300.0, waves=((60.0, 0.0, 0.3, 1.5), (0.0, 80.0, 1.1, -0.7)), threshold=0.5)
    e1, e2 = ds.basis()
    s = np.asarray(ds.sun)
    assert abs(e1 @ s) < 1e-12 and abs(e2 @ s) < 1e-12 and e1 @ e2 == pytest.approx(0.0, abs=1e-12)
    a, b = np.array([0.01, -0.03]), np.array([0.02, 0.05])
    want = np.sqrt(2 / 2) * (np.cos(60.0 * a + 0.3 + 2 * np.pi * 1.5 * 0.2)
                             + np.cos(80.0 * b + 1.1 - 2 * np.pi * 0.7 * 0.2))
    assert ds.field(a, b, 0.2) == pytest.approx(want, rel=1e-5)
    assert ds.fleck_at(a, b, 0.2) == pytest.approx(np.clip((want - 0.5) / lobby.EDGE + 0.5, 0, 1), abs=1e-6)
    # The pattern moves: one wave's phase at 1.5 Hz comes round after 1/1.5 s (the other at 0.7 Hz).
    one = replace(ds, waves=ds.waves[:1])
    assert one.field(a, b, 1 / 1.5) == pytest.approx(one.field(a, b, 0.0), abs=1e-5)
    assert not np.allclose(one.field(a, b, 0.25), one.field(a, b, 0.0), atol=0.1)
    # Unit variance over the plane: the drawn threshold gives the drawn cover.
    draws = [lobby.DappledSun.draw(np.random.default_rng(k)) for k in range(8)]
    rng = np.random.default_rng(0)
    pa, pb = rng.uniform(-2, 2, 20000), rng.uniform(-2, 2, 20000)
    for d in draws:
        f = d.field(pa, pb, 0.3)
        assert f.std() == pytest.approx(1.0, abs=0.1)
        from scipy.special import ndtr
        assert (f > d.threshold).mean() == pytest.approx(1 - ndtr(d.threshold), abs=0.06)
        assert lobby.COVER[0] - 1e-9 <= 1 - ndtr(d.threshold) <= lobby.COVER[1] + 1e-9
        lam = [2 * np.pi / np.hypot(kx, ky) for kx, ky, _, _ in d.waves]
        assert all(0.06 <= x <= 0.15 for x in lam) and all(0.3 <= abs(w[3]) <= 3.0 for w in d.waves)
    # On the flat face: fleck x cosine to the sun; colour adds the sun's light, IR its 0.12 per lux.
    view = views_for(get_profile("d455f"))[0]
    m = _maps()
    f = ds.fleck(view, m.z, 0.2)
    p = np.dstack([view.rays[..., 0] * 0.45, view.rays[..., 1] * 0.45, np.full(m.z.shape, 0.45)])
    cos = float(-s[2])
    assert np.allclose(f[5:-5, 5:-5], (ds.fleck_at(p @ e1, p @ e2, 0.2) * cos)[5:-5, 5:-5], atol=2e-3)
    assert 0.0 < (f > 0).mean() < 1.0
    c = np.unravel_index(np.argmax(f), f.shape)
    irr0 = color_irradiance(m, 600.0, 6000.0)
    irr = ds.color(irr0.copy(), view, m, 0.2)
    assert irr[c] == pytest.approx(irr0[c] + f[c] * 5000.0 * illuminant_bgr(5300.0) * m.albedo[c], rel=1e-4)
    sig = ds.ir(np.zeros(m.z.shape, np.float32), view, m, 0.2)
    assert sig[c] == pytest.approx(f[c] * 5000.0 * 0.12 * m.nir[c] * (1 - m.specular[c]), rel=1e-4)
    dark = f == 0
    assert dark.any() and (sig[dark] == 0).all()
    # Facing away from the sun (a sun behind the plane): no fleck at all.
    behind = replace(ds, sun=(0.0, 0.0, 1.0))
    assert not behind.fleck(view, m.z, 0.2).any()


# --- Frames (no verdict, no score) -----------------------------------------------------------------
def _halves(cam, sets):
    truth = cam.ground_truth(COLOR, sets[-1][COLOR].frame_number)
    face = np.isfinite(truth) & (truth < 0.6)
    cols = np.nonzero(face.any(axis=0))[0]
    mid = (cols[0] + cols[-1]) // 2
    left, right = face.copy(), face.copy()
    left[:, mid:] = False
    right[:, :mid] = False
    return face, left, right


def test_the_panel_colours_the_side_of_the_face_it_faces_and_the_colour_cuts_between_frames():
    uri = ("sim://?realtime=0&seed=3&family=eleventh&light=signage&lux=150&identity=4&projector=0"
           "&distance_mm=450&yaw=0&color_mode=640x480@30")
    cam = sim_camera(uri)
    assert cam.profile.name == "d455f"
    # The panel on the person's image-right (+x), red for the first 0.2 s, then cut to blue.
    cam._scene.signage = _signage(peak_lux=300.0, durations_s=(0.2, 3.0, 4.0), fades_s=(0.0, 0.0, 0.0),
                                  levels=(1.0, 1.0, 1.0))
    cam.start()
    sets, cam = grab(uri, 9, cam=cam)
    cam.stop()
    face, left, right = _halves(cam, sets)
    px = [s[COLOR].pixels.astype(np.float64) for s in sets]

    def red_over_blue(x, m):
        return x[m][:, 2].mean() / x[m][:, 0].mean()

    # Red light: the panel's side redder than the other; blue after the cut: its side bluer.
    assert red_over_blue(px[1], right) > 1.15 * red_over_blue(px[1], left)
    assert red_over_blue(px[-1], right) < 0.87 * red_over_blue(px[-1], left)
    # The IR sees no panel: the face's IR (the room's LEDs alone) the same before and after the cut.
    ir = [s[IR].pixels.astype(np.float64) for s in sets]
    assert ir[-1][face].mean() == pytest.approx(ir[1][face].mean(), rel=0.05, abs=0.5)


def test_sunflecks_move_over_the_face_between_frames_in_colour_and_ir():
    uri = ("sim://?realtime=0&seed=3&family=eleventh&light=dappled_sun&lux=300&identity=4&projector=0"
           "&distance_mm=450&yaw=0&color_mode=640x480@30")
    cam = sim_camera(uri)
    sun = (0.0, -np.sin(np.deg2rad(30.0)), -np.cos(np.deg2rad(30.0)))       # facing the face, from above
    cam._scene.dapple = lobby.DappledSun(sun=sun, fleck_lux=3000.0, fleck_cct=5300.0,
                                         waves=((2 * np.pi / 0.08, 0.0, 0.0, 2.0),), threshold=0.0)
    cam.start()
    sets, cam = grab(uri, 5, cam=cam)
    cam.stop()
    face, _, _ = _halves(cam, sets)
    for kind in (COLOR, IR):
        a = sets[1][kind].pixels.astype(np.float64)
        b = sets[4][kind].pixels.astype(np.float64)     # 0.1 s later: the stripes moved by 16 mm
        a, b = (a, b) if a.ndim == 2 else (a[..., 1], b[..., 1])
        d = (b - a)[face] / max(float(a[face].mean()), 1.0)
        assert (d > 0.15).mean() > 0.08 and (d < -0.15).mean() > 0.08, kind   # lit here, shaded there


# --- People: headscarves in the eleventh family ---------------------------------------------------
def test_eleventh_family_people_have_their_own_headscarves_and_nobody_else_does():
    people = [Identity.draw(i, "eleventh") for i in range(400)]
    covered = [p for p in people if p.scarf is not None]
    assert abs(len(covered) / 400 - SCARF_SHARE) < 0.06
    assert all(SCARF_BROW_MM[0] <= p.scarf_brow_mm <= SCARF_BROW_MM[1] for p in covered)
    assert all(SCARF_OPEN[0] <= p.scarf_open <= SCARF_OPEN[1] for p in covered)
    assert all(SCARF_STANDOFF_MM[0] <= p.scarf_standoff_mm <= SCARF_STANDOFF_MM[1] for p in covered)
    assert {p.scarf for p in covered} == set(range(len(SCARVES)))
    assert not any(p.beard or p.fringe for p in covered)
    assert all(p.scarf_brow_mm == 0.0 and p.scarf_open == 0.0 for p in people if p.scarf is None)
    for fam in ("any",) + EARLIER:
        assert all(Identity.draw(i, fam).scarf is None for i in range(30))


def test_a_headscarf_covers_the_hair_and_the_forehead_down_to_its_edge_in_its_fabric():
    p = next(q for q in (Identity.draw(i, "eleventh") for i in range(100)) if q.scarf is not None)
    bare = head.head_layers(replace(p, scarf=None, scarf_brow_mm=0.0, scarf_open=0.0, scarf_standoff_mm=0.0))
    high = head.head_layers(replace(p, scarf=2, scarf_brow_mm=0.0, scarf_open=0.40, scarf_standoff_mm=5.0))
    low = head.head_layers(replace(p, scarf=1, scarf_brow_mm=20.0, scarf_open=0.40, scarf_standoff_mm=10.0))
    lm = bare.landmarks
    midline = np.abs(bare.gx) < 0.003
    ok = bare.height > head.MISS / 2

    def covered_from(layers):
        fabric = np.abs(layers.albedo - bare.albedo).max(axis=-1) > 0.02
        on = midline & ok & fabric & (bare.gy < lm.eyes[0][1])
        return bare.gy[on].max()                          # the scarf's lowest row on the forehead's midline

    edge_high, edge_low = covered_from(high), covered_from(low)
    assert edge_low - edge_high == pytest.approx(0.020, abs=0.006)      # 20 mm further down the forehead
    assert edge_low < lm.eyes[0][1] - 0.01                             # never over the eyes
    # It stands off the skin by its standoff (folds +-2 mm), and leaves the face's centre bare.
    skin = ok & (bare.height - head.face_height(p, bare.gx, bare.gy) < 1e-6)
    lift = np.where(skin, low.height - bare.height, 0.0)
    assert 0.007 < lift.max() < 0.0125
    centre = (np.abs(bare.gx) < 0.02) & (np.abs(bare.gy - lm.nose[1]) < 0.01)
    assert np.array_equal(low.albedo[centre], bare.albedo[centre]) and np.array_equal(low.nir[centre], bare.nir[centre])
    # The carbon-black fabric is dark at 850 nm, the navy bright; both dark in the visible.
    assert SCARVES[1][2] < 0.1 < 0.5 < SCARVES[2][2] and max(SCARVES[1][1]) < 0.15 and max(SCARVES[2][1]) < 0.15


# --- The earlier families, the tenth included, as main c048119 drew, posed and blinked them ---------
# Computed by family_digest(f, _FIELDS + the later per-person fields, skin_nir=True) with main c048119's
# tree (PYTHONPATH=/work/main, session 22).
_LATER = ("skin_nir_factor", "skin_sheen", "beard_length_mm", "beard_density", "beard_rise_mm")
_MAIN_DIGESTS = {"any": "3ded4168a9c8f45c", "train": "1ad5c6b9cc089bad", "heldout": "5b54ebc2e959e170",
                 "field": "5868ca834c67d6a7", "fresh": "cd7b8130353009e2", "fifth": "ac765deaa3b2d4b2",
                 "sixth": "2747ae25d25bfec3", "seventh": "dd599402d6be17fb", "eighth": "939c98b049c60be0",
                 "ninth": "b5351d1bb5581876", "tenth": "66158f317fd7253a"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS + _LATER, skin_nir=True) == _MAIN_DIGESTS[family]
