"""A challenged window recorded as the session records it, for benches that judge it offline."""

from __future__ import annotations

import drivers
from agent.liveness.challenge import Challenge, Kind
from agent.pipeline.frames import FramesetReader
from agent.session.projector import Projector
from agent.session.window import collect
from drivers.frame import FrameSet


def challenged_window(uri: str, n: int, nonce: bytes, *, timeout_s: float = 300
                      ) -> tuple[Challenge, list[FrameSet]]:
    """``n`` framesets of the camera at ``uri`` under the projector and illumination challenges of
    ``nonce``, the projector driven by its schedule (``agent.session.window.collect``)."""
    challenge = Challenge.from_nonce(nonce, n, (Kind.PROJECTOR, Kind.ILLUMINATION))
    with drivers.open(uri) as cam:
        projector = Projector(cam)
        projector.begin()
        try:
            return challenge, collect(FramesetReader(cam), n, challenge, projector, timeout_s=timeout_s)
        finally:
            projector.end()
