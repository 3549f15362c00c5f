"""RealSense identity, capabilities and mode choice, asked of librealsense software devices (the
real SDK's device, sensor, option and profile objects; only the USB camera behind them is absent)."""

from __future__ import annotations

import math

import pytest

rs = pytest.importorskip("pyrealsense2")

from drivers import Capability, StreamKind  # noqa: E402
from drivers import realsense_device as rsdev  # noqa: E402
from drivers.errors import UnsupportedMode  # noqa: E402

PORT = "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-3/2-3.1/2-3.1:1.0/video4linux/video0"


def _software_device(*, projector: bool, product_id: str | None = "0B07", link: str = "3.2",
                     name: str = "Intel RealSense D435", color_fx: float = 0.0, exposure: bool = True):
    dev = rs.software_device()
    depth = dev.add_sensor("Stereo Module")
    depth.add_read_only_option(rs.option.depth_units, 0.001)
    if projector:
        depth.add_option(rs.option.emitter_enabled, rs.option_range(0, 1, 1, 1), True)
        depth.add_option(rs.option.laser_power, rs.option_range(0, 360, 30, 150), True)
    depth.add_option(rs.option.enable_auto_exposure, rs.option_range(0, 1, 1, 1), True)
    if exposure:                                      # what the lock sets (a D4xx stereo module has them)
        for opt, (lo, hi, step, default) in ((rs.option.exposure, (1.0, 165000.0, 1.0, 8500.0)),
                                             (rs.option.gain, (16.0, 248.0, 1.0, 16.0))):
            r = rs.option_range()
            r.min, r.max, r.step, r.default = lo, hi, step, default
            depth.add_option(opt, r, True)
    dev.register_info(rs.camera_info.name, name)
    dev.register_info(rs.camera_info.serial_number, "843112070001")
    if product_id:
        dev.register_info(rs.camera_info.product_id, product_id)
        dev.register_info(rs.camera_info.physical_port, PORT)
        dev.register_info(rs.camera_info.usb_type_descriptor, link)
    uid = 0
    for w, h in ((640, 480), (1280, 720)):
        for fps in (30, 15):
            for stream, index, fmt, bpp in ((rs.stream.depth, 0, rs.format.z16, 2),
                                            (rs.stream.infrared, 1, rs.format.y8, 1)):
                vs = rs.video_stream()
                vs.type, vs.index, vs.uid, vs.width, vs.height = stream, index, uid, w, h
                vs.fps, vs.bpp, vs.fmt = fps, bpp, fmt
                vs.intrinsics = _intr(w, h, w * 0.6)
                depth.add_video_stream(vs)
                uid += 1
    colour = dev.add_sensor("RGB Camera")
    for w, h in ((640, 480), (960, 540), (1280, 720)):
        for fps in (30, 15):
            vs = rs.video_stream()
            vs.type, vs.index, vs.uid, vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = \
                rs.stream.color, 0, uid, w, h, fps, 3, rs.format.bgr8
            vs.intrinsics = _intr(w, h, color_fx * w / 640 if color_fx else (w / 2) / math.tan(math.radians(34.7)))
            colour.add_video_stream(vs)
            uid += 1
    return dev


def _intr(w, h, fx):
    i = rs.intrinsics()
    i.width, i.height, i.fx, i.fy, i.ppx, i.ppy = w, h, fx, fx, w / 2, h / 2
    i.model, i.coeffs = rs.distortion.none, [0.0] * 5
    return i


def test_d435_like_device_reports_projector_exposure_and_reset():
    caps = rsdev.probe_capabilities(_software_device(projector=True), rs)
    assert caps == {Capability.PROJECTOR_CONTROL, Capability.PROJECTOR_POWER, Capability.EXPOSURE_LOCK_IR,
                    Capability.HARDWARE_RESET}
    assert Capability.EXPOSURE_LOCK_COLOR not in caps          # the colour imager's lock is refused


def test_auto_exposure_without_the_manual_options_claims_no_lock():
    # The lock sets exposure and gain and turns auto-exposure off: a sensor lacking any of them
    # cannot be locked, so the capability is not claimed.
    caps = rsdev.probe_capabilities(_software_device(projector=True, exposure=False), rs)
    assert Capability.EXPOSURE_LOCK_IR not in caps and Capability.PROJECTOR_CONTROL in caps


def test_d405_like_device_without_projector_says_so():
    caps = rsdev.probe_capabilities(_software_device(projector=False, name="Intel RealSense D405"), rs)
    assert Capability.PROJECTOR_CONTROL not in caps and Capability.PROJECTOR_POWER not in caps
    assert Capability.HARDWARE_RESET in caps
    assert rsdev.model_of("Intel RealSense D405") == "D405" and not rsdev.MODELS["D405"].projector


def test_usb_identity_and_link_come_from_camera_info():
    ident = rsdev.usb_identity(_software_device(projector=True, link="2.1"), rs)
    assert (ident.vendor_id, ident.product_id, ident.serial, ident.bus_path, ident.link) == \
        (0x8086, 0x0B07, "843112070001", "2-3.1", "2.1")
    assert rsdev.is_usb2(ident)
    assert rsdev.usb_identity(_software_device(projector=True, product_id=None), rs) is None


@pytest.mark.parametrize("port,path", [(PORT, "2-3.1"),
                                       ("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-4/1-4:1.0", "1-4"),
                                       ("/sys/devices/platform/usb3/3-1/3-1.2/3-1.2.4/3-1.2.4:1.0/video4linux/video2",
                                        "3-1.2.4"), ("", ""), ("\\\\?\\usb#vid_8086&pid_0b07#6&1", "")])
def test_bus_path_from_physical_port(port, path):
    assert rsdev.bus_path_from_port(port) == path


def test_offered_modes_read_from_the_device_with_colour_focal_lengths():
    modes = rsdev.offered_modes(_software_device(projector=True), rs)
    colour = [m for m in modes if m.kind is StreamKind.COLOR]
    assert {(m.width, m.height) for m in colour} == {(640, 480), (960, 540), (1280, 720)}
    assert all(m.fx > 0 for m in colour)
    assert any(m.kind is StreamKind.IR and m.index == 1 and m.format == "y8" for m in modes)


def test_choice_keeps_the_eyes_60_px_apart_at_the_working_distance():
    modes = rsdev.offered_modes(_software_device(projector=True), rs)       # a D435-like 69° colour lens
    c = rsdev.choose_modes(modes, usb2=False, model="D435", distance_m=0.6)
    assert (c.depth.width, c.depth.height, c.depth.fps) == (640, 480, 30)
    assert c.ir is not None and (c.ir.width, c.ir.height) == (640, 480)
    assert (c.color.width, c.color.height, c.color.fps) == (960, 540, 30)  # 640x480 gives ~49 px at 0.6 m
    assert c.color.ipd_px(0.6, 69.4) >= 60
    near = rsdev.choose_modes(modes, usb2=False, model="D435", distance_m=0.45)
    assert (near.color.width, near.color.height) == (640, 480)              # close enough for 640x480


def test_wide_colour_lens_needs_a_larger_mode():
    modes = rsdev.offered_modes(_software_device(projector=True, color_fx=381.0), rs)   # D455-like at 640 px
    assert rsdev.Mode(StreamKind.COLOR, 640, 480, 30, "bgr8", fx=381.0).ipd_px(0.4, 90) == pytest.approx(60, abs=0.1)
    c = rsdev.choose_modes(modes, usb2=False, model="D455", distance_m=0.65)
    assert (c.color.width, c.color.height) == (1280, 720)                   # 960x540 keeps only 55 px


def test_a_lower_rate_with_a_colour_mode_for_the_face_beats_a_faster_one_without():
    # A D455 offers 60 fps colour only up to 848x480 (~44 px between the eyes at 0.6 m): depth's
    # rate is lowered to 30 fps, where 1280x720 keeps 66 px, rather than streaming a face too small.
    def offers(fx640):
        out = []
        for fps in (60, 30):
            out += [rsdev.Mode(StreamKind.DEPTH, 640, 480, fps, "z16"),
                    rsdev.Mode(StreamKind.IR, 640, 480, fps, "y8", 1)]
            out += [rsdev.Mode(StreamKind.COLOR, 640, 480, fps, "bgr8", fx=fx640),
                    rsdev.Mode(StreamKind.COLOR, 848, 480, fps, "bgr8", fx=fx640 * 0.6625 / 0.6)]
        return out + [rsdev.Mode(StreamKind.COLOR, 1280, 720, 30, "bgr8", fx=fx640 / 0.6)]
    c = rsdev.choose_modes(offers(377.7), usb2=False, model="D455", distance_m=0.6)
    assert (c.depth.fps, c.color.width, c.color.height, c.color.fps) == (30, 1280, 720, 30) and not c.note
    # A lens that keeps the face at 60 fps keeps the faster rate.
    fast = rsdev.choose_modes(offers(615.3), usb2=False, model="D435", distance_m=0.6)
    assert (fast.depth.fps, fast.color.width, fast.color.fps) == (60, 640, 60)
    # No rate keeps it: the first (fastest) combination, with the largest colour there, and a note.
    far = rsdev.choose_modes(offers(377.7), usb2=False, model="D455", distance_m=1.2)
    assert (far.depth.fps, far.color.width) == (60, 848) and "no colour mode keeps 60 px" in far.note


def test_usb2_link_fits_the_streams_in_its_bandwidth():
    modes = rsdev.offered_modes(_software_device(projector=True, link="2.1"), rs)
    c = rsdev.choose_modes(modes, usb2=True, model="D435", distance_m=0.6)
    total = c.depth.bandwidth + c.ir.bandwidth + c.color.bandwidth
    assert total <= rsdev.USB2_BUDGET and c.depth.fps == 15 and c.color.fps == 15


def test_no_depth_mode_for_the_spec_is_refused():
    small = [rsdev.Mode(StreamKind.DEPTH, 480, 270, 30, "z16"), rsdev.Mode(StreamKind.COLOR, 640, 480, 30, "bgr8")]
    with pytest.raises(UnsupportedMode, match="640x400"):
        rsdev.choose_modes(small, usb2=False)


def test_colour_too_small_everywhere_is_noted_not_hidden():
    modes = [rsdev.Mode(StreamKind.DEPTH, 640, 480, 30, "z16"), rsdev.Mode(StreamKind.IR, 640, 480, 30, "y8", 1),
             rsdev.Mode(StreamKind.COLOR, 640, 480, 30, "bgr8", fx=300.0)]
    c = rsdev.choose_modes(modes, usb2=False, distance_m=0.8)
    assert c.color is not None and "no colour mode keeps 60 px" in c.note


def _depth_sensor(**options):
    dev = rs.software_device()
    sensor = dev.add_sensor("Stereo Module")
    for name, value in options.items():
        sensor.add_read_only_option(getattr(rs.option, name), value)
    return dev, sensor


def test_depth_range_from_the_sensors_own_options():
    dev, sensor = _depth_sensor(min_distance=0.28, max_distance=4.0)
    r = rsdev.depth_range_of(sensor, rs, "D455", 848)          # the device's word beats the datasheet
    assert (r.min_m, r.max_m) == (pytest.approx(0.28), pytest.approx(4.0))
    assert "option" in r.source


def test_depth_range_from_the_datasheet_scales_with_the_depth_width():
    dev, sensor = _depth_sensor()                                # a D4xx stereo module has no such options
    at848 = rsdev.depth_range_of(sensor, rs, "D455", 848)
    at1280 = rsdev.depth_range_of(sensor, rs, "D455", 1280)
    at640 = rsdev.depth_range_of(sensor, rs, "D455", 640)
    assert (at848.min_m, at848.max_m) == (0.42, 6.0) and at1280.min_m == 0.52
    assert at640.min_m == pytest.approx(0.42 * 640 / 848, abs=1e-3)   # the disparity search is a pixel count
    assert "datasheet" in at848.source
    assert rsdev.depth_range_of(sensor, rs, "D405", 848).max_m is None  # it measures on past its ideal range


def test_unknown_model_and_nonsense_options_make_no_claim():
    dev, sensor = _depth_sensor()
    assert rsdev.depth_range_of(sensor, rs, "", 848) is None
    dev, sensor = _depth_sensor(min_distance=5.0, max_distance=1.0)   # an empty range is not a range
    assert rsdev.depth_range_of(sensor, rs, "", 848) is None
    assert rsdev.depth_range_of(sensor, rs, "D435", 848).min_m == 0.195
