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
