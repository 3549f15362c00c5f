"""The memory bench's breakdown of a process's resident memory (``bench/bench_memory.py``)."""

from __future__ import annotations

import mmap
import threading

import numpy as np

from bench.bench_memory import ARENA_HEAP, PYMALLOC_ARENA, THREAD_STACK, _category, breakdown, breakdown_rows, smaps


def test_categories_follow_the_mappings_shapes():
    assert _category("[heap]", 0x5000, 4096, "rw-p") == "malloc: main arena ([heap])"
    assert _category("[anon]", 5 * ARENA_HEAP, 30 << 20, "rw-p").startswith("malloc: other arenas")
    assert _category("[anon]", 5 * ARENA_HEAP + 4096, PYMALLOC_ARENA, "rw-p").startswith("Python objects")
    assert _category("[anon]", 5 * ARENA_HEAP + 4096, THREAD_STACK - 4096, "rw-p") == "thread stacks"
    assert _category("[anon]", 5 * ARENA_HEAP + 4096, 3 << 20, "rw-p").startswith("anonymous: other")
    assert _category("/memfd:capture-agent-camera-ring (deleted)", 0, 4096, "rw-s").startswith("frame rings")
    lib = "/x/.venv/lib/python3.11/site-packages/opencv_python_headless.libs/libavcodec-1.so"
    assert _category(lib, 0, 4096, "r-xp") == "libraries: cv2"                  # a wheel's .libs with its package
    assert _category("/x/site-packages/cv2/cv2.abi3.so", 0, 4096, "r-xp") == "libraries: cv2"
    assert _category("/usr/lib/x86_64-linux-gnu/libc.so.6", 0, 4096, "r-xp").startswith("libraries: Python and system")


def test_breakdown_adds_up_to_the_process_and_sees_what_it_holds():
    anon = mmap.mmap(-1, 24 << 20)                     # 24 MiB of anonymous memory, touched
    anon.write(b"\x01" * len(anon))
    done = threading.Event()
    t = threading.Thread(target=done.wait)
    t.start()
    try:
        b = breakdown()
        total = smaps()
        rss = sum(v["Rss"] for k, v in b.items() if k != "threads")
        assert abs(rss - total["Rss"]) < 1.0           # every mapping is counted once
        assert b["libraries: numpy"]["Rss"] > 1.0 and np.__name__
        # (at a 64 MiB-aligned address, 1 in 16,384, it would read as a malloc arena's heap)
        anonymous = [v["Rss"] for k, v in b.items() if k.startswith(("anonymous: other", "malloc: other arenas"))]
        assert sum(anonymous) >= 24.0
        assert b["threads"]["Rss"] >= 2
        rows = breakdown_rows("self", "now", b)
        assert rows[0]["value"] == max(v["Rss"] for k, v in b.items() if k != "threads")
        assert rows[-1]["unit"] == "threads"
    finally:
        done.set()
        t.join()
        anon.close()


def test_series_counts_each_process_cpu_per_session_and_logs_every_sample(tmp_path, monkeypatch):
    import json
    import os
    import time

    from bench import bench_memory
    log = tmp_path / "series.jsonl"
    monkeypatch.setattr(bench_memory, "SERIES_LOG", str(log))
    me = os.getpid()
    assert bench_memory.cpu_seconds(me) > 0.0
    assert bench_memory.cpu_seconds(2**22 + 1) == 0.0                 # above pid_max's limit: no such process
    s = bench_memory.Series()
    procs = {"daemon": [me], "worker": [me], "camera host": []}
    s.sample(procs, 1.5)
    t0 = time.process_time()
    while time.process_time() - t0 < 0.2:                             # 0.2 s of this process's CPU between samples
        pass
    refused = {"accepted": False, "outcome": "NOT_LIVE", "verdict": "inconclusive", "detail": "motion"}
    s.sample(procs, 2.5, refused)
    assert s.cpu["daemon"][1] >= 0.15 and s.cpu["camera host"] == [0.0, 0.0]
    assert s.cpu["daemon"][0] > 0.0                                   # the first: all the CPU before it
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["session"] for x in lines] == [1, 2] and lines[1]["wall_s"] == 2.5
    assert lines[1]["daemon CPU s"] == s.cpu["daemon"][1] and lines[1]["daemon RSS"] == s.values["daemon RSS"][1]
    assert "outcome" not in lines[0] and {k: lines[1][k] for k in refused} == refused   # the session's outcome


def test_the_maps_log_has_each_mapping_and_thread_of_the_first_sessions(tmp_path, monkeypatch):
    import json
    import os

    from bench import bench_memory
    log = tmp_path / "maps.jsonl"
    monkeypatch.setattr(bench_memory, "MAPS_LOG", str(log))
    monkeypatch.setattr(bench_memory, "MAPS_SESSIONS", 2)
    me = os.getpid()
    # 8 MiB touched, private and anonymous (``mmap.mmap(-1, n)`` alone is shared: smaps counts it as Shmem)
    anon = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    anon.write(b"\x01" * len(anon))
    done = threading.Event()
    t = threading.Thread(target=done.wait)
    t.start()
    try:
        s = bench_memory.Series()
        tasks = []       # the process's thread count just before and just after each sample
        for _ in range(3):
            before = len(os.listdir(f"/proc/{me}/task"))
            s.sample({"daemon": [me], "worker": [], "camera host": []}, 1.0)
            tasks.append((before, len(os.listdir(f"/proc/{me}/task"))))
    finally:
        done.set()
        t.join()
        anon.close()
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["session"] for x in lines] == [1, 2] and all(x["worker"] is None for x in lines)   # MAPS_SESSIONS
    maps, threads = lines[0]["daemon"]["maps"], lines[0]["daemon"]["threads"]
    # [start (hex), size KiB, permissions, path, RSS KiB, anonymous KiB, category]
    assert any(m[1] >= 8 << 10 and m[4] >= 8 << 10 and m[5] >= 8 << 10 and m[3] == "[anon]" for m in maps)
    assert abs(sum(m[4] for m in maps) / 1024 - s.values["daemon RSS"][0]) < 2.0     # read just before it
    # Python 3.11 names no native thread (``comm`` is the process's name): the count is what tells a new one.
    # Another test's thread in this xdist worker may end while the sample runs (CI, stop 45: 27 named against 25
    # after ``t`` ended), so the count is bounded by the counts read just before and just after the first sample.
    assert {m[6] for m in maps} >= {"libraries: numpy"} and min(tasks[0]) <= len(threads) <= max(tasks[0])
