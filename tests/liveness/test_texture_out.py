"""Attack B on a textured surface (review 25, ``bench.eye_lamp``): an even lamp switched with the
projector puts the lamp times the surface's own ink or paint texture into the on-off difference,
whose mid band lowers the dots' fine/mid ratio toward skin's with nothing moving. The dots' sharpness
is read with the unlit frame's texture, as the difference carries it, taken out at a fitted gain
(``features.unlit_texture``, ``features.texture_out``; docs/liveness.md, "Attack B on textured
surfaces"). The frame model is ``bench.eye_lamp``'s (test_moving_light's frames, 16 DN dots on 20 DN
of room light, every other cue alive)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import tests.liveness.test_moving_light as T
from agent.liveness import features
from agent.liveness.detectors import active_ramps
from bench.eye_lamp import dot_print, eye_band, painted

NONCE = b"\0" * 16


@pytest.fixture(autouse=True)
def texture_out_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reading measured here, switched on: the judge runs with it off (``features.TEXTURE_OUT``)
    until the eye ramp is refitted with it (a dim field live's eye discs crossed the ramp)."""
    monkeypatch.setattr(features, "TEXTURE_OUT", True)


def _unread(monkeypatch: pytest.MonkeyPatch) -> None:
    """main 4d96aa7's reading: the difference's shape as it is (no unlit texture taken out)."""
    monkeypatch.setattr(features._PairImages, "texture", property(lambda self: None))


@pytest.mark.parametrize("seed", [0, 1])
def test_texture_out_never_raises_the_mid_band_and_takes_out_at_most_the_models_share(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((96, 96), bool)
    mask[16:80, 16:80] = True
    diff = rng.normal(30, 5, (96, 96)).astype(np.float32)
    for texture_gain in (-2.0, 0.0, 0.4, 3.0):         # anti-correlated, absent, partial, over the model's
        other = cv2.GaussianBlur(rng.normal(size=(96, 96)).astype(np.float32), (0, 0), 3) * 10
        t = (texture_gain * (diff - 30) + other).astype(np.float32)
        g, gt = features._blurs(diff), features._blurs(t)
        out = features.texture_out(g, gt, mask)
        mid = float(np.var((g[1] - g[2])[mask]))
        assert float(np.var((out[1] - out[2])[mask])) <= mid + 1e-9
        gain = [float(np.median(((a - b) / c)[mask])) for a, b, c in zip(g, out, gt, strict=True)
                if np.all(np.abs(c[mask]) > 1e-3)]
        assert all(-1e-6 <= x <= 1 + 1e-6 for x in gain)
        if texture_gain <= 0:
            assert all(np.array_equal(a, b) for a, b in zip(g, out, strict=True))   # nothing to take out


@pytest.mark.parametrize("seed", [0, 1])
def test_a_painted_resin_mask_under_a_synced_lamp_reads_hard(seed, monkeypatch):
    # review 25: 20 % paint, 24 DN lamp with the projector, 4 of 4 windows live on main.
    m, s = T.judged(painted(T.RESIN_SCATTER, 24.0, 0.2, seed, NONCE))
    assert m.sharpness > active_ramps()["projector_sharpness"].attack
    assert T.session_score(s) < 0.5
    with monkeypatch.context() as mp:
        _unread(mp)
        before, s0 = T.judged(painted(T.RESIN_SCATTER, 24.0, 0.2, seed, NONCE))
    assert before.sharpness < m.sharpness - 0.3            # the reading the attack had


@pytest.mark.parametrize("seed", [0, 1])
def test_an_inked_eye_band_under_a_soft_lamp_on_it_reads_as_paper(seed, monkeypatch):
    # review 25: eye discs 1.67-1.76 -> 1.03-1.05 at 16 DN on the band, live on main.
    m, s = T.judged(eye_band(16.0, "soft", 0.3, seed, NONCE))
    assert m.eyes_sharpness > active_ramps()["eye_dots"].attack
    assert T.session_score(s) < 0.5
    with monkeypatch.context() as mp:
        _unread(mp)
        before, _ = T.judged(eye_band(16.0, "soft", 0.3, seed, NONCE))
    assert before.eyes_sharpness < 1.1


@pytest.mark.parametrize("seed", [0, 1])
def test_skin_under_paint_reads_as_unpainted_skin(seed):
    # The paint's texture is the albedo's: taken out, painted skin reads as bare skin (main: 0.90 -> 0.66
    # at 30 %), and stays live.
    bare, _ = T.judged(painted(T.SKIN_SCATTER, 0.0, 0.0, seed, NONCE))
    m, s = T.judged(painted(T.SKIN_SCATTER, 0.0, 0.3, seed, NONCE))
    assert abs(m.sharpness - bare.sharpness) < 0.06
    assert T.session_score(s) == 1.0


@pytest.mark.parametrize("steady", [20.0, 60.0])
def test_a_steady_patterned_lamp_is_not_written_into_the_difference(steady, monkeypatch):
    # A lamp never switched, with a pattern of its own in the band the unlit texture is read in: it is
    # in the unlit frame, not in the difference; taken out at the model's full share it would lower a
    # painted mask's sharpness (1.91 -> 1.53 at 60 DN, gain held at 1), fitted it does not go under
    # main's reading.
    m, s = T.judged(painted(T.RESIN_SCATTER, 0.0, 0.2, 0, NONCE, steady=steady))
    with monkeypatch.context() as mp:
        _unread(mp)
        before, _ = T.judged(painted(T.RESIN_SCATTER, 0.0, 0.2, 0, NONCE, steady=steady))
    assert m.sharpness >= before.sharpness - 0.02
    assert T.session_score(s) < 0.5


@pytest.mark.parametrize(("amp", "blur", "lamp"), [(0.1, 2.0, 24.0), (0.3, 2.0, 16.0), (0.6, 1.0, 24.0)])
def test_a_print_of_the_dots_themselves_is_never_read_softer_with_the_texture_out(amp, blur, lamp, monkeypatch):
    # review26b: a texture correlated with the projector's pattern (the resin printed with the dots, aligned)
    # is the one thing whose unlit texture could take the dots out of the difference. The texture is read
    # through the 2-8 px band (sigma 2 blur), so it holds little of the fine band; fitted on the mid band,
    # taking it out lowers the mid band more than the fine band: the reading only rises (main 0.946-1.285 ->
    # 1.345-1.681 at 24 DN in bench.eye_lamp --dot-print).
    m, _ = T.judged(dot_print(T.RESIN_SCATTER, lamp, amp, blur, 0, NONCE))
    with monkeypatch.context() as mp:
        _unread(mp)
        before, _ = T.judged(dot_print(T.RESIN_SCATTER, lamp, amp, blur, 0, NONCE))
    assert m.sharpness >= before.sharpness


@pytest.mark.xfail(strict=True, reason="review26b, open: the unlit texture is read through a 2 px blur, "
                                       "so the lamp times the print's mid-band detail stays in the difference")
@pytest.mark.parametrize("lamp", [16.0, 24.0])
def test_a_resin_mask_printed_with_blurred_dots_under_a_synced_lamp_is_not_live(lamp):
    # bench.eye_lamp --dot-print: 30 %, blur 2 px, 4 of 4 windows live at 16 and 24 DN (sharpness 0.99-1.10;
    # main 0.57-0.65, live too). The print is a halo round each dot, what skin's scattering makes; the lamp
    # times it is the attack B texture26 takes out, but only as far as the unlit frame's 2-8 px band holds
    # it. With TEXTURE_SIGMAS (0.7, 8) this surface reads 1.83-1.88 (refused); not adopted (docs/liveness.md,
    # review26b).
    _, s = T.judged(dot_print(T.RESIN_SCATTER, lamp, 0.3, 2.0, 0, NONCE))
    assert T.session_score(s) < 0.5
