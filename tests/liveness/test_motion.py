"""The motion cue: a face's drift against its landmarks' own jitter (``features.motion_snr``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import drivers
from agent.liveness.features import FrameCues, motion_snr, one_light_runs
from agent.liveness.judge import FrameSelection
from agent.session.offline import capture_and_judge

IPD = 64.0
BASE = np.random.default_rng(0).uniform(0, 200, (468, 2))
NONCE = bytes.fromhex("5be1c0de" * 8)
# Motion reads only the landmarks and the IPD; every other per-frame cue is unmeasured here.
NO_OTHER_CUES = {f.name: float("nan") for f in dataclasses.fields(FrameCues)
                 if f.name not in ("landmarks", "ipd_px", "face_depth_m")}


def cues(track: np.ndarray, jitter: float, seed: int) -> list[FrameCues]:
    """Frames of a rigid face at ``track`` (per-frame offset in px) with white landmark jitter
    (px, the same on every landmark and independent per landmark, as the face models give)."""
    rng = np.random.default_rng(seed)
    out = []
    for shift in track:
        common = rng.normal(0, jitter, 2)
        lm = BASE + shift + common + rng.normal(0, jitter, BASE.shape)
        out.append(FrameCues(**NO_OTHER_CUES, landmarks=lm, ipd_px=IPD, face_depth_m=0.5))
    return out


@given(st.floats(0.05, 2.0), st.integers(0, 10_000))
def test_an_object_that_holds_still_scores_about_one_at_any_jitter(jitter, seed):
    # A head model on a stand: only jitter, bright light (small) or dim (large). The ratio does not
    # grow with the jitter, which is what made dim head models look alive to the displacement.
    n = 32
    c = cues(np.zeros((n, 2)), jitter, seed)
    assert motion_snr(c, one_light_runs(list(range(n)), n), n) < 3.0


def test_a_slow_drift_beyond_the_jitter_is_significant_whatever_its_size_in_ipd():
    # A still person: 0.45 px (0.007 IPD) of drift over the window, at a jitter of 0.1 px (bright
    # light). The displacement is as small as a dim head model's jitter; the ratio is not.
    n = 48
    track = np.outer(np.linspace(0, 0.45, n), [1.0, 0.3])
    assert motion_snr(cues(track, 0.1, 1), one_light_runs(list(range(n)), n), n) > 4.0
    # The same drift under jitter ten times larger cannot be told from jitter: no evidence of life.
    assert motion_snr(cues(track, 1.0, 1), one_light_runs(list(range(n)), n), n) < 3.0


def test_too_few_frames_or_a_perfectly_steady_stream_give_no_huge_ratio():
    n = 32
    assert np.isnan(motion_snr(cues(np.zeros((2, 2)), 0.1, 0), one_light_runs([0, 1], n), n))
    # No jitter at all (an injected still image): the jitter floor keeps the ratio at 0, not 0/0.
    still = cues(np.zeros((n, 2)), 0.0, 0)
    assert motion_snr(still, one_light_runs(list(range(n)), n), n) == 0.0


def test_runs_under_the_illumination_sequence_are_same_colour_frames_in_a_row():
    sel = FrameSelection.__new__(FrameSelection)
    sel.grids = [None] * 12
    sel.shown = [None, None, 2, 2, 2, None, 5, 5, None, 2, 2, 2]
    frames = [0, 1, 2, 3, 4, 6, 7, 9, 11]            # frames 5, 8 and 10 had no face
    runs = sel.light_runs(frames)
    assert runs == [(2, [(2, 2), (3, 3), (4, 4)]), (5, [(5, 6), (6, 7)]), (2, [(7, 9)]), (2, [(8, 11)])]
    sel.shown = None                                  # no illumination: first and last thirds
    assert sel.light_runs(frames) == [(0, [(0, 0), (1, 1), (2, 2), (3, 3)]), (0, [(7, 9), (8, 11)])]


@pytest.mark.parametrize("skip", [0, 3])
def test_a_still_live_face_is_not_refused_for_holding_still(gate, skip):
    # Issue 14: the simulator's stillest person (seed 21) drifts 0.009 IPD in these windows, no more
    # than a head model's landmark jitter in dim light; it was refused as inconclusive on motion
    # in about 1 daemon session in 6. Its drift is 4-5 times its own landmarks' jitter.
    cam = drivers.open("sim://?realtime=0&seed=21&identity=0&lux=300&subject=live")
    with cam:
        for _ in range(skip):                          # the quality phase ends at a varying point
            cam.read(timeout_s=30)
        v = capture_and_judge(cam, 48, gate=gate, nonce=NONCE).verdict
    assert v.cues["motion_snr"] > 3.5
    assert v.detectors["motion"] >= 0.9 and v.verdict == "live"


def test_a_head_model_in_dim_light_is_still_refused_on_motion(gate):
    # At 25 lux the landmarks jitter about 0.007 IPD, as much as a still person drifts; the ratio
    # stays near 1.
    cam = drivers.open("sim://?realtime=0&seed=31&subject=head_model&lux=25")
    with cam:
        v = capture_and_judge(cam, 32, gate=gate, nonce=NONCE).verdict
    assert v.cues["motion_snr"] < 3.0
    assert v.detectors["motion"] < 0.5 and v.verdict != "live"
