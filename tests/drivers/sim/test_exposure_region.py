"""The colour auto-exposure's metering region (``Camera.set_exposure_region``) on the simulator."""

from __future__ import annotations

import pytest

import drivers
from drivers.base import Capability
from drivers.errors import CapabilityUnsupported, InvalidSetting
from drivers.frame import StreamKind


def face_level(cam, frames: int) -> float:
    """Mean colour level of the image's centre (where the face is) over the last frame read."""
    last = None
    seen = 0
    while seen < frames:
        f = cam.read(timeout_s=5.0)
        if f.stream is StreamKind.COLOR:
            last, seen = f, seen + 1
    assert last is not None
    return float(last.pixels[200:280, 280:360].mean())


def test_metering_a_dark_face_exposes_it_for_itself():
    cam = drivers.open("sim://?realtime=0&skin=6&glasses=none&lux=300")
    with cam:
        assert Capability.EXPOSURE_REGION in cam.capabilities
        before = face_level(cam, 3)
        cam.set_exposure_region(StreamKind.COLOR, (270, 190, 370, 300))
        after = face_level(cam, 10)
        cam.set_exposure_region(StreamKind.COLOR, None)
        again = face_level(cam, 12)
    assert after > before * 1.5                # the dark face, metered alone, is exposed up
    assert abs(again - before) < 0.15 * before  # and the default metering brings it back


def test_bad_regions_and_other_imagers_are_refused():
    cam = drivers.open("sim://?realtime=0")
    with cam:
        for bad in [(0, 0, 700, 100), (50, 50, 40, 60), ("a", 0, 1, 1), (0, 0, 10)]:
            with pytest.raises(InvalidSetting):
                cam.set_exposure_region(StreamKind.COLOR, bad)
        with pytest.raises(CapabilityUnsupported):
            cam.set_exposure_region(StreamKind.IR, (0, 0, 10, 10))
