"""The reader's deadlines: a bound on the whole read, or (offline analysis) on the wait for each
frameset, so that a slow but live source is read to the end and only a stalled one is cut off.

The clock is the reader's own (``time.monotonic`` in ``agent.pipeline.frames``), advanced by the
camera at each read, so the tests do not depend on this machine's speed."""

from __future__ import annotations

import itertools

import pytest

import agent.pipeline.frames as frames_mod
import drivers
from agent.pipeline.frames import FramesetReader
from agent.pipeline.sync import SyncTimeout
from drivers.errors import FrameTimeout


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t


class SlowCamera:
    """A real simulated camera whose every read takes ``per_read_s`` of the reader's clock, and
    which stalls (times out on every read) after ``stall_after`` frames."""

    def __init__(self, cam, clock: Clock, per_read_s: float, stall_after: int | None = None):
        self._cam, self._clock, self._per_read_s, self._stall_after = cam, clock, per_read_s, stall_after
        self.reads = 0

    def __getattr__(self, name):
        return getattr(self._cam, name)

    def read(self, timeout_s: float):
        self._clock.t += self._per_read_s
        if self._stall_after is not None and self.reads >= self._stall_after:
            raise FrameTimeout("stalled")
        self.reads += 1
        return self._cam.read(timeout_s=timeout_s)


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(frames_mod, "time", c)
    return c


@pytest.fixture
def sim():
    cam = drivers.open("sim://?realtime=0&seed=3")
    cam.start()
    yield cam
    cam.stop()


def test_a_slow_source_is_cut_off_by_a_bound_on_the_whole_read(clock, sim):
    reader = FramesetReader(SlowCamera(sim, clock, per_read_s=0.2))     # ~0.6 s per frameset
    got = []
    with pytest.raises(SyncTimeout, match="within 1.0 s"):
        for fs in reader.stream(timeout_s=1.0):
            got.append(fs)
    assert len(got) < 3


def test_a_slow_source_is_read_to_the_end_with_a_bound_per_frameset(clock, sim):
    reader = FramesetReader(SlowCamera(sim, clock, per_read_s=0.2))
    got = []
    for fs in reader.stream(timeout_s=1.0, per_frameset=True):
        got.append(fs)
        if len(got) == 10:
            break
    assert len(got) == 10                         # ~6 s of the reader's clock, never 1 s without a frameset


def test_a_stalled_source_still_ends_with_a_bound_per_frameset(clock, sim):
    reader = FramesetReader(SlowCamera(sim, clock, per_read_s=0.2, stall_after=12))
    got = []
    with pytest.raises(SyncTimeout, match="of the last"):
        for fs in reader.stream(timeout_s=1.0, per_frameset=True):
            got.append(fs)
    assert 1 <= len(got) <= 4                     # 12 frames of three streams, then nothing


def test_a_frameset_slower_than_the_bound_is_still_read_with_a_bound_per_frameset(clock, sim):
    # Each frame takes 0.5 s of the reader's clock: a frameset (three frames) takes 1.5 s, longer than
    # the 1.0 s bound. The source is slow, not stalled (a loaded machine rendering an unpaced
    # simulator): it is read to the end, as a fast one is; only waiting for a frame counts.
    reader = FramesetReader(SlowCamera(sim, clock, per_read_s=0.5))
    sets = list(itertools.islice(reader.stream(timeout_s=1.0, per_frameset=True), 3))
    assert [fs.depth.frame_number for fs in sets if fs.depth is not None] == [0, 1, 2]


class NoColour(SlowCamera):
    """Delivers every stream but colour (its frames are read and thrown away): frames keep coming,
    and none makes a frameset."""

    def read(self, timeout_s: float):
        while True:
            f = super().read(timeout_s)
            if f.stream.value != "color":
                return f


def test_frames_that_never_make_a_frameset_end_after_a_count_with_a_bound_per_frameset(clock, sim):
    # 0.1 s of three 30 fps streams is 9 frames: the bound is a count, the same however fast they come.
    cam = NoColour(sim, clock, per_read_s=0.03)
    reader = FramesetReader(cam)
    with pytest.raises(SyncTimeout, match="in the last 9 frames"):
        for _ in reader.stream(timeout_s=0.1, per_frameset=True):
            pass
    assert reader.stats.streams["depth"].count + reader.stats.streams["ir"].count == 9


@pytest.mark.parametrize("per_frameset", [False, True])
def test_no_bound_at_all_reads_until_cancelled(clock, sim, per_frameset):
    # The diagnostics live view reads with ``timeout_s=inf`` until cancelled: no clock bound and no
    # frame count (an infinite count once raised OverflowError and killed the live view's thread).
    reader = FramesetReader(SlowCamera(sim, clock, per_read_s=0.5))
    got = []
    for fs in reader.stream(timeout_s=float("inf"), cancelled=lambda: len(got) >= 3, per_frameset=per_frameset):
        got.append(fs)
    assert len(got) == 3


def test_framesets_with_a_bound_per_frameset_reads_a_slow_source_to_the_count(clock, sim):
    # ``framesets``/``take`` as the tests on an unpaced simulator use them: 10 framesets at 1.5 s of
    # the reader's clock each (a loaded machine) under a 1.0 s bound. The bound on the whole read
    # cuts it off and says how many came; the bound per frameset reads all 10.
    with pytest.raises(SyncTimeout, match=r"only 0 of 10 framesets: no complete frameset within 1\.0 s"):
        list(frames_mod.framesets(SlowCamera(sim, clock, per_read_s=0.5), 10, timeout_s=1.0))
    sets = list(frames_mod.framesets(SlowCamera(sim, clock, per_read_s=0.5), 10, timeout_s=1.0, per_frameset=True))
    assert len(sets) == 10
    assert len({fs.depth.frame_number for fs in sets if fs.depth is not None}) == 10


class PacedSlowCamera(SlowCamera):
    """``SlowCamera`` standing for a device whose frames come in real time, late (not rendered on read)."""

    renders_on_read = False


def test_a_session_stage_of_a_camera_that_renders_on_read_is_bounded_in_the_camera_s_own_time(clock, sim):
    # test_keys_e2e (SES_STAGE_TIMEOUT at load 10-12): a session's stages read with a bound on the
    # whole read, and an unpaced simulator rendering slowly on a loaded machine ran past the 30 s
    # challenge window on the clock ("only 31 of 48 framesets arrived within 30 s") however few of
    # its own frames it took. A stage (``own_time``) of a camera that renders on read now gets
    # ``timeout_s`` of the camera's time: 0.1 s of three 30 fps streams is 9 frames, 3 framesets,
    # though each frame takes 0.2 s of the reader's clock (1.8 s in all).
    reader = FramesetReader(SlowCamera(sim, clock, per_read_s=0.2))
    start, got = clock.t, []
    with pytest.raises(SyncTimeout, match=r"0\.1 s of the camera's own time passed \(9 frames read"):
        for fs in reader.stream(timeout_s=0.1, own_time=True):
            got.append(fs)
    assert len(got) == 3 and clock.t - start == pytest.approx(9 * 0.2)
    # The same session stage on a camera whose frames come in real time keeps the clock's bound: a
    # device (or an injector behind one) that delivers late gets no more time for being slow.
    reader = FramesetReader(PacedSlowCamera(sim, clock, per_read_s=0.2))
    with pytest.raises(SyncTimeout, match=r"no complete frameset within 0\.1 s"):
        for fs in reader.stream(timeout_s=0.1, own_time=True):
            got.append(fs)
    assert len(got) == 3
