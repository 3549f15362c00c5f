"""A serial turntable: brings an attack instrument (or the subject's chair) round to an angle.

Protocol (``docs/hil.md``): ``HOME``, ``MOVE deg`` (absolute, -180..180, after ``HOME``), ``POS?`` ->
``POS 12.5 MOVING|IDLE``, ``STOP``. Moves take time: :meth:`move_to` waits until the table reports
``IDLE`` at the target.
"""

from __future__ import annotations

import time

from hil.errors import RigDeviceError, RigTimeout
from hil.rig.serialline import LineDevice


class Turntable:
    def __init__(self, line: LineDevice, *, tolerance_deg: float = 0.5, poll_s: float = 0.05):
        self.line = line
        self.tolerance_deg = tolerance_deg
        self.poll_s = poll_s

    def home(self, timeout_s: float = 30.0) -> None:
        self.line.ok("HOME")
        self._wait(0.0, timeout_s)

    def position(self) -> tuple[float, bool]:
        """(angle in degrees, still moving)."""
        parts = self.line.value("POS?", "POS").split()
        if len(parts) != 2 or parts[1] not in ("MOVING", "IDLE"):
            raise RigDeviceError(f"turntable on {self.line.port}: malformed position {' '.join(parts)!r}")
        try:
            return float(parts[0]), parts[1] == "MOVING"
        except ValueError:
            raise RigDeviceError(f"turntable on {self.line.port}: malformed angle {parts[0]!r}") from None

    def move_to(self, degrees: float, timeout_s: float = 30.0) -> float:
        if not -180 <= degrees <= 180:
            raise ValueError("turntable angle must be within -180..180")
        self.line.ok(f"MOVE {degrees:.1f}")
        return self._wait(degrees, timeout_s)

    def _wait(self, target: float, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while True:
            angle, moving = self.position()
            if not moving:
                if abs(angle - target) > self.tolerance_deg:
                    raise RigDeviceError(f"turntable stopped at {angle:.1f}°, not {target:.1f}°")
                return angle
            if time.monotonic() > deadline:
                self.line.ok("STOP")
                raise RigTimeout(f"turntable did not reach {target:.1f}° within {timeout_s:g} s (at {angle:.1f}°)")
            time.sleep(self.poll_s)
