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
        release.wait(5)
    t = threading.Thread(target=hold, args=(a,))
    t.start()
    got.wait(5)
    a_id = id(a)
    del a
    assert id(pool.take((32,), np.uint8)) != a_id
    release.set()
    t.join()


def test_a_reservation_lends_each_of_its_arrays_once_from_one_block_per_shape():
    pool = BufferPool(per_shape=0)
    pool.reserve(3)
    got = [pool.take((4, 6), np.uint16) for _ in range(3)]
    assert pool.blocks == 1 and pool.made == 0
    assert len({a.__array_interface__["data"][0] for a in got}) == 3
    for k, a in enumerate(got):
        a[:] = k
    crop = got[0][1:3, 2:4]                              # only a slice of the first is still held
    del got[0]
    more = pool.take((4, 6), np.uint16)                  # the reservation is spent: a new array,
    assert pool.made == 1                                # never the first one again
    more[:] = 99
    assert (crop == 0).all() and (got[0] == 1).all() and (got[1] == 2).all()
    pool.take((2, 2), np.uint8)                          # another shape: its own block
    assert pool.blocks == 2


def test_an_ended_reservation_lends_nothing_more():
    pool = BufferPool(per_shape=0)
    pool.reserve(4)
    pool.take((8,), np.uint8)
    pool.end_reservation()
    pool.take((8,), np.uint8)
    assert (pool.blocks, pool.made) == (1, 1)


def test_pooled_arrays_that_are_free_come_before_reserved_ones():
    pool = BufferPool(per_shape=1)
    a = pool.take((8,), np.uint8)
    a_id = id(a)
    del a
    pool.reserve(2)
    assert id(pool.take((8,), np.uint8)) == a_id and pool.blocks == 0


def test_a_frame_keeps_a_reserved_array_but_copies_any_other_view():
    from drivers.frame import ClockDomain, Frame, Intrinsics, PixelFormat, StreamKind

    def frame(px):
        return Frame(StreamKind.IR, px, PixelFormat.Y8, 0.0, ClockDomain.HARDWARE, 0, 1, Intrinsics(8, 4, 5, 5, 4, 2))

    pool = BufferPool(per_shape=0)
    pool.reserve(2)
    lent = pool.take((4, 8), np.uint8)
    lent[:] = 3
    lent.flags.writeable = False
    assert frame(lent).pixels is lent                    # lent once: the frame's own
    block = lent.base
    other = block[64:96].reshape(4, 8)                   # the same block, not lent: copied
    other.flags.writeable = False
    assert frame(other).pixels is not other
