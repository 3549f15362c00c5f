"""Exposure metered on the face: the colour camera's auto-exposure region follows the face.

A camera meters its picture (the centre half, typically), not the face in it. Skin's visible
reflectance varies ~5x between Fitzpatrick types I and VI, so with the same light and the same
metering a type-VI face comes out near gray 50 and a type-I face near 120, and the dark face's
picture holds the fewer photons (the same happens to anyone against a bright window). Setting the
auto-exposure region to the face exposes every face for itself, as kiosk cameras with an AE region
of interest do: the longest exposure the light needs, then gain. (The gate judges a face darker
than §7.4's 85-200 band on its SNR, which exposure raises and gain does not: ``metrics.face_snr``.)
Cameras without one are left alone; the gate then tells the person what to change
(``POOR_EXPOSURE``, ``FACE_TOO_DARK``, ``FACE_TOO_BRIGHT``).

``FaceMetering`` is owned by whoever drives the camera during a session's quality phase (the
daemon's session, the offline pre-roll). ``end`` gives the camera back its own metering on every
way out.
"""

from __future__ import annotations

import logging
from typing import Protocol

from drivers.base import Camera, Capability
from drivers.errors import CaptureAgentError
from drivers.frame import StreamKind

log = logging.getLogger(__name__)

# The region: the face box shrunk to its inner part (forehead to chin, cheek to cheek), so hair,
# background and a bright collar do not count.
INNER_FRACTION = 0.6
# Move the region only when the face has moved this share of its size (each move restarts the
# camera's convergence).
MOVE_SHARE = 0.2


class Boxed(Protocol):
    """A face as metering needs it: its box in colour pixels (a gate's ``FaceObservation``, or the
    worker's assessment's ``FaceBox`` in the daemon)."""

    @property
    def bbox(self) -> tuple[float, float, float, float]: ...


class FaceMetering:
    def __init__(self, camera: Camera):
        self.camera = camera
        self.supported = (Capability.EXPOSURE_REGION in camera.capabilities
                          and Capability.RECORDING not in camera.capabilities)
        self.region: tuple[int, int, int, int] | None = None

    @property
    def active(self) -> bool:
        """The camera meters the face now (the gate reads exposure failures accordingly)."""
        return self.region is not None

    def observe(self, face: Boxed | None, width: int, height: int) -> None:
        """Meter on ``face`` (found in a ``width`` x ``height`` colour frame), if it moved enough."""
        if not self.supported or face is None:
            return
        x0, y0, x1, y1 = face.bbox
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        hw, hh = (x1 - x0) * INNER_FRACTION / 2, (y1 - y0) * INNER_FRACTION / 2
        region = (max(int(cx - hw), 0), max(int(cy - hh), 0),
                  min(int(cx + hw) + 1, width), min(int(cy + hh) + 1, height))
        if region[2] - region[0] < 4 or region[3] - region[1] < 4:
            return
        if self.region is not None:
            size = max(self.region[2] - self.region[0], self.region[3] - self.region[1])
            if max(abs(a - b) for a, b in zip(region, self.region, strict=True)) < MOVE_SHARE * size:
                return
        try:
            self.camera.set_exposure_region(StreamKind.COLOR, region)
        except CaptureAgentError as exc:          # refused (another camera model, a closed stream)
            log.info("exposure region not set: %s", exc)
            self.supported = False
            return
        self.region = region

    def end(self) -> None:
        """The camera's own metering again."""
        if self.region is None:
            return
        self.region = None
        try:
            self.camera.set_exposure_region(StreamKind.COLOR, None)
        except CaptureAgentError as exc:
            log.info("exposure region not reset: %s", exc)
