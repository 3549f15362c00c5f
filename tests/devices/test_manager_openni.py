"""The device manager over the real OpenNI2 Dummy device, with unplug simulated at the backend boundary.

The bodies (``tests/devices/manager_openni_cases.py``) run in one child interpreter for this module
(``tests/helpers/isolated.py``), as the other Dummy tests do: the Dummy driver's native threads then
live and die with the child, and a crash in them fails the test, not the pytest worker."""

from collections.abc import Iterator

import pytest

from tests.helpers.isolated import Isolated

pytest.importorskip("drivers.openni")


@pytest.fixture(scope="module")
def child() -> Iterator[Isolated]:
    with Isolated("tests.devices.manager_openni_cases") as c:
        yield c


def test_simulated_unplug_of_openni_dummy_recovers_after_replug(child):
    child.run("case_simulated_unplug_of_openni_dummy_recovers_after_replug")
