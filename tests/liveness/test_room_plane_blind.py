"""review 28: screen28's plane path (``ILLUMINATION_ROOM_PLANE``: the screen read across the room light's one colour
direction) read as an injector that does not see the screen but chooses the room light's direction.

Skipped where the plane path is not in the tree. The window below is a blind stream (another nonce's sequence,
``bench.illum_bits.blind_face``: a face's light plus 2 % per channel, gain over noise 20) with a "room light"
stepping along magenta, (1, 0, 1)/sqrt 2, a direction with its green channel at zero
(``_light_without_a_channel`` takes it for a light), 16 framesets: the full-colour verifier refuses it as a
contradiction, the plane path passes it at lag 0 with 11 frames compared, 5 steps, 15 bits (exactly
``ROOM_PLANE_MIN_BITS``), no mismatch. Found by ``/tmp/review28/plane_mc.py 2000 16`` (1 of 2,000 blind windows, each
tried under 19 directions; docs/liveness.md, review 28). The kiosk's window is 32 framesets; the point is the
minimum: 15 bits of decoded colours did not keep a blind stream out, the fit's own freedom (a straight drift and a
gain per channel, the direction itself, five lags) spends part of them. Closed by ``ROOM_PLANE_MIN_FRAMES``: the plane
path reads only a full (32-frameset) window, where no blind window passed (docs/liveness.md, *The plane path only in a
full window*)."""

from __future__ import annotations

import numpy as np
import pytest

from agent.liveness import challenge as C

# The commanded sequence: yellow, white, black, yellow, black (3, 3, 3, 4, 3 framesets).
STEPS = ((0, 3, (1.0, 1.0, 0.0)), (3, 3, (1.0, 1.0, 1.0)), (6, 3, (0.0, 0.0, 0.0)), (9, 4, (1.0, 1.0, 0.0)),
         (13, 3, (0.0, 0.0, 0.0)))
# What the blind stream showed: yellow x4, blue x6, yellow x3, black x3 (its own nonce's), plus the magenta light.
BLIND = [(0.22186953383013294, 0.1692862290925866, 0.10065044370045605),
         (0.22030139112196176, 0.17095651566832246, 0.09953895528681982),
         (0.2180248222260574, 0.1702601172353564, 0.09827020846412),
         (0.22242173987893604, 0.169530885032294, 0.09964834877055317),
         (0.20044710844038807, 0.1506687220773808, 0.11889975429901548),
         (0.19967841910523268, 0.15081049746397227, 0.12032398165793444),
         (0.19765916120121665, 0.15005885127366986, 0.11979154707613592),
         (0.17003001111233074, 0.15057066851111417, 0.08934395202945242),
         (0.1696008838770518, 0.14794456908364834, 0.08900217692479714),
         (0.1702868593458924, 0.15190940642030873, 0.08991473574528983),
         (0.18911511826698046, 0.16982022014442538, 0.07026278328492402),
         (0.18924938028784494, 0.17105541671122954, 0.06919397670790192),
         (0.18994695406163922, 0.16917972626747743, 0.06875236275415472),
         (0.19265987811380342, 0.15156684023348754, 0.09315944768974638),
         (0.19234237446720787, 0.14912425280892247, 0.09254650842432226),
         (0.19593801679026088, 0.14896774667225515, 0.0922745895840039)]

pytestmark = pytest.mark.skipif(not hasattr(C, "ILLUMINATION_ROOM_PLANE"), reason="no plane path in this tree")


def _steps() -> tuple[C.Step, ...]:
    return tuple(C.Step(start, frames, rgb) for start, frames, rgb in STEPS)


def test_the_blind_window_is_refused_by_the_full_colour_verifier():
    r = C.verify_illumination(_steps(), np.asarray(BLIND), room_plane=False)
    assert not r.passed and r.measurable


def test_a_blind_stream_under_a_light_it_chose_does_not_pass_across_it():
    r = C.verify_illumination(_steps(), np.asarray(BLIND))
    assert not r.passed, (r.lag_frames, r.checked, r.detail)


def test_the_plane_reads_only_a_full_window():
    """The hole was the window's length: the same frames and sequence padded to the kiosk's window would be read by
    the plane path, so the refusal above is ``ROOM_PLANE_MIN_FRAMES``', not a change in what the plane decodes."""
    assert C.ROOM_PLANE_MIN_FRAMES == C.window_frames([C.Kind.ILLUMINATION]) > len(BLIND)
    assert C._room_plane(_steps(), np.asarray(BLIND), C.ILLUMINATION_MAX_LAG, C.ILLUMINATION_MIN_SEPARATION,
                         C.ILLUMINATION_STEP_NOISE, C.ILLUMINATION_NOISE_SPREAD, C.ILLUMINATION_CROSSTALK) is None
    short = C.ROOM_PLANE_MIN_FRAMES
    try:
        C.ROOM_PLANE_MIN_FRAMES = len(BLIND)          # the minimum as screen28 merged it: the hole, reproduced
        assert C.verify_illumination(_steps(), np.asarray(BLIND)).passed
    finally:
        C.ROOM_PLANE_MIN_FRAMES = short
