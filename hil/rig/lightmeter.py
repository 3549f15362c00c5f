"""A serial light meter (illuminance and correlated colour temperature at the face position).

Protocol (``docs/hil.md``): ``LUX?`` -> ``LUX 312.4``, ``CCT?`` -> ``CCT 5012``.
"""

from __future__ import annotations

from hil.rig.serialline import LineDevice


class LightMeter:
    def __init__(self, line: LineDevice):
        self.line = line

    def lux(self) -> float:
        return self.line.number("LUX?", "LUX")

    def cct(self) -> float:
        return self.line.number("CCT?", "CCT")
