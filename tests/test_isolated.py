"""tests/helpers/isolated.py: a native crash in the child fails that test only; the next gets a fresh child."""

import pytest

from tests.helpers.isolated import Isolated


def test_a_native_crash_in_the_child_fails_that_test_and_the_next_runs():
    with Isolated("tests.helpers.isolated_probe") as child:
        child.run("case_ok")
        with pytest.raises(pytest.fail.Exception, match=r"(?s)killed by signal 11.*Segmentation fault"):
            child.run("case_segfault")
        child.run("case_ok")
        with pytest.raises(pytest.fail.Exception, match="ZeroDivisionError"):
            child.run("case_fails")
        with pytest.raises(pytest.skip.Exception, match="not installed"):
            child.run("case_skip")
        with pytest.raises(pytest.fail.Exception, match="no case"):
            child.run("case_absent")


def test_a_child_that_dies_after_its_case_answered_fails_the_next_case_or_the_module():
    with Isolated("tests.helpers.isolated_probe") as child:
        child.run("case_dies_later")
        assert child._proc is not None and child._proc.wait(timeout=30) == -14
        with pytest.raises(pytest.fail.Exception, match=r"died after case_dies_later answered \(killed by signal 14\)"):
            child.run("case_ok")
        child.run("case_ok")                              # and the next case gets a fresh child
    isolated = Isolated("tests.helpers.isolated_probe")
    with pytest.raises(pytest.fail.Exception, match="died after case_dies_later answered"):
        with isolated as child:
            child.run("case_dies_later")
            assert child._proc is not None and child._proc.wait(timeout=30) == -14
