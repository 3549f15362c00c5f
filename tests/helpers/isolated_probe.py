"""Cases for tests/test_isolated.py: what a child run by tests/helpers/isolated.py can meet."""

import ctypes
import os

import pytest


def case_ok() -> None:
    assert os.getppid() > 1


def case_fails() -> None:
    assert 1 / 0


def case_skip() -> None:
    pytest.skip("the SDK is not installed")


def case_segfault() -> None:
    ctypes.string_at(0)                 # a native crash, as a driver thread's would be


def case_dies_later() -> None:
    import signal
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, 0.2)     # answers, then the kernel ends it: a crash a moment later
