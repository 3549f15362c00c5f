"""The tenth family: the Intel RealSense D435f profile, a branch's glazed street front (a bright street
behind the head; passers-by's shadows sweeping the face), its own people (with their own facial hair),
and the earlier families (the ninth included) left as they were.

Nothing here computes a verdict, a score or a quality decision on the tenth family: it is the unseen
test family (docs/liveness.md, *The tenth family*). Tests open its URIs for frames and light only."""

from dataclasses import replace

import numpy as np
import pytest

from drivers.frame import StreamKind
from drivers.sim import head, street
from drivers.sim.config import SimConfig
from drivers.sim.families import LIGHT_LUX, POOLS
from drivers.sim.identity import BEARD_DENSITY, BEARD_LENGTH_MM, BEARD_RISE_MM, BEARD_SHARE, Identity
from drivers.sim.modes import StreamMode, color_mode, depth_intrinsics
from drivers.sim.optics import views_for
from drivers.sim.profiles import GAIN_RS16, PROFILES, get_profile
from drivers.sim.render import ViewMaps
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from drivers.sim.sensor import color_irradiance, illuminant_bgr
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import assert_live_queries_in_range, assert_own_pools
from tests.helpers.sim import grab

OTHERS = [f for f in POOLS if f != "tenth"]
EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth")
IR, COLOR = StreamKind.IR, StreamKind.COLOR


def test_d435f_profile_is_the_d435_behind_an_ir_pass_filter_on_librealsense():
    f, d435 = get_profile("d435f"), get_profile("d435")
    # [DS]: the D435's 87° depth field at 1280x800 and 50 mm baseline; [D435F]: the filter keeps the NIR band.
    native = depth_intrinsics(f, StreamMode(1280, 800, 30))
    assert np.degrees(2 * np.arctan(640 / native.fx)) == pytest.approx(87.0, abs=3.0)
    assert f.stereo_baseline_m == 0.050 and f.ir_band == "nir" and not f.structured_light
    # librealsense's controls: laser power in mW (0..360, step 30), IR exposure in µs up to 165 ms, RS16 gain.
    assert f.projector_power == d435.projector_power and f.projector_power is not None
    assert (f.projector_power.minimum, f.projector_power.maximum, f.projector_power.step) == (0.0, 360.0, 30.0)
    assert f.ir_exposure_range_s == (1e-6, 0.165) and f.ir_units.gain == GAIN_RS16 and f.ir_auto_exposure
    assert f.stream_modes == d435.stream_modes
    # Another unit: no other profile shares its focal lengths.
    others = [p for n, p in PROFILES.items() if n != f.name]
    assert all(round(p.depth_intrinsics.fx) != round(f.depth_intrinsics.fx) for p in others)
    assert all(round(p.color_intrinsics.fx) != round(f.color_intrinsics.fx) for p in others)
    # >= 60 px between the eyes somewhere in 350-520 mm in the colour mode a driver picks for the face.
    assert color_mode("", None, 30.0, f).intrinsics.fx * 0.063 / 0.35 > 60


def test_tenth_family_draws_its_own_people_camera_lights_and_illuminances():
    assert_own_pools("tenth", "d435f", ("backlight", "passing_shade"))
    assert LIGHT_LUX["backlight"] == (80.0, 400.0) and LIGHT_LUX["passing_shade"] == (300.0, 2000.0)
    assert_live_queries_in_range("tenth", "d435f")


# --- Closed forms on a synthetic 640x480 view: the left half the glazing (1.6 m), the right a face at 0.45 m ---
def _maps(h=480, w=640, z_face=0.45):
    behind = np.zeros((h, w), bool)
    behind[:, : w // 2] = True
    rng = np.random.default_rng(1)
    return ViewMaps(
        z=np.where(behind, 1.6, z_face).astype(np.float32),
        albedo=rng.uniform(0.2, 0.6, (h, w, 3)).astype(np.float32),
        nir=rng.uniform(0.3, 0.6, (h, w)).astype(np.float32),
        shade=rng.uniform(0.5, 1.0, (h, w)).astype(np.float32),
        object_id=np.where(behind, -1, 0).astype(np.int8),
        dot_blur=np.zeros((h, w), np.float32), specular=rng.uniform(0.0, 0.1, (h, w)).astype(np.float32),
        emissive=np.zeros((h, w), bool))


def test_the_street_replaces_the_glazings_light_and_rims_the_silhouette_in_closed_form():
    view = views_for(get_profile("d435f"))[0]
    m = _maps()
    bl = street.Backlight(street_lux=12000.0, street_cct=6000.0, rim=0.1, rim_width_m=0.005)
    lux, cct, share = 200.0, 3500.0, LIGHT_NIR_SHARE["backlight"]
    irr0 = color_irradiance(m, lux, cct)
    irr = bl.color(irr0.copy(), view, m, lux, cct)
    day = illuminant_bgr(6000.0)
    # The glazing: the street's daylight on the wall's albedo, whatever the room's light.
    want = (0.35 + 0.65 * m.shade[5, 3]) * 12000.0 * day * m.albedo[5, 3]
    assert irr[5, 3] == pytest.approx(want, rel=1e-5)
    # The face: the room's light plus the rim, falling off as exp(-d / width) behind the silhouette.
    for k in (1, 2, 5):
        col = 319 + k
        d_m = k * 0.45 / view.intrinsics.fx
        rim = 0.1 * 12000.0 * np.exp(-d_m / 0.005)
        assert irr[7, col] == pytest.approx(irr0[7, col] + rim * day * m.albedo[7, col], rel=1e-5)
    assert np.allclose(irr[:, 400:], irr0[:, 400:], rtol=1e-4)          # 80 px in: 93 mm, nothing left
    # IR: the street's 850 nm (0.09 per lux) in place of the room's on the glazing; the rim's on the face.
    sig0 = np.full(m.z.shape, 0.5, np.float32)
    sig = bl.ir(sig0, view, m, lux, share)
    diffuse = m.nir * (1 - m.specular)
    assert sig[5, 3] == pytest.approx(0.5 + (12000.0 * 0.09 - lux * share) * diffuse[5, 3]
                                      * (0.3 + 0.7 * m.shade[5, 3]), rel=1e-5)
    rim1 = 0.1 * 12000.0 * np.exp(-(0.45 / view.intrinsics.fx) / 0.005)
    assert sig[7, 320] == pytest.approx(0.5 + rim1 * 0.09 * diffuse[7, 320], rel=1e-5)
    # Drawn per session from its own stream, within the ranges.
    draws = [street.Backlight.draw(np.random.default_rng(s)) for s in range(50)]
    assert all(5000.0 <= b.street_lux <= 30000.0 and 0.04 <= b.rim <= 0.15 for b in draws)


def test_a_passing_shadow_band_sweeps_at_its_speed_and_takes_its_share_in_closed_form():
    # The arithmetic of the window's share: 75 % of the lux, 99.3 % of the 850 nm (daylight 0.09, LED 0.002).
    assert street.PASSING_NIR_SHARE == pytest.approx(0.068) == LIGHT_NIR_SHARE["passing_shade"]
    assert street.WINDOW_NIR == pytest.approx(0.0675 / 0.068)
    lost = [d * street.WINDOW_LUX for d in street.SHADOW_DEPTH]
    assert lost == pytest.approx([0.30, 0.75])
    s = street.PassingShadows(normal=(1.0, 0.0, 0.0), centre_m=0.0, speed_mps=0.4, band_m=0.4, penumbra_m=0.05,
                              depth=0.8, gap_s=1.0, phase_s=0.0)
    assert s.period_s == pytest.approx(0.8 / 0.4 + 1.0)
    assert s.band_centre(0.0) == pytest.approx(-0.4) and s.band_centre(1.0) == pytest.approx(0.0)
    assert s.band_centre(1.5) == pytest.approx(0.2) and s.band_centre(2.5) is None   # between passes
    assert s.band_centre(3.0 + 1.0) == pytest.approx(0.0)                            # the next pass
    back = replace(s, speed_mps=-0.4)
    assert back.band_centre(0.5) == pytest.approx(0.2)                               # walking the other way
    view = views_for(get_profile("d435f"))[0]
    m = _maps()
    m = replace(m, z=np.full(m.z.shape, 0.45, np.float32), object_id=np.zeros(m.z.shape, np.int8))
    x = view.rays[..., 0] * 0.45                      # each pixel's x (m) on the plane z = 0.45
    sh = s.shadow(view, m.z, 1.0)                     # the band centred on x = 0: 0.2 m either side
    assert (sh[np.abs(x) < 0.2 - 0.025] == 1.0).all()
    edge = np.abs(np.abs(x) - 0.2) < 0.01
    assert edge.any() and np.allclose(sh[edge], 0.5 - (np.abs(x[edge]) - 0.2) / 0.05, atol=1e-5)
    lux, cct = 800.0, 5500.0
    irr0 = color_irradiance(m, lux, cct)
    irr = s.color(irr0.copy(), view, m, lux, cct, 1.0)
    c = np.unravel_index(np.argmin(np.abs(x)), x.shape)
    want = irr0[c] - 0.8 * 0.75 * (0.35 + 0.65 * m.shade[c]) * lux * illuminant_bgr(cct) * m.albedo[c]
    assert irr[c] == pytest.approx(want, rel=1e-4)
    amb = lux * 0.068 * m.nir * (1 - m.specular) * (0.3 + 0.7 * m.shade)
    sig = s.ir(amb.copy(), view, m, lux, 0.068, 1.0)
    assert sig[c] == pytest.approx(amb[c] * (1 - 0.8 * street.WINDOW_NIR), rel=1e-4)
    assert np.array_equal(s.ir(amb.copy(), view, m, lux, 0.068, 2.5), amb)            # no band, no change
    # Drawn: the edge crosses the face's 0.16 m in 0.2-1.0 s.
    draws = [street.PassingShadows.draw(np.random.default_rng(k), 0.45) for k in range(60)]
    assert all(0.2 - 1e-9 <= street.FACE_M / abs(d.speed_mps) <= 1.0 + 1e-9 for d in draws)
    assert {np.sign(d.speed_mps) for d in draws} == {-1.0, 1.0}


# --- Frames --------------------------------------------------------------------------------------
def _face_and_background(sets, cam, kind):
    s = sets[-1]
    truth = cam.ground_truth(kind, s[kind].frame_number)
    face = np.isfinite(truth) & (truth < 0.6)
    px = s[kind].pixels.astype(np.float64)
    px = px if px.ndim == 2 else px @ np.array([0.114, 0.587, 0.299])
    behind = ~np.isfinite(truth) | (truth > 1.2)
    return float(np.median(px[face])), float(np.median(px[behind]))


def test_under_backlight_the_street_outshines_the_face_in_colour_and_ir():
    # Frames only. Projector off: the IR is the room's LEDs' (0.002 per lux) and the street's daylight.
    uri = ("sim://?realtime=0&seed=3&family=tenth&light=backlight&lux=200&identity=4&projector=0"
           "&distance_mm=450&yaw=0&color_mode=640x480@30")
    sets, cam = grab(uri, 2)
    cam.stop()
    assert cam._scene.backlight is not None and cam.profile.name == "d435f"
    face, behind = _face_and_background(sets, cam, COLOR)
    assert behind > 3 * face
    face_ir, behind_ir = _face_and_background(sets, cam, IR)
    assert behind_ir > face_ir + 10


def _crossing_seed():
    """A seed whose first pass's band reaches the face's centre between 0.1 and 0.5 s."""
    for seed in range(200):
        sh = Scene(SimConfig.from_query({"family": "tenth", "light": "passing_shade", "seed": str(seed),
                                         "identity": "4", "distance_mm": "450"})).shadows
        ts = np.arange(0.0, 0.6, 1 / 60)
        inside = [c is not None and abs(c) < sh.band_m / 2 for c in (sh.band_centre(float(t)) for t in ts)]
        if not inside[0] and any(inside[6:30]):
            return seed, sh
    raise AssertionError("no seed")


def test_a_passing_shadow_moves_across_the_face_between_frames():
    # Frames only: the person keeps still (yaw 0), the band sweeps the face from one side to the other.
    seed, sh = _crossing_seed()
    uri = (f"sim://?realtime=0&seed={seed}&family=tenth&light=passing_shade&lux=800&identity=4&projector=0"
           "&distance_mm=450&yaw=0&color_mode=640x480@30")
    sets, cam = grab(uri, 12)
    cam.stop()
    assert cam._scene.shadows == sh
    truth = cam.ground_truth(COLOR, sets[-1][COLOR].frame_number)
    face = np.isfinite(truth) & (truth < 0.6)
    cols = np.nonzero(face.any(axis=0))[0]
    mid = (cols[0] + cols[-1]) // 2
    left, right = face.copy(), face.copy()
    left[:, mid:] = False
    right[:, :mid] = False
    # The band moves along -x (image left) when speed x normal_x < 0: the right half is shaded first.
    first, second = (right, left) if sh.speed_mps * sh.normal[0] < 0 else (left, right)
    g = [s[COLOR].pixels[..., 1].astype(np.float64) for s in sets]
    a = np.array([x[first].mean() for x in g])
    b = np.array([x[second].mean() for x in g])
    assert (a[0] + b[0]) / ((a + b).min()) > 1.15               # the face loses light as the band comes
    k = 6                                                       # 0.2 s in: the leading half darkened first
    assert a[k] / a[0] < 0.9 and a[k] / a[0] < b[k] / b[0] - 0.05
    assert b[-1] / b[k] < 0.95                                  # then the other half


# --- People: facial hair in the tenth family ------------------------------------------------------
def test_tenth_family_people_have_their_own_facial_hair_and_nobody_else_does():
    people = [Identity.draw(i, "tenth") for i in range(400)]
    bearded = [p for p in people if p.beard]
    assert abs(len(bearded) / 400 - BEARD_SHARE) < 0.06
    lengths = np.array([p.beard_length_mm for p in bearded])
    assert lengths.min() >= BEARD_LENGTH_MM[0] and lengths.max() <= BEARD_LENGTH_MM[1]
    assert (lengths < 3).sum() > 5 and (lengths > 10).sum() > 5            # stubble and full beards
    assert all(BEARD_DENSITY[0] <= p.beard_density <= BEARD_DENSITY[1] for p in bearded)
    assert all(BEARD_RISE_MM[0] <= p.beard_rise_mm <= BEARD_RISE_MM[1] for p in bearded)
    assert all(p.beard_length_mm is None and p.beard_rise_mm == 0.0 for p in people if not p.beard)
    for fam in ("any",) + EARLIER:
        assert all(Identity.draw(i, fam).beard_length_mm is None and Identity.draw(i, fam).beard_density is None
                   for i in range(30))
        assert Identity.draw(3, fam).beard_standoff_m == 0.006


def test_a_longer_beard_stands_further_off_and_a_higher_one_reaches_up_the_cheeks():
    p = next(q for q in (Identity.draw(i, "tenth") for i in range(100)) if q.beard)
    bare = head.head_layers(replace(p, beard=False, beard_length_mm=None, beard_density=None, beard_rise_mm=0.0))
    low = head.head_layers(replace(p, beard_length_mm=2.0, beard_density=0.9, beard_rise_mm=0.0))
    high = head.head_layers(replace(p, beard_length_mm=24.0, beard_density=0.9, beard_rise_mm=25.0))
    ok = bare.height > head.MISS / 2
    d_low, d_high = np.where(ok, low.height - bare.height, 0), np.where(ok, high.height - bare.height, 0)
    assert d_low.max() == pytest.approx(0.001, abs=1e-6) and d_high.max() == pytest.approx(0.012, abs=1e-6)
    # The beard's upper edge (rows down the face, gy grows downward) is ~25 mm higher.
    cheeks = np.abs(bare.gx) > 0.05
    top_low = bare.gy[(d_low > 0.0005) & cheeks].min()
    top_high = bare.gy[(d_high > 0.006) & cheeks].min()
    assert top_low - top_high > 0.015
    middle = np.abs(bare.gx) < 0.02                    # not over the nose and the mouth
    assert bare.gy[(d_high > 0.006) & middle].min() == pytest.approx(bare.gy[(d_low > 0.0005) & middle].min(),
                                                                     abs=0.004)


# --- The earlier families, the ninth included, as main 1083e10 drew, posed and blinked them ----------
# Computed by family_digest(f, _FIELDS, skin_nir=True) with main 1083e10's tree (PYTHONPATH=/work/main);
# any..eighth as test_ninth_family pins them (main da1c6a5).
_MAIN_DIGESTS = {"any": "31417bb5fd242509", "train": "3b56db08719f04fa", "heldout": "dfaccc65fc5dd3f4",
                 "field": "37e49a8a85bc7bce", "fresh": "d67c7aea186a349f", "fifth": "87e3abe0dba2ebb1",
                 "sixth": "57be4b08f78ad111", "seventh": "a2a8b2ed8e3b5d67", "eighth": "516b12c0f68e3359",
                 "ninth": "e196453371c82dab"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS, skin_nir=True) == _MAIN_DIGESTS[family]
