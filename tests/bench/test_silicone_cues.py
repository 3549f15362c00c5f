"""``bench.silicone_cues``: the candidate measures for silicone masks, on synthetic depth and
landmarks whose answer is known (a mask's eye hole a known thickness in front of the eye; a jaw
that moves while the head turns)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.silicone_cues import LOWER, UPPER, lower_motion, ring_steps, separation

IPD_PX = 100.0
MM_PER_PX = 63.0 / IPD_PX
PUPILS = np.array([[50.0, 100.0], [150.0, 100.0]])


def _face(thickness_m: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A face 0.45 m away with a smooth eye socket 11 mm deep under each pupil (σ 13 x 9 mm, the
    simulator's), and with ``thickness_m`` a mask over it whose elliptic eye holes (0.18 x 0.09 IPD
    half-axes) leave the eye itself bare."""
    yy, xx = np.mgrid[0:200, 0:200].astype(np.float64)
    depth = np.full((200, 200), 0.45)
    hole = np.zeros((200, 200), bool)
    for px, py in PUPILS:
        dx, dy = (xx - px) * MM_PER_PX, (yy - py) * MM_PER_PX
        depth += 0.011 * np.exp(-0.5 * ((dx / 13.0) ** 2 + (dy / 9.0) ** 2))
        hole |= ((xx - px) / (0.18 * IPD_PX)) ** 2 + ((yy - py) / (0.09 * IPD_PX)) ** 2 < 1
    depth = np.where(hole, depth, depth - thickness_m)
    return depth.astype(np.float32), np.ones_like(depth, bool)


def test_a_masks_eye_hole_puts_the_eye_its_thickness_behind_the_lids() -> None:
    live = ring_steps(*_face(), PUPILS, IPD_PX)
    mask = ring_steps(*_face(0.003), PUPILS, IPD_PX)
    assert live["ring_lid"] > 1.0                       # a socket: the eye lies behind the skin around it
    assert mask["ring_lid"] - live["ring_lid"] == pytest.approx(3.0, abs=0.05)     # wholly outside the hole
    # The wider annulus crosses the hole at the eye's corners: only part of the thickness shows.
    assert 0.5 < mask["ring_mean"] - live["ring_mean"] < 3.0


def test_an_eye_without_depth_gives_no_step() -> None:
    depth, valid = _face(0.003)
    yy, xx = np.mgrid[0:200, 0:200]
    valid &= np.hypot(xx - PUPILS[0, 0], yy - PUPILS[0, 1]) > 8            # no depth on the left pupil
    assert np.isnan(ring_steps(depth, valid, PUPILS, IPD_PX)["ring_lid"])


def _landmarks() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.uniform(100, 300, (468, 2))


def test_a_jaw_moving_within_a_turning_head_is_lower_face_motion() -> None:
    base = _landmarks()
    frames_rigid, frames_jaw = [base], [base]
    for k in range(1, 12):
        a = np.deg2rad(0.5 * k)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * (1 + 0.002 * k)
        moved = base @ rot.T + [1.5 * k, -0.7 * k]                          # the head turns and drifts
        frames_rigid.append(moved)
        jaw = moved.copy()
        jaw[list(LOWER), 1] += 2.0 * np.sin(k)                              # the jaw opens and closes
        frames_jaw.append(jaw)
    rigid_low, rigid_ctl = lower_motion(frames_rigid, IPD_PX)
    jaw_low, jaw_ctl = lower_motion(frames_jaw, IPD_PX)
    assert rigid_low < 1e-3 and rigid_ctl < 1e-3
    assert jaw_low > 0.015 and jaw_ctl < 1e-3
    assert set(LOWER).isdisjoint(UPPER)


def test_separation_names_the_live_side_and_the_masks_past_every_live_face() -> None:
    live = np.array([1.5, 3.0, 3.5, 4.0, 5.0, 5.0])
    masks = np.array([5.0, 5.5, 7.0, 9.5])
    s = separation(live, masks)
    assert s["live_high"] is False and s["worst_attack"] == 5.0
    assert s["live_beyond_worst"] == 2                  # the two live faces at 5.0 tie the thinnest mask
    assert s["live_edge"] == 5.0 and s["stopped_past_live_edge"] == 3
