"""A camera's depth range (``Camera.depth_range``): stated by the driver, carried by its depth frames
to the quality gate across every boundary a frame crosses (camera host codec, liveness worker ring)."""

from __future__ import annotations

import numpy as np
import pytest

import drivers
from agent.liveness.wire import Ring
from agent.pipeline.frames import framesets
from drivers import DepthRange, FrameMetadata, StreamKind
from drivers.base import CameraWrapper
from drivers.errors import InvalidSetting
from drivers.host import codec
from drivers.sim.profiles import PROFILES


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (-0.1, 1.0), (0.5, 0.4), (float("nan"), 1.0), (0.2, float("inf")),
                                    (True, 1.0), (0.2, 1000.0)])
def test_a_range_that_is_not_a_range_of_distances_is_refused(lo, hi):
    with pytest.raises(InvalidSetting):
        DepthRange(lo, hi)


def test_either_bound_may_be_unstated():
    assert DepthRange(None, 3.0).min_m is None and DepthRange(0.3, None).max_m is None


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_the_simulator_states_its_profiles_range_on_depth_frames_only(name):
    cam = drivers.open(f"sim://?realtime=0&seed=2&camera={name}")
    with cam:
        r = cam.depth_range()
        assert (r.min_m, r.max_m) == PROFILES[name].depth_range_m
        seen = {}
        while len(seen) < 3:
            f = cam.read(timeout_s=10)
            seen[f.stream] = f.metadata
    assert (seen[StreamKind.DEPTH].depth_min_m, seen[StreamKind.DEPTH].depth_max_m) == PROFILES[name].depth_range_m
    assert seen[StreamKind.IR].depth_min_m is None and seen[StreamKind.COLOR].depth_min_m is None


def test_a_wrapper_forwards_the_range():
    inner = drivers.open("sim://?realtime=0&camera=d455")
    assert CameraWrapper(inner).depth_range() == inner.depth_range()


def test_the_camera_host_codec_carries_the_range_and_refuses_nonsense():
    r = DepthRange(0.4, 6.0, "simulated D455")
    assert codec.value_from(codec.value_to(r)) == r
    md = r.stamp(FrameMetadata(frame_counter=3))
    assert codec.metadata_from(codec.metadata_to(md)) == md
    bad = codec.metadata_to(md)
    bad["depth_min_m"] = float("nan")
    with pytest.raises(drivers.CameraHostProtocol):
        codec.metadata_from(bad)
    forged = codec.value_to(r)
    forged["fields"]["min_m"] = -1.0
    with pytest.raises(drivers.CameraHostProtocol):      # a host that sends one is killed, not believed
        codec.value_from(forged)


def test_the_liveness_worker_ring_carries_the_range():
    cam = drivers.open("sim://?realtime=0&seed=4&camera=d455")
    with cam:
        fs = next(iter(framesets(cam, 1, per_frameset=True)))
    ring = Ring(1, 8 << 20)
    try:
        back = ring.read(ring.write(0, fs))
    finally:
        ring.close()
    assert back.depth is not None and back.depth.metadata.depth_min_m == 0.40
    for name in ("depth_min_m", "depth_max_m", "frame_counter", "exposure_us"):
        assert getattr(back.depth.metadata, name) == getattr(fs.depth.metadata, name)
    assert np.array_equal(back.depth.pixels, fs.depth.pixels)
