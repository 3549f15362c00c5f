"""The camera host's frame ring, the daemon's side: a frame's header read from its description alone
(the idle watchdog's read) is validated as the full read is, and says what the frame says."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from drivers import ClockDomain, Frame, FrameHeader, FrameMetadata, Intrinsics, PixelFormat, StreamKind
from drivers.errors import CameraHostProtocol
from drivers.host import CameraHostPool
from drivers.host.ring import FrameRing
from hil.fakes import usbcam
from tests.drivers.test_camera_host import FAST


def _frame(n: int) -> Frame:
    px = (np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) % 900) + 100
    return Frame(StreamKind.DEPTH, px, PixelFormat.Z16, n * 33.3, ClockDomain.HARDWARE, 123456789, n,
                 Intrinsics(64, 48, 60.0, 60.0, 31.5, 23.5), index=0, device_serial="S1", depth_scale=0.001,
                 metadata=FrameMetadata(frame_counter=1000 + n))


@pytest.fixture
def ring():
    r = FrameRing(2, 64 << 10, writable=True)
    yield r
    r.close()


def test_a_header_is_what_the_full_read_says_of_its_frame(ring):
    desc = ring.write(1, _frame(7))
    header = ring.read_header(desc)
    full = ring.read(desc)
    assert header == FrameHeader.of(full)
    assert (header.stream, header.frame_number, header.frame_counter) == (StreamKind.DEPTH, 7, 1007)
    assert header.counter == 1007
    assert header.timestamp_ms == full.timestamp_ms == 7 * 33.3


def test_without_a_sensor_counter_the_header_counts_frame_numbers(ring):
    f = _frame(3)
    plain = Frame(f.stream, f.pixels, f.format, f.timestamp_ms, f.clock_domain, f.host_time_ns, 3, f.intrinsics,
                  depth_scale=0.001)
    header = ring.read_header(ring.write(0, plain))
    assert header.frame_counter is None and header.counter == 3


BAD = {
    "not an object": lambda d: [d],
    "slot outside the ring": lambda d: {**d, "slot": 2},
    "shape outside its slot": lambda d: {**d, "shape": [480, 640]},
    "shape not of the intrinsics": lambda d: {**d, "shape": [48, 32]},
    "dtype not of the format": lambda d: {**d, "dtype": "uint8"},
    "dtype not allowed": lambda d: {**d, "dtype": "float64"},
    "unknown stream": lambda d: {**d, "stream": "thermal"},
    "counter not an integer": lambda d: {**d, "metadata": {**d["metadata"], "frame_counter": 1.5}},
    "frame number a bool": lambda d: {**d, "frame_number": True},
    "timestamp not finite": lambda d: {**d, "timestamp_ms": float("nan")},
    "depth without a scale": lambda d: {**d, "depth_scale": 0.0},
    "serial too long": lambda d: {**d, "device_serial": "x" * 129},
}


@pytest.mark.parametrize("fault", sorted(BAD))
def test_a_bad_description_is_refused_by_the_header_read_as_by_the_full_read(ring, fault):
    desc = BAD[fault](copy.deepcopy(ring.write(0, _frame(1))))
    with pytest.raises(CameraHostProtocol) as full:
        ring.read(desc)
    with pytest.raises(CameraHostProtocol) as header:
        ring.read_header(desc)
    assert str(header.value) == str(full.value)


def test_a_hosted_camera_hands_out_headers_without_copying_pixels(monkeypatch, tmp_path):
    usbcam.register()
    device = usbcam.FakeUsbDevice(tmp_path / "bus", fps=60)
    copied = []
    real_read = FrameRing.read

    def read(self, desc):
        copied.append(desc["frame_number"])
        return real_read(self, desc)

    monkeypatch.setattr(FrameRing, "read", read)        # the daemon's side: the host only writes
    with CameraHostPool(FAST) as pool:
        cam = pool.open(device.uri)
        cam.start()
        last: dict[StreamKind, int] = {}
        for _ in range(3 * FAST.slots):                  # more than the ring holds: every slot is given back
            h = cam.read_header(2.0)
            assert isinstance(h, FrameHeader) and h.counter > last.get(h.stream, -1)
            last[h.stream] = h.counter
        assert copied == [] and set(last) == {StreamKind.DEPTH, StreamKind.IR}
        f = cam.read(2.0)                                # the full read goes on where the headers left off
        assert copied == [f.frame_number] and f.pixels.size and FrameHeader.of(f).counter > last[f.stream]
        cam.stop()


def _with_pixels(n: int, value: int) -> Frame:
    f = _frame(n)
    return Frame(f.stream, np.full_like(f.pixels, value), f.format, f.timestamp_ms, f.clock_domain, f.host_time_ns,
                 n, f.intrinsics, index=0, device_serial="S1", depth_scale=0.001, metadata=f.metadata)


def test_frames_read_in_a_row_keep_their_own_pixels_while_held(ring):
    # The daemon copies each frame out into a pooled array: one still held (a matcher waiting for
    # its partner, a session's window) is never the array the next frame is copied into.
    held = []
    for n in range(8):
        held.append(ring.read(ring.write(n % 2, _with_pixels(n, 100 + n))))
    for n, f in enumerate(held):
        assert (f.pixels == 100 + n).all() and not f.pixels.flags.writeable
    assert ring.buffers.reused == 0


def test_a_frame_nobody_holds_lends_its_array_to_the_next(ring):
    first = ring.read(ring.write(0, _with_pixels(0, 5)))
    first_pixels = id(first.pixels)
    del first
    second = ring.read(ring.write(1, _with_pixels(1, 6)))
    assert id(second.pixels) == first_pixels and (second.pixels == 6).all()
    assert not second.pixels.flags.writeable


def test_a_closed_ring_keeps_no_frame_copies():
    # A camera host's ring is closed when its host goes (stopped, killed, replaced): the copies it
    # kept to lend again go with it, even while something still refers to the ring.
    r = FrameRing(2, 64 << 10, writable=True)
    for n in range(3):
        r.read(r.write(n % 2, _with_pixels(n, 7)))
    assert r.buffers.kept() > 0
    r.close()
    assert r.buffers.kept() == 0


def test_a_hosted_camera_lets_go_of_its_frame_copies_when_its_pace_changes(tmp_path):
    usbcam.register()
    device = usbcam.FakeUsbDevice(tmp_path / "bus", fps=60)
    with CameraHostPool(FAST) as pool:
        cam = pool.open(device.uri)
        cam.start()
        held = cam.read(2.0)
        for _ in range(4):
            cam.read(2.0)                                # a session's reads: copies kept to lend again
        ring = cam.host.ring
        assert ring.buffers.kept() > 0 and ring.buffers.reused > 0
        cam.pace(None, demand=True)                      # the session's lease is given back
        assert ring.buffers.kept() == 0
        assert held.pixels.size and not held.pixels.flags.writeable     # a frame still held stays whole
        cam.stop()
