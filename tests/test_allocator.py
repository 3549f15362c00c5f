"""``agent/allocator.py`` on this machine's glibc: a session's freed peak that the allocator kept
resident goes back to the kernel on ``trim()``; the arena cap is set. Each case runs in a fresh
interpreter, so the test process's own heap does not blur the figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from agent import allocator

pytestmark = pytest.mark.skipif(allocator.stats() is None, reason="not glibc 2.33 or later")

PEAK = r"""
import json, threading
from agent import allocator

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024

held = []
def session():
    # A window's worth of frame-sized buffers from a thread of its own (its own arena), freed
    # but for the last one, which pins the arena's top so free() alone cannot shrink it.
    bufs = [bytearray(100_000) for _ in range(1500)]
    held.append(bufs[-1])
    del bufs
t = threading.Thread(target=session); t.start(); t.join()
before = rss_mib()
released = allocator.trim()
print(json.dumps({"before": before, "after": rss_mib(), "released": released}))
"""


def run(code: str, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_trim_returns_a_freed_peak_that_the_allocator_kept_resident():
    r = run(PEAK)
    assert r["released"] is True
    # About 150 MB was allocated and freed: most of it stayed resident until the trim.
    assert r["before"] - r["after"] > 100, r


def test_the_arena_cap_is_accepted_and_stats_add_up():
    r = run("import json; from agent import allocator\n"
            "s = allocator.stats()\n"
            "print(json.dumps({'capped': allocator.limit_arenas(), 'in_use': s.in_use, 'arena': s.arena_bytes, "
            "'mmapped': s.mmapped, 'free': s.free_held}))")
    assert r["capped"] is True
    assert r["in_use"] > 0 and r["arena"] > 0
    assert r["in_use"] - r["mmapped"] + r["free"] <= r["arena"] + 4096     # in use + free = the arenas' bytes


FRAME = r"""
import ctypes, json
from agent import allocator
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if FIX:
    assert allocator.fix_mmap_threshold()
big = libc.malloc(4 << 20)            # mmapped (over the initial threshold), then freed: a sliding
libc.free(big)                        # threshold rises to its size
before = allocator.stats().mmapped
frame = libc.malloc(600 * 1024)       # a 640x480 depth frame's bytes
print(json.dumps({"mmapped": allocator.stats().mmapped - before}))
libc.free(frame)
"""


def test_the_fixed_mmap_threshold_keeps_frame_sized_blocks_out_of_the_arenas():
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    # glibc's default: the freed 4 MiB block raised the threshold, the frame is carved from the arena.
    assert run("FIX = False" + FRAME, base)["mmapped"] == 0
    # The worker's environment (agent/allocator.py): the frame is a mapping of its own, unmapped when freed.
    assert run("FIX = False" + FRAME, {**base, **allocator.ARENA_ENV})["mmapped"] >= 600 * 1024
    # The daemon's, set in the process (capture-agent run): the same.
    assert run("FIX = True" + FRAME, base)["mmapped"] >= 600 * 1024
