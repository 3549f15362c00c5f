"""The ninth family: the Orbbec Gemini 336 profile, a lobby at night under a CCTV camera's 850 nm flood
(independent of the lux) and a branch under flickering LED light, its own people (with their own skin
sheen), and the earlier families (the eighth included) left as they were.

Nothing here computes a verdict, a score or a quality decision on the ninth family: it is the unseen
test family (docs/liveness.md, *The ninth family*). Tests open its URIs for frames only."""

import numpy as np
import pytest

from drivers.frame import StreamKind
from drivers.sim import night
from drivers.sim.config import SimConfig
from drivers.sim.families import LIGHT_LUX
from drivers.sim.identity import SKIN_SHEEN, Identity
from drivers.sim.modes import StreamMode, color_intrinsics, color_mode, depth_intrinsics
from drivers.sim.profiles import PROFILES, get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.helpers.blackbody import nir_mw_per_lux
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import assert_live_queries_in_range, assert_own_pools
from tests.helpers.sim import grab

EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth")
IR, COLOR = StreamKind.IR, StreamKind.COLOR


def test_gemini336_profile_is_the_published_short_baseline_ir_pass_camera():
    g = get_profile("gemini336")
    # [G336-SEEED]: depth 90° x 65° at 1280x800, 50 mm, colour 86° x 55° up to 1920x1080, rolling shutter.
    native = depth_intrinsics(g, StreamMode(1280, 800, 30))
    assert np.degrees(2 * np.arctan(640 / native.fx)) == pytest.approx(90.0, abs=3.0)
    assert np.degrees(2 * np.arctan(640 / color_intrinsics(g, 1280, 800).fx)) == pytest.approx(86.0, abs=3.0)
    assert g.stereo_baseline_m == 0.050 and g.color_shutter == "rolling" and g.offers("color", 1920, 1080, 30)
    assert g.has_projector and g.projector_power is None and not g.structured_light and g.ir_band == "nir"
    assert g.ir_auto_exposure
    lo, hi = g.ir_exposure_range_s
    assert lo < g.ir_exposure_default_s < hi
    # Not the field family's Gemini 335: another unit's lenses (no other profile shares its focal lengths).
    others = [p for n, p in PROFILES.items() if n != g.name]
    assert all(round(p.depth_intrinsics.fx) != round(g.depth_intrinsics.fx) for p in others)
    assert all(round(p.color_intrinsics.fx) != round(g.color_intrinsics.fx) for p in others)
    # >= 60 px between the eyes somewhere in 350-520 mm in the colour mode a driver picks for the face.
    chosen = color_mode("", None, 30.0, g)
    assert chosen.intrinsics.fx * 0.063 / 0.35 > 60


def test_ninth_family_draws_its_own_people_camera_lights_and_illuminances():
    assert_own_pools("ninth", "gemini336", ("cctv_ir", "flicker_led"))
    assert LIGHT_LUX["cctv_ir"] == (15.0, 150.0) and LIGHT_LUX["flicker_led"] == (100.0, 1000.0)
    assert_live_queries_in_range("ninth", "gemini336")


# --- The CCTV camera's 850 nm flood -----------------------------------------------------------------
def test_one_lux_equivalent_is_the_3000k_black_bodys_850nm_band_per_lux():
    # Planck at 3000 K, the CIE photopic curve (Gaussian approximation), 683 lm/W: 850 nm over 50 nm
    # per lux is 1.59 mW/m^2; the sim's scale gives that light 0.35 lux-equivalents per lux.
    per_lux_mw = nir_mw_per_lux(3000.0)
    assert per_lux_mw == pytest.approx(1.59, abs=0.01)
    assert night.MW_M2_PER_LUX_EQ == pytest.approx(per_lux_mw / 0.35, rel=0.005)
    # I / d^2: 500 mW/sr at 2 m is 125 mW/m^2, 27.5 lux-equivalents; the drawn range 3.7-264.
    assert night.irradiance_lux_eq(500.0, 2.0) == pytest.approx(125.0 / 4.54)
    assert night.irradiance_lux_eq(150.0, 3.0) == pytest.approx(3.67, abs=0.01)
    assert night.irradiance_lux_eq(1200.0, 1.0) == pytest.approx(264.3, abs=0.1)


def test_the_flood_is_drawn_per_session_and_does_not_follow_the_lux():
    def flood(seed, lux):
        return Scene(SimConfig.from_query({"family": "ninth", "light": "cctv_ir", "seed": str(seed),
                                           "lux": str(lux), "distance_mm": "450"})).ir_flood
    assert flood(5, 15) == flood(5, 150)            # the dome's IR is the same whatever the lobby's lux
    floods = [flood(s, 50) for s in range(40)]
    lo, hi = night.irradiance_lux_eq(night.FLOOD_MW_SR[0], 3.0), night.irradiance_lux_eq(night.FLOOD_MW_SR[1], 1.0)
    assert all(lo <= f.lux_eq <= hi for f in floods) and len({f.lux_eq for f in floods}) == 40
    assert {np.sign(f.position[0]) for f in floods} == {-1.0, 1.0}     # from either side
    assert all(f.position[1] < 0 for f in floods)                       # from above
    assert LIGHT_NIR_SHARE["cctv_ir"] == LIGHT_NIR_SHARE["led"]          # the dimmed LED's own NIR
    assert Scene(SimConfig.from_query({"family": "ninth", "light": "flicker_led", "seed": "5"})).ir_flood is None


def _halves(uri):
    sets, cam = grab(uri, 1)
    cam.stop()
    s = sets[-1]
    out = []
    for kind in (IR, COLOR):
        truth = cam.ground_truth(kind, s[kind].frame_number)
        face = np.isfinite(truth) & (truth < 0.6)
        cols = np.nonzero(face.any(axis=0))[0]
        mid = (cols[0] + cols[-1]) // 2
        px = s[kind].pixels.astype(np.float64)
        px = px if px.ndim == 2 else px @ np.array([0.114, 0.587, 0.299])
        left, right = face.copy(), face.copy()
        left[:, mid:] = False
        right[:, :mid] = False
        out.append(np.median(px[left]) / max(np.median(px[right]), 1e-9))
    return out, cam._scene


def test_the_flood_brightens_the_face_side_facing_the_dome_in_ir_not_in_colour():
    # Frames only. Projector off, so the IR is the dimmed LED's ambient (0.1 lux-equivalents) and the flood.
    uri = ("sim://?realtime=0&seed=3&family=ninth&light=cctv_ir&lux=50&identity=4&projector=0"
           "&distance_mm=450&yaw=0&color_mode=640x480@30")
    (ir, col), scene = _halves(uri)
    toward = ir if scene.ir_flood.position[0] < 0 else 1.0 / max(ir, 1e-9)
    assert toward > 1.15                              # the dome's side of the face is brighter in IR
    assert 0.9 < col < 1.1                            # the colour camera does not see 850 nm


def test_a_raised_bar_casts_the_floods_shadow_on_the_side_away_from_the_dome():
    # A wall 0.40 m from the depth camera with a bar 12 mm in front of it (a spectacle rim's height), the
    # dome up and to the left: the wall below-right of the bar is in its shadow, above-left is not.
    from drivers.sim.optics import DEPTH_VIEW
    i = DEPTH_VIEW.intrinsics
    z = np.full((i.height // 2, i.width // 2), 0.40, np.float32)
    cy, cx = i.height // 4, i.width // 4
    z[cy - 3:cy + 3, cx - 40:cx + 40] = 0.388
    rays = DEPTH_VIEW.rays[::2, ::2]
    x, y = rays[..., 0] * z, rays[..., 1] * z
    lamp = np.array([-1.0, -1.5, -0.3])
    v = np.stack([lamp[0] - x, lamp[1] - y, lamp[2] - z])
    lx, ly, lz = v / np.linalg.norm(v, axis=0)
    shadow = night.cast_shadow(DEPTH_VIEW, z, (x, y, z), (lx, ly, lz), np.ones(z.shape, bool))
    assert shadow[cy + 4:cy + 8, cx - 20:cx + 20].mean() > 0.9     # the wall just below the bar
    assert not shadow[cy - 9:cy - 4, cx - 20:cx + 20].any()       # above it, facing the dome
    assert not shadow[:cy - 20].any() and not shadow[cy + 30:].any()   # the open wall
    assert not shadow[cy - 3:cy + 3, cx - 30:cx + 30].any()       # the bar's own face


def test_a_cast_shadow_leaves_the_fill_only():
    # The live/0-like scene (spectacles, the dome up-left): the flood's shadowed skin gets its fill alone.
    uri = ("sim://?subject=live&family=ninth&identity=567&seed=112336195&camera=gemini336&light=cctv_ir"
           "&lux=113.7&distance_mm=374&realtime=0&projector=0")
    from tests.helpers.sim import sim_camera
    cam = sim_camera(uri)
    objs, planes, _ = cam._objects(0.0)
    dmaps = cam._render(cam._depth_view, objs, planes)
    base = np.zeros(dmaps.z.shape, np.float32)
    lit = cam._flooded_ir(base.copy(), dmaps)
    unshadowed = night.cast_shadow
    try:
        night.cast_shadow = lambda view, z, p, d, lit, stride=2: np.zeros(lit.shape, bool)
        open_ = cam._flooded_ir(base.copy(), dmaps)
    finally:
        night.cast_shadow = unshadowed
    face = dmaps.object_id == 0
    ratio = lit[face] / np.maximum(open_[face], 1e-9)
    assert (ratio <= 1.0 + 1e-5).all() and 0.01 < (ratio < 0.8).mean() < 0.3


# --- Flicker ---------------------------------------------------------------------------------------
def test_the_flickers_exposure_mean_is_the_closed_form_and_depends_on_the_exposure():
    f = night.Flicker(hz=100.0, depth=0.8, phase=0.3)
    for t0, exp_s in ((0.0, 0.001), (0.0123, 0.0047), (0.5, 0.0333), (0.01, 0.01)):
        t = np.linspace(t0, t0 + exp_s, 200001)
        numeric = np.trapezoid(1 + f.depth * np.cos(2 * np.pi * f.hz * t + f.phase), t) / exp_s
        assert f.factor(t0, exp_s) == pytest.approx(numeric, abs=1e-6)
    # A whole period sees none of it; a short exposure nearly all of it.
    assert f.factor(0.0042, 0.010) == pytest.approx(1.0, abs=1e-12)
    short = [f.factor(k / 30, 0.0002) for k in range(30)]
    assert max(short) - min(short) > 1.5 * f.depth
    draws = [night.Flicker.draw(np.random.default_rng(s)) for s in range(60)]
    assert {round(d.hz / 10) * 10 for d in draws} == {100, 120}
    assert all(night.FLICKER_DEPTH[0] <= d.depth <= night.FLICKER_DEPTH[1] for d in draws)


def test_colour_frames_change_from_frame_to_frame_under_flicker_at_a_short_exposure():
    # 1000 lux: the colour AE settles on ~3 ms, less than a third of a 100 Hz period. Frames only.
    uri = ("sim://?realtime=0&seed=3&family=ninth&light=flicker_led&lux=1000&identity=4&projector=0"
           "&distance_mm=450&color_mode=640x480@30")
    sets, cam = grab(uri, 10)
    cam.stop()
    f = cam._scene.flicker
    assert f is not None and abs(f.hz - 100.0) < 1 and sets[-1][COLOR].metadata.exposure_us < 4000
    means = np.array([s[COLOR].pixels.mean() for s in sets[4:]])
    assert np.ptp(means) / means.mean() > 0.05
    # The IR's ambient part gets its own exposure's factor (the dots do not flicker).
    tick, _ = cam._render_depth(0.0, False, 150.0)
    a = cam._flickered(tick, 1, 0.0002).mean() - tick.ir_signal.mean()
    b = cam._flickered(tick, 1, 0.010).mean() - tick.ir_signal.mean()
    assert a == pytest.approx((f.factor(1 / 30, 0.0002) - 1) * tick.ambient.mean(), rel=1e-3) and abs(b) < abs(a)


# --- People: the skin's sheen in the ninth family --------------------------------------------------
def test_ninth_family_people_have_their_own_skin_sheen_and_nobody_else_does():
    sheen = np.array([Identity.draw(i, "ninth").skin_sheen for i in range(200)])
    assert sheen.min() >= SKIN_SHEEN[0] and sheen.max() <= SKIN_SHEEN[1] and np.ptp(sheen) > 0.1
    for fam in ("any",) + EARLIER:
        assert {Identity.draw(i, fam).skin_sheen for i in range(30)} == {0.0}


def test_the_sheen_adds_a_highlight_under_the_flood():
    scene = Scene(SimConfig.from_query({"family": "ninth", "light": "cctv_ir", "seed": "3", "identity": "4",
                                        "distance_mm": "450"}))
    uri = "sim://?realtime=0&seed=3&family=ninth&light=cctv_ir&lux=50&identity=4&projector=0&distance_mm=450"
    from tests.helpers.sim import sim_camera
    cam = sim_camera(uri)
    objs, planes, _ = cam._objects(0.0)
    dmaps = cam._render(cam._depth_view, objs, planes)
    base = np.zeros(dmaps.z.shape, np.float32)
    with_sheen = cam._flooded_ir(base.copy(), dmaps)
    ident = cam._scene.identity
    cam._scene.identity = type(ident)(**{**ident.__dict__, "skin_sheen": 0.0})
    without = cam._flooded_ir(base.copy(), dmaps)
    extra = with_sheen - without
    assert scene.identity.skin_sheen > 0 and extra.max() > 0.5 * scene.ir_flood.lux_eq * SKIN_SHEEN[0]
    assert (extra >= 0).all() and (extra[dmaps.object_id != 0] == 0).all()


# --- The earlier families, the eighth included, as main da1c6a5 drew, posed and blinked them --------
# Computed by family_digest(f, _FIELDS, skin_nir=True) with main da1c6a5's drivers/ (PYTHONPATH=/work/main).
_MAIN_DIGESTS = {"any": "31417bb5fd242509", "train": "3b56db08719f04fa", "heldout": "dfaccc65fc5dd3f4",
                 "field": "37e49a8a85bc7bce", "fresh": "d67c7aea186a349f", "fifth": "87e3abe0dba2ebb1",
                 "sixth": "57be4b08f78ad111", "seventh": "a2a8b2ed8e3b5d67", "eighth": "516b12c0f68e3359"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS, skin_nir=True) == _MAIN_DIGESTS[family]
