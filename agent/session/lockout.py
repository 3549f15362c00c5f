"""Failed attempts per terminal and per subject; too many within the window lock both out
(T/IIFAA 3001.1 §8.2.5 d)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from agent.config import SessionSettings
from agent.session.errors import LockedOut


class Lockout:
    def __init__(self, s: SessionSettings, clock: Callable[[], float] = time.monotonic):
        self.s, self.clock = s, clock
        self._fails: dict[str, deque] = defaultdict(deque)
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for k in keys:
                if self._until.get(k, 0) > now:
                    raise LockedOut(f"too many failed attempts ({k.split(':')[0]}); try again in "
                                    f"{int(self._until[k] - now)} s")

    def fail(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for k in keys:
                q = self._fails[k]
                q.append(now)
                while q and q[0] < now - self.s.failure_window_s:
                    q.popleft()
                if len(q) >= self.s.max_failures:
                    self._until[k] = now + self.s.lockout_s
                    q.clear()

    def succeed(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._fails.pop(k, None)
