"""The terminal's monotonic probe counter."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from agent.session.errors import SessionError


class ProbeCounter:
    """Kept across restarts in a small state file (a number, nothing biometric), written atomically
    before the counter is used."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self.value = 0
        if self.path is not None and self.path.exists():
            try:
                self.value = int(self.path.read_text().strip() or 0)
            except ValueError:
                raise SessionError(f"probe counter file {self.path} is damaged") from None

    def next(self) -> int:
        with self._lock:
            self.value += 1
            if self.path is not None:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(str(self.value))
                os.replace(tmp, self.path)
            return self.value
