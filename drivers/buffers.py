"""Arrays for frames' pixels, used again once nobody holds them.

A frame read out of a shared-memory ring (a camera host's, ``drivers/host/ring.py``; the liveness
worker's, ``agent/liveness/wire.py``) is copied into an array of its own, so the slot can be given
back at once. :class:`BufferPool` lends those arrays: ``take`` hands out one of its arrays only when
nothing but the pool refers to it (CPython's reference count: a frame, a view, a frameset, a list
of them, a thread working on it each hold a reference), so a frame anybody still holds is never
written again, however long they hold it: the matcher waiting for a partner, a session's window, a
judge. When all of a shape's arrays are held, ``take`` makes a new array and keeps it only while
the pool has fewer than ``per_shape`` of that shape; the rest are the caller's alone.

A holder that will keep a known number of frames whole (the liveness worker's judge, a challenge
window's) has them come from one block per shape instead (:meth:`BufferPool.reserve`): each array
of a block is lent once, never again, and the block is freed with the last of them.

The arrays handed out are read-only (``take`` makes one writable for the copy; the caller makes it
read-only again, as every frame's pixels are).
"""

from __future__ import annotations

import sys
import threading
import weakref

import numpy as np

# Arrays of a reservation's blocks, each lent once: a frame may keep one as its pixels although it
# is a view (``Frame`` copies other views: their memory may be recycled under them; these never are).
_LENT_ONCE: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()


def lent_once(a: np.ndarray) -> bool:
    """Whether ``a`` is an array of a reservation's block (never lent again, never written again
    once its holder made it read-only)."""
    return _LENT_ONCE.get(id(a)) is a


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
    """At most ``per_shape`` arrays per (shape, dtype), each lent again once it is free; and, while a
    reservation holds (:meth:`reserve`), one block per shape for the next ``count`` frames of it."""

    def __init__(self, per_shape: int = 4):
        if per_shape < 0:
            raise ValueError("per_shape must not be negative")
        self.per_shape = per_shape
        self._arrays: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._lock = threading.Lock()
        self._reserve = 0
        self._reserved: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self.reused = self.made = self.blocks = 0       # counts, for tests and benches

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
            if self._reserve:
                if key not in self._reserved:
                    self._reserved[key] = _carve(shape, np.dtype(dtype), self._reserve)
                    self.blocks += 1
                if self._reserved[key]:
                    a = self._reserved[key].pop()
                    _LENT_ONCE[id(a)] = a
                    return a
            a = np.empty(shape, dtype)
            self.made += 1
            if len(arrays) < self.per_shape:
                arrays.append(a)
            return a

    def reserve(self, count: int) -> None:
        """The next ``count`` frames of each shape (a session's window, which its holder keeps
        whole) come from one block per shape, made when the first of them is taken, instead of an
        array each. A reserved array is lent once, never again (a view into a block cannot tell by
        its reference count whether a slice of it is still held); the block is freed when the last
        of them is. Ends with :meth:`end_reservation`; a new reservation ends the one before."""
        with self._lock:
            self._reserve = max(0, int(count))
            self._reserved.clear()

    def end_reservation(self) -> None:
        """Lend no more reserved arrays (those lent stay their holders')."""
        self.reserve(0)

    def kept(self) -> int:
        """Bytes of the arrays the pool keeps to lend again (not reserved blocks)."""
        with self._lock:
            return sum(a.nbytes for arrays in self._arrays.values() for a in arrays)

    def clear(self) -> None:
        """Keep nothing, reserve nothing (arrays still held stay their holders')."""
        with self._lock:
            self._arrays.clear()
            self._reserve = 0
            self._reserved.clear()


def _carve(shape: tuple[int, ...], dtype: np.dtype, count: int) -> list[np.ndarray]:
    """``count`` arrays of ``shape`` in one block (each at a 64-byte boundary), in the order they
    are to be lent (``pop`` takes the first)."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    stride = -(-nbytes // 64) * 64
    block = np.empty(stride * count, np.uint8)
    return [block[k * stride:k * stride + nbytes].view(dtype).reshape(shape) for k in reversed(range(count))]
