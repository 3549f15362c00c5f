"""A file read with a bound (pin34: the dot reference, the kernel's IMA list): never more than ``limit`` bytes kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def read_at_most(path: Path, limit: int, error: Callable[[str], Exception], what: str) -> bytes:
    """``path``'s bytes (files that report no size, as securityfs's, read to their end); ``error(message)`` raised
    when it cannot be read or holds more than ``limit`` bytes (``what`` names it in the message)."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise error(f"{what} {path} is larger than {limit} bytes")
    return data
