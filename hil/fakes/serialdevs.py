"""Fake serial rig instruments on pseudo-terminals (``os.openpty``): what cannot exist on a machine
without a lamp, a turntable or a light meter.

Each fake serves the documented line protocol (``docs/hil.md``) on the master side of a pty; the
controller opens the slave's path with pyserial exactly as it opens ``/dev/ttyUSB0`` on a bench.
The fakes refuse what the instruments refuse (unknown commands, values out of range, a move before
``HOME``) and share one physical model, :class:`FakeRoom`: the light meter reads what the lamp and
the room's own light put on the face, through a non-linear dimmer curve, with a little noise.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

import numpy as np

ERR_UNKNOWN, ERR_RANGE, ERR_UNSUPPORTED, ERR_NOT_HOMED, ERR_OVERRANGE = 1, 2, 3, 4, 5


class FakeRoom:
    """Light at the face position: the room's own light plus the lamp through its dimmer curve."""

    def __init__(self, ambient_lux: float = 12.0, lamp_max_lux: float = 9000.0, gamma: float = 2.2,
                 ambient_cct: float = 4000.0, noise: float = 0.005, seed: int = 0):
        self.ambient_lux, self.lamp_max_lux, self.gamma = ambient_lux, lamp_max_lux, gamma
        self.ambient_cct, self.noise = ambient_cct, noise
        self.level = 0                      # per mille
        self.lamp_cct = 5000.0
        self._rng = np.random.default_rng(seed)
        self.lock = threading.Lock()

    def lamp_lux(self) -> float:
        return self.lamp_max_lux * (self.level / 1000.0) ** self.gamma

    def lux(self) -> float:
        with self.lock:
            true = self.ambient_lux + self.lamp_lux()
            return float(true * (1 + self._rng.normal(0, self.noise)))

    def cct(self) -> float:
        with self.lock:
            lamp = self.lamp_lux()
            w = lamp / (lamp + self.ambient_lux)
            return float(w * self.lamp_cct + (1 - w) * self.ambient_cct)


class PtyDevice:
    """Serve ``handle(command) -> reply`` on a pty; ``path`` is the slave's device node."""

    def __init__(self, handle: Callable[[str], str], *, reply_delay_s: float = 0.0):
        self._handle = handle
        self.reply_delay_s = reply_delay_s
        self.master, self._slave = os.openpty()
        self.path = os.ttyname(self._slave)
        self.commands: list[str] = []
        self.mute = False                   # stop answering (a hung instrument)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"fake-serial {self.path}")
        self._thread.start()

    def _serve(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:               # the controller closed its side: wait for the next open
                time.sleep(0.01)
                continue
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.rstrip(b"\r").decode("ascii", "replace").strip()
                if not line:
                    continue
                self.commands.append(line)
                if self.mute:
                    continue
                reply = self._handle(line)
                if self.reply_delay_s:
                    time.sleep(self.reply_delay_s)
                os.write(self.master, reply.encode("ascii") + b"\r\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self.master)
        os.close(self._slave)


def _err(code: int, text: str) -> str:
    return f"ERR {code} {text}"


def _int_arg(args: list[str], lo: int, hi: int) -> int | str:
    if len(args) != 1:
        return _err(ERR_RANGE, "one argument expected")
    try:
        v = int(args[0])
    except ValueError:
        return _err(ERR_RANGE, f"not an integer: {args[0]}")
    if not lo <= v <= hi:
        return _err(ERR_RANGE, f"{v} outside {lo}..{hi}")
    return v


class FakeLamp(PtyDevice):
    def __init__(self, room: FakeRoom, *, tunable: bool = True, serial: str = "LMP00017", **kw):
        self.room, self.tunable, self.serial = room, tunable, serial
        super().__init__(self._reply, **kw)

    def _reply(self, line: str) -> str:
        cmd, *args = line.split()
        if cmd == "*IDN?" and not args:
            return f"HILRIG,LAMP-1,{self.serial},1.4.2"
        if cmd == "LEVEL?" and not args:
            return f"LEVEL {self.room.level}"
        if cmd == "LEVEL":
            v = _int_arg(args, 0, 1000)
            if isinstance(v, str):
                return v
            with self.room.lock:
                self.room.level = v
            return "OK"
        if cmd in ("CCT", "CCT?") and not self.tunable:
            return _err(ERR_UNSUPPORTED, "fixed colour temperature lamp")
        if cmd == "CCT?" and not args:
            return f"CCT {self.room.lamp_cct:.0f}"
        if cmd == "CCT":
            v = _int_arg(args, 2300, 7500)
            if isinstance(v, str):
                return v
            with self.room.lock:
                self.room.lamp_cct = float(v)
            return "OK"
        return _err(ERR_UNKNOWN, f"unknown command {cmd}")


class FakeLightMeter(PtyDevice):
    MAX_LUX = 200000.0

    def __init__(self, room: FakeRoom, *, serial: str = "LUX00231", **kw):
        self.room, self.serial = room, serial
        super().__init__(self._reply, **kw)

    def _reply(self, line: str) -> str:
        cmd, *args = line.split()
        if args:
            return _err(ERR_UNKNOWN, f"{cmd} takes no argument")
        if cmd == "*IDN?":
            return f"HILRIG,LUX-1,{self.serial},2.0.1"
        if cmd == "LUX?":
            lux = self.room.lux()
            return _err(ERR_OVERRANGE, "over range") if lux > self.MAX_LUX else f"LUX {lux:.1f}"
        if cmd == "CCT?":
            return f"CCT {self.room.cct():.0f}"
        return _err(ERR_UNKNOWN, f"unknown command {cmd}")


class FakeTurntable(PtyDevice):
    """Moves at ``speed_dps`` degrees per second; reports MOVING until it arrives."""

    def __init__(self, *, speed_dps: float = 90.0, serial: str = "TRN00003", **kw):
        self.speed_dps, self.serial = speed_dps, serial
        self.homed = False
        self._from = self._to = 0.0
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        super().__init__(self._reply, **kw)

    def angle(self) -> tuple[float, bool]:
        with self._lock:
            span = self._to - self._from
            done = abs(span) / self.speed_dps if self.speed_dps else 0.0
            t = time.monotonic() - self._t0
            if t >= done:
                return self._to, False
            return self._from + span * (t / done), True

    def _go(self, target: float) -> None:
        now, _ = self.angle()
        with self._lock:
            self._from, self._to, self._t0 = now, target, time.monotonic()

    def _reply(self, line: str) -> str:
        cmd, *args = line.split()
        if cmd == "*IDN?" and not args:
            return f"HILRIG,TURN-1,{self.serial},0.9.8"
        if cmd == "HOME" and not args:
            self.homed = True
            self._go(0.0)
            return "OK"
        if cmd == "POS?" and not args:
            a, moving = self.angle()
            return f"POS {a:.1f} {'MOVING' if moving else 'IDLE'}"
        if cmd == "STOP" and not args:
            a, _ = self.angle()
            with self._lock:
                self._from = self._to = a
            return "OK"
        if cmd == "MOVE":
            if not self.homed:
                return _err(ERR_NOT_HOMED, "home first")
            if len(args) != 1:
                return _err(ERR_RANGE, "one argument expected")
            try:
                target = float(args[0])
            except ValueError:
                return _err(ERR_RANGE, f"not a number: {args[0]}")
            if not -180 <= target <= 180:
                return _err(ERR_RANGE, f"{target} outside -180..180")
            self._go(target)
            return "OK"
        return _err(ERR_UNKNOWN, f"unknown command {cmd}")
