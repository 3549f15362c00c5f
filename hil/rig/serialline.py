"""One request, one reply line: the transport every serial rig instrument shares.

The instruments speak a line protocol (``docs/hil.md``): ASCII commands ending in ``\\n``, one reply
line per command ending in ``\\r\\n``, ``OK`` or ``KEY value`` on success and ``ERR <code> <text>`` on
failure. pyserial opens the device node (a USB-serial adapter on a bench, a pty in tests).
"""

from __future__ import annotations

import re
import threading

import serial

from hil.errors import RigDeviceError, RigTimeout

_SAFE = re.compile(r"[ -~]*")               # printable ASCII: nothing that could end a line early


class LineDevice:
    def __init__(self, port: str, *, baudrate: int = 9600, timeout_s: float = 1.0, what: str = "device"):
        self.what = what
        try:
            self._ser = serial.Serial(port=port, baudrate=baudrate, timeout=timeout_s, write_timeout=timeout_s)
        except (serial.SerialException, OSError) as exc:
            raise RigDeviceError(f"{what} on {port}: cannot open ({exc})") from None
        self.port = port
        self._lock = threading.Lock()

    def ask(self, command: str) -> str:
        """Send one command; return its reply line (``ERR`` replies raise RigDeviceError)."""
        if not _SAFE.fullmatch(command):
            raise ValueError(f"not a printable one-line command: {command!r}")
        with self._lock:
            self._ser.reset_input_buffer()          # a late reply to an earlier command is not this one's
            self._ser.write(command.encode("ascii") + b"\n")
            raw = self._ser.readline()
        if not raw.endswith(b"\n"):
            raise RigTimeout(f"{self.what} on {self.port}: no reply to {command!r} within {self._ser.timeout:g} s")
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise RigDeviceError(f"{self.what} on {self.port}: garbled reply to {command!r}: {raw[:40]!r}") from None
        if line.startswith("ERR"):
            raise RigDeviceError(f"{self.what} on {self.port}: {command!r} refused: {line}")
        return line

    def value(self, command: str, key: str) -> str:
        """``KEY value`` replies: the value part, checked to answer the question asked."""
        line = self.ask(command)
        head, _, rest = line.partition(" ")
        if head != key or not rest:
            raise RigDeviceError(f"{self.what} on {self.port}: {command!r} answered {line!r}, expected {key} ...")
        return rest

    def number(self, command: str, key: str) -> float:
        v = self.value(command, key).split()[0]
        try:
            return float(v)
        except ValueError:
            raise RigDeviceError(f"{self.what} on {self.port}: {command!r} answered a non-number {v!r}") from None

    def ok(self, command: str) -> None:
        line = self.ask(command)
        if line != "OK":
            raise RigDeviceError(f"{self.what} on {self.port}: {command!r} answered {line!r}, expected OK")

    def identify(self) -> str:
        return self.ask("*IDN?")

    def close(self) -> None:
        self._ser.close()
