"""UVC backend: videos written with cv2.VideoWriter read back through the real OpenCV capture path;
unplug behaviour (OpenCV keeps returning the last buffer) through a capture wrapper that behaves as
OpenCV does after an unplug, since there is no USB bus or /dev/video* here."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

import drivers
from drivers.base import parse_uri
from drivers.errors import (
    DeviceLost,
    DeviceNotFound,
    DeviceRefused,
    FrameTimeout,
    InvalidUri,
    RecordingInvalid,
    StreamClosed,
    UnsupportedMode,
)
from drivers.frame import ClockDomain, PixelFormat, StreamKind
from drivers.usb import Sysfs
from drivers.uvc import UVCCamera

W, H, FPS, N = 640, 480, 15.0, 24


def _image(k: int, rng) -> np.ndarray:
    img = np.full((H, W, 3), 60, np.uint8)
    cv2.circle(img, (80 + 20 * k, 240), 40, (30, 200, 240), -1)
    cv2.putText(img, str(k), (400, 300), cv2.FONT_HERSHEY_SIMPLEX, 4, (255, 255, 255), 8)
    return cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))   # sensor-like noise


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("uvc") / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert w.isOpened()
    rng = np.random.default_rng(3)
    sent = [_image(k, rng) for k in range(N)]
    for img in sent:
        w.write(img)
    w.release()
    return path, sent


def test_video_file_plays_back_every_frame_with_timeline_and_model(video):
    path, sent = video
    cam = drivers.open(f"uvc+file://{path}")
    with cam:
        (prof,) = cam.profiles()
        assert (prof.kind, prof.width, prof.height, prof.fps, prof.format) == (StreamKind.COLOR, W, H, FPS,
                                                                              PixelFormat.BGR8)
        frames = [cam.read(timeout_s=5) for _ in range(N)]
        with pytest.raises(StreamClosed):
            cam.read(timeout_s=5)
    assert cam.info.is_recording and cam.info.backend == "uvc" and "pinhole" in cam.info.note
    assert [f.frame_number for f in frames] == list(range(N))
    ts = np.array([f.timestamp_ms for f in frames])
    assert np.allclose(np.diff(ts), 1000 / FPS, atol=1.0)
    assert all(f.clock_domain is ClockDomain.HARDWARE for f in frames)
    # MJPEG is lossy: the pixels that come out are the ones that went in, up to compression.
    err = [float(np.mean(np.abs(f.pixels.astype(int) - s.astype(int)))) for f, s in zip(frames, sent, strict=True)]
    assert max(err) < 6.0
    intr = frames[0].intrinsics
    assert intr.fx == pytest.approx((W / 2) / np.tan(np.radians(35)), rel=1e-6)


def test_ir_kind_delivers_y8(video):
    path, _ = video
    with drivers.open(f"uvc+file://{path}?kind=ir") as cam:
        f = cam.read(timeout_s=5)
    assert f.stream is StreamKind.IR and f.format is PixelFormat.Y8 and f.pixels.ndim == 2


def test_calibration_file_gives_intrinsics(video, tmp_path):
    path, _ = video
    cal = tmp_path / "cal.json"
    cal.write_text('{"width": 1280, "height": 960, "fx": 900, "fy": 902, "ppx": 641, "ppy": 481, '
                   '"model": "brown_conrady", "coeffs": [0.1, -0.2, 0, 0, 0.05]}')
    with drivers.open(f"uvc+file://{path}?calibration={cal}") as cam:
        intr = cam.read(timeout_s=5).intrinsics
    assert intr.fx == pytest.approx(450) and intr.fy == pytest.approx(451)
    assert intr.coeffs == (0.1, -0.2, 0.0, 0.0, 0.05)


@pytest.mark.parametrize("uri_suffix, error", [
    ("?width=1920&height=1080", UnsupportedMode),
    ("?fps=60", UnsupportedMode),
    ("?kind=depth", InvalidUri),
    ("?width=abc", InvalidUri),
    ("?bogus=1", InvalidUri),
])
def test_bad_modes_and_queries_are_typed_errors(video, uri_suffix, error):
    path, _ = video
    with pytest.raises(error) as exc:
        drivers.open(f"uvc+file://{path}{uri_suffix}").start()
    assert exc.value.code.startswith("DRV_")


def test_missing_and_corrupt_files_are_recording_invalid(tmp_path):
    with pytest.raises(RecordingInvalid):
        drivers.open(f"uvc+file://{tmp_path}/nope.avi")
    bad = tmp_path / "corrupt.avi"
    bad.write_bytes(b"RIFF" + np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    t0 = time.monotonic()
    with pytest.raises(RecordingInvalid):
        drivers.open(f"uvc+file://{bad}").start()
    assert time.monotonic() - t0 < 10


def test_device_uri_forms_are_checked():
    with pytest.raises(InvalidUri):
        drivers.open("uvc://camera-one")
    with pytest.raises(DeviceNotFound):
        drivers.open("uvc:///dev/video97")      # no such node on this machine


# --- devices, through a capture with OpenCV's interface --------------------------------------------

class UnpluggableCapture:
    """A real cv2.VideoCapture on a file, standing in for a V4L2 device. After ``unplug_after``
    frames it behaves as OpenCV does after a USB unplug: read() still returns True, with the last
    buffer, and the buffer timestamp stops advancing. ``hang_after`` makes read() block instead."""

    def __init__(self, path, unplug_after=None, hang_after=None):
        self.cap = cv2.VideoCapture(str(path))
        self.unplug_after, self.hang_after = unplug_after, hang_after
        self.n = 0
        self.last = None
        self.pos = 0.0
        self.released = False

    def __call__(self, source, api=None):        # used as the capture factory
        assert api == cv2.CAP_V4L2
        return self

    def isOpened(self):
        return self.cap.isOpened()

    def set(self, prop, value):
        return False                              # a file cannot be reconfigured, like a fixed-mode camera

    def get(self, prop):
        if prop == cv2.CAP_PROP_POS_MSEC:
            return self.pos
        return self.cap.get(prop)

    def read(self):
        if self.hang_after is not None and self.n >= self.hang_after:
            time.sleep(3600)
        if self.unplug_after is not None and self.n >= self.unplug_after:
            return True, self.last.copy()
        ok, img = self.cap.read()
        if ok:
            self.n += 1
            self.last = img
            self.pos = 1e6 + self.n * 1000 / FPS
        return ok, img

    def release(self):
        self.released = True
        self.cap.release()


@pytest.fixture
def fake_sysfs(tmp_path):
    """/sys for one physical UVC webcam (video0) and one v4l2loopback node (video10)."""
    root = tmp_path / "root"
    usbdev = root / "sys/devices/pci0000:00/0000:00:14.0/usb1/1-2"
    iface = usbdev / "1-2:1.0"
    (iface / "video4linux").mkdir(parents=True)
    for k, v in {"idVendor": "046d", "idProduct": "085e", "serial": "ABC123", "bcdDevice": "0013"}.items():
        (usbdev / k).write_text(v + "\n")
    drv = root / "sys/bus/usb/drivers/uvcvideo"
    drv.mkdir(parents=True)
    (iface / "driver").symlink_to(drv)
    cls = root / "sys/class/video4linux"
    (cls / "video0").mkdir(parents=True)
    (cls / "video0/name").write_text("Logitech BRIO\n")
    (cls / "video0/device").symlink_to(iface)
    loop = root / "sys/devices/virtual/video4linux/video10"
    loop.mkdir(parents=True)
    (cls / "video10").mkdir()
    (cls / "video10/name").write_text("Dummy video device (0x0000)\n")
    return Sysfs(root)


def device(video_path, sysfs, present, **kw):
    cap = UnpluggableCapture(video_path, **kw)
    cam = UVCCamera(parse_uri("uvc:///dev/video0?fps=15"), capture_factory=cap, sysfs=sysfs,
                    node_exists=lambda node: present["video0"])
    return cam, cap


def test_device_has_usb_identity_and_live_clock(video, fake_sysfs):
    cam, _ = device(video[0], fake_sysfs, {"video0": True})
    with cam:
        f = cam.read(timeout_s=5)
    assert cam.info.usb.describe() == "046d:085e serial=ABC123 bus=1-2"
    assert cam.info.serial == "ABC123" and not cam.info.is_recording
    assert f.clock_domain is ClockDomain.SYSTEM and f.metadata.frame_counter == 0


def test_virtual_camera_is_refused(fake_sysfs):
    with pytest.raises(DeviceRefused, match="virtual"):
        UVCCamera(parse_uri("uvc:///dev/video10"), sysfs=fake_sysfs, node_exists=lambda n: True)


def test_stale_frames_after_unplug_end_the_stream_with_device_lost(video, fake_sysfs):
    cam, _ = device(video[0], fake_sysfs, {"video0": True}, unplug_after=5)
    got = 0
    with cam:
        with pytest.raises(DeviceLost, match="stale"):
            for _ in range(50):
                cam.read(timeout_s=2)
                got += 1
    # 5 real frames, then at most stale_frames - 1 repeats pass before the stream ends.
    assert 5 <= got <= 5 + 2


def test_node_removal_is_device_lost_even_when_the_driver_blocks(video, fake_sysfs):
    present = {"video0": True}
    cam, _ = device(video[0], fake_sysfs, present, hang_after=3)
    with cam:
        for _ in range(3):
            cam.read(timeout_s=5)
        with pytest.raises(FrameTimeout):
            cam.read(timeout_s=0.3)               # the driver blocks: a bounded timeout, no hang
        present["video0"] = False                  # udev removes the node on unplug
        t0 = time.monotonic()
        with pytest.raises(DeviceLost, match="disappeared"):
            cam.read(timeout_s=5)
        assert time.monotonic() - t0 < 1.0
    t0 = time.monotonic()
    cam.stop()                                    # idempotent and bounded with a stuck reader
    assert time.monotonic() - t0 < 0.5
    with pytest.raises(StreamClosed):
        cam.read(timeout_s=0.1)


def test_stream_cli_reads_a_uvc_file(video, capsys):
    from agent.cli import main
    assert main(["stream", f"uvc+file://{video[0]}", "--frames", "10", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"color"' in out and "640" in out
