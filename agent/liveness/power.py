"""The IR imager's full scale and the projector's power as the daemon's planning reads them.

The one definition, shared by the material measure (``agent.liveness.features``) and the daemon's
planning (``agent/session/projector.py`` plans power and IR exposure from the worker's
assessments), here without OpenCV or the face models, which the daemon does not load."""

from __future__ import annotations

SATURATED_DN = 250                  # of an 8-bit IR image


def same_power(a: float, b: float) -> bool:
    """Two projector powers (mW) one setting apart at most by rounding in metadata."""
    return abs(a - b) <= 0.5
