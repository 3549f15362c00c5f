"""Server-side failure limits (T/IIFAA §8.2.5 d): too many presentation failures from one terminal
within a window, and the server stops issuing it challenges until the window has moved on.

Only a probe that used its nonce and was judged ``NOT_LIVE`` counts: outages, retries, malformed or
unauthenticated input never do. The counts live in the shared store, so every server process sees
them. Keys are strings: ``terminal:<id>``, and ``subject:<SHA-256 of the bank's subject reference>``
when the terminal's ``BeginCapture`` named one (the subject is counted across terminals; the
terminal keeps its own lockout too, but a terminal that was reset or tampered with must not hold
the only count).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from hil.ingest.store import Store


@dataclass(frozen=True)
class FailureLimits:
    max_failures: int = 5                 # presentation failures ...
    window_s: float = 600.0               # ... within this window refuse new challenges

    def __post_init__(self) -> None:
        if self.max_failures < 1 or not self.window_s > 0:
            raise ValueError("max_failures must be at least 1 and failure_window_s positive")

    @property
    def window_ms(self) -> int:
        return int(self.window_s * 1000)

    def locked(self, store: Store, keys: Iterable[str], now_ms: int) -> str | None:
        """The first key at its limit, or None."""
        for key in keys:
            if key and store.failures(key, now_ms, self.window_ms) >= self.max_failures:
                return key
        return None

    def record(self, store: Store, keys: Iterable[str], now_ms: int) -> None:
        for key in keys:
            if key:
                store.add_failure(key, now_ms, self.window_ms)


def terminal_key(terminal_id: str) -> str:
    return f"terminal:{terminal_id}"


def subject_key(subject_ref: str) -> str:
    """The subject's failure key ("" when the request named no subject: nothing is counted)."""
    return "subject:" + hashlib.sha256(subject_ref.encode()).hexdigest() if subject_ref else ""
