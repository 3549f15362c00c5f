"""The probe's frameset aligned while the capture goes on, so the receipt does not wait for it.

After a live verdict the session cuts the probe's crops from the frameset the verdict names best,
its depth and IR aligned to the colour image (``agent.pipeline.align``: 7-13 ms of CPU at the
cameras' sizes, on the way from the verdict to the receipt). The liveness worker reports the
frameset it would name if the window ended now, each time that changes (``RemoteJudge``'s
``on_best``: checked by the supervisor, and handed over as the very frameset this session sent at
that index, never one the worker supplies). :class:`ProbeAhead` aligns the one named last on a
thread of its own while the capture goes on; at the verdict :meth:`ProbeAhead.take` gives the
alignment of the frameset the verdict names when it is that one (the same function of the same
frameset: the same arrays, so the same probe to the byte), waiting for it if it is still running.
Otherwise it gives None and the session aligns the verdict's frameset itself, as before.

One alignment at a time: a frameset named while another is being aligned waits, and only the last
one named before the thread is free is aligned (those named in between never are). Nothing is kept
beyond the session: :meth:`ProbeAhead.close` (at the probe, or however the session ends) drops the
alignment and the frameset and waits for a running alignment to end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent.pipeline.align import AlignedFrameSet, align_frameset
from drivers.frame import FrameSet


class ProbeAhead:
    """One session's probe frameset aligned ahead of its verdict (see the module docstring)."""

    def __init__(self, align: Callable[[FrameSet], AlignedFrameSet] = align_frameset):
        self._align = align
        self._cond = threading.Condition()
        self._wanted: FrameSet | None = None          # named last, not started
        self._running: FrameSet | None = None         # being aligned
        self._done: tuple[FrameSet, AlignedFrameSet | None] | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.named = 0                                # framesets named (``name``)
        self.aligned = 0                              # alignments finished ahead

    def __enter__(self) -> ProbeAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def name(self, fs: FrameSet) -> None:
        """``fs`` is the best frameset so far: align it ahead, unless it is already aligned or
        being aligned. Never blocks for an alignment."""
        with self._cond:
            if self._closed:
                return
            self.named += 1
            if self._running is fs or (self._done is not None and self._done[0] is fs):
                self._wanted = None                   # the one named before is not wanted any more
                return
            self._wanted = fs
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="probe-ahead", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._wanted is None and not self._closed:
                    self._cond.wait()
                fs = self._wanted
                if self._closed or fs is None:
                    return
                self._wanted = None
                self._running, self._done = fs, None  # the last alignment is not the best any more
            aligned: AlignedFrameSet | None = None
            try:
                aligned = self._align(fs)
            except Exception:
                aligned = None                        # ``take`` gives None: the session aligns it and meets the error
            finally:
                with self._cond:
                    self._running = None
                    if not self._closed:
                        self._done = (fs, aligned)
                        self.aligned += aligned is not None
                    self._cond.notify_all()
            del fs, aligned

    def take(self, fs: FrameSet) -> AlignedFrameSet | None:
        """The alignment of ``fs`` made ahead (waited for while it runs), or None when ``fs`` is not
        the frameset aligned ahead. Nothing more is aligned ahead after it; what it held goes."""
        with self._cond:
            self._wanted = None
            while self._running is fs:
                self._cond.wait()
            done, self._done = self._done, None
        return done[1] if done is not None and done[0] is fs else None

    def close(self) -> None:
        """Drop everything and end the thread (after the alignment it is running, if any). Idempotent."""
        with self._cond:
            self._closed = True
            self._wanted = self._done = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
