"""The C allocator's side of a long-running process's memory (glibc malloc; elsewhere a no-op).

A session's peak (the challenge window's framesets and their aligned copies, the frame copies out
of the camera host's ring) is freed when the session ends, but glibc keeps freed memory inside its
arenas: one per thread that allocated, up to eight per core, each holding what its threads'
largest session left behind. Resident memory then climbs in steps, session after session, as
sessions run on other threads, until every arena has held a peak (issue 20: the daemon "grew"
48-77 MiB over 15-30 sessions, native memory, while traced Python allocations did not).

Three measures, all cheap:

* :func:`limit_arenas` caps the arenas (``M_ARENA_MAX``) so that fewer of them can each hold a
  peak; it acts on arenas made after the call, so it is called first thing in the process.
  A child whose environment is built from scratch (the liveness worker) gets
  :data:`ARENA_ENV` instead, which glibc reads at start-up.
* :func:`trim` gives the free pages of every arena back to the kernel (``malloc_trim(0)``:
  ``MADV_DONTNEED`` on whole free pages, live allocations untouched) after each session, so what
  stays resident between sessions is what is in use.
* The mmap threshold is fixed (:data:`MMAP_THRESHOLD`: :func:`fix_mmap_threshold` in the daemon,
  :data:`ARENA_ENV` for the worker):
  glibc otherwise raises it to the size of every mmapped block freed (up to 32 MiB; mallopt(3),
  "dynamic mmap threshold"), so after the first frame-sized array is freed every later one of that
  size is carved from an arena, among the allocations that outlive the session; what the trim can
  then give back depends on where those landed, and the worker's resident memory between sessions
  (and the daemon's) moved in steps of 3-12 MiB (growth31: bench30's +4.3 MiB at session 70 was one, inside the second
  arena's existing heap, no new thread, arena or heap). Fixed, every block of 128 KiB or more is a
  mapping of its own, unmapped when freed, and the arenas hold only small allocations.

:func:`stats` reads ``mallinfo2`` for the bench: bytes in use, free bytes the arenas hold, and
bytes in chunks mmapped on their own.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

ARENAS = 2                        # the main arena and one more: threads share them
M_ARENA_MAX = -8                  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
# glibc's own initial M_MMAP_THRESHOLD (malloc/malloc.c: DEFAULT_MMAP_THRESHOLD_MIN); set, it no longer slides.
MMAP_THRESHOLD = 128 * 1024
ARENA_ENV = {"MALLOC_ARENA_MAX": str(ARENAS), "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}


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


def fix_mmap_threshold(n: int = MMAP_THRESHOLD) -> bool:
    """Every block of ``n`` bytes or more a mapping of its own, from now on (the threshold no longer
    follows the blocks freed). False where it is not glibc."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(n)))


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
