"""Framesets one camera frame completes together reach the reader's next consumer (docs33).

The matcher holds an anchor after a gap in the reference stream (and the first anchor) until the reference's next
frame has come: on the streaming simulator that frame completes the held anchor's frameset and its own at once. The
session reads one reader in stages (the quality loop, ``_limited`` under the projector's and the exposure's
``wait_applied``, the window), each stopping where it has what it needs; a stage that stopped on the first of two
such framesets used to take the second down with its generator (noticed in the thirty-first session). The process's
monotonic clock is the test's (as in ``tests/session/test_stream_window_start.py``), so the simulator's streaming
clock, its queue of one and the matcher's holds do not depend on this machine's load."""

from __future__ import annotations

import collections

import pytest

import drivers
from agent.liveness.challenge import Challenge, Kind
from agent.pipeline.frames import FramesetReader
from agent.session.capture import _limited
from agent.session.projector import Projector
from agent.session.window import collect
from drivers.frame import StreamKind
from tests.helpers.driven_clock import Clock, drive

# The late-windows bench's camera: 30 fps on its own clock with a queue of one frameset.
URI = "sim://?realtime=1&stream=1&prerender=8&seed=21&subject=live&lux=300&distance_mm=500"
INTERVAL_S = 1 / 30


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return drive(monkeypatch)


def _stages(cam, clock: Clock, stages: int, wait_after: int | None = None) -> tuple[list[int], collections.Counter]:
    """``stages`` consumers of one reader, each ``_limited`` to one frameset as the session's settling stages are;
    with ``wait_after``, the reader waits 4 frame intervals for a CPU inside its read after that many stages (the
    queue of one drops the frames between: a gap in every stream). The depth counters each stage got, and how many
    framesets each frame completed."""
    reader = FramesetReader(cam)
    push, completed = reader.matcher.push, collections.Counter[int]()

    def counted(frame):
        out = push(frame)
        completed[len(out)] += 1
        return out
    reader.matcher.push = counted                   # type: ignore[method-assign]
    read = cam.read
    depth: list[int] = []
    waited: list[bool] = []

    def reads(timeout_s: float = 1.0):
        if wait_after is not None and len(depth) == wait_after and not waited:
            waited.append(True)
            clock.sleep(4 * INTERVAL_S)
        return read(timeout_s)
    cam.read = reads
    for _ in range(stages):
        (fs,) = list(_limited(reader, 1, 30.0))
        depth.append(fs.frames[StreamKind.DEPTH].frame_number)
    assert reader.stats.framesets == stages         # every frameset matched is one a stage got
    return depth, completed


def test_two_framesets_one_frame_completed_both_reach_the_next_stage(clock):
    # The first anchor is held until the third depth frame, which completes framesets 0 and 1 together.
    with drivers.open(URI) as cam:
        depth, completed = _stages(cam, clock, 8)
    assert completed[2] >= 1, completed              # the case is real on this camera
    assert depth == list(range(depth[0], depth[0] + 8)), depth


def test_after_frames_lost_the_held_frameset_and_the_next_reach_the_next_stage(clock):
    # The frames a wait inside a read spanned are lost (the camera's queue of one, as a device's); the anchor after
    # the gap is held for the reorder allowance, and when the next depth frame's timestamp is less than a period
    # later (the simulator's jitter; so with this seed after stage 5), the one after completes both framesets.
    with drivers.open(URI) as cam:
        depth, completed = _stages(cam, clock, 10, wait_after=5)
    assert completed[2] >= 2, completed              # at the start and after the gap
    jumps = [b - a for a, b in zip(depth, depth[1:], strict=False)]
    assert jumps.count(1) == len(jumps) - 1, depth   # consecutive but for the gap itself
    assert max(jumps) >= 3, depth                    # the frames the wait spanned, and only they, are missing


# The simulator as the session's tests and pad-eval read it: it renders each tick when read (waits for its reader).
WAITING = "sim://?seed=21&subject=live&lux=300&distance_mm=500"


def _first_off() -> Challenge:
    """A projector challenge whose first states are off (the quality loop leaves the projector on)."""
    for i in range(64):
        ch = Challenge.from_nonce(bytes([i]) * 16, frames=32, kinds=[Kind.PROJECTOR])
        if ch.schedule[:3] == (False, False, False):
            return ch
    raise AssertionError("no nonce with an unlit start")


@pytest.mark.parametrize("uri, resend", [(WAITING, False), (URI, False), (WAITING, True)],
                         ids=["waits_for_reader", "streaming", "a_copy_sent_again_after_the_command"])
def test_the_window_never_starts_on_a_frameset_matched_before_its_first_command(clock, uri, resend):
    # fix34: the stage before the window (the quality loop, ``_limited``) stops on the first of two framesets one
    # frame completed; the second, captured under the projector the quality loop left on, was the window's frame 0
    # on a camera that waits for its reader, read as the "off" first state. ``resend``: the link sends the last depth
    # frame read before the command again after it (the matcher drops the copy; its first read is what counts).
    ch = _first_off()
    with drivers.open(uri) as cam:
        read, commanded, numbers = cam.read, [], []
        last_depth: list = []

        def reads(timeout_s: float = 1.0):
            if resend and commanded and last_depth:
                frame = last_depth.pop()
            else:
                frame = read(timeout_s)
                if frame.stream is StreamKind.DEPTH and not commanded:
                    last_depth[:] = [frame]
            numbers.append((frame.stream, frame.frame_number, bool(commanded)))
            return frame
        cam.read = reads
        set_projector = cam.set_projector

        def spy(on):
            commanded.append(on)
            set_projector(on)
        cam.set_projector = spy
        reader = FramesetReader(cam)
        list(_limited(reader, 1, 30.0))                      # the quality loop's last frameset
        assert reader._pending, "the case is real on this camera"  # its frame completed another
        sets = collect(reader, 4, ch, Projector(cam))
    before = {(s, n) for s, n, after in numbers if not after}
    assert len(sets) == 4
    for fs in sets:                                          # no frame of the window was read before the command
        assert not any((k, f.frame_number) in before for k, f in fs.frames.items()), fs.frames
    assert [fs.ir.metadata.projector_on for fs in sets] == list(ch.schedule[:4])
