"""A serial lamp dimmer (tunable-white LED panel driver): output level per mille, colour temperature.

Protocol (``docs/hil.md``): ``LEVEL n`` (0..1000), ``LEVEL?``, ``CCT k`` (2300..7500), ``CCT?``.
:meth:`Lamp.set_lux` closes the loop through a light meter: a dimmer's curve is not linear and the
room adds its own light, so the rig measures instead of computing.
"""

from __future__ import annotations

from hil.errors import LuxUnreachable
from hil.rig.lightmeter import LightMeter
from hil.rig.serialline import LineDevice

MAX_LEVEL = 1000


class Lamp:
    def __init__(self, line: LineDevice):
        self.line = line

    def set_level(self, level: int) -> None:
        if not 0 <= level <= MAX_LEVEL:
            raise ValueError(f"lamp level must be within 0..{MAX_LEVEL}")
        self.line.ok(f"LEVEL {int(level)}")

    def level(self) -> int:
        return int(self.line.number("LEVEL?", "LEVEL"))

    def set_cct(self, kelvin: float) -> None:
        self.line.ok(f"CCT {int(round(kelvin))}")

    def cct(self) -> float:
        return self.line.number("CCT?", "CCT")

    def set_lux(self, target: float, meter: LightMeter, *, tolerance: float = 0.05, max_steps: int = 14) -> float:
        """Bring the meter's reading within ``tolerance`` of ``target`` by bisection on the level
        (the lamp's output rises with its level); return the measured lux."""
        lo, hi = 0, MAX_LEVEL
        for level in (lo, hi):              # reachable at all?
            self.set_level(level)
            lux = meter.lux()
            if abs(lux - target) <= tolerance * target:
                return lux
            if level == lo and lux > target:
                raise LuxUnreachable(f"{target:g} lux is below the room's own light ({lux:.0f} lux with the lamp off)")
            if level == hi and lux < target:
                raise LuxUnreachable(f"{target:g} lux is above the lamp's reach ({lux:.0f} lux at full output)")
        for _ in range(max_steps):
            mid = (lo + hi) // 2
            self.set_level(mid)
            lux = meter.lux()
            if abs(lux - target) <= tolerance * target:
                return lux
            lo, hi = (mid, hi) if lux < target else (lo, mid)
            if hi - lo <= 1:
                break
        raise LuxUnreachable(f"the lamp cannot hold {target:g} lux within {tolerance:.0%} "
                             f"(last reading {lux:.0f} lux at level {mid})")

    def off(self) -> None:
        self.set_level(0)
