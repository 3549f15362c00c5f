"""USB port power through ``uhubctl`` (Debian package ``uhubctl``): unplug cycles on a bench.

``uhubctl -l LOCATION -p PORT -a off|on`` switches one port of a hub with per-port power switching;
without ``-a`` it prints the port's status. We read its status lines (``  Port 2: 0000 off`` or
``  Port 2: 0503 power highspeed enable connect [8086:0b07 ...]``) instead of trusting the exit
code alone: a hub that ignores the request still exits 0.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from hil.errors import UsbPowerError

_PORT = re.compile(r"^\s+Port (\d+): ([0-9a-f]{4}) (.*)$")


class UhubctlPower:
    def __init__(self, location: str, port: int, *, binary: str = "uhubctl", timeout_s: float = 30.0):
        if not re.fullmatch(r"\d+(-\d+(\.\d+)*)?", location):
            raise UsbPowerError(f"not a uhubctl hub location: {location!r} (e.g. 1-1 or 2-1.4)")
        if not 1 <= port <= 31:
            raise UsbPowerError(f"not a hub port number: {port}")
        self.location, self.port, self.binary, self.timeout_s = location, port, binary, timeout_s

    def _run(self, *action: str) -> str:
        exe = shutil.which(self.binary)
        if exe is None:
            raise UsbPowerError(f"{self.binary} not found on PATH (Debian: apt-get install uhubctl)")
        try:
            out = subprocess.run([exe, "-l", self.location, "-p", str(self.port), *action], capture_output=True,
                                 text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise UsbPowerError(f"uhubctl did not finish within {self.timeout_s:g} s") from None
        if out.returncode != 0:
            why = (out.stderr.strip() or out.stdout.strip() or f"exit status {out.returncode}").splitlines()[0]
            raise UsbPowerError(f"uhubctl -l {self.location} -p {self.port}: {why}")
        return out.stdout

    def _last_state(self, text: str) -> bool:
        state = None
        for line in text.splitlines():
            m = _PORT.match(line)
            if m and int(m.group(1)) == self.port:
                state = int(m.group(2), 16) != 0 and not m.group(3).startswith("off")
        if state is None:
            raise UsbPowerError(f"uhubctl reported no port {self.port} on hub {self.location}")
        return state

    def powered(self) -> bool:
        return self._last_state(self._run())

    def power(self, on: bool) -> None:
        out = self._run("-a", "on" if on else "off")
        if self._last_state(out) != on:          # the "New status" block comes last
            raise UsbPowerError(f"hub {self.location} port {self.port} did not switch {'on' if on else 'off'}")
