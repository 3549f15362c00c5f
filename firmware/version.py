"""Firmware version strings as the SDKs report them, made comparable.

RealSense reports ``5.13.0.50``, Orbbec ``1.6.00`` (sometimes with a leading ``v``), a DFU device
its ``bcdDevice`` as ``1.02``. A version is its dotted numbers; missing trailing parts count as
zero, so ``1.6`` == ``1.6.0`` == ``1.6.00``. Anything else (letters, empty parts, more than six
parts, numbers over 99999) is not a version: never guess what an unparseable string means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION = re.compile(r"[vV]?(\d{1,5}(?:\.\d{1,5}){0,5})")


@total_ordering
@dataclass(frozen=True)
class Version:
    parts: tuple[int, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> Version:
        if not isinstance(text, str):
            raise ValueError(f"a firmware version is a string, not {type(text).__name__}")
        m = _VERSION.fullmatch(text.strip())
        if not m:
            raise ValueError(f"{text!r} is not a firmware version (dotted numbers, e.g. 5.13.0.50)")
        parts = tuple(int(p) for p in m.group(1).split("."))
        while len(parts) > 1 and parts[-1] == 0:
            parts = parts[:-1]
        return cls(parts, text.strip())

    def _key(self) -> tuple[int, ...]:
        return self.parts + (0,) * (6 - len(self.parts))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        return self.text
