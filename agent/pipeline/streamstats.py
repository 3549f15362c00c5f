"""Per-stream delivery statistics: counts, resolution, measured rate, drops (frame-number gaps)."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.frame import Frame


@dataclass
class StreamStats:
    stream: str
    count: int = 0
    dropped: int = 0
    resolution: str = ""
    clock_domain: str = ""
    first_ts_ms: float | None = None
    last_ts_ms: float | None = None
    _last_number: int | None = field(default=None, repr=False)

    def add(self, f: Frame) -> None:
        self.count += 1
        self.resolution = f"{f.width}x{f.height}"
        self.clock_domain = f.clock_domain.value
        if self._last_number is not None and f.frame_number > self._last_number + 1:
            self.dropped += f.frame_number - self._last_number - 1
        if self._last_number is None or f.frame_number > self._last_number:
            self._last_number = f.frame_number
        if self.first_ts_ms is None:
            self.first_ts_ms = f.timestamp_ms
        self.last_ts_ms = f.timestamp_ms

    @property
    def fps(self) -> float:
        """Rate over the hardware timestamps: frames actually delivered, drops included in the span."""
        if self.count < 2 or self.first_ts_ms is None or self.last_ts_ms is None:
            return 0.0
        span = self.last_ts_ms - self.first_ts_ms
        return (self.count - 1) * 1000.0 / span if span > 0 else 0.0

    def to_dict(self) -> dict:
        return {"stream": self.stream, "frames": self.count, "resolution": self.resolution,
                "fps": round(self.fps, 3), "clock_domain": self.clock_domain, "dropped": self.dropped}
