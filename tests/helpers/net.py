"""A loopback TCP endpoint where nothing listens, for as long as a test needs one."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def refusing_endpoint() -> Iterator[str]:
    """``127.0.0.1:PORT`` that refuses connections while the block runs. The port stays bound (never
    listening) until then: a port closed at once could be taken meanwhile by another test process's
    server (`-n 2`), which would then answer."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()
