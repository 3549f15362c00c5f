"""drivers.openni against the real OpenNI2 runtime (Debian libopenni2-0) and its Dummy device.

The tests that open a device run their bodies (``tests/drivers/openni_dummy_cases.py``) in one
child interpreter for this module (``tests/helpers/isolated.py``): a crash of the native driver
fails the test that was running, not the pytest worker, and OpenNI2's threads are the child's."""

from collections.abc import Iterator

import pytest

import drivers
from tests.helpers.isolated import Isolated

openni = pytest.importorskip("drivers.openni")


@pytest.fixture(scope="module")
def child() -> Iterator[Isolated]:
    with Isolated("tests.drivers.openni_dummy_cases") as c:
        yield c


def test_library_dir_is_private_symlinks(tmp_path):
    d = openni.prepare_library_dir(runtime_dir=tmp_path / "rt")
    assert (d / "libOpenNI2.so").resolve().name == "libOpenNI2.so.0"
    assert list((d / "OpenNI2" / "Drivers").glob("libDummyDevice.so.0"))
    assert openni.prepare_library_dir(runtime_dir=tmp_path / "rt") == d     # idempotent
    with pytest.raises(drivers.BackendUnavailable):
        openni.prepare_library_dir(lib_dirs=(str(tmp_path / "empty"),), runtime_dir=tmp_path / "rt2")
    with pytest.raises(drivers.BackendUnavailable):
        openni.prepare_library_dir(redist=tmp_path)


def test_dummy_device_streams_live_through_backend(child):
    child.run('case_dummy_device_streams_live_through_backend')


def test_dummy_intrinsics_from_fov_and_notes(child):
    child.run('case_dummy_intrinsics_from_fov_and_notes')


def test_fov_query_overrides_nominal(child):
    child.run('case_fov_query_overrides_nominal')


def test_simulated_disconnect_callback_raises_device_lost_promptly(child):
    child.run('case_simulated_disconnect_callback_raises_device_lost_promptly')


def test_bad_inputs_are_typed_and_bounded(child):
    child.run('case_bad_inputs_are_typed_and_bounded')


def test_stop_is_idempotent_and_read_after_stop_is_typed(child):
    child.run('case_stop_is_idempotent_and_read_after_stop_is_typed')


def test_stop_from_another_thread_ends_a_blocked_read_with_typed_error(child):
    child.run('case_stop_from_another_thread_ends_a_blocked_read_with_typed_error')


def test_dummy_below_the_spec_streams_with_a_note_and_equal_sizes(child):
    child.run('case_dummy_below_the_spec_streams_with_a_note_and_equal_sizes')


def test_serial_uri_looks_for_a_usb_device_by_serial(child):
    child.run('case_serial_uri_looks_for_a_usb_device_by_serial')


def test_dummy_device_states_no_depth_range_and_none_is_claimed(child):
    child.run('case_dummy_device_states_no_depth_range_and_none_is_claimed')


def test_dummy_device_claims_no_exposure_lock_and_refuses_one(child):
    child.run('case_dummy_device_claims_no_exposure_lock_and_refuses_one')


def test_open_start_stop_cycles_leave_no_native_threads_behind(child):
    child.run('case_open_start_stop_cycles_leave_no_native_threads_behind')


def test_a_stream_whose_mode_is_refused_is_destroyed_with_the_others(child):
    child.run('case_a_stream_whose_mode_is_refused_is_destroyed_with_the_others')


def test_a_start_that_fails_part_way_lists_no_stream(child):
    child.run('case_a_start_that_fails_part_way_lists_no_stream')
