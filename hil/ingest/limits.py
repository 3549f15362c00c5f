"""Server-side failure limits (T/IIFAA §8.2.5 d): too many presentation failures from one terminal
within a window, and the server stops issuing it challenges until the window has moved on.

Only a probe that used its nonce and was judged ``NOT_LIVE`` counts: outages, retries, malformed or
unauthenticated input never do. The counts live in the shared store, so every server process sees
them. Keys are strings (``terminal:<id>``); a per-subject key needs the subject's keyed reference in
the request, which the protocol does not carry yet.
"""

from __future__ import annotations

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
            if store.failures(key, now_ms, self.window_ms) >= self.max_failures:
                return key
        return None

    def record(self, store: Store, keys: Iterable[str], now_ms: int) -> None:
        for key in keys:
            store.add_failure(key, now_ms, self.window_ms)


def terminal_key(terminal_id: str) -> str:
    return f"terminal:{terminal_id}"
