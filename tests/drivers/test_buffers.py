"""Frame buffers are lent again only when nobody holds them."""

import gc
import threading

import numpy as np
import pytest

from drivers.buffers import BufferPool


def test_an_array_is_lent_again_only_once_its_holder_lets_go():
    pool = BufferPool(per_shape=2)
    a = pool.take((4, 5), np.uint16)
    a_id = id(a)
    b = pool.take((4, 5), np.uint16)
    assert a is not b                                   # a is held: b is another array
    del a
    gc.collect()
    c = pool.take((4, 5), np.uint16)
    assert id(c) == a_id and c.flags.writeable          # a's array, free again, writable for the copy
    assert (pool.made, pool.reused) == (2, 1)


@pytest.mark.parametrize("hold", [
    lambda a: a[1:, 2:],                                # a view
    lambda a: {"frame": a},                             # a container
    lambda a: memoryview(a),                            # an exported buffer
    lambda a: np.frombuffer(a, np.uint8),               # an array over its bytes
])
def test_anything_that_refers_to_an_array_keeps_it(hold):
    pool = BufferPool(per_shape=1)
    a = pool.take((8, 8), np.uint8)
    a[:] = 7
    a.flags.writeable = False
    held = hold(a)
    del a
    b = pool.take((8, 8), np.uint8)
    b[:] = 9
    assert held is not None
    assert pool.reused == 0 and pool.made == 2          # the held array was not written


def test_beyond_per_shape_arrays_are_new_and_not_kept():
    pool = BufferPool(per_shape=1)
    kept = [pool.take((16,), np.uint8) for _ in range(3)]
    assert len({id(a) for a in kept}) == 3
    assert pool.kept() == 16
    del kept
    pool.take((16,), np.uint8)
    assert pool.reused == 1
    pool.clear()
    assert pool.kept() == 0


def test_shapes_and_dtypes_are_pooled_apart():
    pool = BufferPool()
    a = pool.take((4, 4), np.uint8)
    del a
    assert pool.take((4, 4), np.uint16).dtype == np.uint16
    assert pool.take((2, 8), np.uint8).shape == (2, 8)
    assert pool.take((4, 4), np.uint8).shape == (4, 4)
    assert pool.reused == 1


def test_an_array_another_thread_holds_is_not_lent():
    pool = BufferPool(per_shape=1)
    a = pool.take((32,), np.uint8)
    got, release = threading.Event(), threading.Event()

    def hold(x):
        got.set()
        release.wait(60)                        # set at the end: a generous bound, never the timing
    t = threading.Thread(target=hold, args=(a,))
    t.start()
    assert got.wait(30)
    a_id = id(a)
    del a
    assert id(pool.take((32,), np.uint8)) != a_id
    release.set()
    t.join()
