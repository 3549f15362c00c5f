"""The C allocator's side of a long-running process's memory (glibc malloc; elsewhere a no-op).

A session's peak (the challenge window's framesets and their aligned copies, the frame copies out
of the camera host's ring) is freed when the session ends, but glibc keeps freed memory inside its
arenas: one per thread that allocated, up to eight per core, each holding what its threads'
largest session left behind. Resident memory then climbs in steps, session after session, as
sessions run on other threads, until every arena has held a peak (issue 20: the daemon "grew"
48-77 MiB over 15-30 sessions, native memory, while traced Python allocations did not).

Two measures, both cheap:

* :func:`limit_arenas` caps the arenas (``M_ARENA_MAX``) so that fewer of them can each hold a
  peak; it acts on arenas made after the call, so it is called first thing in the process.
  A child whose environment is built from scratch (the liveness worker) gets
  :data:`ARENA_ENV` instead, which glibc reads at start-up.
* :func:`trim` gives the free pages of every arena back to the kernel (``malloc_trim(0)``:
  ``MADV_DONTNEED`` on whole free pages, live allocations untouched) after each session, so what
  stays resident between sessions is what is in use.

:func:`stats` reads ``mallinfo2`` for the bench: bytes in use, free bytes the arenas hold, and
bytes in chunks mmapped on their own.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

ARENAS = 2                        # the main arena and one more: threads share them
M_ARENA_MAX = -8                  # mallopt parameters (malloc.h)
ARENA_ENV = {"MALLOC_ARENA_MAX": str(ARENAS)}


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _glibc() -> ctypes.CDLL | None:
    # The process's own symbols (libc among them): no library search, which runs ldconfig in a
    # subprocess, and the sandboxed liveness worker may start none.
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None   # glibc only


_LIBC = _glibc()


def limit_arenas(n: int = ARENAS) -> bool:
    """At most ``n`` malloc arenas in this process from now on. False where it is not glibc."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(n)))


def trim() -> bool:
    """Return every arena's free pages to the kernel. True if memory was released."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(ctypes.c_size_t(0)))


@dataclass(frozen=True)
class AllocatorStats:
    in_use: int                   # bytes handed out by malloc, arenas and mmapped chunks together
    free_held: int                # free bytes the arenas keep (resident or not)
    mmapped: int                  # bytes in chunks mmapped on their own (returned when freed)
    arena_bytes: int              # bytes the arenas took from the kernel (brk and heaps)

    def to_dict(self) -> dict[str, float]:
        mib = 1 << 20
        return {"in_use_mib": self.in_use / mib, "free_held_mib": self.free_held / mib,
                "mmapped_mib": self.mmapped / mib, "arena_mib": self.arena_bytes / mib}


def stats() -> AllocatorStats | None:
    """``mallinfo2()`` of this process, or None where it is not glibc 2.33 or later."""
    if _LIBC is None or not hasattr(_LIBC, "mallinfo2"):
        return None
    _LIBC.mallinfo2.restype = _MallInfo2
    m = _LIBC.mallinfo2()
    return AllocatorStats(in_use=m.uordblks + m.hblkhd, free_held=m.fordblks, mmapped=m.hblkhd, arena_bytes=m.arena)
