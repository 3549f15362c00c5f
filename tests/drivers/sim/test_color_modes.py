"""The simulated camera's colour mode: offered per profile, chosen for the face as the RealSense
driver chooses it (``drivers.modes``), or forced with ``color_mode=WxH@FPS``."""

import numpy as np
import pytest

import drivers
from drivers import realsense_device as rsdev
from drivers.frame import StreamKind
from drivers.modes import MIN_IPD_PX, WORKING_DISTANCE_M, Mode
from drivers.sim.modes import color_intrinsics, offered_color_modes
from drivers.sim.profiles import get_profile

D, C = StreamKind.DEPTH, StreamKind.COLOR
# A D455's factory colour calibration at 1280x800 (profiles.py, [D455-CAL]).
D455_CAL = {"fx": 629.6, "fy": 628.9, "ppx": 629.1, "ppy": 397.5}


def _colour(cam):
    return next(p for p in cam.profiles() if p.kind is C)


def _as_realsense_offers(name: str) -> list[Mode]:
    """The profile's modes as pyrealsense2 lists them (``realsense_device.offered_modes``): depth
    z16, left IR y8 (index 1), colour bgr8 with each mode's focal length."""
    prof, out = get_profile(name), []
    for kind, w, h, fps in prof.stream_modes:
        if kind == "depth":
            out.append(Mode(StreamKind.DEPTH, w, h, fps, "z16"))
        elif kind == "ir":
            out.append(Mode(StreamKind.IR, w, h, fps, "y8", 1))
        else:
            out.append(Mode(StreamKind.COLOR, w, h, fps, "bgr8", fx=color_intrinsics(prof, w, h).fx))
    return out


def test_a_d455_streams_1280x720_colour_with_its_calibrations_intrinsics():
    cam = drivers.open("sim://?realtime=0&camera=d455&seed=1")
    c = _colour(cam)
    assert (c.width, c.height, c.fps) == (1280, 720, 30)
    # 1280x720 is the centred 1280x720 crop of the 1280x800 calibration, unscaled.
    i = c.intrinsics
    assert i.fx == pytest.approx(D455_CAL["fx"], abs=0.5) and i.fy == pytest.approx(D455_CAL["fy"], abs=0.5)
    assert i.ppx == pytest.approx(D455_CAL["ppx"], abs=0.5)
    assert i.ppy == pytest.approx(D455_CAL["ppy"] - 40, abs=0.5)
    assert i.coeffs == get_profile("d455").color_intrinsics.coeffs
    assert i.fx * 0.063 / WORKING_DISTANCE_M >= MIN_IPD_PX
    assert "colour 1280x720@30" in cam.info.note
    cam.start()
    frames = [cam.read() for _ in range(4)]
    cam.stop()
    colour = [f for f in frames if f.stream is C]
    assert colour and colour[0].pixels.shape == (720, 1280, 3) and colour[0].intrinsics == i
    # The mode the RealSense driver picks on a device that offers what the D455 profile offers.
    rs_choice = rsdev.choose_modes(_as_realsense_offers("d455"), usb2=False, model="D455")
    assert (rs_choice.color.width, rs_choice.color.height) == (1280, 720) and not rs_choice.note


@pytest.mark.parametrize("name", ["d435", "d415"])
def test_cameras_whose_640x480_keeps_60_px_keep_it(name):
    cam = drivers.open(f"sim://?realtime=0&camera={name}")
    c = _colour(cam)
    assert (c.width, c.height, c.fps) == (640, 480, 30)
    assert c.intrinsics == get_profile(name).color_intrinsics
    rs_choice = rsdev.choose_modes(_as_realsense_offers(name), usb2=False, model=name.upper())
    assert (rs_choice.color.width, rs_choice.color.height) == (640, 480)
    default = _colour(drivers.open("sim://?realtime=0"))              # no camera named: a D435
    assert (default.width, default.height) == (640, 480)


def test_the_astra_has_no_larger_mode_at_its_rate_and_says_so():
    cam = drivers.open("sim://?realtime=0&camera=astra")
    c = _colour(cam)
    assert (c.width, c.height, c.fps) == (640, 480, 30)          # 1280x720 only at 10 fps
    assert "no colour mode keeps 60 px" in cam.info.note


def test_derived_modes_image_the_head_at_the_scale_of_their_focal_length():
    # The same head in two modes: its width in the colour ground truth at the nose tip's row scales
    # with the focal length, and the nose tip lies on the same ray through each mode's intrinsics.
    widths, fxs, rays = {}, {}, {}
    for mode in ("640x480@30", "1280x720@30"):
        cam = drivers.open(f"sim://?realtime=0&camera=d455&torso=0&seed=1&color_mode={mode}")
        cam.start()
        f = next(f for f in iter(cam.read, None) if f.stream is C)
        gt = cam.ground_truth(C, f.frame_number)
        cam.stop()
        v, u = np.unravel_index(np.nanargmin(gt), gt.shape)
        i = f.intrinsics
        widths[mode], fxs[mode] = int((gt[v] < 0.8).sum()), i.fx
        rays[mode] = np.array([(u - i.ppx) / i.fx, (v - i.ppy) / i.fy])
    assert widths["1280x720@30"] / widths["640x480@30"] == pytest.approx(fxs["1280x720@30"] / fxs["640x480@30"],
                                                                         rel=0.03)
    assert np.abs(rays["1280x720@30"] - rays["640x480@30"]).max() < 2.5 / fxs["640x480@30"]


def test_color_mode_forces_a_mode_the_camera_offers():
    cam = drivers.open("sim://?realtime=0&camera=d455&color_mode=640x480@30")
    c = _colour(cam)
    assert (c.width, c.height, c.fps) == (640, 480, 30) and c.intrinsics == get_profile("d455").color_intrinsics
    assert "forced" in cam.info.note
    fast = _colour(drivers.open("sim://?realtime=0&camera=d435&color_mode=848x480@60"))
    assert (fast.width, fast.height, fast.fps) == (848, 480, 60)


@pytest.mark.parametrize("query, words", [
    ("camera=d455&color_mode=1920x1080@30", ["not offered", "1280x720@5/15/30"]),
    ("camera=d455&color_mode=1280x720@60", ["not offered", "848x480@5/15/30/60"]),
    ("camera=astra&color_mode=1280x720@30", ["not offered", "1280x720@10"]),
    ("color_mode=640x480", ["WIDTHxHEIGHT@FPS"]),
    ("color_mode=big", ["WIDTHxHEIGHT@FPS"]),
    ("camera=d455&color_mode=640x480@30&color_fps=15", ["contradicts"]),
    ("camera=d455&color_fps=45", ["color_fps 45 is not offered"]),
])
def test_colour_modes_the_camera_does_not_offer_are_refused(query, words):
    with pytest.raises(drivers.InvalidUri) as ei:
        drivers.open(f"sim://?{query}")
    assert ei.value.code == "DRV_INVALID_URI"
    for w in words:
        assert w in ei.value.message


def test_the_colour_rate_limits_the_choice_as_on_the_device():
    # At 60 fps a D455 offers colour only up to 848x480: the largest is taken, and the note says
    # the face will be small (the driver's rule at that rate).
    cam = drivers.open("sim://?realtime=0&camera=d455&color_fps=60")
    c = _colour(cam)
    assert (c.width, c.height, c.fps) == (848, 480, 60)
    assert "no colour mode keeps 60 px" in cam.info.note
    assert offered_color_modes(get_profile("d455"))[(848, 480)] == (5.0, 15.0, 30.0, 60.0)
    # A rate no colour mode offers (the simulator runs any fps) chooses among every size.
    slow = _colour(drivers.open("sim://?realtime=0&camera=d455&fps=8"))
    assert (slow.width, slow.height, slow.fps) == (1280, 720, 8)
