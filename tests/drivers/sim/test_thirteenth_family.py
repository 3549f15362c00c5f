"""The thirteenth family: the Intel RealSense D435i profile (IR imagers with no IR-pass filter: ``ir_leak``
on every URI, the kiosk screen's light included), LED panels dimmed by PWM banding the rolling-shutter
colour image (``pwm.py``), attack displays drawn bright and held still, its own people (their own
palpebral fissure), and the earlier families (the twelfth included) left as they were.

Nothing here computes a verdict, a score or a quality decision on the thirteenth family: it was built as the
unseen test family and evaluated once in the twenty-fourth session (docs/liveness.md, *The thirteenth
family*). Tests open its URIs for frames, light and refusals only."""

from dataclasses import replace

import numpy as np
import pytest

from drivers import realsense_device
from drivers.frame import StreamKind
from drivers.sim import leak, pwm, species
from drivers.sim.config import SimConfig
from drivers.sim.families import LIGHT_CCT, LIGHT_LUX, POOLS, presentation_query
from drivers.sim.identity import FISSURE_MM, Identity
from drivers.sim.modes import StreamMode, color_mode, depth_intrinsics
from drivers.sim.night import Flicker
from drivers.sim.profiles import PROFILES, get_profile
from drivers.sim.render import ViewMaps
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from drivers.sim.sensor import SCREEN_LUMINANCE_LUX, color_irradiance
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import assert_own_pools
from tests.helpers.sim import grab, sim_camera

EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
           "twelfth")
IR, COLOR, DEPTH = StreamKind.IR, StreamKind.COLOR, StreamKind.DEPTH


def test_d435i_profile_is_the_d430_module_with_broadband_imagers_and_a_rolling_shutter_colour():
    f, d435 = get_profile("d435i"), get_profile("d435")
    native = depth_intrinsics(f, StreamMode(1280, 800, 30))
    assert np.degrees(2 * np.arctan(640 / native.fx)) == pytest.approx(87.0, abs=3.0)
    assert f.stereo_baseline_m == 0.050 and f.ir_band == "nir" and not f.structured_light and f.has_projector
    # [D435I]: no infrared-blocking filter: visible light reaches the monochrome imagers (leak.py).
    assert f.visible_response == (1.0, 1.0, 1.0)
    # [DS]: the OV2740 colour module reads out row by row (the PWM banding needs it); global-shutter IR.
    assert f.color_shutter == "rolling" and f.depth_shutter == "global"
    assert f.projector_power == d435.projector_power and f.stream_modes == d435.stream_modes
    # Another unit: no other profile shares its focal lengths.
    others = [p for n, p in PROFILES.items() if n != f.name]
    assert all(round(p.depth_intrinsics.fx) != round(f.depth_intrinsics.fx) for p in others)
    assert all(round(p.color_intrinsics.fx) != round(f.color_intrinsics.fx) for p in others)
    # >= 60 px between the eyes somewhere in 350-520 mm, in depth and in the colour mode a driver picks.
    assert f.depth_intrinsics.fx * 0.063 / 0.52 > 45 and f.depth_intrinsics.fx * 0.063 / 0.35 > 60
    assert color_mode("", None, 30.0, f).intrinsics.fx * 0.063 / 0.52 > 60
    # The hardware driver reads "Intel RealSense D435I" as a D435 (its tables' key).
    assert realsense_device.model_of("Intel RealSense D435I") == "D435"


def test_thirteenth_family_draws_its_own_pools_with_ir_leak_on_every_uri():
    assert_own_pools("thirteenth", "d435i", ("pwm_led",))
    assert POOLS["thirteenth"].ir_leak
    assert LIGHT_LUX["pwm_led"] == (100.0, 800.0) and LIGHT_CCT["pwm_led"] == (3000, 5000)
    assert LIGHT_NIR_SHARE["pwm_led"] == LIGHT_NIR_SHARE["led"]
    for i in range(40):
        q = presentation_query("thirteenth", "live", i)
        assert q["camera"] == "d435i" and q["light"] == "pwm_led"
        assert 100.0 <= float(q["lux"]) <= 800.0 and 3000 <= int(q["cct"]) <= 5000
        assert SimConfig.from_query(q).ir_leak_on                     # the family's flag, no key needed


# --- PWM: closed forms -----------------------------------------------------------------------------
def _brute(light: pwm.PwmLight, t0: float, e: float, n: int = 200_001) -> float:
    t = np.linspace(t0, t0 + e, n)
    on = ((t - light.t_on_s) * light.hz) % 1.0 < light.duty
    return float(on.mean() / light.duty)


def test_pwm_light_integrates_a_square_wave_per_row_in_closed_form():
    light = pwm.PwmLight(hz=300.0, duty=0.4, t_on_s=0.0007)
    period = 1 / 300.0
    # Any whole number of periods: the average, wherever the window starts.
    for t0 in (0.0, 0.00123, 0.5):
        for k in (1, 2, 5):
            assert light.factor(t0, k * period) == pytest.approx(1.0, abs=1e-9)
    # Any window: the numerical integral of the square wave.
    for t0, e in ((0.0, 0.0005), (0.0011, 0.002), (0.0031, 0.0047), (0.2, 0.01)):
        assert light.factor(t0, e) == pytest.approx(_brute(light, t0, e), abs=2e-4)
    # A window inside one pulse sees 1/D; one inside the gap sees nothing (a dark band).
    assert light.factor(0.0008, 0.0003) == pytest.approx(1 / 0.4)
    assert light.factor(0.0007 + 0.4 * period + 1e-5, 0.0015) == 0.0
    # Rows start readout/h apart: row r is factor(t0 + (r + 1/2) readout / h).
    rows = light.rows(0.01, 0.001, 0.03, 480)
    assert rows.shape == (480,) and rows.dtype == np.float32
    for r in (0, 17, 240, 479):
        assert rows[r] == pytest.approx(light.factor(0.01 + (r + 0.5) * 0.03 / 480, 0.001), rel=1e-6)
    # 0.03 s of readout at 300 Hz: 9 bands, the mean over the frame ~ the average; a long exposure
    # (whole periods) leaves none.
    assert abs(float(rows.mean()) - 1.0) < 0.05 and float(rows.max() - rows.min()) > 2.0
    flat = light.rows(0.01, 10 * period, 0.03, 480)
    assert np.allclose(flat, 1.0, atol=1e-5)
    # A sine flicker's contract: the same factor signature (the IR's global shutter uses it).
    assert Flicker(100.0, 0.2, 0.0).factor(0.0, 0.01) == pytest.approx(1.0)
    # Drawn per session: 100 Hz - 1 kHz, dimmed to 25-85 %.
    draws = [pwm.PwmLight.draw(np.random.default_rng(k)) for k in range(80)]
    assert all(100.0 <= d.hz <= 1000.0 and 0.25 <= d.duty <= 0.85 and 0 <= d.t_on_s < 1 / d.hz for d in draws)
    assert min(d.hz for d in draws) < 200 and max(d.hz for d in draws) > 600


def _uri(extra: str = "", lux: int = 300) -> str:
    return (f"sim://?realtime=0&seed=3&family=thirteenth&identity=4&lux={lux}&cct=4000&projector=0"
            "&distance_mm=430&yaw=0&pitch=0&background=plain" + extra)


def test_pwm_bands_the_colour_frames_rows_and_not_the_ir_frames():
    # A bright lobby (800 lux: the colour auto-exposure at ~10 ms) under a 120 Hz dimmer at 35 %; the
    # same colour frame (same time, same exposure) rendered steady and under the dimmer.
    light = pwm.PwmLight(hz=120.0, duty=0.35, t_on_s=0.001)
    cam = sim_camera(_uri(lux=800))
    assert cam.profile.name == "d435i" and isinstance(cam._scene.flicker, pwm.PwmLight)
    cam.start()
    cam.stop()
    t, rgb = 0.1, (0.0, 0.0, 0.0)
    cam._scene.flicker = None
    steady = cam._render_color(t, rgb, update_ae=False)
    tick, _ = cam._render_depth(t, False, cam.POWER_RANGE.default)
    cam._scene.flicker = light
    banded = cam._render_color(t, rgb, update_ae=False)
    assert banded.exposure_us == steady.exposure_us
    ratio = banded.color.astype(np.float64).mean(axis=(1, 2)) / np.maximum(
        steady.color.astype(np.float64).mean(axis=(1, 2)), 1.0)
    # The expected rows: each row's window at the frame's time and exposure (pwm.rows).
    c = cam.cfg
    want = light.rows(t + c.color_offset_ms / 1000.0 + c.t0_s, steady.exposure_us * 1e-6,
                      pwm.READOUT_FRACTION / cam._color_fps, ratio.size)
    assert float(np.std(want)) > 0.1                                  # this exposure does band
    assert np.corrcoef(ratio, want)[0, 1] > 0.9
    # The IR imagers' global shutter: the whole frame's room light by one factor (night.Flicker's path).
    assert tick.ambient is None
    exposure = 0.004
    ir = cam._flickered(cam._render_depth(t, False, cam.POWER_RANGE.default)[0], 3, exposure)
    lit = tick.ir_signal > 1e-3
    scale = ir[lit] / tick.ir_signal[lit]
    assert float(np.ptp(scale)) < 1e-3
    assert float(scale.mean()) == pytest.approx(light.factor(3 / cam._depth_fps + c.t0_s, exposure), rel=1e-3)


# --- The kiosk screen's visible light in the IR image, through the leak ------------------------------
def test_the_kiosk_screens_light_reaches_the_ir_image_by_the_leaks_per_lux_gains():
    cam = sim_camera(_uri("&screen_nits=400&screen_latency=0"))
    cam.start()
    tick0, dmaps = cam._render_depth(0.0, False, cam.POWER_RANGE.default)
    cam.set_illumination((1.0, 1.0, 1.0))                            # shown from the next colour tick
    tick1, _ = cam._render_depth(0.0, False, cam.POWER_RANGE.default)
    cam.stop()
    added = tick1.ir_signal - tick0.ir_signal
    # Closed form: the screen's irradiance on each surface times its visible reflectance (4 % on a
    # display's glass), through band_gains(d435i, cct): leak.py's per-lux figures.
    screen = cam._screen_light_ir.irradiance(dmaps.z, (1.0, 1.0, 1.0))
    assert screen is not None
    gains = leak.band_gains(get_profile("d435i"), 4000.0)
    want = (dmaps.albedo * screen) @ gains.astype(np.float64)
    face = (dmaps.object_id == 0) & np.isfinite(dmaps.z)
    assert face.sum() > 5000
    assert np.allclose(added[face], want[face], rtol=1e-3, atol=1e-4)
    assert float(added[face].mean()) > 0.05 * float(tick0.ir_signal[face].mean())


def test_the_kiosk_screens_light_reaches_an_earlier_familys_ir_image_only_with_the_key():
    # The same code for the eighth family's broadband camera with ir_leak=1 (pad-eval --ir-leak), and
    # nothing without the key (its IR is the 850 nm band alone, as before).
    for extra, some in (("&ir_leak=1", True), ("", False)):
        cam = sim_camera("sim://?realtime=0&seed=3&family=eighth&identity=3&projector=0&screen_nits=400"
                         "&screen_latency=0&depth_mode=640x480@30" + extra)
        cam.start()
        a, _ = cam._render_depth(0.0, False, cam.POWER_RANGE.default)
        cam.set_illumination((1.0, 1.0, 1.0))
        b, _ = cam._render_depth(0.0, False, cam.POWER_RANGE.default)
        cam.stop()
        assert bool(np.any(b.ir_signal != a.ir_signal)) is some


# --- Attack displays that reach the camera -----------------------------------------------------------
def test_thirteenth_screens_are_drawn_bright_and_still_and_nobody_elses_change():
    got = [species.screen_instrument(Identity.draw(i, "thirteenth"), sp, i)
           for i in range(200) for sp in ("screen_still", "screen_video")]
    lux = np.array([g[0] for g in got])
    assert lux.min() >= np.pi * 350.0 and lux.max() <= np.pi * 1000.0
    assert lux.min() > 4 * SCREEN_LUMINANCE_LUX
    stand = np.array([g[1] is None for g in got])
    assert 0.4 < stand.mean() < 0.6
    assert all(0.3 <= g[1] <= 0.8 for g in got if g[1] is not None)
    for fam in ("any",) + EARLIER:
        assert species.screen_instrument(Identity.draw(5, fam), "screen_video", 5) == (SCREEN_LUMINANCE_LUX, 0.8)
    # A panel on a stand does not move; the colour model shines it at its own luminance.
    i = next(i for i in range(50) if species.screen_instrument(Identity.draw(i, "thirteenth"), "screen_still", i)[1]
             is None)
    scene = Scene(SimConfig.from_query({"family": "thirteenth", "identity": str(i), "subject": "screen_still"}))
    assert scene.panel_lux > 1000.0
    poses = [scene.objects(t)[3] for t in (0.0, 0.7, 1.9)]
    assert len({(p.distance_m, p.yaw_deg, p.pitch_deg) for p in poses}) == 1
    m = ViewMaps(z=np.full((2, 2), 0.4, np.float32), albedo=np.full((2, 2, 3), 0.5, np.float32),
                 nir=np.zeros((2, 2), np.float32), shade=np.ones((2, 2), np.float32),
                 object_id=np.zeros((2, 2), np.int8), dot_blur=np.zeros((2, 2), np.float32),
                 specular=np.zeros((2, 2), np.float32), emissive=np.ones((2, 2), bool))
    irr = color_irradiance(m, 0.0, 4000.0, None, scene.panel_lux)
    assert np.allclose(irr, 0.5 * scene.panel_lux)


def test_a_bright_screen_shows_its_face_in_the_broadband_ir_frame_and_gets_depth():
    # Frames only: the displayed face's pixels in colour and IR, and depth over the panel, with the
    # family's leak and without it (the same presentation).
    i = next(i for i in range(50) if species.screen_instrument(Identity.draw(i, "thirteenth"), "screen_video", i)[1]
             is None)
    uri = (f"sim://?realtime=0&seed=2&family=thirteenth&identity={i}&subject=screen_video&lux=300&cct=4000"
           "&distance_mm=400&yaw=0&pitch=0&background=plain")
    fill, texture = [], []
    for leak_on in (True, False):
        cam = sim_camera(uri)
        if not leak_on:
            cam._leak_gains = None
        cam.start()
        sets, cam = grab(uri, 2, cam=cam)
        cam.stop()
        truth = cam.ground_truth(DEPTH, sets[-1][DEPTH].frame_number)
        panel = np.isfinite(truth) & (truth < 0.6)
        assert panel.sum() > 3000
        z = sets[-1][DEPTH].pixels
        fill.append(float((z[panel] > 0).mean()))
        ir = sets[-1][IR].pixels.astype(np.float64)
        texture.append(float(np.std(ir[panel])))
    # The panel's image in the IR frame (IR std over the panel 70 against 0.3 DN when written), and
    # the stereo pair matches on it (depth over 0.91 of the panel against 0.53).
    assert texture[0] > 20 * texture[1] and texture[0] > 10.0
    assert fill[0] > fill[1] + 0.2


# --- People: the palpebral fissure -------------------------------------------------------------------
def test_thirteenth_people_have_their_own_palpebral_fissure_and_nobody_else_does():
    people = [Identity.draw(i, "thirteenth") for i in range(400)]
    h = np.array([p.fissure_mm for p in people])
    mean, sd, lo, hi = FISSURE_MM
    assert h.min() >= lo and h.max() <= hi and abs(h.mean() - mean) < 0.2 and abs(h.std() - sd) < 0.2
    assert all(p.lid_rest == pytest.approx(max(0.0, (10.0 - p.fissure_mm) / 10.0)) for p in people)
    assert 0.3 < np.mean([p.lid_rest > 0 for p in people]) < 0.7
    for fam in ("any",) + EARLIER:
        assert all(Identity.draw(i, fam).fissure_mm is None and Identity.draw(i, fam).lid_rest == 0.0
                   for i in range(30))
    # Rendered: the eye region rests toward the closed lid by lid_rest; the truth's eyes stay open.
    i = next(i for i, p in enumerate(people) if p.lid_rest > 0.15)
    cfg = SimConfig.from_query({"family": "thirteenth", "identity": str(i), "seed": "9"})
    scene = Scene(cfg)
    t = next(t for t in np.arange(0.0, 4.0, 0.05) if scene.eyes_closed(float(t)) == 0.0)
    objs, _, _, posed = scene.objects(float(t))
    assert posed.eyes_closed == 0.0
    surf = objs[0].surface
    assert surf.albedo_closed is not None and surf.eye_weight is not None
    want = surf.albedo + (surf.albedo_closed - surf.albedo) * (people[i].lid_rest * surf.eye_weight)[..., None]
    assert np.allclose(objs[0].albedo, want, atol=1e-6) and not np.allclose(objs[0].albedo, surf.albedo)
    # The same person with the portrait's fissure is rendered as before.
    wide = replace(scene.identity, fissure_mm=11.0)
    assert wide.lid_rest == 0.0


# --- The earlier families, the twelfth included, as main 81f403d drew, posed and blinked them -------
# Computed by family_digest(f, _FIELDS + the later per-person fields, skin_nir=True) with main 81f403d's
# tree (PYTHONPATH=/work/main, session 24: /tmp/thirteenth/digests.py).
_LATER = ("skin_nir_factor", "skin_sheen", "beard_length_mm", "beard_density", "beard_rise_mm", "scarf",
          "scarf_brow_mm", "scarf_open", "scarf_standoff_mm", "lens_index", "lens_coated", "lens_r_vis", "lens_r_nir")
_MAIN_DIGESTS = {"any": "3d041fe9ecc72a58", "train": "551c71fd3716a9bf", "heldout": "005db09e8023a043",
                 "field": "885231026404c354", "fresh": "b45b1136ec5cb94c", "fifth": "c728191ee485084b",
                 "sixth": "15151c6e5125a207", "seventh": "4018d92f62674a87", "eighth": "2b8e845fc2659cb4",
                 "ninth": "06011777a8db38db", "tenth": "8a6bceb813ad7608", "eleventh": "f45779c83569fcef",
                 "twelfth": "3d4eaf51e10a0cb0"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS + _LATER, skin_nir=True) == _MAIN_DIGESTS[family]
