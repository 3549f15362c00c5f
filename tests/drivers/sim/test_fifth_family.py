"""The fifth family: the Orbbec Gemini 336L profile, warm-white LED downlights and compact
fluorescent light, its own people, and the refusal of every other family's cameras and lights."""

import numpy as np
import pytest

import drivers
from drivers.sim.families import LIGHT_CCT, POOLS, camera_for, light_for, presentation_query
from drivers.sim.modes import StreamMode, color_intrinsics, color_mode, depth_intrinsics
from drivers.sim.profiles import PROFILES, get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE
from tests.helpers.family_pools import assert_own_pools

OTHERS = [f for f in POOLS if f != "fifth"]


def test_gemini336l_fields_of_view_baseline_offset_and_modes_are_the_published_ones():
    g = get_profile("gemini336l")
    # [G336L]: 90° depth and 94°x68° colour, both at the native 1280x800.
    native_depth = depth_intrinsics(g, StreamMode(1280, 800, 30))
    native_color = color_intrinsics(g, 1280, 800)
    assert np.degrees(2 * np.arctan(640 / native_depth.fx)) == pytest.approx(90.0, abs=0.5)
    assert np.degrees(2 * np.arctan(640 / native_color.fx)) == pytest.approx(94.0, abs=0.5)
    assert np.degrees(2 * np.arctan(400 / native_color.fy)) == pytest.approx(68.0, abs=1.0)
    assert g.depth_range_m == (0.25, 6.0) and g.stereo_baseline_m == 0.095
    # [G330-CS] table 2: the colour origin 23.75 mm along +x of the left imager's.
    assert np.allclose(np.asarray(g.depth_to_color.translation), [0.02375, 0.0, 0.0])
    assert g.has_projector and g.projector_power is None and not g.structured_light and g.ir_band == "nir"
    assert g.offers("depth", 1280, 800, 30) and g.offers("color", 1280, 800, 30)
    assert not g.offers("depth", 1280, 800, 60)
    # A camera of its own, not a renamed one: no other profile has its depth geometry (the Gemini 335
    # shares its 90° depth lens, the D455 its 95 mm baseline), its colour lens or its colour module's place.
    others = [p for n, p in PROFILES.items() if n != "gemini336l"]
    assert all((p.stereo_baseline_m, round(p.depth_intrinsics.fx)) != (0.095, 384) for p in others)
    assert all(round(p.color_intrinsics.fx) != round(g.color_intrinsics.fx) for p in others)
    assert all(not np.allclose(np.asarray(p.depth_to_color.translation), np.asarray(g.depth_to_color.translation))
               for p in others)
    # Its 94° colour lens keeps 60 px between the eyes at 0.6 m only at 1280x720 (640x480: 38 px).
    chosen = color_mode("", None, 30.0, g)
    assert (chosen.mode.width, chosen.mode.height) == (1280, 720)
    assert color_intrinsics(g, 640, 480).fx * 0.063 / 0.6 < 60 < chosen.intrinsics.fx * 0.063 / 0.6


def test_fifth_family_draws_its_own_people_camera_and_lights():
    assert_own_pools("fifth", "gemini336l", ("led_warm", "cfl"))
    assert {camera_for("fifth", i, None) for i in range(6)} == {"gemini336l"}
    assert {light_for("fifth", i, None) for i in range(6)} == {"led_warm", "cfl"}
    queries = [presentation_query("fifth", "live", i) for i in range(12)]
    assert queries == [presentation_query("fifth", "live", i) for i in range(12)]
    assert all(q not in [presentation_query(f, "live", i) for f in OTHERS] for i, q in enumerate(queries))
    for q in queries:
        assert q["family"] == "fifth" and q["camera"] == "gemini336l" and q["light"] in POOLS["fifth"].lights
        lo, hi = LIGHT_CCT[q["light"]]
        assert lo <= float(q["cct"]) <= hi
    cam = drivers.open("sim://?" + "&".join(f"{k}={v}" for k, v in queries[0].items()))
    assert cam.profile.name == "gemini336l"


# The CIE 1931 2° observer as Wyman, Sloan and Shirley's (2013) multi-lobe fit, on 380-1000 nm.
LAM = np.arange(380.0, 1001.0)


def _lobe(mu, s1, s2):
    return np.exp(-0.5 * ((LAM - mu) / np.where(LAM < mu, s1, s2)) ** 2)


XBAR = 1.056 * _lobe(599.8, 37.9, 31.0) + 0.362 * _lobe(442.0, 16.0, 26.7) - 0.065 * _lobe(501.1, 20.4, 26.2)
YBAR = 0.821 * _lobe(568.8, 46.9, 40.5) + 0.286 * _lobe(530.9, 16.3, 31.1)
ZBAR = 1.217 * _lobe(437.0, 11.8, 36.0) + 0.681 * _lobe(459.0, 26.0, 13.8)


def _cct(spd):
    """McCamy's approximation from the CIE 1931 chromaticity."""
    x_, y_, z_ = (float(np.sum(c * spd)) for c in (XBAR, YBAR, ZBAR))
    x, y = x_ / (x_ + y_ + z_), y_ / (x_ + y_ + z_)
    n = (x - 0.3320) / (0.1858 - y)
    return 449 * n ** 3 + 3525 * n ** 2 + 6823.3 * n + 5520.33


def _tail(spd):
    """Mean spectral radiance over 830-870 nm per unit luminance."""
    band = (LAM >= 830) & (LAM <= 870)
    return spd[band].mean() / np.sum(YBAR * spd)


def _emitter(peak_nm, fwhm_nm):
    """A Gaussian band in photon energy, unit radiant power, per nm."""
    e = 1239.84 / LAM
    e0 = 1239.84 / peak_nm
    sigma = (1239.84 / (peak_nm - fwhm_nm / 2) - 1239.84 / (peak_nm + fwhm_nm / 2)) / 2.3548
    b = np.exp(-0.5 * ((e - e0) / sigma) ** 2) * e ** 2
    return b / b.sum()


def _white(red, red_share, target_k):
    """Blue pump + garnet + ``red``, the blue share set for the CCT nearest ``target_k``."""
    blue, garnet = _emitter(450, 20), _emitter(560, 115)
    mixes = [b * blue + (1 - b - red_share) * garnet + red_share * red for b in np.arange(0.005, 0.3, 0.0025)]
    return min(mixes, key=lambda s: abs(_cct(s) - target_k))


def test_fifth_lights_nir_shares_follow_their_spectra():
    # The observer fit and McCamy's formula put black bodies at their temperature (within 2 %).
    def planck(t):
        return LAM ** -5 / np.expm1(1.4388e7 / (LAM * t))
    assert _cct(planck(2856)) == pytest.approx(2856, rel=0.02) and _cct(planck(5800)) == pytest.approx(5800, rel=0.02)
    # The band model: a 6000 K garnet-only white is the plain "led" (0.002).
    cool = _white(_emitter(620, 80), 0.0, 6000)
    assert _cct(cool) == pytest.approx(6000, rel=0.03)
    # It reproduces led_cri95's 1.4-1.7x for a deep red (650 nm) phosphor at 3250-3600 K ...
    for share in (0.3, 0.4):
        deep = _white(_emitter(650, 90), share, 2850)
        assert 1.35 < _tail(deep) / _tail(cool) < 1.7
    # ... and gives a warm white (orange-red 620 nm phosphor, 30-45 % of the power, 2700-3000 K)
    # 0.72-0.80 of the plain LED's tail per lux: led_warm = 0.002 x 0.76.
    ratios = []
    for share, target in ((0.40, 3000), (0.45, 2700)):
        warm = _white(_emitter(620, 80), share, target)
        assert LIGHT_CCT["led_warm"][0] - 100 <= _cct(warm) <= LIGHT_CCT["led_warm"][1] + 100
        ratios.append(_tail(warm) / _tail(cool))
    assert all(0.65 < r < 0.85 for r in ratios)
    assert LIGHT_NIR_SHARE["led_warm"] == pytest.approx(LIGHT_NIR_SHARE["led"] * np.mean(ratios), rel=0.08)
    # CFL: the tube's argon lines per lux scaled by the efficacies (~90 lm/W tube, ~60 lm/W CFL).
    assert LIGHT_NIR_SHARE["cfl"] == pytest.approx(LIGHT_NIR_SHARE["fluorescent"] * 90 / 60)
    # Where that puts them: the least NIR of any light, and a CFL between the tube and metal halide.
    assert LIGHT_NIR_SHARE["led_warm"] == min(LIGHT_NIR_SHARE.values())
    assert LIGHT_NIR_SHARE["fluorescent"] < LIGHT_NIR_SHARE["cfl"] < LIGHT_NIR_SHARE["north_sky_glass"]
