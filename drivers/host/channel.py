"""The control channel between the daemon and a camera host process.

An ``AF_UNIX`` ``SOCK_SEQPACKET`` socketpair: the kernel keeps message boundaries, so one
``sendmsg`` is one message and a reader never sees half of one. Messages are UTF-8 JSON objects
with an ``op``, at most ``MAX_MESSAGE`` bytes. JSON, not pickle: a camera host runs a vendor SDK
that may be hooked or crash into garbage, and nothing it sends may make the daemon run code.
"""

from __future__ import annotations

import json
import math
import socket
import threading
from typing import Any

from ..errors import CameraHostProtocol

MAX_MESSAGE = 64 * 1024


def socketpair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


class Channel:
    """One end of the control channel; ``send`` may be called from several threads."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg, separators=(",", ":"), allow_nan=False).encode()
        if len(data) > MAX_MESSAGE:
            raise CameraHostProtocol(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
        with self._send_lock:
            self.sock.sendall(data)

    def recv(self, timeout_s: float | None) -> dict[str, Any]:
        """The next message; ``TimeoutError`` when none came in time, ``EOFError`` when the peer is
        gone, ``CameraHostProtocol`` for anything that is not a well-formed message."""
        self.sock.settimeout(timeout_s)
        data, _, flags, _ = self.sock.recvmsg(MAX_MESSAGE + 1)
        if not data:
            raise EOFError("peer closed the channel")
        if len(data) > MAX_MESSAGE or flags & socket.MSG_TRUNC:
            raise CameraHostProtocol("oversized message")
        try:
            msg = json.loads(data, parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise CameraHostProtocol(f"message is not JSON: {exc}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            raise CameraHostProtocol("message must be an object with an 'op'")
        return msg

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def finite(value: Any, what: str) -> float:
    """A finite float from a message field, or ``CameraHostProtocol``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CameraHostProtocol(f"{what} is not a finite number: {value!r}")
    return float(value)
