"""Too near or too far for the depth camera: a face outside the camera's stated depth range is told
to move (MOVE_BACK / MOVE_CLOSER), a face short of depth at a usable distance keeps DEPTH_SPARSE, and
a camera that states no range is not judged (issue 14: a D455 at 352-378 mm, nearer than its 0.40 m
minimum, was told to hold still)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import drivers
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import framesets
from agent.quality.depth import FaceDepth
from agent.quality.distance import (
    judge_range,
    nose_distance_from_colour,
    stated_range,
)
from drivers import DepthRange
from drivers.frame import FrameSet, StreamKind


def capture(query: str, n: int = 4) -> list[FrameSet]:
    cam = drivers.open("sim://?realtime=0&seed=3" + query)
    with cam:
        return list(framesets(cam, n, per_frameset=True))


def run(gate, sets: list[FrameSet]):
    gate.reset()
    report = None
    for fs in sets:
        report = gate.evaluate(align_frameset(fs))
    return report


def with_depth(fs: FrameSet, *, pixels: np.ndarray | None = None, **metadata) -> FrameSet:
    """The same frameset with the depth frame's pixels or metadata changed."""
    d = fs.depth
    assert d is not None
    md = dataclasses.replace(d.metadata, **metadata)
    new = dataclasses.replace(d, pixels=d.pixels if pixels is None else pixels, metadata=md)
    return FrameSet({**fs.frames, StreamKind.DEPTH: new}, fs.extrinsics, fs.skew_ms)


@pytest.fixture(scope="module")
def too_near():
    """A live face 360 mm from a simulated D455 (minimum depth 0.40 m)."""
    return capture("&camera=d455&distance_mm=360")


def test_a_face_nearer_than_the_minimum_depth_is_told_to_move_back(gate, too_near):
    r = run(gate, too_near)
    failing = {c.name: c for c in r.checks if not c.ok}
    assert "depth_range_min" in failing and "the face's depth ends at it" in failing["depth_range_min"].limit
    assert r.prompts[0] == "MOVE_BACK" and r.prompt is not None and r.prompt.code == "MOVE_BACK"
    assert "DEPTH_SPARSE" in r.prompts                   # §7.5 h still fails; the prompt is what helps
    assert r.metrics["face_depth_nearest_m"] == pytest.approx(0.40, abs=0.02)


def test_a_camera_that_states_no_range_keeps_todays_prompt(gate, too_near):
    r = run(gate, [with_depth(fs, depth_min_m=None, depth_max_m=None) for fs in too_near])
    assert "MOVE_BACK" not in r.prompts and r.prompts[0] == "DEPTH_SPARSE"
    assert next(c for c in r.checks if c.name == "depth_range").limit.startswith("camera states no depth range")


def test_a_face_without_any_depth_is_placed_by_its_colour_ipd(gate):
    r = run(gate, capture("&camera=d455&distance_mm=280", 3))
    c = next(c for c in r.checks if c.name == "depth_range_min")
    assert not c.ok and "placed by its IPD" in c.limit and r.prompts[0] == "MOVE_BACK"


def test_a_usable_distance_is_not_sent_back(gate):
    r = run(gate, capture("&camera=d455&distance_mm=440"))
    assert "MOVE_BACK" not in r.prompts and "DEPTH_SPARSE" not in r.prompts
    assert all(c.ok for c in r.checks if c.name.startswith("depth_range"))


def test_sparse_depth_at_a_usable_distance_stays_the_cameras(gate):
    # Holes punched in the middle of a face at 0.5 m: depth falls short, but it does not end at the
    # camera's minimum, so the camera is measuring badly and the person is not sent anywhere.
    sets = capture("&distance_mm=500", 4)
    holed = []
    for fs in sets:
        px = fs.depth.pixels.copy()
        h, w = px.shape
        px[h // 4: h // 2, w // 3: 2 * w // 3] = 0
        holed.append(with_depth(fs, pixels=px))
    r = run(gate, holed)
    assert r.prompts and r.prompts[0] == "DEPTH_SPARSE", r.prompts
    assert "MOVE_BACK" not in r.prompts and "MOVE_CLOSER" not in r.prompts


def face_depth(nearest: float, furthest: float) -> FaceDepth:
    return FaceDepth(face=0.5, core=0.5, glint_holes=0, in_front=0.0, nearest_m=nearest, furthest_m=furthest)


@pytest.mark.parametrize("depth, colour, near, far, evidence", [
    (face_depth(0.405, 0.43), 0.44, True, False, "depth"),        # depth ends at the 0.40 m minimum
    (face_depth(0.47, 0.52), 0.30, False, False, "depth"),        # depth decides over a wrong colour guess
    (face_depth(1.40, 1.49), 1.40, False, True, "depth"),         # depth ends at the 1.5 m maximum
    (face_depth(math.nan, math.nan), 0.33, True, False, "colour"),
    (face_depth(math.nan, math.nan), 1.70, False, True, "colour"),
    (face_depth(math.nan, math.nan), 0.60, False, False, "colour"),
    (face_depth(math.nan, math.nan), math.nan, False, False, ""),
])
def test_where_the_face_stands_against_the_range(depth, colour, near, far, evidence):
    j = judge_range(DepthRange(0.40, 1.5), depth, colour, short=True)
    assert (j.near, j.far, j.evidence) == (near, far, evidence)


def test_complete_depth_is_never_out_of_range():
    j = judge_range(DepthRange(0.40, 1.5), face_depth(0.40, 0.42), 0.30, short=False)
    assert not j.near and not j.far


def test_an_unstated_bound_is_not_judged():
    j = judge_range(DepthRange(None, 1.5), face_depth(0.30, 0.35), 0.30, short=True)
    assert not j.near


def test_colour_distance_from_the_pupils():
    # 63 mm between the pupils, 70 px apart through a 630 px lens: eyes at 0.567 m, nose 2 cm nearer.
    assert nose_distance_from_colour(70.0, 630.0) == pytest.approx(0.547, abs=1e-3)
    assert math.isnan(nose_distance_from_colour(0.0, 630.0))


def test_a_range_that_is_not_a_distance_is_not_stated(too_near):
    fs = too_near[0]
    for bad in ({"depth_min_m": float("nan"), "depth_max_m": None}, {"depth_min_m": -1.0, "depth_max_m": None},
                {"depth_min_m": 3.0, "depth_max_m": 1.0}):
        assert stated_range(align_frameset(with_depth(fs, **bad))) is None
    assert stated_range(align_frameset(fs)) == DepthRange(0.40, 6.0)
