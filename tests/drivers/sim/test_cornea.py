"""``cornea=1``: the corneas mirror the projector and the overhead lamp (drivers/sim/cornea.py). Off by
default and local to the eyes; the Fresnel figure, the sphere's mirrored intensity and the glint's place
against closed forms; the projector's glint only in projector-on light, weighed by the dot pattern at
its point; none under the lids or under a printed eye band, one per eye in a mask's eye holes."""

from functools import lru_cache

import numpy as np
import pytest

from drivers.errors import InvalidUri
from drivers.sim import cornea
from drivers.sim.config import SimConfig
from drivers.sim.render import ViewMaps
from drivers.sim.scene import LAMP_DIR
from drivers.sim.sensor import DOT_IRRADIANCE, PROJECTOR_POWER_MW, DotPattern, ir_signal
from tests.helpers.sim import sim_camera

LIVE = ("sim://?subject=live&identity=3&glasses=none&fringe=0&distance_mm=400&yaw=0&pitch=0&lux=300&seed=4"
        "&torso=0&background=plain")


def test_fresnel_at_normal_and_oblique_incidence_against_the_closed_forms():
    n = cornea.N_CORNEA
    assert cornea.fresnel(1.0) == pytest.approx(((n - 1) / (n + 1)) ** 2, rel=1e-9)
    assert cornea.fresnel(1.0) == pytest.approx(0.0250, abs=1e-4)
    i = np.deg2rad(50.0)
    t = np.arcsin(np.sin(i) / n)                      # Snell
    rs = (np.sin(i - t) / np.sin(i + t)) ** 2
    rp = (np.tan(i - t) / np.tan(i + t)) ** 2
    assert cornea.fresnel(np.cos(i)) == pytest.approx(0.5 * (rs + rp), rel=1e-9)
    assert cornea.fresnel(np.cos(i)) > cornea.fresnel(1.0)


def test_a_mirror_sphere_sends_r_e_a2_over_4_into_every_direction():
    # Parallel rays (along +z) on a sphere of radius a: the reflected directions, binned, are uniform.
    rng = np.random.default_rng(1)
    a = cornea.RADIUS_M
    rho, phi = a * np.sqrt(rng.random(400_000)), rng.uniform(0, 2 * np.pi, 400_000)
    x, y = rho * np.cos(phi), rho * np.sin(phi)
    nrm = np.stack([x, y, -np.sqrt(a * a - x * x - y * y)], axis=1) / a
    d = np.array([0.0, 0.0, 1.0])
    out = d - 2 * (nrm @ d)[:, None] * nrm
    for axis in (np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0])):
        cone = 0.2
        share = float(np.mean(out @ axis > np.cos(cone)))
        omega = 2 * np.pi * (1 - np.cos(cone))
        # Intensity per unit irradiance and reflectance: (share of pi a^2) / omega = a^2 / 4.
        assert share * np.pi * a * a / omega == pytest.approx(a * a / 4, rel=0.03)


@lru_cache(maxsize=16)
def _tick(uri: str, on: bool, t: float = 0.0):
    cam = sim_camera(uri + "&realtime=0")
    cam.start()
    try:
        tick, maps = cam._render_depth(t, on, cam.POWER_RANGE.default)
        return cam, tick, maps
    finally:
        cam.stop()


def test_off_by_default_and_zero_renders_as_without_the_key():
    assert SimConfig.from_query({}).cornea is False
    assert SimConfig.from_query({"cornea": "1"}).cornea is True
    with pytest.raises(InvalidUri):
        SimConfig.from_query({"cornea": "maybe"})
    _, plain, m0 = _tick(LIVE, True)
    _, zero, _ = _tick(LIVE + "&cornea=0", True)
    assert m0.corneal is None
    np.testing.assert_array_equal(plain.ir_signal, zero.ir_signal)


def test_the_key_changes_only_the_eyes_and_not_the_depth():
    _, plain, _ = _tick(LIVE, True)
    cam, lit, m1 = _tick(LIVE + "&cornea=1", True)
    assert m1.corneal is not None and len(m1.corneal) == 2
    changed = np.argwhere(lit.ir_signal != plain.ir_signal)
    assert changed.size
    # Every changed pixel lies within a few pixels of a projector glint or of the lamp's (a few px above).
    near = np.zeros(len(changed), bool)
    for g in m1.corneal:
        near |= (np.abs(changed[:, 1] - g.u) <= 3) & (changed[:, 0] - g.v <= 3) & (g.v - changed[:, 0] <= 12)
    assert near.all()
    np.testing.assert_array_equal(lit.depth_truth, plain.depth_truth)


def test_the_glint_sits_where_the_normal_bisects_source_and_camera_and_on_the_cornea():
    cam, _, maps = _tick(LIVE + "&cornea=1", True)
    view = cam._depth_view
    objs, _, _ = cam._scene_at(0.0)
    head = objs[0]
    src = cam._lights.projector_pos
    for eye, g in zip(head.eyes, maps.corneal, strict=True):
        # Rebuild the corneal centre as the module places it and check the law of reflection at the glint.
        Rv, Tv = head.R, head.T
        rot_c = Rv @ (np.array(eye.apex) + np.array([0, 0, cornea.APEX_TO_ROTATION_M])) + Tv
        gaze = -rot_c / np.linalg.norm(rot_c)
        centre = rot_c + gaze * (cornea.APEX_TO_ROTATION_M - cornea.RADIUS_M)
        ray = np.array([(g.u - view.intrinsics.ppx) / view.intrinsics.fx,
                        (g.v - view.intrinsics.ppy) / view.intrinsics.fy, 1.0]) * g.z
        assert np.linalg.norm(ray - centre) == pytest.approx(cornea.RADIUS_M, rel=1e-6)
        n = (ray - centre) / cornea.RADIUS_M
        to_cam, to_src = -ray / np.linalg.norm(ray), (src - ray) / np.linalg.norm(src - ray)
        mirrored = 2 * (n @ to_cam) * n - to_cam
        assert np.degrees(np.arccos(np.clip(mirrored @ to_src, -1, 1))) < 0.1   # distant-source bisector
        assert n @ gaze > np.cos(cornea.MAX_ANGLE_RAD)
        # The projector sits beside the imager: the glint is offset toward it by ~ r b / (2 z) on the cornea.
        assert (ray - (centre + gaze * cornea.RADIUS_M))[0] * np.sign(src[0]) > 0
    # The lamp (35° above) is mirrored higher on the cornea than the projector (level with the imager).
    lamp = cornea.glints(view, head.R, head.T, head.eyes, 0.0, maps.z, None, LAMP_DIR, 0.3, True)
    assert len(lamp) == 2 and all(lg.v < g.v - 1 for lg, g in zip(lamp, maps.corneal, strict=True))


def test_the_projector_glint_is_in_projector_on_light_only_and_weighed_by_the_pattern():
    cam, on1, m = _tick(LIVE + "&cornea=1", True)
    _, on0, _ = _tick(LIVE, True)
    _, off1, _ = _tick(LIVE + "&cornea=1", False)
    _, off0, _ = _tick(LIVE, False)
    assert off1.dots_signal is None
    power = DOT_IRRADIANCE * (cam.POWER_RANGE.default / PROJECTOR_POWER_MW)
    for g in m.corneal:
        iu, iv = int(round(g.u)), int(round(g.v))
        win = np.s_[iv - 3:iv + 4, iu - 3:iu + 4]
        # Projector off: the key adds only the lamp's glint (above), nothing at the projector's.
        core = np.s_[iv - 2:iv + 3, iu - 2:iu + 3]
        assert np.abs(off1.ir_signal[core] - off0.ir_signal[core]).max() < 0.05 * g.albedo * power * (0.5 / g.z) ** 2
        added = float((on1.dots_signal[win] - on0.dots_signal[win]).sum())
        # Equivalent albedo x the projector's irradiance at its depth x (flood floor + the dot there).
        base = g.albedo * power * (0.5 / g.z) ** 2
        assert 0.25 * base * 0.999 <= added <= 1.25 * base * 1.001


def test_no_glint_under_closed_lids_or_a_printed_band_and_one_per_eye_in_mask_eye_holes():
    cam, _, maps = _tick(LIVE + "&cornea=1", True)
    head = cam._scene_at(0.0)[0][0]
    assert cornea.glints(cam._depth_view, head.R, head.T, head.eyes, 1.0, maps.z, cam._lights.projector_pos,
                         None, 1.0, True) == []
    _, _, band = _tick("sim://?subject=print_eyes&identity=3&distance_mm=400&yaw=0&lux=300&seed=4&cornea=1", True)
    assert band.corneal is None
    _, _, holes = _tick("sim://?subject=mask_eyeholes&identity=3&distance_mm=400&yaw=0&lux=300&seed=4&cornea=1",
                        True)
    assert holes.corneal is not None and len(holes.corneal) == 2




def _plane_maps(glint_dots):
    shape = (120, 160)
    full = lambda v, dt=np.float32: np.full(shape, v, dt)  # noqa: E731
    return ViewMaps(full(0.4), np.full(shape + (3,), 0.5, np.float32), full(0.5), full(1.0), full(0, np.int8),
                    full(0.5), full(0.0), full(False, bool), glint_dots=glint_dots)


def test_a_glossy_film_mirrors_the_projector_dot_by_dot_in_both_signal_paths():
    dots = DotPattern.make(160, 120)
    film = np.zeros((120, 160), np.float32)
    film[40:80, 50:110] = 2.0
    power = DOT_IRRADIANCE * (0.5 / 0.4) ** 2
    for lux in (300.0, np.float64(300.0)):             # a Python float: the banded path; numpy: the plain one
        _, matte = ir_signal(_plane_maps(None), lux, 4000.0, True, dots)
        sig, glossy = ir_signal(_plane_maps(film), lux, 4000.0, True, dots)
        assert matte is not None and glossy is not None
        # Per unit of mirrored irradiance: the flood floor 0.25 plus the pattern at each pixel (0..1).
        pattern = (glossy - matte)[40:80, 50:110] / (2.0 * power) - 0.25
        assert pattern.min() > -1e-4 and pattern.max() < 1.0 + 1e-4 and pattern.max() - pattern.min() > 0.5
        np.testing.assert_allclose((glossy - matte)[:40], 0.0, atol=1e-6)
        _, off = ir_signal(_plane_maps(film), lux, 4000.0, False, dots)
        assert off is None
