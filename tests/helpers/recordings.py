"""Genuine RealSense recordings (librealsense's own recorder through ``rs.software_device``) of
simulated scenes, with one stream left out or one stream's pixels emptied: the bad input a new user
hands to ``analyze``. Only the frames are edited; the file is a real ``.db3``."""

from __future__ import annotations

import dataclasses

import numpy as np

import drivers
from drivers.base import Camera, CameraWrapper
from drivers.frame import Frame, StreamKind, StreamProfile
from drivers.realsense_record import record_camera


class EditedStreams(CameraWrapper):
    """A started camera's frames without the streams in ``drop`` and with ``zero``'s pixels all 0."""

    def __init__(self, inner: Camera, *, drop: frozenset[StreamKind] = frozenset(),
                 zero: frozenset[StreamKind] = frozenset()):
        super().__init__(inner)
        self.drop, self.zero = drop, zero

    def profiles(self) -> list[StreamProfile]:
        return [p for p in self.inner.profiles() if p.kind not in self.drop]

    def read(self, timeout_s: float = 1.0) -> Frame:
        while True:
            f = self.inner.read(timeout_s)
            if f.stream in self.drop:
                continue
            if f.stream in self.zero:
                f = dataclasses.replace(f, pixels=np.zeros_like(f.pixels))
            return f


def record(path: str, query: str, ticks: int = 12, **edits) -> str:
    """Record ``ticks`` frames per stream of ``sim://?realtime=0&<query>`` (edited) to ``path``."""
    cam = EditedStreams(drivers.open("sim://?realtime=0&" + query), **edits)
    with cam:
        record_camera(cam, path, ticks)
    return path
