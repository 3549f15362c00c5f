"""Progress of a firmware operation: a bar on a terminal, JSON events (one object per line) otherwise.

JSON events: ``{"event": "progress", "phase": "flash", "percent": 42}``, emitted when the percentage
moves by at least ``step`` or the phase changes, so a slow SDK callback rate and a fast one give the
same stream. The final result is the caller's business.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO


class ProgressPrinter:
    def __init__(self, *, json_events: bool, stream: TextIO | None = None, step: int = 5, width: int = 30):
        self.json_events = json_events
        self.stream = stream or (sys.stdout if json_events else sys.stderr)
        self.step, self.width = step, width
        self._last: tuple[str, int] | None = None

    def __call__(self, phase: str, fraction: float) -> None:
        percent = max(0, min(100, int(round(fraction * 100))))
        last = self._last
        if last is not None and last[0] == phase and percent < 100 and percent - last[1] < self.step:
            return
        if last is not None and last == (phase, percent):
            return
        self._last = (phase, percent)
        if self.json_events:
            print(json.dumps({"event": "progress", "phase": phase, "percent": percent}), file=self.stream, flush=True)
            return
        filled = self.width * percent // 100
        end = "\n" if percent >= 100 else ""
        self.stream.write(f"\r{phase:<9} [{'#' * filled}{'.' * (self.width - filled)}] {percent:3d}%{end}")
        self.stream.flush()

    def event(self, name: str, **data: object) -> None:
        """A step worth telling (JSON event, or a line on the terminal)."""
        if self.json_events:
            print(json.dumps({"event": name, **data}, default=str), file=self.stream, flush=True)
        else:
            detail = " ".join(f"{k}={v}" for k, v in data.items() if v not in (None, ""))
            self.stream.write(f"{name}: {detail}\n" if detail else f"{name}\n")
            self.stream.flush()
