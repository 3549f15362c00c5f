"""Lab-only raw session recording (``[record]``, allowed only with ``lab = true``).

A HIL rig keeps the frames of every session so a failure can be replayed and studied: the camera a
session opens is wrapped so each frame it reads is also written, as a genuine RealSense ``.db3``
(librealsense's own recorder through a software device, any camera) or an OpenNI ``.oni``
(OpenNI's Recorder, ``openni://`` cameras). One file per session, named by its session id, mode
0600 in a 0700 directory. This is the one place the agent writes face data to disk; a production
config cannot turn it on (``agent.config.Settings``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config import RecordSettings
from drivers import Camera, Frame
from drivers.base import CameraWrapper


def session_path(settings: RecordSettings, session_id: str) -> Path:
    d = Path(settings.dir)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    d.chmod(0o700)                     # the directory is what keeps others out while the SDK writes
    return d / f"{session_id}.{settings.format}"


class RecordingCamera(CameraWrapper):
    """``camera`` as the session uses it, with every frame read also recorded to ``path``."""

    def __init__(self, camera: Camera, path: Path, fmt: str):
        super().__init__(camera)
        self.path, self.fmt = path, fmt
        self._finish: Callable[[], None] | None = None
        self._recorder: Any = None

    def start(self) -> None:
        self.inner.start()
        if self.fmt == "oni":
            record_to = getattr(self.inner, "record_to", None)
            if record_to is None:
                raise TypeError(f"{self.inner.info.backend} cameras cannot record .oni")
            self._finish = record_to(str(self.path))
        else:
            from drivers.realsense_record import Recorder
            self._recorder = Recorder(self.inner, str(self.path))
        self._private()

    def _private(self) -> None:
        # The SDKs create the file with the process umask; in the 0700 directory no one else can
        # reach it meanwhile, and it is 0600 before the first frame and after the last.
        if self.path.exists():
            os.chmod(self.path, 0o600)

    def read(self, timeout_s: float = 1.0) -> Frame:
        f = self.inner.read(timeout_s)
        if self._recorder is not None:
            self._recorder.write(f)
        return f

    def stop(self) -> None:
        try:
            if self._recorder is not None:
                self._recorder.close()
                self._recorder = None
            if self._finish is not None:
                self._finish()
                self._finish = None
            self._private()
        finally:
            self.inner.stop()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)


def open_recording(camera: Camera, settings: RecordSettings, session_id: str) -> Camera:
    """The camera a session uses: ``camera`` itself, or wrapped to record when ``[record]`` is on."""
    if not settings.dir:
        return camera
    return RecordingCamera(camera, session_path(settings, session_id), settings.format)
