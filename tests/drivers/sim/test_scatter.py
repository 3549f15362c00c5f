"""The projector dots' scattering models (``scatter=fixed``, the default, and ``scatter=physical``)."""

import cv2
import numpy as np
import pytest

import drivers
from drivers.frame import StreamKind
from drivers.sim.profiles import D415
from drivers.sim.render import ViewMaps
from drivers.sim.sensor import SCATTER_CORE, DotPattern, ir_signal, scatter_sigma_px, scattered_pattern
from drivers.sim.subject import MATERIALS, PAPER, RESIN, SKIN, scatter_mm_table
from tests.helpers.sim import grab

IR = StreamKind.IR


@pytest.mark.parametrize("value", ["wet", "", "Physical", "1"])
def test_a_bad_scatter_value_is_an_invalid_uri(value):
    with pytest.raises(drivers.InvalidUri, match="scatter must be one of fixed, physical") as ei:
        drivers.open(f"sim://?realtime=0&scatter={value}")
    assert ei.value.code == "DRV_INVALID_URI"


@pytest.mark.parametrize("value", ["fixed", "physical"])
def test_both_scatter_models_open(value):
    cam = drivers.open(f"sim://?realtime=0&scatter={value}")
    assert cam.cfg.scatter == value


def test_materials_sharing_a_pixel_blur_share_a_width_and_skin_scatters_most_of_the_hard_ones():
    keys, mm = scatter_mm_table()
    for m in MATERIALS:
        assert float(np.interp(np.float32(m.dot_blur_px), keys, mm)) == pytest.approx(m.scatter_mm), m.name
    assert SKIN.scatter_mm >= 1.0 and max(PAPER.scatter_mm, RESIN.scatter_mm) <= 0.3


def _spot_variance(img: np.ndarray) -> float:
    """Second moment (px², along x) of an image's energy about its centroid."""
    ys, xs = np.mgrid[:img.shape[0], :img.shape[1]]
    w = img / img.sum()
    cx = float((w * xs).sum())
    return float((w * (xs - cx) ** 2).sum())


@pytest.mark.parametrize("fx", [383.0, 593.0])
def test_a_dot_on_skin_spreads_by_its_width_in_mm_times_fx_over_z(fx):
    # One dot on skin: its spread is SCATTER_CORE unscattered plus the rest as a Gaussian of
    # 1.5 mm * fx / z, so its variance (over the dot's own) is (1 - core) * sigma^2: 4x at half the
    # distance, and proportional to fx^2. Energy is kept.
    dot = np.zeros((81, 81), np.float32)
    dot[40, 40] = 1.0
    blur = np.full(dot.shape, SKIN.dot_blur_px, np.float32)
    extra = {}
    for z in (0.35, 0.5, 0.7):
        out = scattered_pattern(dot, blur, np.full(dot.shape, z, np.float32), fx)
        assert out.sum() == pytest.approx(1.0, rel=1e-3)
        extra[z] = _spot_variance(out)
        sigma = SKIN.scatter_mm * 1e-3 * fx / z
        # The levels are interpolated in variance: exact at the levels, within a few % between.
        assert extra[z] == pytest.approx((1 - SCATTER_CORE) * sigma ** 2, rel=0.08), (z, sigma)
    assert extra[0.35] > extra[0.5] > extra[0.7]
    assert extra[0.35] / extra[0.7] == pytest.approx(4.0, rel=0.1)


def test_the_width_in_pixels_follows_the_focal_length_and_the_distance():
    blur = np.array([SKIN.dot_blur_px, PAPER.dot_blur_px], np.float32)
    near = scatter_sigma_px(blur, np.array([0.35, 0.35], np.float32), D415.depth_intrinsics.fx)
    far = scatter_sigma_px(blur, np.array([0.7, 0.7], np.float32), D415.depth_intrinsics.fx)
    assert near == pytest.approx(np.array([SKIN.scatter_mm, PAPER.scatter_mm]) * D415.depth_intrinsics.fx / 350.0)
    assert far == pytest.approx(near / 2)


def _plane(material_blur: float, z: float) -> ViewMaps:
    """A flat, evenly lit surface of one material filling a 640x480 IR view at distance ``z``."""
    h, w = 480, 640
    f32 = np.float32
    return ViewMaps(z=np.full((h, w), z, f32), albedo=np.full((h, w, 3), 0.5, f32),
                    nir=np.full((h, w), 0.5, f32), shade=np.ones((h, w), f32),
                    object_id=np.zeros((h, w), np.int8), dot_blur=np.full((h, w), material_blur, f32),
                    specular=np.zeros((h, w), f32), emissive=np.zeros((h, w), bool))


def _dot_contrast(material_blur: float, z: float, scatter: str, lux: float, core: float = SCATTER_CORE) -> float:
    """Contrast of the projector's part of the IR light (noiseless) on a plane: its fine detail
    (minus a sigma-2 px blur) over its mean, as the speckle measure takes it; spreading lowers it."""
    fx = D415.depth_intrinsics.fx
    dots = DotPattern.make(640, 480, fx=fx)
    _, lit = ir_signal(_plane(material_blur, z), lux, 5000.0, True, dots, profile=D415, scatter=scatter,
                       scatter_core=core)
    assert lit is not None
    inner = lit[40:-40, 40:-40]
    fine = (lit - cv2.GaussianBlur(lit, (0, 0), 2.0))[40:-40, 40:-40]
    return float(fine.std() / inner.mean())


# ir_signal's banded path (Python float light) and its general one (a numpy scalar)
@pytest.mark.parametrize("lux", [150.0, np.float32(150.0)])
def test_physical_dots_on_skin_sharpen_with_distance_on_paper_hardly_fixed_ones_do_not(lux):
    # Under ``physical`` skin's blur in pixels halves from 0.35 m to 0.7 m, so its dots keep more
    # of their contrast far away; paper scatters little at any distance; the fixed model blurs by
    # the same pixels at every distance.
    phys = {z: _dot_contrast(SKIN.dot_blur_px, z, "physical", lux) for z in (0.35, 0.5, 0.7)}
    assert phys[0.35] < phys[0.5] < phys[0.7] and phys[0.7] > 1.2 * phys[0.35], phys
    paper = {z: _dot_contrast(PAPER.dot_blur_px, z, "physical", lux) for z in (0.35, 0.7)}
    assert min(paper.values()) > phys[0.7] and paper[0.7] / paper[0.35] < 1.1, paper
    fixed = {z: _dot_contrast(SKIN.dot_blur_px, z, "fixed", lux) for z in (0.35, 0.7)}
    assert fixed[0.7] / fixed[0.35] == pytest.approx(1.0, abs=0.06), fixed     # (the parallax's resampling)
    assert phys[0.7] / phys[0.35] > fixed[0.7] / fixed[0.35] + 0.15, (phys, fixed)


def test_a_physical_scatter_uri_reaches_the_sensor_and_fixed_is_the_default():
    # The same scene and seed: skin's dots are spread differently, so the lit IR frame differs;
    # ``scatter=fixed`` gives the default's pixels.
    frames = {}
    for s in ("", "&scatter=fixed", "&scatter=physical"):
        cam = drivers.open(f"sim://?realtime=0&seed=3&identity=2&camera=d415&distance_mm=400{s}")
        cam.start()
        frames[s] = grab("", 2, cam)[0][-1][IR].pixels
        cam.stop()
    assert np.array_equal(frames[""], frames["&scatter=fixed"])
    assert not np.array_equal(frames[""], frames["&scatter=physical"])


@pytest.mark.parametrize("value", ["-0.1", "1.5", "nan", "half"])
def test_a_bad_scatter_core_is_an_invalid_uri(value):
    with pytest.raises(drivers.InvalidUri, match="scatter_core must be") as ei:
        drivers.open(f"sim://?realtime=0&scatter=physical&scatter_core={value}")
    assert ei.value.code == "DRV_INVALID_URI"


def test_the_unscattered_core_defaults_to_the_sensors_and_keeps_dots_sharper():
    from drivers.sim.config import SimConfig
    assert SimConfig().scatter_core == SCATTER_CORE
    # A halo alone (core 0) spreads skin's dots more than the default core does, more still at 0.35 m.
    halo = {z: _dot_contrast(SKIN.dot_blur_px, z, "physical", 150.0, core=0.0) for z in (0.35, 0.7)}
    cored = {z: _dot_contrast(SKIN.dot_blur_px, z, "physical", 150.0) for z in (0.35, 0.7)}
    assert halo[0.35] < cored[0.35] and halo[0.7] < cored[0.7] and halo[0.7] > 1.5 * halo[0.35], (halo, cored)
