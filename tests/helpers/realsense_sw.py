"""librealsense software devices standing in for a D4xx in driver tests (the SDK's own device,
sensor and option objects; only the USB device is missing)."""

from __future__ import annotations


def stereo_device_with_exposure_options(*, depth_units: float | None = None):
    """A software device whose "Stereo Module" has a D4xx depth sensor's exposure controls: exposure in
    µs (1..165000, step 1), gain 16..248, auto-exposure on by default; with ``depth_units`` also that
    read-only option. Returns (device, stereo sensor)."""
    import pyrealsense2 as rs
    dev = rs.software_device()
    sensor = dev.add_sensor("Stereo Module")
    if depth_units is not None:
        sensor.add_read_only_option(rs.option.depth_units, depth_units)
    for opt, (lo, hi, step, default) in ((rs.option.exposure, (1.0, 165000.0, 1.0, 8500.0)),
                                         (rs.option.gain, (16.0, 248.0, 1.0, 16.0)),
                                         (rs.option.enable_auto_exposure, (0.0, 1.0, 1.0, 1.0))):
        r = rs.option_range()
        r.min, r.max, r.step, r.default = lo, hi, step, default
        sensor.add_option(opt, r, True)
        sensor.set_option(opt, default)
    return dev, sensor
