"""RealSense: frames written through librealsense's software_device + recorder, played back through
our backend with the real SDK pipeline."""

from __future__ import annotations

import numpy as np
import pytest

import drivers
from drivers.frame import ClockDomain, StreamKind
from drivers.realsense_record import record_camera
from tests.helpers.realsense_sw import stereo_device_with_exposure_options

D, C, IR = StreamKind.DEPTH, StreamKind.COLOR, StreamKind.IR


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("rs") / "sim.db3"
    src = drivers.open("sim://?realtime=0&seed=6")
    src.start()
    sent = []
    # Record, remembering what went in.
    original_read = src.read

    def spy(timeout_s=1.0):
        f = original_read(timeout_s)
        sent.append(f)
        return f
    src.read = spy
    record_camera(src, str(path), 6)
    src.stop()
    return path, src, sent


def test_calibration_round_trips(recording):
    path, src, _ = recording
    cam = drivers.open(f"realsense+file://{path}")
    with cam:
        prof = {p.kind: p for p in cam.profiles()}
        assert set(prof) == {D, C, IR}
        for kind in (D, C):
            a, b = prof[kind].intrinsics, {p.kind: p for p in src.profiles()}[kind].intrinsics
            assert (a.width, a.height, a.model) == (b.width, b.height, b.model)
            np.testing.assert_allclose([a.fx, a.fy, a.ppx, a.ppy], [b.fx, b.fy, b.ppx, b.ppy], rtol=1e-5)
            np.testing.assert_allclose(a.coeffs, b.coeffs, atol=1e-6)
        e, ref = cam.extrinsics(D, C), src.extrinsics(D, C)
        np.testing.assert_allclose(e.R, ref.R, atol=1e-6)
        np.testing.assert_allclose(e.t, ref.t, atol=1e-6)
        assert cam.info.is_recording and cam.info.serial == src.info.serial


def test_frames_timestamps_and_depth_come_back(recording):
    path, _, sent = recording
    cam = drivers.open(f"realsense+file://{path}")
    got = []
    with cam:
        while True:
            try:
                got.append(cam.read(timeout_s=2.0))
            except drivers.StreamClosed:
                break
    sent_depth = {f.frame_number: f for f in sent if f.stream is D}
    got_depth = [f for f in got if f.stream is D]
    assert len(got_depth) >= 5
    for f in got_depth:
        ref = sent_depth[f.frame_number]
        assert f.timestamp_ms == pytest.approx(ref.timestamp_ms, abs=1e-3)
        assert f.clock_domain is ClockDomain.HARDWARE
        assert f.depth_scale == pytest.approx(0.001, rel=1e-4)
        assert np.array_equal(f.pixels, ref.pixels)
    assert any(f.stream is IR for f in got) and any(f.stream is C for f in got)


@pytest.mark.parametrize("make, code", [
    (lambda p: None, "DRV_RECORDING_INVALID"),                                  # missing
    (lambda p: p.write_bytes(b""), "DRV_RECORDING_INVALID"),                     # empty
    (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "DRV_RECORDING_INVALID"),  # corrupt
])
def test_bad_recordings_get_typed_errors(tmp_path, make, code):
    p = tmp_path / "bad.db3"
    make(p)
    with pytest.raises(drivers.DriverError) as ei:
        cam = drivers.open(f"realsense+file://{p}")
        cam.start()
    assert ei.value.code == code


def test_unknown_serial_is_not_found():
    with pytest.raises(drivers.DeviceNotFound):
        drivers.open("realsense://000000000000").start()
    with pytest.raises(drivers.DeviceNotFound):
        drivers.open("realsense://")


def _started_software_sensor():
    import pyrealsense2 as rs
    dev = rs.software_device()
    s = dev.add_sensor("Depth")
    intr = rs.intrinsics()
    intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = 64, 48, 50, 50, 32, 24
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid, vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = (
        rs.stream.depth, 0, 1, 64, 48, 30, 2, rs.format.z16)
    vs.intrinsics = intr
    p = s.add_video_stream(vs)
    return dev, s, p


def _notify(sensor, category, severity):
    import pyrealsense2 as rs
    n = rs.software_notification()
    n.category, n.severity, n.description, n.type, n.serialized_data = category, severity, "test", 0, ""
    sensor.on_notification(n)


def test_sdk_notifications_map_to_typed_errors():
    """A librealsense software sensor delivers real notifications through the SDK's callback thread."""
    import time

    import pyrealsense2 as rs

    from drivers.errors import DeviceLost
    from drivers.realsense import NotificationMonitor
    dev, s, p = _started_software_sensor()
    mon = NotificationMonitor()
    mon.attach(s)
    s.open(p)
    q = rs.frame_queue(4)
    s.start(q)
    try:
        _notify(s, rs.notification_category.frames_timeout, rs.log_severity.warn)
        _notify(s, rs.notification_category.firmware_update_recommended, rs.log_severity.info)
        deadline = time.monotonic() + 60                 # delivered on librealsense's thread: a loaded machine
        while sum(mon.counts.values()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        mon.check()                                   # not fatal: no error raised
        assert mon.counts["frames_timeout"] == 1 and mon.notes
        _notify(s, rs.notification_category.hardware_error, rs.log_severity.error)
        while sum(mon.counts.values()) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(DeviceLost) as exc:
            mon.check()
        assert exc.value.code == "DRV_DEVICE_LOST" and "hardware_error" in exc.value.message
    finally:
        s.stop()
        s.close()


def test_bad_global_time_value_is_invalid_uri():
    from drivers.errors import InvalidUri
    with pytest.raises(InvalidUri):
        drivers.open("realsense://123456?global_time=yes")


def test_projector_power_goes_through_the_sdk_option():
    # The depth sensor's laser_power option, on a librealsense software sensor with a D4xx's range:
    # requests are snapped to its step and clamped; a sensor without the option says so.
    import pyrealsense2 as rs

    from drivers.realsense import projector_power_range, set_projector_power
    dev = rs.software_device()
    sensor = dev.add_sensor("Stereo Module")
    r = rs.option_range()
    r.min, r.max, r.step, r.default = 0.0, 360.0, 30.0, 150.0
    sensor.add_option(rs.option.laser_power, r, True)
    got = projector_power_range(sensor)
    assert (got.minimum, got.maximum, got.step, got.default) == (0.0, 360.0, 30.0, 150.0)
    assert set_projector_power(sensor, 200) == 210.0 and sensor.get_option(rs.option.laser_power) == 210.0
    assert set_projector_power(sensor, 999) == 360.0 and sensor.get_option(rs.option.laser_power) == 360.0
    bare = dev.add_sensor("RGB Camera")
    with pytest.raises(drivers.CapabilityUnsupported):
        set_projector_power(bare, 150)


def test_exposure_lock_goes_through_the_sdk_options():
    # Lock: auto-exposure off at the exposure and gain the latest frame reported (snapped into the
    # option's range); unlock: the manual values and auto-exposure as they were before the lock.
    import pyrealsense2 as rs

    from drivers.base import ExposureSetting
    from drivers.realsense import lock_sensor_exposure, restore_sensor_exposure
    dev, sensor = stereo_device_with_exposure_options()
    setting, saved = lock_sensor_exposure(sensor, ExposureSetting(12345.4, 40.2))
    assert setting == ExposureSetting(12345.0, 40.0)
    assert sensor.get_option(rs.option.enable_auto_exposure) == 0.0
    assert (sensor.get_option(rs.option.exposure), sensor.get_option(rs.option.gain)) == (12345.0, 40.0)
    restore_sensor_exposure(sensor, saved)
    assert sensor.get_option(rs.option.enable_auto_exposure) == 1.0
    assert (sensor.get_option(rs.option.exposure), sensor.get_option(rs.option.gain)) == (8500.0, 16.0)
    # No frame seen yet: the lock holds the sensor's current manual values; out-of-range values clamp.
    setting, _ = lock_sensor_exposure(sensor, None)
    assert setting == ExposureSetting(8500.0, 16.0)
    setting, _ = lock_sensor_exposure(sensor, ExposureSetting(1e9, 1.0))
    assert setting == ExposureSetting(165000.0, 16.0)
    # A sensor without the options (an RGB module here) cannot be locked, and says so.
    bare = dev.add_sensor("RGB Camera")
    with pytest.raises(drivers.CapabilityUnsupported):
        lock_sensor_exposure(bare, None)


def test_exposure_lock_at_a_setting_goes_through_the_sdk_options(monkeypatch):
    # A planned lock: auto-exposure off at the given exposure and gain, clamped to the options'
    # ranges and snapped to their steps (exposure 1..165000 us step 1, gain 16..248 as a D4xx's); a
    # lock moved while held still gives back, on unlock, what the sensor had before the first lock.
    # (librealsense's D4xx exposure and gain are auto-disabling controls: a write with auto-exposure
    # on first moves it to manual, then sets the value; the software sensor has plain options, so
    # the state after the lock is what is checked.)
    import pyrealsense2 as rs

    from drivers.base import ExposureSetting
    from drivers.realsense import RealSenseCamera
    dev, sensor = stereo_device_with_exposure_options()
    cam = RealSenseCamera.__new__(RealSenseCamera)            # the lock's logic, on the SDK's own sensor
    cam._ir_measured, cam._ir_saved = ExposureSetting(8000.0, 16.0), None    # where the AE had got to
    monkeypatch.setattr(cam, "_live_depth_sensor", lambda what: sensor)
    assert cam.lock_exposure(IR, ExposureSetting(4971.8, 16.0)) == ExposureSetting(4972.0, 16.0)
    assert sensor.get_option(rs.option.enable_auto_exposure) == 0.0
    assert (sensor.get_option(rs.option.exposure), sensor.get_option(rs.option.gain)) == (4972.0, 16.0)
    assert cam.lock_exposure(D, ExposureSetting(0.2, 400.0)) == ExposureSetting(1.0, 248.0)   # clamped
    cam.unlock_exposure(IR)
    assert sensor.get_option(rs.option.enable_auto_exposure) == 1.0
    assert (sensor.get_option(rs.option.exposure), sensor.get_option(rs.option.gain)) == (8500.0, 16.0)
    # Without a setting: as before, where the auto-exposure had got to.
    assert cam.lock_exposure(IR) == ExposureSetting(8000.0, 16.0)
    cam.unlock_exposure(IR)
    with pytest.raises(drivers.CapabilityUnsupported):
        cam.lock_exposure(C, ExposureSetting(1000.0, 16.0))


def test_exposure_lock_refuses_recordings_and_colour(recording):
    from drivers.frame import StreamKind
    path, _, _ = recording
    cam = drivers.open(f"realsense+file://{path}")
    with cam:
        with pytest.raises(drivers.CapabilityUnsupported):
            cam.lock_exposure(StreamKind.IR)
        with pytest.raises(drivers.CapabilityUnsupported):
            cam.lock_exposure(StreamKind.COLOR)


def test_the_recorded_cameras_depth_range_plays_back(recording):
    path, src, _ = recording
    want = src.depth_range()                              # the simulated D435: 0.20-3.0 m
    cam = drivers.open(f"realsense+file://{path}")
    with cam:
        got = cam.depth_range()
        assert got is not None and "option" in got.source
        assert (got.min_m, got.max_m) == (pytest.approx(want.min_m), pytest.approx(want.max_m))
        depth = next(f for f in iter(lambda: cam.read(timeout_s=2.0), None) if f.stream is D)
        assert depth.metadata.depth_min_m == pytest.approx(want.min_m)
