"""The seventh family: the Orbbec Gemini 2 L profile, daylight through low-emissivity glazing and a night
street lit by LED street lamps and a backlit advertising panel, its own people (with their own blink
rate and blink duration), and the earlier families (the sixth included) left as they were.

Nothing here computes a verdict, a score or a quality decision on the seventh family: it is the unseen
test family (docs/liveness.md, *The seventh family*)."""


import numpy as np
import pytest

from drivers.frame import StreamKind
from drivers.sim.config import SimConfig
from drivers.sim.families import ENVELOPE, LIGHT_CCT, LIGHT_LUX, POOLS, camera_for, light_for, presentation_query
from drivers.sim.identity import BLINK_S, BLINKS_PER_MIN, BREATH_HZ, SOCKET_M, Identity
from drivers.sim.modes import StreamMode, color_intrinsics, color_mode, depth_intrinsics
from drivers.sim.profiles import PROFILES, get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene, blink_schedule, eyes_closed_at
from drivers.sim.species import wearer_of
from tests.drivers.sim.test_sixth_family import LAM, _cct, _planck, _tail, _white_led
from tests.drivers.sim.test_sixth_family import K as NIR_SCALE
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import assert_own_pools
from tests.helpers.sim import grab

OTHERS = [f for f in POOLS if f != "seventh"]
EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth")


def test_gemini2l_profile_is_the_published_long_baseline_stereo_camera():
    g = get_profile("gemini2l")
    # [G2L-KB]: depth 91° x 66° up to 1280x800 at 30 fps, colour 86° x 55°, depth from 0.2 m.
    native = depth_intrinsics(g, StreamMode(1280, 800, 30))
    assert np.degrees(2 * np.arctan(640 / native.fx)) == pytest.approx(91.0, abs=1.0)
    assert np.degrees(2 * np.arctan(960 / color_intrinsics(g, 1920, 1080).fx)) == pytest.approx(86.0, abs=1.0)
    assert g.depth_range_m[0] == 0.20 and g.stereo_baseline_m == 0.100
    assert g.offers("depth", 1280, 800, 30) and not g.offers("depth", 1280, 800, 60)
    assert g.offers("depth", 640, 400, 15) and g.offers("color", 640, 400, 15)     # [G2L-ROS]'s defaults
    # Active stereo with an on/off dot projector and the SDK's IR auto-exposure (not a fixed exposure).
    assert g.has_projector and g.projector_power is None and not g.structured_light and g.ir_band == "nir"
    lo, hi = g.ir_exposure_range_s
    assert lo < g.ir_exposure_default_s < hi
    # Not the fresh family's Gemini 2: twice the baseline, so half the depth noise at a given distance,
    # and another unit's lenses (no other profile shares its depth or colour focal length).
    g2 = get_profile("gemini2")
    vga = depth_intrinsics(g, StreamMode(640, 480, 30))
    sigma_z = 0.5 ** 2 * g.sigma_disparity_px / (vga.fx * g.stereo_baseline_m)
    sigma_z2 = 0.5 ** 2 * g2.sigma_disparity_px / (g2.depth_intrinsics.fx * g2.stereo_baseline_m)
    assert sigma_z < 0.55 * sigma_z2 and g.stereo_baseline_m > max(p.stereo_baseline_m for p in PROFILES.values()
                                                                    if p.name != g.name)
    others = [p for n, p in PROFILES.items() if n != g.name]
    assert all(round(p.depth_intrinsics.fx) != round(g.depth_intrinsics.fx) for p in others)
    assert all(round(p.color_intrinsics.fx) != round(g.color_intrinsics.fx) for p in others)
    # Its 86° colour lens gives 60 px between the eyes in 350-520 mm only above VGA: it streams 1280x720.
    assert color_intrinsics(g, 640, 480).fx * 0.063 / 0.52 < 60
    chosen = color_mode("", None, 30.0, g)
    assert (chosen.mode.width, chosen.mode.height) == (1280, 720)
    assert chosen.intrinsics.fx * 0.063 / 0.52 > 80


def test_seventh_family_draws_its_own_people_camera_lights_and_illuminances():
    assert_own_pools("seventh", "gemini2l", ("lowe_glass", "street_led"))
    assert {camera_for("seventh", i, None) for i in range(6)} == {"gemini2l"}
    assert {light_for("seventh", i, None) for i in range(6)} == {"lowe_glass", "street_led"}
    queries = [presentation_query("seventh", "live", i) for i in range(40)]
    assert queries == [presentation_query("seventh", "live", i) for i in range(40)]
    assert all(q not in [presentation_query(f, "live", i) for f in OTHERS] for i, q in enumerate(queries))
    for q in queries:
        assert q["family"] == "seventh" and q["camera"] == "gemini2l" and q["light"] in POOLS["seventh"].lights
        lo, hi = LIGHT_CCT[q["light"]]
        assert lo <= float(q["cct"]) <= hi
        lo, hi = LIGHT_LUX[q["light"]]
        assert lo <= float(q["lux"]) <= hi and ENVELOPE["lux"][0] <= lo < hi <= ENVELOPE["lux"][1]
    assert {q["light"] for q in queries} == {"lowe_glass", "street_led"}
    # The lobby covers the 150-500 lux the sixth family's lights left out.
    assert LIGHT_LUX["lowe_glass"][0] <= 150 and LIGHT_LUX["lowe_glass"][1] >= 500
    assert any(150 <= float(q["lux"]) <= 500 for q in queries)
    cfgs = [SimConfig.from_query(q) for q in queries]
    assert {camera_for(c.family, c.identity, c.camera) for c in cfgs} == {"gemini2l"}


# --- The two lights' NIR shares, from spectra (the sixth family's band model and scale) --------------
def _low_e(t_visible, t_850):
    """Spectrally selective glazing: flat in the visible to 650 nm, falling log-linearly to ``t_850``."""
    return np.where(LAM <= 650, t_visible, t_visible * np.exp(np.log(t_850 / t_visible) * (LAM - 650) / 200))


def test_lowe_glass_nir_share_follows_daylight_through_a_low_e_coating():
    sun = _planck(5800)
    assert NIR_SCALE * _tail(sun) == pytest.approx(LIGHT_NIR_SHARE["daylight"], rel=0.02)
    taken = sun * _low_e(0.70, 0.25)                 # double-silver: 0.70 visible, 0.25 at 850 nm
    assert LIGHT_NIR_SHARE["lowe_glass"] == pytest.approx(NIR_SCALE * _tail(taken), rel=0.03)
    lo, hi = LIGHT_CCT["lowe_glass"]
    assert lo <= _cct(taken) <= hi
    # Over the daylight's CCT range and the coatings (triple- to single-silver).
    at = [NIR_SCALE * _tail(_planck(t) * _low_e(0.70, 0.25)) for t in (hi, lo)]
    assert 0.027 < at[0] < LIGHT_NIR_SHARE["lowe_glass"] < at[1] < 0.042
    assert NIR_SCALE * _tail(sun * _low_e(0.65, 0.12)) < 0.6 * LIGHT_NIR_SHARE["lowe_glass"]
    assert NIR_SCALE * _tail(sun * _low_e(0.75, 0.45)) > 1.6 * LIGHT_NIR_SHARE["lowe_glass"]
    # Less NIR per lux than open daylight, more than north sky through tinted glass (fresh).
    n = LIGHT_NIR_SHARE
    assert n["north_sky_glass"] < n["lowe_glass"] < 0.4 * n["daylight"]


def test_street_led_nir_share_follows_the_street_lamps_and_the_backlit_panel():
    ref = _white_led(6000)                            # the plain "led" (0.002)
    for t in (4500, 5000):                           # the band model's blue + garnet LED reaches >= 4450 K
        lamp = _white_led(t)
        assert _cct(lamp) == pytest.approx(t, rel=0.02)
        assert _tail(lamp) / _tail(ref) == pytest.approx(1.0, abs=0.02)
    # The panel's print: ~30 % of the visible, ~70 % at 850 nm (inks clear there): 2.3x per lux.
    panel = 0.70 / 0.30
    assert 0.60 / 0.40 == pytest.approx(1.5) and 0.80 / 0.20 == pytest.approx(4.0)
    share = LIGHT_NIR_SHARE["led"] * (0.6 * 1.0 + 0.4 * panel)
    assert LIGHT_NIR_SHARE["street_led"] == pytest.approx(share, rel=0.02)
    n = LIGHT_NIR_SHARE
    assert n["led"] < n["street_led"] < n["fluorescent"] and n["street_led"] < n["screen_led"]


# --- People: blink rate and blink duration per person in the seventh family -------------------------
def test_seventh_family_people_blink_at_their_own_rate_and_duration_within_human_ranges():
    people = [Identity.draw(i, "seventh") for i in range(200)]
    per_min = np.array([p.blink_per_min for p in people])
    dur = np.array([p.blink_s for p in people])
    assert per_min.min() >= 8 and per_min.max() <= 21 and np.ptp(per_min) > 11
    assert dur.min() >= 0.10 and dur.max() <= 0.40 and np.ptp(dur) > 0.25
    # Every earlier family keeps the one schedule and the one 300 ms blink.
    for fam in ("any",) + EARLIER:
        assert {(p.blink_per_min, p.blink_s) for p in (Identity.draw(i, fam) for i in range(30))} == {(None, BLINK_S)}
    # The sixth family's own draws (sockets, breathing) are not drawn here.
    assert {(p.socket_m, p.breath_hz, p.breath_phase) for p in people[:20]} == {(SOCKET_M, BREATH_HZ, 0.0)}


def test_a_persons_blinks_come_at_their_rate_and_last_their_duration():
    slow, fast = sorted((Identity.draw(i, "seventh") for i in range(80)), key=lambda p: p.blink_per_min)[::79]
    for p in (slow, fast):
        times = np.array(blink_schedule(11, p.blink_per_min))
        gaps = np.diff(times)
        mean = 60.0 / p.blink_per_min
        assert gaps.min() >= mean * 2 / 3.5 - 1e-9 and gaps.max() <= mean * 5 / 3.5 + 1e-9
        assert len(times) / 60 == pytest.approx(p.blink_per_min, rel=0.05)     # blinks a minute over the hour
        assert 0.4 <= times[0] <= 0.4 + mean
    assert BLINKS_PER_MIN[0] <= slow.blink_per_min < 9 and 20 < fast.blink_per_min <= BLINKS_PER_MIN[1]
    # One blink: eyes shut to 1, open again after the person's duration, and the old 300 ms shape at 0.30 s.
    ts = np.arange(0.0, 0.6, 0.001)
    for d in (0.10, 0.25, 0.40):
        ec = np.array([eyes_closed_at([0.0], float(t), d) for t in ts])
        assert ec.max() == 1.0 and ts[ec > 0].max() == pytest.approx(d, abs=0.0015)
        assert ts[ec == 1.0].min() == pytest.approx(0.08 / 0.30 * d, abs=0.0015)
    assert eyes_closed_at([0.0], 0.2) == pytest.approx(1 - 0.06 / 0.16)
    # The scene's eyes follow whoever shows them: the person, or the mask wearer (own rate and duration).
    for subject, blinker in (("live", lambda p: p), ("mask_eyeholes", wearer_of), ("screen_video", lambda p: p)):
        cfg = SimConfig.from_query({"family": "seventh", "identity": "17", "subject": subject, "seed": "2"})
        scene = Scene(cfg)
        who = blinker(scene.identity)
        expected = blink_schedule(cfg.seed + 2, who.blink_per_min)
        grid = np.arange(0.0, 40.0, 0.02)
        got = np.array([scene.eyes_closed(float(t)) for t in grid])
        assert np.array_equal(got, [eyes_closed_at(expected, float(t), who.blink_s) for t in grid])
        everyones = blink_schedule(cfg.seed + 2)
        assert not np.array_equal(got, [eyes_closed_at(everyones, float(t)) for t in grid])


# --- The earlier families, the sixth included, as main 506495d drew, posed and blinked them ---------
_FIELDS = ("index", "family", "skin", "nose_m", "ipd_m", "face_width_m", "brow_m", "chin_m", "length",
           "mirror", "hair_colour", "hair_style", "hairline", "glasses", "beard", "fringe", "clothing",
           "texture_seed", "socket_m", "breath_hz", "breath_phase")
# Computed by this function with main 506495d's drivers/ (its tree from `git archive 506495d`).
_MAIN_DIGESTS = {"any": "d438b9a389172cb4", "train": "583fe569791afabd", "heldout": "2ddc1c5a2d979a8d",
                 "field": "1f9f7f3db8eb6964", "fresh": "f3bebcdca8ccf58e", "fifth": "7e90804d7e4ac756",
                 "sixth": "8ffae34215ad0121"}


def _family_digest(family: str) -> str:
    return family_digest(family, _FIELDS, skin_nir=False)


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert _family_digest(family) == _MAIN_DIGESTS[family]


def test_the_gemini2l_ir_exposure_follows_the_familys_ambient_nir():
    # [G2L-ROS]: the IR auto-exposure is on; the lobby's daylight (0.032 x 3000 lux) shortens the IR
    # exposure that the night street (0.0031 x 15 lux) leaves long. Frames only: no verdict, no score.
    exposure = {}
    for light, lux in (("lowe_glass", 3000), ("street_led", 15)):
        sets, cam = grab(f"sim://?realtime=0&seed=1&family=seventh&light={light}&lux={lux}&identity=3"
                         "&color_mode=640x480@30", 1)
        cam.stop()
        assert cam.profile.name == "gemini2l"
        exposure[light] = sets[-1][StreamKind.IR].metadata.exposure_us
    lo, hi = get_profile("gemini2l").ir_exposure_range_s
    assert lo * 1e6 <= exposure["lowe_glass"] < 0.5 * exposure["street_led"] <= 0.5 * hi * 1e6
