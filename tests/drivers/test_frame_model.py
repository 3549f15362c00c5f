import numpy as np
import pytest

from drivers.frame import ClockDomain, Extrinsics, Frame, FrameMetadata, FrameSet, Intrinsics, PixelFormat, StreamKind

INTR = Intrinsics(4, 3, 2.0, 2.0, 1.5, 1.0)


def _depth(pixels=None, **kw):
    px = np.full((3, 4), 500, np.uint16) if pixels is None else pixels
    args = dict(stream=StreamKind.DEPTH, pixels=px, format=PixelFormat.Z16, timestamp_ms=1.0,
                clock_domain=ClockDomain.HARDWARE, host_time_ns=1, frame_number=7, intrinsics=INTR,
                depth_scale=0.001)
    args.update(kw)
    return Frame(**args)


def test_frame_owns_a_read_only_copy():
    src = np.full((3, 4), 500, np.uint16)
    f = _depth(src)
    src[:] = 0
    assert f.pixels[0, 0] == 500
    with pytest.raises(ValueError):
        f.pixels[0, 0] = 1


def test_depth_in_metres_marks_holes_nan():
    px = np.full((3, 4), 500, np.uint16)
    px[1, 2] = 0
    z = _depth(px).depth_m()
    assert z[0, 0] == pytest.approx(0.5)
    assert np.isnan(z[1, 2])


@pytest.mark.parametrize("kw, msg", [
    (dict(pixels=np.zeros((3, 4), np.uint8)), "uint16"),
    (dict(pixels=np.zeros((2, 4), np.uint16)), "do not match"),
    (dict(depth_scale=0.0), "depth_scale"),
])
def test_frame_rejects_inconsistent_input(kw, msg):
    with pytest.raises(ValueError, match=msg):
        _depth(**kw)


def test_metadata_is_immutable():
    md = FrameMetadata(exposure_us=100.0, extra={"a": 1})
    with pytest.raises(TypeError):
        md.extra["b"] = 2


def test_extrinsics_inverse_and_compose_roundtrip():
    ang = np.deg2rad(10)
    r = np.array([[np.cos(ang), 0, np.sin(ang)], [0, 1, 0], [-np.sin(ang), 0, np.cos(ang)]])
    e = Extrinsics.from_arrays(r, [0.05, 0.001, -0.002])
    p = np.array([[0.1, -0.2, 0.6], [0.0, 0.0, 1.0]])
    back = e.then(e.inverse()).apply(p)
    np.testing.assert_allclose(back, p, atol=1e-12)
    np.testing.assert_allclose(e.inverse().apply(e.apply(p)), p, atol=1e-12)


def test_frameset_derives_reverse_extrinsics():
    e = Extrinsics.from_arrays(np.eye(3), [0.015, 0, 0])
    fs = FrameSet({StreamKind.DEPTH: _depth()}, {(StreamKind.DEPTH, StreamKind.COLOR): e})
    assert fs.extrinsics_between(StreamKind.COLOR, StreamKind.DEPTH).translation == (-0.015, 0.0, 0.0)
    with pytest.raises(KeyError):
        fs.extrinsics_between(StreamKind.IR, StreamKind.COLOR)
    assert fs.depth is not None and fs.color is None


def test_intrinsics_scaling_keeps_field_of_view():
    i = Intrinsics(640, 480, 600.0, 600.0, 319.5, 239.5)
    s = i.scaled(320, 240)
    assert (s.fx, s.ppx, s.ppy) == (300.0, 159.5, 119.5)
