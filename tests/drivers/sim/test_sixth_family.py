"""The sixth family: the Orbbec Astra Mini S Pro profile, open shade under a kiosk canopy and a night
vestibule lit by a screen and an LED strip, its own people (with their own eye sockets and breathing),
the refusal of every other family's cameras and lights, and the earlier families left as they were.

Nothing here computes a verdict, a score or a quality decision on the sixth family: it is the unseen
test family (docs/liveness.md, *The sixth family*)."""

import hashlib
import json

import numpy as np
import pytest

from drivers.sim import head
from drivers.sim.config import SimConfig
from drivers.sim.families import ENVELOPE, LIGHT_CCT, LIGHT_LUX, POOLS, camera_for, light_for, presentation_query
from drivers.sim.identity import BREATH_HZ, SOCKET_M, Identity
from drivers.sim.modes import StreamMode, color_intrinsics, color_mode, depth_intrinsics
from drivers.sim.profiles import GAIN_NONE, PROFILES, get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from drivers.sim.species import wearer_of
from tests.helpers.family_pools import assert_own_pools

OTHERS = [f for f in POOLS if f != "sixth"]
EARLIER = ("train", "heldout", "field", "fresh", "fifth")


def test_astra_mini_s_profile_is_the_published_short_range_structured_light_camera():
    g = get_profile("astra_mini_s")
    # [AMS]: optimised range 0.35-1.0 m; depth and IR VGA/QVGA at 30 fps; colour VGA/QVGA at 30 fps and
    # HD at 30 fps as the Astra Pro's UVC colour camera (the plain Mini S: 10 fps).
    assert g.depth_range_m == (0.35, 1.0)
    assert g.offers("depth", 640, 480, 30) and g.offers("ir", 320, 240, 30) and not g.offers("depth", 640, 480, 60)
    assert g.offers("color", 1280, 720, 30) and not g.offers("color", 1920, 1080, 30)
    # The series' 60° depth field (recalled for the Mini S), a projector it triangulates against.
    vga = depth_intrinsics(g, StreamMode(640, 480, 30))
    assert np.degrees(2 * np.arctan(320 / vga.fx)) == pytest.approx(60.0, abs=0.1)
    assert g.structured_light and g.has_projector and g.projector_power is None and g.ir_band == "nir"
    assert g.stereo_baseline_m == g.projector_offset_m
    # Not the held-out family's Astra S: another range, baseline, colour lens, and frame metadata (SDK v2).
    astra = get_profile("astra")
    assert g.depth_range_m != astra.depth_range_m and g.stereo_baseline_m < astra.stereo_baseline_m
    assert round(g.color_intrinsics.fx) != round(astra.color_intrinsics.fx)
    assert astra.color_units.gain == GAIN_NONE and g.color_units.gain != GAIN_NONE
    assert all(round(p.color_intrinsics.fx) != round(g.color_intrinsics.fx) for n, p in PROFILES.items() if n != g.name)
    # VGA colour keeps 60 px between the eyes only nearer than ~0.55 m (55 px at the drivers' 0.6 m),
    # so it streams HD (a crop: the same field across, twice the pixels) for the face.
    vga_fx = color_intrinsics(g, 640, 480).fx
    assert vga_fx * 0.063 / 0.6 < 60 < vga_fx * 0.063 / 0.52
    chosen = color_mode("", None, 30.0, g)
    assert (chosen.mode.width, chosen.mode.height) == (1280, 720)
    assert chosen.intrinsics.fx == pytest.approx(2 * vga_fx) and chosen.intrinsics.fx * 0.063 / 0.6 > 100


def test_sixth_family_draws_its_own_people_camera_lights_and_illuminances():
    assert_own_pools("sixth", "astra_mini_s", ("open_shade", "screen_led"))
    assert {camera_for("sixth", i, None) for i in range(6)} == {"astra_mini_s"}
    assert {light_for("sixth", i, None) for i in range(6)} == {"open_shade", "screen_led"}
    queries = [presentation_query("sixth", "live", i) for i in range(40)]
    assert queries == [presentation_query("sixth", "live", i) for i in range(40)]
    assert all(q not in [presentation_query(f, "live", i) for f in OTHERS] for i, q in enumerate(queries))
    for q in queries:
        assert q["family"] == "sixth" and q["camera"] == "astra_mini_s" and q["light"] in POOLS["sixth"].lights
        lo, hi = LIGHT_CCT[q["light"]]
        assert lo <= float(q["cct"]) <= hi
        # Open shade by day is bright, the vestibule at night dim; both inside the envelope.
        lo, hi = LIGHT_LUX[q["light"]]
        assert lo <= float(q["lux"]) <= hi and ENVELOPE["lux"][0] <= lo < hi <= ENVELOPE["lux"][1]
    assert {q["light"] for q in queries} == {"open_shade", "screen_led"}
    # Every query is a valid URI of the family (SimConfig validates it as the camera's open does).
    cfgs = [SimConfig.from_query(q) for q in queries]
    assert {camera_for(c.family, c.identity, c.camera) for c in cfgs} == {"astra_mini_s"}


# --- The two lights' NIR shares, from spectra (the scale: 850 nm band per lux, 2856 K -> 0.40) ---------
LAM = np.arange(380.0, 1001.0)


def _lobe(mu, s1, s2):
    return np.exp(-0.5 * ((LAM - mu) / np.where(LAM < mu, s1, s2)) ** 2)


# The CIE 1931 2° observer as Wyman, Sloan and Shirley's (2013) multi-lobe fit, on 380-1000 nm.
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
    return spd[(LAM >= 830) & (LAM <= 870)].mean() / np.sum(YBAR * spd)


def _planck(t):
    return LAM ** -5 / np.expm1(1.4388e7 / (LAM * t))


K = 0.40 / _tail(_planck(2856))                     # the scale of scene.LIGHT_NIR_SHARE


def _per_lux(spd):
    return spd / np.sum(YBAR * spd)


def _emitter(peak_nm, fwhm_nm):
    """A Gaussian band in photon energy, unit radiant power, per nm."""
    e, e0 = 1239.84 / LAM, 1239.84 / peak_nm
    sigma = (1239.84 / (peak_nm - fwhm_nm / 2) - 1239.84 / (peak_nm + fwhm_nm / 2)) / 2.3548
    b = np.exp(-0.5 * ((e - e0) / sigma) ** 2) * e ** 2
    return b / b.sum()


def _white_led(target_k):
    """A blue pump and a garnet phosphor, the blue share set for the CCT nearest ``target_k``."""
    blue, garnet = _emitter(450, 20), _emitter(560, 115)
    return min((b * blue + (1 - b) * garnet for b in np.arange(0.005, 0.3, 0.0025)),
               key=lambda s: abs(_cct(s) - target_k))


def test_open_shade_nir_share_follows_skylight_and_the_sunlit_ground():
    sun = _planck(5800)
    assert K * _tail(sun) == pytest.approx(LIGHT_NIR_SHARE["daylight"], rel=0.02)
    sky = sun * LAM ** -1.75                         # as north_sky_glass's skylight, before the glass
    assert K * _tail(sky) == pytest.approx(0.042, rel=0.03) and _cct(sky) > 9000
    concrete = 0.28 + 0.08 * (LAM - 450) / 400       # grey pavement, 0.28 at 450 nm to 0.36 at 850 nm
    plants = 0.04 + 0.08 * np.exp(-0.5 * ((LAM - 550) / 30) ** 2) + 0.45 / (1 + np.exp(-(LAM - 715) / 10))

    def shade(w_sky, w_ground, w_plants):
        return w_sky * _per_lux(sky) + w_ground * _per_lux(sun * concrete) + w_plants * _per_lux(sun * plants)
    taken = shade(0.45, 0.45, 0.10)
    assert LIGHT_NIR_SHARE["open_shade"] == pytest.approx(K * _tail(taken), rel=0.05)
    lo, hi = LIGHT_CCT["open_shade"]
    assert lo <= _cct(taken) <= hi
    # The range over the ground's make-up: no planting to a fifth of the light off planting.
    assert 0.07 < K * _tail(shade(0.5, 0.5, 0.0)) < K * _tail(taken) < K * _tail(shade(0.4, 0.4, 0.2)) < 0.17
    # Shade sends more NIR per lux than open daylight; less than any black body below 3500 K.
    assert LIGHT_NIR_SHARE["daylight"] < LIGHT_NIR_SHARE["open_shade"] < LIGHT_NIR_SHARE["halogen"]


def test_screen_led_nir_share_follows_the_lcd_and_the_led_strip():
    ref = _white_led(6000)                            # the plain "led" (0.002)
    for t in LIGHT_CCT["screen_led"]:
        strip = _white_led(t)
        assert _cct(strip) == pytest.approx(t, rel=0.02)
        assert _tail(strip) / _tail(ref) == pytest.approx(1.0, abs=0.02)
    # The LCD: ~5 % of the backlight's visible light, ~50 % of its 850 nm tail (polarisers and colour
    # filters clear there): 10x the NIR per lux of the bare LED; 6-12x over 4-8 % and 45-55 %.
    lcd = 0.50 / 0.05
    assert 0.45 / 0.08 < 6 and 0.55 / 0.04 > 12
    backlight = _tail(_white_led(6500)) / _tail(ref)
    share = LIGHT_NIR_SHARE["led"] * (0.6 * lcd * backlight + 0.4 * 1.0)
    assert LIGHT_NIR_SHARE["screen_led"] == pytest.approx(share, rel=0.03)
    n = LIGHT_NIR_SHARE
    assert n["led"] < n["fluorescent"] < n["screen_led"] < n["cfl"]


# --- People: eye sockets and breathing per person in the sixth family, as before elsewhere -----------
def test_sixth_family_people_have_their_own_eye_sockets_and_breathing_within_human_ranges():
    people = [Identity.draw(i, "sixth") for i in range(200)]
    socket_mm = np.array([p.socket_m for p in people]) * 1000
    per_min = np.array([p.breath_hz for p in people]) * 60
    phase = np.array([p.breath_phase for p in people])
    # Hertel 12-21 mm (mean 16.5) -> sockets 6.5-15.5 mm around the 11 mm everyone had.
    assert socket_mm.min() >= 6.5 - 1e-9 and socket_mm.max() <= 15.5 + 1e-9
    assert abs(np.median(socket_mm) - 11.0) < 0.5 and 1.5 < socket_mm.std() < 2.5
    assert per_min.min() >= 12 and per_min.max() <= 20 and per_min.max() - per_min.min() > 7
    assert phase.min() >= 0 and phase.max() < 2 * np.pi and np.ptp(phase) > 5.5
    # Every earlier family keeps the one socket and the one rate in phase.
    for fam in ("any",) + EARLIER:
        assert {(p.socket_m, p.breath_hz, p.breath_phase) for p in (Identity.draw(i, fam) for i in range(30))} == \
            {(SOCKET_M, BREATH_HZ, 0.0)}


def test_the_socket_depth_shapes_the_face_and_the_breathing_moves_the_head():
    deep, shallow = sorted((Identity.draw(i, "sixth") for i in range(60)), key=lambda p: p.socket_m)[::59]
    gx, gy = head.head_grid()
    for p in (deep, shallow):
        (lx, ly), _ = head.landmarks(p).eyes
        j, i = np.unravel_index(np.argmin((gx - lx) ** 2 + (gy - ly) ** 2), gx.shape)
        as_before = Identity(**{**p.__dict__, "socket_m": SOCKET_M})
        dip = head.face_height(p, gx, gy)[j, i] - head.face_height(as_before, gx, gy)[j, i]
        # At the eye centre the socket term is the socket depth (the other eye's tail adds ~0.1 %).
        assert dip == pytest.approx(-(p.socket_m - SOCKET_M), rel=0.02, abs=2e-5)
    # The head moves with the person's own breathing: the breathing term of the pose's height is
    # 1.5 mm x sin(2 pi f t + phase); the same scene with another rate and phase moves otherwise.
    for subject, mover in (("live", lambda p: p), ("mask", wearer_of)):
        cfg = SimConfig.from_query({"family": "sixth", "identity": "17", "subject": subject, "seed": "2"})
        scene = Scene(cfg)
        who = mover(scene.identity)
        ts = np.arange(0.0, 8.0, 0.25)
        dy = np.array([scene.pose(float(t), rigid_static=False)[1][1] for t in ts])
        sway = np.array([0.0006 * scene._motion.value(float(t), 4) for t in ts])
        breath = 0.0015 * np.sin(2 * np.pi * who.breath_hz * ts + who.breath_phase)
        assert np.allclose(dy - sway, breath, atol=1e-12)
        assert not np.allclose(breath, 0.0015 * np.sin(2 * np.pi * BREATH_HZ * ts), atol=2e-4)


# --- The earlier families, as main f50f5c3 drew and posed them -------------------------------------
_OLD_FIELDS = ("index", "family", "skin", "nose_m", "ipd_m", "face_width_m", "brow_m", "chin_m", "length",
               "mirror", "hair_colour", "hair_style", "hairline", "glasses", "beard", "fringe", "clothing",
               "texture_seed")
# Computed by this function with main f50f5c3's drivers/ (its tree from `git archive f50f5c3`).
_MAIN_DIGESTS = {"train": "ae71a8efde96fb57", "heldout": "0089093f778ea47e", "field": "7f83a11e9163fd12",
                 "fresh": "6bf2885ca05e9738", "fifth": "4badb1311fd24e08"}


def _family_digest(family: str) -> str:
    """People (their fields as before), presentation queries, one face's height field and three
    subjects' poses over 6 s, rounded (1e-9 m, 1e-12) so only a change of the simulation shows."""
    h = hashlib.sha256()
    for i in range(30):
        p = Identity.draw(i, family)
        h.update(repr(tuple(getattr(p, n) for n in _OLD_FIELDS)).encode())
        for sp in ("live", "mask", "print"):
            h.update(json.dumps(presentation_query(family, sp, i), sort_keys=True).encode())
    gx, gy = head.head_grid()
    h.update(np.round(head.face_height(Identity.draw(7, family), gx[::4, ::4], gy[::4, ::4]), 9).tobytes())
    for sp in ("live", "mask", "print"):
        scene = Scene(SimConfig.from_query({"family": family, "identity": "7", "subject": sp, "seed": "5"}))
        for t in np.arange(0.0, 6.0, 0.4):
            R, T, _ = scene.pose(float(t), rigid_static=False)
            h.update(np.round(np.concatenate([R.ravel(), T]), 12).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("family", EARLIER)
def test_earlier_families_people_scenes_and_poses_are_unchanged(family):
    assert _family_digest(family) == _MAIN_DIGESTS[family]
