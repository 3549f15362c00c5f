"""Child processes that die with the daemon are started from one long-lived thread.

Such a child (the camera host, ``drivers/host``; the liveness worker, ``agent/liveness``) sets
``PR_SET_PDEATHSIG`` on itself, and Linux sends that signal when the *thread* that forked it ends,
not the process: a child spawned from a short-lived thread (a session's, a spare's) would be killed
when that thread ends. So every such child is forked by the one thread here, which lives as long as
the process (a daemon thread; started again in a forked copy of the process).
"""

from __future__ import annotations

import collections
import os
import subprocess
import threading
from typing import Any


class Spawner:
    """``subprocess.Popen`` run on one long-lived thread; the caller waits for its result."""

    def __init__(self, name: str = "child-spawner") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._jobs: collections.deque[tuple[tuple[Any, ...], dict[str, Any], list[Any], threading.Event]] = \
            collections.deque()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._pid = 0

    def popen(self, cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        out: list[Any] = []
        done = threading.Event()
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._jobs.append(((cmd,), kw, out, done))
            self._wake.notify()
        done.wait()
        if isinstance(out[0], BaseException):
            raise out[0]
        return out[0]

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._jobs:
                    self._wake.wait()
                args, kw, out, done = self._jobs.popleft()
            try:
                out.append(subprocess.Popen(*args, **kw))
            except BaseException as exc:       # handed to the caller, raised there
                out.append(exc)
            done.set()


_spawner = Spawner()


def popen(cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(cmd, **kw)`` forked from the process's one spawner thread."""
    return _spawner.popen(cmd, **kw)


def spawner_thread() -> threading.Thread | None:
    """The spawner's thread (None before the first child)."""
    return _spawner.thread
