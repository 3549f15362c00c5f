"""The server's own failure limits per subject and per terminal (T/IIFAA 3001.1 §8.2.5 d).

The terminal keeps a lockout too (``agent/session/lockout.py``), but a terminal is not to be
trusted with the only count: one that was reset, replaced or tampered with would allow unlimited
attempts. Here, independently:

* ``begin`` (at ``BeginCapture``) refuses a challenge while the terminal, or the subject named by
  the request's ``subject_ref`` (on any terminal), is locked out, and remembers which subject the
  session is for;
* ``observe`` (after ``SubmitProbe`` decided its receipt) counts a presentation failure
  (``NOT_LIVE``: the liveness report says not live, or the challenge failed) for the session's
  terminal and subject; an accepted probe clears the subject's count. Malformed, tampered,
  replayed or expired probes say nothing about the person and count for nothing.

``max_failures`` within ``window_s`` lock the key for ``lockout_s``. Memory is bounded: sessions
are forgotten after ``session_ttl_s`` (or the oldest beyond ``max_sessions``), and keys whose
failures all left the window are pruned.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

PRESENTATION_FAILURES = frozenset({"NOT_LIVE"})


class Locked(Exception):
    """A challenge refused: ``key`` is locked out for ``remaining_s`` more seconds."""

    def __init__(self, key: str, remaining_s: float):
        super().__init__(f"too many failed presentations ({key.split(':')[0]}); try again in {int(remaining_s) + 1} s")
        self.key, self.remaining_s = key, remaining_s


@dataclass(frozen=True)
class LimitSettings:
    max_failures: int = 5
    window_s: float = 600.0
    lockout_s: float = 900.0
    session_ttl_s: float = 600.0
    max_sessions: int = 100_000
    max_keys: int = 100_000


class FailureLimits:
    def __init__(self, settings: LimitSettings | None = None, clock=time.time):
        self.s = settings or LimitSettings()
        self.clock = clock
        self._sessions: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()  # -> (subject, time)
        self._fails: dict[str, deque[float]] = {}
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(terminal_id: str, subject_ref: str) -> tuple[str, ...]:
        return (f"terminal:{terminal_id}",) + ((f"subject:{subject_ref}",) if subject_ref else ())

    def begin(self, terminal_id: str, session_id: str, subject_ref: str) -> None:
        """Raise ``Locked`` if the terminal or the subject is locked out; else remember the session."""
        now = self.clock()
        with self._lock:
            for k in self.keys(terminal_id, subject_ref):
                until = self._until.get(k, 0.0)
                if until > now:
                    raise Locked(k, until - now)
            self._sessions[(terminal_id, session_id)] = (subject_ref, now)
            self._sessions.move_to_end((terminal_id, session_id))
            self._prune(now)

    def observe(self, terminal_id: str, session_id: str, reason: str) -> None:
        """The receipt of an authenticated probe of this session: count or clear."""
        now = self.clock()
        with self._lock:
            entry = self._sessions.pop((terminal_id, session_id), None)
            subject = entry[0] if entry else ""
            keys = self.keys(terminal_id, subject)
            if reason == "OK":
                for k in keys[1:]:                       # the subject proved live; the terminal's count stays
                    self._fails.pop(k, None)
                return
            if reason not in PRESENTATION_FAILURES:
                return
            for k in keys:
                q = self._fails.setdefault(k, deque())
                q.append(now)
                while q and q[0] < now - self.s.window_s:
                    q.popleft()
                if len(q) >= self.s.max_failures:
                    self._until[k] = now + self.s.lockout_s
                    q.clear()

    def locked_until(self, key: str) -> float | None:
        with self._lock:
            t = self._until.get(key)
            return t if t is not None and t > self.clock() else None

    def _prune(self, now: float) -> None:
        while self._sessions:
            (_, (_, t)) = next(iter(self._sessions.items()))
            if t >= now - self.s.session_ttl_s and len(self._sessions) <= self.s.max_sessions:
                break
            self._sessions.popitem(last=False)
        if len(self._fails) > self.s.max_keys or len(self._until) > self.s.max_keys:
            for k in [k for k, q in self._fails.items() if not q or q[-1] < now - self.s.window_s]:
                del self._fails[k]
            for k in [k for k, t in self._until.items() if t <= now]:
                del self._until[k]
