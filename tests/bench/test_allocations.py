"""The allocation hook of ``bench memory``'s ``allocations`` part counts what numpy allocates, where."""

import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench import allocations, bench_memory
from bench.allocations import FRAME_SIZED, AllocationCounter, _default_handler


def _make(n: int) -> np.ndarray:
    return np.empty(n, np.uint8)


def test_counts_frame_sized_allocations_by_thread_and_site_and_restores_numpy():
    before = tuple(getattr(_default_handler().allocator, f) for f in ("malloc", "calloc", "realloc"))
    with AllocationCounter(lambda name: "other" if name == "other" else "main") as c:
        a = np.zeros(FRAME_SIZED, np.uint8)              # calloc
        b = _make(FRAME_SIZED - 1)                        # too small to count
        t = threading.Thread(target=lambda: np.ones((300, 300), np.float32), name="other")
        t.start()
        t.join()
        c.counting = False
        _make(2 * FRAME_SIZED)                            # not counted: counting is off
    assert tuple(getattr(_default_handler().allocator, f) for f in ("malloc", "calloc", "realloc")) == before
    assert c.counts.total("main") == (1, FRAME_SIZED)
    assert c.counts.total("other") == (1, 300 * 300 * 4)
    (where, n, nbytes), = c.counts.sites("main")
    assert where.startswith("tests/bench/test_allocations.py:") and n == 1 and nbytes == FRAME_SIZED
    (where, _, _), = c.counts.sites("other")
    assert "numpy" in where                               # the thread's lambda is not the project's code
    assert a.sum() == 0 and b.size == FRAME_SIZED - 1     # the arrays themselves are numpy's as ever


def test_site_names_the_project_frame_that_called_numpy():
    with AllocationCounter(lambda name: "main") as c:
        _make(FRAME_SIZED)
    (where, _, _), = c.counts.sites("main")
    assert "(_make)" in where


def test_thread_roles():
    assert bench_memory.thread_role("liveness-judge_0") == "worker"
    assert bench_memory.thread_role("liveness-reader") == "worker"
    assert bench_memory.thread_role("MainThread") == "daemon"
    assert bench_memory.thread_role("camera-host:sim") == "daemon"
    assert bench_memory.thread_role("ThreadPoolExecutor-0_0") == "other"


def test_a_site_in_a_lender_names_the_project_frame_it_lent_to():
    from agent.liveness.challenge import dot_energy

    with AllocationCounter(lambda name: "main") as c:
        dot_energy(np.zeros((480, 640), np.uint8))       # its float image and blur: temporaries lent by align
    wheres = [where for where, _, _ in c.counts.sites("main")]
    lent = [w for w in wheres if w.startswith("agent/pipeline/align.py:")]
    assert lent and all(" for agent/liveness/challenge.py:" in w and w.endswith("(dot_energy)") for w in lent), wheres


@pytest.mark.parametrize("checkout", ["venv inside", "elsewhere"])
def test_a_site_outside_the_project_is_named_the_same_wherever_the_checkout_is(monkeypatch, checkout):
    # /work/main holds its venv (.venv/lib/.../site-packages/numpy/...) and a git worktree does not:
    # a numpy site was named ".venv/lib/python3.x/site-packages/numpy/_core/numeric.py" in the one and
    # "_core/numeric.py" in the other (main: the first test here failed in a worktree). Now it is
    # numpy's own path from its import root in both, and the project's files still from the root.
    root = str(Path(sys.prefix).absolute().parent) + "/" if checkout == "venv inside" else "/elsewhere/checkout/"
    monkeypatch.setattr(allocations, "_ROOT", root)

    def where(path: str, function: str) -> str:
        return allocations._where(SimpleNamespace(f_code=SimpleNamespace(co_filename=path, co_name=function),
                                                  f_lineno=7))
    numeric = np.ones.__code__.co_filename
    inside = Path(numeric).relative_to(Path(np.__file__).parent).as_posix()
    assert where(numeric, "ones") == f"numpy/{inside}:7 (ones)"
    assert where(root + "agent/pipeline/align.py", "_new") == "agent/pipeline/align.py:7 (_new)"
