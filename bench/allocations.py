"""Frame-sized numpy allocations by call site: a counting hook on numpy's data allocator.

``tracemalloc`` sees numpy's array buffers, but its snapshots hold only what is alive when they are
taken: an array made and dropped within one frameset never shows in a diff of two. This hook counts
every allocation as it happens instead. NumPy (>= 1.22) allocates array data through a handler, a
``PyDataMem_Handler`` whose ``malloc``, ``calloc`` and ``realloc`` it calls at each allocation; the
hook replaces those three pointers of numpy's default handler with counting wrappers around the
originals (``free`` is left alone), so every thread of the process is counted, whichever context it
runs in, and arrays OpenCV returns too (its allocator for Python makes numpy arrays). Allocations of
at least ``FRAME_SIZED`` bytes are counted by thread and by call site: the innermost frame in this
project's code (``agent/``, ``drivers/``), with the innermost frame of all when that is elsewhere
(numpy's own Python code). Memory that OpenCV or LiteRT allocate for themselves is not numpy's and
is not seen.

For benches only (``bench_memory``'s ``allocations`` part): each counted allocation costs a Python
call under the interpreter lock.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import importlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FRAME_SIZED = 64 << 10
_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
_PROJECT = tuple(_ROOT + p for p in ("agent/", "drivers/"))
_GET_HANDLER = 305            # PyDataMem_GetHandler's index in numpy's C API table (numpy >= 1.22)


class _Allocator(ctypes.Structure):
    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p), ("calloc", ctypes.c_void_p),
                ("realloc", ctypes.c_void_p), ("free", ctypes.c_void_p)]


class _Handler(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8), ("allocator", _Allocator)]


_MALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_CALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
_REALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


def _default_handler() -> _Handler:
    """numpy's default data handler (the struct its allocations go through)."""
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    table = get_pointer(importlib.import_module("numpy._core._multiarray_umath")._ARRAY_API, None)
    fn = ctypes.c_void_p.from_address(table + _GET_HANDLER * ctypes.sizeof(ctypes.c_void_p)).value
    if not fn:
        raise RuntimeError("numpy's C API has no PyDataMem_GetHandler")
    capsule = ctypes.PYFUNCTYPE(ctypes.py_object)(fn)()
    handler = _Handler.from_address(get_pointer(capsule, b"mem_handler"))
    if handler.name != b"default_allocator" or handler.version != 1:
        raise RuntimeError(f"numpy's data handler is {handler.name!r} v{handler.version}, not its default")
    return handler


# Project functions that allocate for their callers (pools, kept temporaries): a site in one of
# them names its caller too (``... for path:line (function)``), which is where to look.
_LENDERS = {("drivers/buffers.py", "take"), ("agent/pipeline/align.py", "_new"),
            ("agent/pipeline/align.py", "get"), ("agent/pipeline/align.py", "scratch"),
            ("agent/pipeline/align.py", "_result")}


def site(frame) -> str:
    """``path:line (function)`` of the innermost project frame from ``frame`` outwards, with the
    innermost frame when that is not the project's, and the first project frame outside a lender
    (``_LENDERS``) when it is in one."""
    inner = frame
    while frame is not None and not frame.f_code.co_filename.startswith(_PROJECT):
        frame = frame.f_back
    if frame is None:
        return _where(inner) if inner is not None else "?"
    here = _where(frame)
    out = here if frame is inner else f"{here} via {_where(inner)}"
    caller = frame
    while caller is not None and _lender(caller):
        caller = caller.f_back
        while caller is not None and not caller.f_code.co_filename.startswith(_PROJECT):
            caller = caller.f_back
    if caller is not None and caller is not frame:
        out += f" for {_where(caller)}"
    return out


def _lender(frame) -> bool:
    path = frame.f_code.co_filename
    return path.startswith(_ROOT) and (path[len(_ROOT):], frame.f_code.co_name) in _LENDERS


def _where(frame) -> str:
    return f"{_named(frame.f_code.co_filename)}:{frame.f_lineno} ({frame.f_code.co_name})"


def _named(path: str) -> str:
    """A frame's file as a site names it, the same wherever the checkout and its venv are: the
    project's files from the project's root (``agent/pipeline/align.py``); any other, a venv's inside
    the checkout too (``/work/main/.venv/...``), from the longest ``sys.path`` entry it lies under
    (``numpy/_core/numeric.py``), else by its last two parts."""
    if path.startswith(_ROOT) and not path.startswith(_prefixes()):
        return path[len(_ROOT):]
    under = max((r for r in _import_roots(tuple(sys.path)) if path.startswith(r)), key=len, default="")
    return path[len(under):] if under else "/".join(Path(path).parts[-2:])


def _prefixes() -> tuple[str, ...]:
    """The interpreter's installation directories (a venv's among them), each ending in ``/``."""
    return _import_roots((sys.prefix, sys.exec_prefix, sys.base_prefix))


@functools.lru_cache(maxsize=4)
def _import_roots(entries: tuple[str, ...]) -> tuple[str, ...]:
    """``entries`` as directories (as given, and resolved), each ending in ``/``."""
    dirs = {str(Path(e).absolute()) for e in entries if e} | {str(Path(e).resolve()) for e in entries if e}
    return tuple(d.rstrip("/") + "/" for d in dirs)


@dataclass
class Counts:
    """Frame-sized allocations by (role, site): count and bytes."""

    count: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    nbytes: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    def add(self, role: str, where: str, size: int, n: int = 1) -> None:
        """``n`` allocations of ``size`` bytes in all."""
        self.count[role, where] += n
        self.nbytes[role, where] += size

    def total(self, role: str) -> tuple[int, int]:
        return (sum(n for (r, _), n in self.count.items() if r == role),
                sum(n for (r, _), n in self.nbytes.items() if r == role))

    def sites(self, role: str) -> list[tuple[str, int, int]]:
        """``(site, count, bytes)`` of ``role``, most bytes first."""
        out = [(w, n, self.nbytes[r, w]) for (r, w), n in self.count.items() if r == role]
        return sorted(out, key=lambda x: (-x[2], x[0]))


class AllocationCounter:
    """The hook, as a context manager: counting from ``__enter__`` while ``counting`` is true (it
    starts true), the handler's own pointers back at ``__exit__``. ``role(thread_name)`` names the
    part of the system a thread belongs to (``None``: not counted)."""

    def __init__(self, role: Callable[[str], str | None]):
        self.role = role
        self.counts = Counts()
        self.counting = True
        self._handler: _Handler | None = None
        self._saved: tuple[int, int, int] | None = None
        self._callbacks: tuple = ()

    def _record(self, size: int) -> None:
        if size < FRAME_SIZED or not self.counting:
            return
        try:
            role = self.role(threading.current_thread().name)
            if role is not None:
                self.counts.add(role, site(sys._getframe(2)), size)
        except Exception:               # the allocation must go on whatever the bookkeeping does
            pass

    def __enter__(self) -> AllocationCounter:
        h = _default_handler()
        a = h.allocator
        # The originals are called keeping the interpreter lock (PYFUNCTYPE): numpy may allocate
        # where it released the lock itself, and a call that released it again would fail there.
        malloc = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)(a.malloc)
        calloc = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)(a.calloc)
        realloc = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)(a.realloc)

        def on_malloc(ctx, size):
            self._record(size)
            return malloc(ctx, size)

        def on_calloc(ctx, nelem, elsize):
            self._record(nelem * elsize)
            return calloc(ctx, nelem, elsize)

        def on_realloc(ctx, ptr, size):
            self._record(size)
            return realloc(ctx, ptr, size)

        self._callbacks = (_MALLOC(on_malloc), _CALLOC(on_calloc), _REALLOC(on_realloc))
        self._handler, self._saved = h, (a.malloc, a.calloc, a.realloc)
        ptrs = [ctypes.cast(cb, ctypes.c_void_p).value for cb in self._callbacks]
        a.malloc, a.calloc, a.realloc = ptrs
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handler is not None and self._saved is not None:
            a = self._handler.allocator
            a.malloc, a.calloc, a.realloc = self._saved
            self._handler = None
