"""What a terminal can be challenged with: the camera's projector control, and the kiosk screen.

The session declares it to the server before the person poses (``CheckCapabilities``) and again
with ``BeginCapture``; the server's policy per channel answers with the challenges it demands.
"""

from __future__ import annotations

from agent.liveness.challenge import Kind
from agent.session.projector import Projector
from drivers.base import Camera, Capability


def capabilities(cam: Camera, *, kiosk_screen: bool = False) -> frozenset[Kind]:
    """The challenges an opened camera can take: the projector's if it switches it frame by frame (a
    live device, not a recording), the illumination's if a kiosk app shows the screen's colours
    (``kiosk_screen``) or the camera lights the scene itself (the simulator's kiosk screen)."""
    if cam.info.is_recording:
        return frozenset()
    out = set()
    if Projector(cam).switchable:
        out.add(Kind.PROJECTOR)
    if kiosk_screen or Capability.ILLUMINATION_CONTROL in cam.capabilities:
        out.add(Kind.ILLUMINATION)
    return frozenset(out)
