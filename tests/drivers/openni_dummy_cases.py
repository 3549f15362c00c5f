"""The cases of tests/drivers/test_openni_dummy.py (each ``case_X`` is ``test_X`` there), run in a
child interpreter by tests/helpers/isolated.py: drivers.openni against the real OpenNI2 runtime
(Debian libopenni2-0) and its Dummy device. Not collected by pytest itself (no ``test_`` prefix)."""

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise

import numpy as np
import pytest

import drivers
from drivers import PixelFormat, StreamKind
from drivers.errors import DeviceLost, DeviceNotFound, InvalidUri, StreamClosed, UnknownScheme, UnsupportedMode

openni = pytest.importorskip("drivers.openni")


@contextmanager
def _dummy() -> Iterator[drivers.Camera]:
    cam = drivers.open("openni://Dummy")
    cam.start()
    try:
        yield cam
    finally:
        cam.stop()


def _native_tasks() -> set[int]:
    """This process's threads that Python did not start (OpenNI's, its drivers')."""
    py = {t.native_id for t in threading.enumerate()}
    return {int(t) for t in os.listdir("/proc/self/task")} - py


def case_dummy_device_streams_live_through_backend():
    with _dummy() as dummy:
        kinds = {p.kind: p for p in dummy.profiles()}
        assert set(kinds) == {StreamKind.DEPTH, StreamKind.COLOR}       # the Dummy device has no IR sensor
        seen = {StreamKind.DEPTH: [], StreamKind.COLOR: []}
        while min(len(v) for v in seen.values()) < 4:
            f = dummy.read(1.0)
            seen[f.stream].append(f)
        d = seen[StreamKind.DEPTH]
        assert d[0].format is PixelFormat.Z16 and d[0].pixels.shape == (240, 320) and d[0].depth_scale == 0.001
        assert np.nanmedian(d[0].depth_m()) == pytest.approx(2.0)        # Dummy depth is a 2000 mm plane
        c = seen[StreamKind.COLOR]
        assert c[0].format is PixelFormat.BGR8 and c[0].pixels.shape == (240, 320, 3)
        for frames in seen.values():
            nums = [f.frame_number for f in frames]
            assert nums == sorted(nums) and len(set(nums)) == len(nums)
            ts = [f.timestamp_ms for f in frames]
            assert all(b > a for a, b in pairwise(ts))
            # device µs → ms: the Dummy stamps frame n at n × 33 ms
            assert all(f.timestamp_ms == pytest.approx(f.frame_number * 33.0) for f in frames)
            assert frames[0].metadata.frame_counter == frames[0].frame_number
            assert not frames[0].pixels.flags.writeable


def case_dummy_intrinsics_from_fov_and_notes():
    with _dummy() as dummy:
        p = dummy.profiles()[0]
        # The Dummy reports no FOV, so the nominal 58°×45° is used; check the pinhole maths.
        assert p.intrinsics.fx == pytest.approx(160 / math.tan(math.radians(29)))
        assert p.intrinsics.fy == pytest.approx(120 / math.tan(math.radians(22.5)))
        assert "nominal FOV" in dummy.info.note and "registration not supported" in dummy.info.note
        with pytest.raises(UnsupportedMode):
            dummy.extrinsics(StreamKind.DEPTH, StreamKind.COLOR)      # no registration, no calibration
        i = openni.intrinsics_from_fov(640, 480, math.radians(60), math.radians(49.5))
        assert i.fx == pytest.approx(320 / math.tan(math.radians(30)))


def case_fov_query_overrides_nominal():
    cam = drivers.open("openni://Dummy?hfov=90&vfov=90&streams=depth")
    with cam:
        p = cam.profiles()
        assert [x.kind for x in p] == [StreamKind.DEPTH]
        assert p[0].intrinsics.fx == pytest.approx(160.0)


def case_simulated_disconnect_callback_raises_device_lost_promptly():
    with _dummy() as dummy:
        dummy.read(1.0)
        # What OpenNI2's deviceDisconnected callback delivers for this device, sent through our listener.
        info = dummy._device.get_device_info()
        t0 = time.monotonic()
        openni._listener.on_disconnected(info)
        with pytest.raises(DeviceLost) as e:
            for _ in range(100):
                dummy.read(2.0)
        assert time.monotonic() - t0 < 2.0 + 0.5
        assert e.value.code == "DRV_DEVICE_LOST"


def case_bad_inputs_are_typed_and_bounded():
    with pytest.raises(UnknownScheme):
        drivers.open("opennii://Dummy")
    with pytest.raises(DeviceNotFound):
        drivers.open("openni://no-such-device")
    with pytest.raises(InvalidUri):
        drivers.open("openni://")
    with pytest.raises(InvalidUri):
        drivers.open("openni://Dummy?streams=thermal")
    with pytest.raises(InvalidUri):
        drivers.open("openni://Dummy?width=wide")
    with pytest.raises(InvalidUri):
        drivers.open("openni://Dummy?bogus=1")
    cam = drivers.open("openni://Dummy?width=640&height=480")
    with pytest.raises(UnsupportedMode) as e:
        cam.start()
    assert "320x240@30" in e.value.message
    cam.stop()
    cam = drivers.open("openni://Dummy?streams=ir")
    with pytest.raises(UnsupportedMode):
        cam.start()
    cam.stop()


def case_stop_is_idempotent_and_read_after_stop_is_typed():
    with _dummy() as dummy:
        dummy.read(1.0)
        dummy.stop()
        dummy.stop()
        with pytest.raises(StreamClosed):
            dummy.read(0.1)
        with pytest.raises(StreamClosed):
            dummy.start()


def case_stop_from_another_thread_ends_a_blocked_read_with_typed_error():
    import threading
    cam = drivers.open("openni://Dummy?streams=depth")
    cam.start()
    cam.read(1.0)
    errors = []

    def reader():
        try:
            while True:
                cam.read(5.0)
        except drivers.CaptureAgentError as exc:
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.1)
    cam.stop()
    t.join(2.0)
    assert not t.is_alive()
    assert isinstance(errors[0], StreamClosed)


def case_dummy_below_the_spec_streams_with_a_note_and_equal_sizes():
    cam = drivers.open("openni://Dummy")
    with cam:
        sizes = {(p.width, p.height, p.fps) for p in cam.profiles()}
        assert len(sizes) == 1                         # colour at depth's size and rate
        assert "no depth mode meets 640x400 at 10 fps" in cam.info.note


def case_serial_uri_looks_for_a_usb_device_by_serial():
    # No USB device here: the serial is searched among OpenNI's USB devices only (never Dummy or
    # an open recording) and is not found.
    with pytest.raises(DeviceNotFound, match="serial"):
        drivers.open("openni://17122730022")


def case_dummy_device_states_no_depth_range_and_none_is_claimed():
    with _dummy() as dummy:
        # The Dummy driver answers getMinPixelValue with ONI_STATUS_NOT_IMPLEMENTED, as some real drivers do.
        assert dummy.depth_range() is None
        f = next(f for f in iter(lambda: dummy.read(timeout_s=2.0), None) if f.stream is StreamKind.DEPTH)
        assert f.metadata.depth_min_m is None and f.metadata.depth_max_m is None


def case_dummy_device_claims_no_exposure_lock_and_refuses_one():
    with _dummy() as dummy:
        # The server is told the window's exposure is held from these claims (the other backends:
        # tests/drivers/test_capability_claims.py). Checked here, with this file's fixture: a Dummy
        # opened in-process before this file's first test shows up in that test's frame numbers.
        from drivers.base import lockable_streams
        assert lockable_streams(dummy.capabilities) == frozenset()
        for s in (StreamKind.IR, StreamKind.COLOR):
            with pytest.raises(drivers.CapabilityUnsupported):
                dummy.lock_exposure(s)


def case_open_start_stop_cycles_leave_no_native_threads_behind():
    # Each stream costs OpenNI2 a frame thread from create to destroy, and the Dummy driver a
    # producer thread from start until it sees the stop. Parked (never destroyed) handles kept both:
    # + 2 threads a cycle, more when stop came before a frame (the producer then never stops).
    # Measured in this process (the child; a camera host re-opening a camera is the production case).
    cam = drivers.open("openni://Dummy")
    cam.start()
    cam.read(2.0)
    cam.stop()                                       # OpenNI2's own threads (initialised once) are up
    before, parked = _native_tasks(), len(openni._parked)
    for i in range(6):
        cam = drivers.open("openni://Dummy" if i % 3 else "openni://Dummy?streams=depth")
        cam.start()
        if i % 2:
            cam.read(2.0)
        cam.stop()                                   # even cycles: stop straight after start
    left = _native_tasks() - before
    deadline = time.monotonic() + 10.0               # a destroyed stream's frame thread is joined in
    while left and time.monotonic() < deadline:      # oniStreamDestroy; bounded wait, not a sleep
        time.sleep(0.01)
        left &= _native_tasks()
    assert not left, f"{len(left)} native threads outlived 6 Dummy open/start/stop cycles"
    assert len(openni._parked) == parked, "a Dummy handle was parked instead of destroyed"


def case_a_stream_whose_mode_is_refused_is_destroyed_with_the_others():
    # start() creates each stream and sets its mode where the stream's current one differs: a
    # device that refuses a mode raises OpenNIError there. The Dummy refuses every mode set
    # (ONI_STATUS_NOT_IMPLEMENTED); start() sets none on it (the modes it picks are the Dummy's
    # current ones), so the colour stream, the second made, is told its mode differs. Every stream
    # made, the refused one too, is destroyed before start() raises, and no native thread of them
    # (OpenNI gives each stream a frame thread) outlives it.
    from openni import openni2

    cam = drivers.open("openni://Dummy")
    cam.start()
    cam.read(2.0)
    cam.stop()                                       # OpenNI2's own threads (initialised once) are up
    before = _native_tasks()
    made, closed = [], []
    create, close, same = openni2.Device.create_stream, openni2.VideoStream.close, openni._same_mode

    def creating(self, sensor):
        st = create(self, sensor)
        made.append(st)
        return st

    def closing(self):
        closed.append(self)
        return close(self)

    openni2.Device.create_stream, openni2.VideoStream.close = creating, closing
    openni._same_mode = lambda a, b: len(made) < 2 and same(a, b)
    try:
        cam = drivers.open("openni://Dummy")
        with pytest.raises(UnsupportedMode, match="NOT_IMPLEMENTED"):
            cam.start()
    finally:
        openni2.Device.create_stream, openni2.VideoStream.close, openni._same_mode = create, close, same
    try:
        assert len(made) == 2
        assert [id(s) for s in closed] == [id(s) for s in made], "a stream start() made was left undestroyed"
        left = _native_tasks() - before
        deadline = time.monotonic() + 10.0           # a destroyed stream's frame thread is joined in
        while left and time.monotonic() < deadline:  # oniStreamDestroy; bounded wait, not a sleep
            time.sleep(0.01)
            left &= _native_tasks()
        assert not left, f"{len(left)} native threads outlived a start() that raised"
    finally:
        cam.stop()


def case_a_start_that_fails_part_way_lists_no_stream():
    # The streams start one after another; when a later one fails (OpenNIError from its start), the
    # ones already started are torn down, and the camera must not go on listing them as streaming:
    # profiles() and info.streams describe a camera that streams nothing until a start() succeeds.
    from openni import openni2
    from openni._openni2 import OniStatus
    from openni.utils import OpenNIError

    cam = drivers.open("openni://Dummy?streams=depth,color")
    available = cam.info.streams
    start, calls = openni2.VideoStream.start, []

    def failing_second(self):
        calls.append(self)
        if len(calls) == 2:
            raise OpenNIError(OniStatus.ONI_STATUS_ERROR, "the device refused to start the stream", "")
        return start(self)

    openni2.VideoStream.start = failing_second
    try:
        with pytest.raises(UnsupportedMode, match="refused to start"):
            cam.start()
    finally:
        openni2.VideoStream.start = start
    try:
        assert len(calls) == 2                       # depth started, then colour failed
        assert cam.profiles() == [], cam.profiles()
        assert cam.info.streams == available         # what the device has, not what a failed start listed
        assert cam.depth_range() is None
    finally:
        cam.stop()
