"""The one entry from a camera to framesets: read its frames and match them across streams.

Every stage that needs framesets (the session's quality loop, the projector's pre-roll, the
challenge window, ``doctor``, ``analyze``) reads them through a :class:`FramesetReader`, so the
stream order (depth first: it is the reference stream), the matching rate (the slowest stream's)
and the extrinsics are chosen in one place. A reader keeps its matcher across calls: framesets read
in several stages of one session come from one timeline. It also counts what it read
(:class:`ReaderStats`: per-stream frames, drops and measured rate, the framesets' skew), which the
session hands to the daemon's metrics at its end.

A reader also bounds a read that never returns. A camera host's reads are bounded by its heartbeat
(``drivers/host``), but an SDK opened in the daemon itself (``[devices] camera_host = false``, a
tool's own camera) can block inside ``camera.read`` however short its timeout, and a session would
wait there for ever. So the reader makes the reads of such a camera (``Camera.read_may_hang``: every
SDK's and every wrapper's; not a camera host's or the simulator's, whose reads are bounded
otherwise and are made on the caller's thread) on a thread of its own (:class:`_ReadThread`,
one per reader, started at the first read) and waits for each at most its timeout plus
``READ_HANG_GRACE_S``; past that the read is hung: ``DeviceLost`` (``DRV_DEVICE_LOST``), which ends
the session as a lost camera does (before the challenge window that code; inside it the window ends
early, ``SES_STAGE_TIMEOUT``, counted). Python cannot stop a thread blocked in C, so the hung read is
left behind: its thread stays in the SDK until the read returns (or the process ends: the thread is
a daemon thread and holds no exit), its outcome is dropped, and then the thread ends. Until then
the reader makes no other read of that camera (each is ``DeviceLost`` at once).
"""

from __future__ import annotations

import collections
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.pipeline.streamstats import StreamStats
from agent.pipeline.sync import FrameSetMatcher, SyncTimeout
from drivers.base import Camera
from drivers.errors import DeviceLost, FrameTimeout
from drivers.frame import Frame, FrameSet, StreamKind

# How long past its own timeout a camera read may take before the reader calls it hung. A read of
# a live camera returns within its timeout; one that renders or decodes its frame (the simulator
# with ``realtime=0``, a recording) takes at most 65 ms here (the sim, 60 reads under nice 19).
READ_HANG_GRACE_S = 2.0
# How many of its last frames' read order a reader keeps (``FramesetReader.read_before``): more than the frames the
# matcher can hold unmatched (``sync.FrameSetMatcher``'s buffer of 8 a stream, three streams).
READ_ORDER_KEPT = 64


class _Read:
    """One read handed to the read thread: its timeout, then its frame or its exception."""

    __slots__ = ("timeout_s", "done", "frame", "error", "abandoned", "lock")

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.done = threading.Event()
        self.frame: Frame | None = None
        self.error: BaseException | None = None
        self.abandoned = False                   # the reader gave up on it: a late frame is dropped
        self.lock = threading.Lock()

    def give_up(self) -> None:
        with self.lock:
            self.abandoned = True
            self.frame = self.error = None       # if it came back just now


class _ReadThread:
    """The thread a reader's camera reads are made on, one at a time, so the reader can stop waiting
    for one that hangs. It ends when its reader is gone (after the read it is in, if any)."""

    def __init__(self, owner: object, read: Callable[[float], Frame], name: str):
        self._requests: list[_Read | None] = []
        self._wake = threading.Condition()
        self.pending: _Read | None = None        # the read the reader last gave up on, until it returns
        self.thread = threading.Thread(target=self._serve, args=(read,), name=name, daemon=True)
        self.thread.start()
        weakref.finalize(owner, self._submit, None)

    def _submit(self, req: _Read | None) -> None:
        with self._wake:
            self._requests.append(req)
            self._wake.notify()

    def _serve(self, read: Callable[[float], Frame]) -> None:
        while True:
            with self._wake:
                while not self._requests:
                    self._wake.wait()
                req = self._requests.pop(0)
            if req is None:
                return
            frame: Frame | None = None
            error: BaseException | None = None
            try:
                frame = read(req.timeout_s)
            except BaseException as exc:                 # handed to the reader, which raises it
                error = exc
            with req.lock:
                if not req.abandoned:                    # a late frame is not kept for anyone
                    req.frame, req.error = frame, error
            del frame, error
            req.done.set()
            del req                                      # no reference to the frame stays here

    def read(self, timeout_s: float, label: Callable[[], str]) -> Frame:
        """The camera's next frame, or what its read raised; ``DeviceLost`` if it has not returned
        ``READ_HANG_GRACE_S`` after its timeout (or an earlier read is still hung)."""
        if self.pending is not None:
            if not self.pending.done.is_set():
                raise DeviceLost(f"{label()}: an earlier read is still hung in the camera")
            self.pending = None                          # it came back late: its outcome is dropped
        req = _Read(timeout_s)
        self._submit(req)
        if not req.done.wait(timeout_s + READ_HANG_GRACE_S):
            req.give_up()
            self.pending = req
            raise DeviceLost(f"{label()}: a read did not return within {timeout_s + READ_HANG_GRACE_S:.1f} s "
                             f"(its timeout {timeout_s:.2f} s); the camera is hung")
        frame, error = req.frame, req.error
        req.frame = req.error = None
        if error is not None:
            raise error
        assert frame is not None
        return frame


def _ident(frame: Frame) -> tuple:
    """A frame's identity in its camera's streams (the matcher's own: ``sync.FrameSetMatcher.push``)."""
    return (frame.device_serial, frame.stream, frame.index, frame.frame_number, frame.timestamp_ms)


def reference_order(kinds: Iterable[StreamKind]) -> list[StreamKind]:
    """Depth first (the matcher's reference stream), then the others by name."""
    return sorted(set(kinds), key=lambda k: (k is not StreamKind.DEPTH, k.value))


@dataclass
class ReaderStats:
    """What one reader has read: per-stream delivery (frames, frame-number gaps, rate over the
    hardware timestamps) and the skew of each frameset it matched. Counts only, no pixels."""

    streams: dict[str, StreamStats] = field(default_factory=dict)
    framesets: int = 0
    skew_max_ms: float = 0.0
    skew_sum_ms: float = 0.0

    def add_frame(self, frame: Frame) -> None:
        kind = frame.stream.value
        if kind not in self.streams:
            self.streams[kind] = StreamStats(kind)
        self.streams[kind].add(frame)

    def add_frameset(self, fs: FrameSet) -> None:
        self.framesets += 1
        self.skew_sum_ms += fs.skew_ms
        self.skew_max_ms = max(self.skew_max_ms, fs.skew_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"streams": {k: s.to_dict() for k, s in self.streams.items()}, "framesets": self.framesets,
                "skew_max_ms": round(self.skew_max_ms, 3),
                "skew_mean_ms": round(self.skew_sum_ms / self.framesets, 3) if self.framesets else None}


class FramesetReader:
    """Matched framesets from a started camera.

    ``read_timeout_s`` bounds each wait for one frame; the deadlines of ``stream`` and ``take``
    bound the whole read. A live camera that delivers nothing for a moment is waited through; a
    recording's end (``StreamClosed``) and a lost device (``DeviceLost``) reach the caller, and so
    does a read that is still inside the camera ``READ_HANG_GRACE_S`` after its timeout
    (``DeviceLost``: see the module's docstring for what becomes of it)."""

    def __init__(self, camera: Camera, *, streams: Iterable[StreamKind] | None = None,
                 read_timeout_s: float = 1.0):
        profiles = camera.profiles()
        kinds = reference_order(streams if streams is not None else (p.kind for p in profiles))
        fps = min(p.fps for p in profiles if p.kind in kinds)
        # Frames the camera delivers per second of its own time, over the streams read (the bound
        # on frames without a frameset, ``stream(per_frameset=True)``).
        self._frames_per_s = sum(p.fps for p in profiles if p.kind in kinds)
        self.camera = camera
        self.read_timeout_s = read_timeout_s
        self.matcher = FrameSetMatcher(kinds, fps, extrinsics=camera.all_extrinsics())
        self.stats = ReaderStats()
        self._reads: _ReadThread | None = None
        # Framesets a frame completed that no consumer has taken yet: the matcher completes two at once when the
        # reference frame after a held anchor comes (the first anchor, or one after a gap), and a consumer may stop
        # after the first (the session's stages each stop where they have what they need). The next ``stream`` call
        # yields them first, so every frameset matched reaches a consumer once, in order (docs33).
        self._pending: collections.deque[FrameSet] = collections.deque()
        # Frames read so far, and when (the count then) each of the last ``READ_ORDER_KEPT`` was read: a stage that
        # commands the camera before it reads leaves out what was read before its commands (``read_before``).
        self.frames_read = 0
        self._read_order: dict[tuple, int] = {}
        self._read_idents: collections.deque[tuple] = collections.deque()

    def _read(self, timeout_s: float) -> Frame:
        if not self.camera.read_may_hang:               # bounded elsewhere: read here, no thread hop
            return self.camera.read(timeout_s=timeout_s)
        if self._reads is None:
            self._reads = _ReadThread(self, self.camera.read, name="frameset-reader")
        return self._reads.read(timeout_s, lambda: self.camera.info.uri)

    def stream(self, *, timeout_s: float, cancelled: Callable[[], bool] | None = None,
               per_frameset: bool = False, own_time: bool = False) -> Iterator[FrameSet]:
        """Framesets as they complete, until the caller stops, ``cancelled()`` turns true (the
        iterator ends) or ``timeout_s`` passes (``SyncTimeout``).

        With ``per_frameset`` (offline analysis, where a slow machine must not change the result)
        only a source that stalls is cut off, however slowly it delivers: the wall-clock bound is on
        waiting for a frame that does not come (``timeout_s`` since the last frame, checked when a
        read times out), and a source whose frames never make a frameset ends after the frames its
        streams deliver in ``timeout_s`` of their own time (a count, not a clock). A camera that
        renders each frame when it is read (the simulator with ``realtime=0``) never times out a
        read, so how long it takes to render decides nothing.

        With ``own_time`` (a session's stage bounds), a camera that renders each frame when it is read
        (``Camera.renders_on_read``: the simulator with ``realtime=0``, never a device) is given
        ``timeout_s`` of its own time: the frames its streams deliver in ``timeout_s`` (a count), the
        wall clock bounding only the wait for a frame; a loaded machine's slow rendering then decides
        nothing. Every other camera's frames come in real time and keep the wall-clock bound.

        Framesets completed by the frame that completed the last one an earlier ``stream`` yielded, which its
        consumer did not take, come first (``cancelled()`` still ends the iterator before each)."""
        while self._pending:
            if cancelled is not None and cancelled():
                return
            yield self._delivered(self._pending.popleft())
        deadline = time.monotonic() + timeout_s
        # No bound at all (``timeout_s`` infinite: a live view that runs until cancelled) counts no frames either.
        max_frames = max(1, math.ceil(timeout_s * self._frames_per_s)) if math.isfinite(timeout_s) else math.inf
        counted = own_time and not per_frameset and getattr(self.camera, "renders_on_read", False)
        unmatched = 0                           # frames read since the last frameset (per_frameset)
        read = 0                                # frames read in all (own_time)
        while True:
            if cancelled is not None and cancelled():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                since = " of the last frame" if per_frameset else ""
                raise SyncTimeout(f"no complete frameset within {timeout_s:.1f} s{since} "
                                  f"(discarded: {dict(self.matcher.stats.discarded)})")
            try:
                frame = self._read(min(self.read_timeout_s, max(0.01, remaining)))
            except FrameTimeout:
                continue
            self.stats.add_frame(frame)
            self._note_read(frame)
            unmatched += 1
            read += 1
            self._pending.extend(self._complete(frame))
            if self._pending:
                unmatched = 0
            while self._pending:
                yield self._delivered(self._pending.popleft())
            if counted:
                deadline = time.monotonic() + timeout_s    # the clock bounds only the wait for the next frame
                if read >= max_frames:
                    raise SyncTimeout(f"{timeout_s:.1f} s of the camera's own time passed ({read} frames read; "
                                      f"discarded: {dict(self.matcher.stats.discarded)})")
            if per_frameset:
                # A frame came (and the caller had its framesets): only waiting for the next counts.
                deadline = time.monotonic() + timeout_s
                if unmatched >= max_frames:
                    raise SyncTimeout(f"no complete frameset in the last {unmatched} frames ({timeout_s:.1f} s of "
                                      f"the camera's streams; discarded: {dict(self.matcher.stats.discarded)})")

    def _note_read(self, frame: Frame) -> None:
        ident = _ident(frame)
        if ident in self._read_order:
            # A copy of a frame already read (the matcher drops it as a duplicate): the first read is the one a
            # frameset holds, so a copy sent again after a stage's commands does not make it read after them.
            self.frames_read += 1
            return
        if len(self._read_idents) >= READ_ORDER_KEPT:
            self._read_order.pop(self._read_idents.popleft(), None)
        self._read_idents.append(ident)
        self._read_order[ident] = self.frames_read
        self.frames_read += 1

    def read_before(self, fs: FrameSet, mark: int) -> bool:
        """Whether any of ``fs``'s frames was read before ``mark`` (``frames_read`` at the time). For a stage that
        commands the camera before it reads (the challenge window's first projector state and screen step): a
        frameset with a frame the reader had before the commands cannot show them, whether the frame that completed
        an earlier stage's last frameset completed it too (``stream``'s hand-over) or its own frames came later
        (fix34)."""
        return any(self._read_order.get(_ident(f), mark) < mark for f in fs.frames.values())

    def _delivered(self, fs: FrameSet) -> FrameSet:
        """``fs``, counted as one a consumer got."""
        self.stats.add_frameset(fs)
        return fs

    def _complete(self, frame: Frame) -> Iterable[FrameSet]:
        """The framesets ``frame`` completes: the sync module's (a subclass may pair another way)."""
        return self.matcher.push(frame)

    def take(self, count: int, *, timeout_s: float = 10.0, per_frameset: bool = False) -> Iterator[FrameSet]:
        """Exactly ``count`` framesets, yielded as they complete; ``SyncTimeout`` saying how many
        arrived if the rest do not within ``timeout_s`` (with ``per_frameset``, the bounds of
        ``stream(per_frameset=True)``: no frame for ``timeout_s``, or no frameset in the frames the
        streams deliver in ``timeout_s`` of their own time; a camera that renders on read, the
        simulator with ``realtime=0``, is then never cut off by the clock however loaded the machine)."""
        made = 0
        try:
            for fs in self.stream(timeout_s=timeout_s, per_frameset=per_frameset):
                yield fs
                made += 1
                if made >= count:
                    return
        except SyncTimeout as e:
            raise SyncTimeout(f"only {made} of {count} framesets: {e}") from None


def framesets(camera: Camera, count: int, *, timeout_s: float = 10.0, per_frameset: bool = False,
              streams: Iterable[StreamKind] | None = None, read_timeout_s: float = 1.0) -> Iterator[FrameSet]:
    """``count`` matched framesets from a started camera, as they complete (a reader used once;
    ``per_frameset`` as in :meth:`FramesetReader.take`)."""
    return FramesetReader(camera, streams=streams, read_timeout_s=read_timeout_s).take(
        count, timeout_s=timeout_s, per_frameset=per_frameset)
