"""The diagnostics page's live view: the camera through align and the quality gate, as pictures.

One thread reads framesets (``FramesetReader``), aligns them, runs the gate and draws the three
views (``overlay.py``); the newest :class:`Snapshot` is kept in memory and handed to whoever waits
for one newer than theirs. Only the newest is kept: older ones are dropped, nothing is written.

The camera is held only while someone watches: with no viewer for ``idle_s`` it is closed, and
:meth:`LiveView.paused` closes it for a while (doctor's checks open the camera themselves, and a
real camera has one owner).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.observe.overlay import color_view, depth_view, ir_view, jpeg
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from agent.quality import QualityGate, QualitySettings
from drivers.base import Camera
from drivers.errors import CaptureAgentError

# What the page shows of the gate's metrics (never landmarks: those stay drawn into the picture).
SHOWN_METRICS = ("ipd_px", "yaw_deg", "pitch_deg", "roll_deg", "mean_gray", "gray_share", "depth_face_completeness",
                 "depth_core_completeness", "lux", "sharpness", "eye_aspect_ratio")


@dataclass(frozen=True)
class Snapshot:
    seq: int
    at: float                                   # time.time() when it was made
    images: dict[str, bytes]                    # "color", "depth", "ir": JPEG
    quality: dict[str, Any]
    streams: dict[str, Any] = field(default_factory=dict)


def quality_summary(report: Any) -> dict[str, Any]:
    d = report.to_dict()
    return {"ok": d["ok"], "prompt": d["prompt"], "prompts": d["prompts"], "progress": d["progress"],
            "faces_found": d["faces_found"], "timing_ms": d["timing_ms"],
            "metrics": {k: d["metrics"].get(k) for k in SHOWN_METRICS if k in d["metrics"]},
            "failing": [{"name": c["name"], "clause": c["clause"], "limit": c["limit"], "value": c["value"]}
                        for c in d["checks"] if not c["ok"]]}


class LiveView:
    def __init__(self, open_camera: Callable[[], Camera], *, quality: QualitySettings | None = None,
                 channel: str | None = None, max_fps: float = 10.0, idle_s: float = 15.0,
                 read_timeout_s: float = 1.0):
        self._open_camera = open_camera
        self._quality = quality or QualitySettings()
        self._channel = channel
        self._min_interval_s = 1.0 / max_fps
        self._idle_s = idle_s
        self._read_timeout_s = read_timeout_s
        self._cond = threading.Condition()
        self._snapshot: Snapshot | None = None
        self._seq = 0
        self._viewer_at = -1e9
        self._pauses = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = "idle"                      # idle | opening | streaming | paused | error
        self.error: dict[str, str] | None = None  # {"code", "message"} of the last camera error
        self.gate: QualityGate | None = None

    # -- for the web server ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="diagnostics-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(10)

    def wait_next(self, after: int, timeout_s: float) -> Snapshot | None:
        """The newest snapshot once it is newer than ``after`` (None at ``timeout_s``). Counts as a viewer."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._viewer_at = time.monotonic()
            self._cond.notify_all()
            while not self._stop.is_set():
                if self._snapshot is not None and self._snapshot.seq > after:
                    return self._snapshot
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.5))
        return None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Release the camera for the duration (doctor's checks open it themselves)."""
        with self._cond:
            self._pauses += 1
            self._cond.notify_all()
            while self.state in ("opening", "streaming"):
                self._cond.wait(0.2)
        try:
            yield
        finally:
            with self._cond:
                self._pauses -= 1
                self._cond.notify_all()

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "error": self.error}

    # -- the camera thread -------------------------------------------------------------------------
    def _wanted(self) -> bool:
        return (not self._stop.is_set() and self._pauses == 0
                and time.monotonic() - self._viewer_at < self._idle_s)

    def _set_state(self, state: str) -> None:
        with self._cond:
            self.state = state
            self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if not self._wanted():
                    self.state = "paused" if self._pauses else ("idle" if self.state != "error" else "error")
                    self._cond.notify_all()
                    self._cond.wait(0.5)
                    continue
            self._stream_once()

    def _stream_once(self) -> None:
        self._set_state("opening")
        try:
            cam = self._open_camera()
        except CaptureAgentError as exc:
            self._failed(exc)
            return
        try:
            with cam:
                if self.gate is None:
                    self.gate = QualityGate(self._quality, channel=self._channel)   # loads the face models once
                reader = FramesetReader(cam, read_timeout_s=self._read_timeout_s)
                self.error = None
                self._set_state("streaming")
                last = -1e9
                for fs in reader.stream(timeout_s=float("inf"), cancelled=lambda: not self._wanted()):
                    now = time.monotonic()
                    if now - last < self._min_interval_s:
                        continue
                    last = now
                    self._publish(fs, reader)
        except CaptureAgentError as exc:
            self._failed(exc)
            return
        self._set_state("idle")

    def _failed(self, exc: CaptureAgentError) -> None:
        with self._cond:
            self.state, self.error = "error", {"code": exc.code, "message": exc.message[:300]}
            self._cond.notify_all()
        self._stop.wait(2.0)                     # then try again, if anyone still watches

    def _publish(self, fs: Any, reader: FramesetReader) -> None:
        assert self.gate is not None
        aligned = align_frameset(fs)
        report = self.gate.evaluate(aligned)
        if self.gate.complete:
            self.gate.reset()                    # keep progress moving for the installer
        images = {"color": jpeg(color_view(aligned, report)), "depth": jpeg(depth_view(aligned, report)),
                  "ir": jpeg(ir_view(aligned, report))}
        st = reader.stats.to_dict()
        streams = {"streams": {k: {"fps": v["fps"] if v["frames"] >= 2 else None, "dropped": v["dropped"],
                                   "resolution": v["resolution"]}
                               for k, v in st["streams"].items()},
                   "skew_ms": fs.skew_ms, "skew_max_ms": st["skew_max_ms"]}
        with self._cond:
            self._seq += 1
            self._snapshot = Snapshot(self._seq, time.time(), images, quality_summary(report), streams)
            self._cond.notify_all()
