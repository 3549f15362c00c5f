"""Arrays for frames' pixels, used again once nobody holds them.

A frame read out of a shared-memory ring (a camera host's, ``drivers/host/ring.py``; the liveness
worker's, ``agent/liveness/wire.py``) is copied into an array of its own, so the slot can be given
back at once. :class:`BufferPool` lends those arrays: ``take`` hands out one of its arrays only when
nothing but the pool refers to it (CPython's reference count: a frame, a view, a frameset, a list
of them, a thread working on it each hold a reference), so a frame anybody still holds is never
written again, however long they hold it: the matcher waiting for a partner, a session's window, a
judge. When all of a shape's arrays are held, ``take`` makes a new array and keeps it only while
the pool has fewer than ``per_shape`` of that shape; the rest are the caller's alone.

The arrays handed out are read-only (``take`` makes one writable for the copy; the caller makes it
read-only again, as every frame's pixels are).
"""

from __future__ import annotations

import sys
import threading

import numpy as np


def _free_count() -> int:
    """``sys.getrefcount`` of a pool's array that nobody else holds, as :meth:`BufferPool._free`
    measures it (interpreters differ in what the call itself adds)."""
    arrays = [np.empty(0)]
    free = sys.getrefcount(arrays[0])
    held = arrays[0]
    if sys.getrefcount(arrays[0]) != free + 1:          # pragma: no cover - an interpreter without counts
        raise RuntimeError("reference counts cannot tell a held array from a free one here")
    del held
    return free


_FREE = _free_count()


class BufferPool:
    """At most ``per_shape`` arrays per (shape, dtype), each lent again once it is free."""

    def __init__(self, per_shape: int = 4):
        if per_shape < 0:
            raise ValueError("per_shape must not be negative")
        self.per_shape = per_shape
        self._arrays: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._lock = threading.Lock()
        self.reused = self.made = 0                     # counts, for tests and benches

    def take(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A writable array of ``shape`` and ``dtype`` that nobody else refers to; its contents are
        stale (the caller overwrites all of it)."""
        key = (tuple(shape), np.dtype(dtype).str)
        with self._lock:
            arrays = self._arrays.setdefault(key, [])
            for i in range(len(arrays)):
                if sys.getrefcount(arrays[i]) == _FREE:
                    a = arrays[i]
                    a.flags.writeable = True
                    self.reused += 1
                    return a
            a = np.empty(shape, dtype)
            self.made += 1
            if len(arrays) < self.per_shape:
                arrays.append(a)
            return a

    def kept(self) -> int:
        """Bytes of the arrays the pool keeps."""
        with self._lock:
            return sum(a.nbytes for arrays in self._arrays.values() for a in arrays)

    def clear(self) -> None:
        """Keep nothing (arrays still held stay their holders'). Nothing is zeroed: an array nobody
        holds is freed, and the allocator's trim after a session gives its pages back to the kernel
        (``docs/liveness.md``, "Per-frame allocations")."""
        with self._lock:
            self._arrays.clear()
