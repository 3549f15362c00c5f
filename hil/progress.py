"""A one-line progress bar on stderr (one line per step when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, *, width: int = 30, stream: TextIO | None = None):
        self.total, self.width = total, width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.monotonic()

    def update(self, done: int, label: str) -> None:
        elapsed = time.monotonic() - self.t0
        eta = elapsed / done * (self.total - done) if done else 0.0
        filled = int(self.width * done / self.total) if self.total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        line = f"[{bar}] {done}/{self.total} {elapsed:5.0f}s eta {eta:4.0f}s  {label}"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
            if done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
