"""``ir_leak=1``: the visible light that IR imagers without an IR-pass filter see (drivers/sim/leak.py).
Off by default; refused on cameras whose imagers are filtered; a uniform visible patch adds the gains
times its irradiance; a presented screen's image shows in a broadband camera's IR frame."""

import numpy as np
import pytest

from drivers.errors import InvalidUri
from drivers.frame import StreamKind
from drivers.sim import leak
from drivers.sim.config import SimConfig
from drivers.sim.families import POOLS
from drivers.sim.profiles import PROFILES, get_profile
from drivers.sim.sensor import SCREEN_LUMINANCE_LUX, illuminant_bgr
from tests.helpers.sim import grab, sim_camera

IR, DEPTH = StreamKind.IR, StreamKind.DEPTH
BROADBAND = ("d435", "d415", "d455", "gemini335", "gemini335l", "d435i", "gemini335le", "gemini330", "gemini335lg",
             "gemini305", "d555")
# Refused: filtered (the twenty-third's D435if among them), or whose filter no source reached here names (the
# Gemini 2/2L, the twelfth's D457, the fourteenth's D456, the seventeenth's D436, the nineteenth's Gemini 215).
FILTERED = ("d405", "astra", "astra_mini_s", "gemini2", "gemini2l", "gemini336", "gemini336l", "d435f", "d455f",
            "d457", "d456", "d436", "gemini215", "gemini210", "d435if")


def test_only_cameras_without_an_ir_pass_filter_take_the_key_and_only_the_later_families_set_it():
    assert set(BROADBAND) | set(FILTERED) == set(PROFILES)
    for name in BROADBAND:
        assert SimConfig.from_query({"camera": name, "ir_leak": "1"}).ir_leak_on
    for name in FILTERED:
        with pytest.raises(InvalidUri, match="ir_leak") as e:
            SimConfig.from_query({"camera": name, "ir_leak": "1"})
        assert e.value.code == "DRV_INVALID_URI"
    # A family's camera, implied by the family: the tenth's and eleventh's filtered, the eighth's not.
    for family in ("ninth", "tenth", "eleventh", "fifth"):
        with pytest.raises(InvalidUri):
            SimConfig.from_query({"family": family, "identity": "3", "ir_leak": "1"})
    assert SimConfig.from_query({"family": "eighth", "identity": "3", "ir_leak": "1"}).ir_leak_on
    # Off by default, and no family but the thirteenth (its D435i, always), the fifteenth (its Gemini
    # 335Le, always), the sixteenth (its Gemini 330, always), the eighteenth (its Gemini 335Lg, always), the
    # twentieth (its Gemini 305, always) and the twenty-second (its D555, always) switches it on: every earlier
    # family renders as before.
    leaking = ["thirteenth", "fifteenth", "sixteenth", "eighteenth", "twentieth", "twentysecond"]
    assert [f for f, p in POOLS.items() if p.ir_leak] == leaking
    assert [f for f in POOLS if SimConfig.from_query({"family": f}).ir_leak_on] == leaking
    with pytest.raises(InvalidUri):
        SimConfig.from_query({"ir_leak": "maybe"})


def test_bayer_imagers_see_each_band_through_their_own_dyes_and_warm_light_is_redder():
    mono, bayer = leak.band_kappa(3000.0), leak.band_kappa(3000.0, leak.BAYER)
    assert bayer == pytest.approx(tuple(m * b for m, b in zip(mono, (0.25, 0.5, 0.25), strict=True)))
    warm, cool = leak.band_kappa(2856.0), leak.band_kappa(6500.0)
    assert warm[2] / sum(warm) > cool[2] / sum(cool) and warm[0] / sum(warm) < cool[0] / sum(cool)
    # The leak is what a 750 nm long-pass removes: per lux of a 2856 K lamp, comparable to its 850 nm
    # share (0.40: the imager's visible response against its NIR one, both photon-weighted).
    assert 0.2 < sum(warm) < 0.6


def _ticks(uri: str):
    cam = sim_camera(uri + "&realtime=0")
    cam.start()
    tick, dmaps = cam._render_depth(0.0, False, cam.POWER_RANGE.default)
    cam.stop()
    return cam, tick, dmaps


def test_a_uniform_visible_patch_adds_the_gains_times_its_irradiance_in_closed_form():
    base = "sim://?subject=screen_still&camera=d435&light=led&lux=400&cct=4000&seed=3"
    off_cam, off, _ = _ticks(base)
    cam, on, dmaps = _ticks(base + "&ir_leak=1")
    gains = leak.band_gains(get_profile("d435"), 4000.0)
    assert gains == pytest.approx(np.array(leak.band_kappa(4000.0)) / illuminant_bgr(4000.0))
    added = on.ir_signal - off.ir_signal
    # Room-lit surfaces: lux x light colour x albedo x (0.35 + 0.65 shade), through each channel's gain.
    lit = ~dmaps.emissive & np.isfinite(dmaps.z)
    irr = 400.0 * illuminant_bgr(4000.0) * dmaps.albedo * (0.35 + 0.65 * dmaps.shade)[..., None]
    expect = (irr * gains).sum(axis=-1)
    assert lit.sum() > 10_000
    np.testing.assert_allclose(added[lit], expect[lit], rtol=1e-4, atol=1e-4)
    # The panel: its own light (SCREEN_LUMINANCE_LUX x the displayed colour) and 4 % of the room's.
    e = dmaps.emissive
    assert e.sum() > 2_000
    panel = dmaps.albedo[e] * SCREEN_LUMINANCE_LUX + 0.04 * 400.0 * illuminant_bgr(4000.0)
    np.testing.assert_allclose(added[e], (panel * gains).sum(axis=-1), rtol=1e-4, atol=1e-4)
    # A uniform patch in closed form: sum_c gains_c E_c.
    patch = np.broadcast_to(np.array([30.0, 50.0, 70.0], np.float32), (4, 5, 3))
    assert leak.visible_in_ir(patch, gains) == pytest.approx(np.full((4, 5), float(gains @ [30.0, 50.0, 70.0])))


def test_ir_leak_0_renders_the_frames_it_rendered_before_the_key_existed():
    # (Every frame of 33 URIs, the eighth to eleventh families' included, is bit-identical to main
    # 3df7b18's: bench.sim_frames, docs/sim.md.)
    uri = "sim://?subject=screen_video&camera=d435&seed=32&light=led&lux=400&realtime=0"
    a, _ = grab(uri, 2)
    b, _ = grab(uri + "&ir_leak=0", 2)
    for fa, fb in zip(a, b, strict=True):
        for kind in fa:
            assert np.array_equal(fa[kind].pixels, fb[kind].pixels)


def test_a_screens_image_shows_in_a_broadband_ir_frame_and_the_stereo_pair_matches_on_it():
    base = "sim://?subject=screen_still&camera=d435&light=led&lux=300&seed=8&realtime=0"
    _, _, dmaps = _ticks(base)
    panel = dmaps.emissive.copy()
    panel[:, :4] = False
    inner = np.zeros_like(panel)
    inner[np.nonzero(panel)[0].min() + 12: np.nonzero(panel)[0].max() - 12,
          np.nonzero(panel.any(0))[0].min() + 12: np.nonzero(panel.any(0))[0].max() - 12] = True
    inner &= panel
    shown = (dmaps.albedo[inner] * leak.band_gains(get_profile("d435"), 5000.0)).sum(-1)
    frames = {}
    for extra in ("", "&ir_leak=1"):
        sets, cam = grab(base + extra, 2)
        cam.stop()
        frames[extra] = sets[-1]
    off_ir, on_ir = frames[""][IR].pixels[inner].astype(float), frames["&ir_leak=1"][IR].pixels[inner].astype(float)
    # Without the leak the panel is dark (no 850 nm, its glass mirrors the dots away); with it the
    # displayed face is there, pixel for pixel.
    assert off_ir.mean() < 2.0
    assert on_ir.mean() > 8.0 and np.corrcoef(on_ir, shown)[0, 1] > 0.8
    # Depth follows from the stereo model: the panel's image is texture to match.
    off_d, on_d = ((frames[k][DEPTH].pixels[inner] > 0).mean() for k in ("", "&ir_leak=1"))
    assert off_d < 0.3 and on_d > 0.7
