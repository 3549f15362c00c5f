"""openni+file:// against real .oni files written by openni2.Recorder (in a child process)."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import drivers
from drivers import Capability, PixelFormat, StreamKind
from drivers.errors import FrameTimeout, RecordingInvalid, StreamClosed

openni = pytest.importorskip("drivers.openni")
ROOT = Path(__file__).resolve().parents[2]

# The child records the Dummy device; it leaves with os._exit because oniShutdown after a Recorder
# segfaults (Debian build). The parent never touches a Recorder.
_RECORD = textwrap.dedent("""
    import os, sys, time
    from openni import openni2
    from drivers.openni import ensure_initialized
    ensure_initialized()
    dev = openni2.Device(b"Dummy")
    streams = [dev.create_depth_stream(), dev.create_color_stream()]
    for s in streams:
        s.start()
    rec = openni2.Recorder(sys.argv[1].encode())
    for s in streams:
        rec.attach(s)
    rec.start()
    n = 0
    while n < int(sys.argv[2]):
        ready = openni2.wait_for_any_stream(streams, 1.0)
        if ready is None:
            sys.exit(3)
        ready.read_frame().close()
        n += 1
    for s in streams:              # as drivers.openni.record_to: streams stop, frames in flight drain,
        s.stop()                   # then the Recorder goes (destroying it mid-frame deadlocks libOpenNI2)
    time.sleep(0.1)
    rec.stop()
    rec.close()
    print(n, flush=True)
    os._exit(0)
""")


@pytest.fixture(scope="module")
def oni_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("oni") / "dummy.oni"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # A recording that hangs anyway is killed and made again, at most three times (before the
    # streams were stopped first, the Recorder's destroy deadlocked about one run in 6-12 here).
    for attempt in range(3):
        path.unlink(missing_ok=True)
        try:
            out = subprocess.run([sys.executable, "-c", _RECORD, str(path), "20"], env=env, capture_output=True,
                                 text=True, timeout=10)   # a recording takes ~0.6 s
            break
        except subprocess.TimeoutExpired:
            if attempt == 2:
                raise
    assert out.returncode == 0, out.stderr
    assert path.read_bytes()[:4] == b"NI10"
    return path


def test_recorded_oni_opens_with_recorded_streams(oni_file):
    cam = drivers.open(f"openni+file://{oni_file}")
    try:
        assert cam.info.is_recording and Capability.RECORDING in cam.capabilities
        assert cam.info.name.startswith("PrimeSense")          # the OniFile player device
        cam.start()
        prof = {p.kind: p for p in cam.profiles()}
        assert set(prof) == {StreamKind.DEPTH, StreamKind.COLOR}
        assert (prof[StreamKind.DEPTH].width, prof[StreamKind.DEPTH].height) == (320, 240)
        assert prof[StreamKind.DEPTH].format is PixelFormat.Z16 and prof[StreamKind.COLOR].format is PixelFormat.BGR8
        frames = sum(cam._frames_left.values())
        assert 18 <= frames <= 22                               # 20 frames read while recording
    finally:
        cam.stop()


# The player reads in a child process: Debian's libOniFile has segfaulted in oniDeviceClose after a
# read that got no frame (seen once in a whole-suite run), which would take the test process down
# with it. The child prints what the read did before it closes the device; a crash in the close
# after that line is the library's, reported in docs/drivers.md, not the backend's.
_PLAY = textwrap.dedent("""
    import sys, time
    import drivers
    from drivers.errors import FrameTimeout, StreamClosed
    cam = drivers.open("openni+file://" + sys.argv[1])
    with cam:
        t0 = time.monotonic()
        try:
            f = cam.read(float(sys.argv[2]))
            print("frame", f.stream.value, *f.pixels.shape[:2], flush=True)
        except (FrameTimeout, StreamClosed) as e:
            print("typed", e.code, flush=True)
        print("took", time.monotonic() - t0, flush=True)
""")


def _play(oni_file: Path, timeout_s: float) -> dict[str, list[str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _PLAY, str(oni_file), str(timeout_s)], env=env,
                         capture_output=True, text=True, timeout=30)
    lines = {ln.split()[0]: ln.split()[1:] for ln in out.stdout.splitlines() if ln.strip()}
    assert "took" in lines, f"the read did not return (exit {out.returncode}): {out.stderr[-2000:]}"
    return lines


def test_recorded_oni_read_is_bounded_and_typed(oni_file):
    """Whatever the player does, read() returns a Frame or a typed error within its timeout."""
    got = _play(oni_file, 0.5)
    assert "frame" in got or got["typed"][0] in (FrameTimeout.code, StreamClosed.code), got
    if "frame" in got:
        assert got["frame"][0] in (StreamKind.DEPTH.value, StreamKind.COLOR.value)
    assert float(got["took"][0]) < 0.5 + 1.2               # bounded (slack for a loaded machine)


@pytest.mark.xfail(strict=False, reason="Debian libOniFile: the player thread delivers no frames and seek() "
                   "blocks forever for Recorder-written files here; see docs/drivers.md")
def test_recorded_oni_plays_back_frames(oni_file):
    got = _play(oni_file, 2.0)
    assert "frame" in got and got["frame"][1:] == ["240", "320"], got


def test_missing_and_corrupt_oni_are_typed(tmp_path, oni_file):
    with pytest.raises(RecordingInvalid):
        drivers.open(f"openni+file://{tmp_path}/missing.oni")
    junk = tmp_path / "junk.oni"
    junk.write_bytes(b"this is not an oni file" * 100)
    with pytest.raises(RecordingInvalid):
        drivers.open(f"openni+file://{junk}")
    empty = tmp_path / "empty.oni"
    empty.write_bytes(b"")
    with pytest.raises(RecordingInvalid):
        drivers.open(f"openni+file://{empty}")
    truncated = tmp_path / "truncated.oni"
    truncated.write_bytes(oni_file.read_bytes()[:64])           # header survives, records do not
    t0 = time.monotonic()
    with pytest.raises(RecordingInvalid):
        drivers.open(f"openni+file://{truncated}")
    assert time.monotonic() - t0 < 5.0
    with pytest.raises(RecordingInvalid):
        drivers.open(f"openni+file://{tmp_path}")               # a directory
