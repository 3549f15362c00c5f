"""Serializing a probe's face data without leaving copies that Python cannot wipe.

``bytes`` objects are immutable: ``ndarray.tobytes()``, assigning a ``bytes`` field of a protobuf
message (upb copies it into its arena), ``SerializeToString()`` and ``bytes(bytearray)`` each leave a
copy of the face that lives until its memory happens to be reused. So the payload is built in one
``bytearray`` that the sealer zeroes in place when it is done:

* the face pixels (colour, depth and IR crops) and the landmarks are copied once, straight from
  the frames into the buffer (numpy views onto it; no intermediate array or ``bytes``), and hashed
  there (``hashlib`` reads the buffer);
* everything else (sizes, formats, reports, device, timings) is serialized by protobuf and spliced
  in. Protobuf parsers take the fields of a message in any order, so each ``Crop`` is its ``pixels``
  field written by hand (tag, length, bytes) followed by the rest of the message.

Measured by ``tests/uplink/test_plaintext_copies.py`` in a child process's memory.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from proto.capture_agent.v1 import ingest_pb2 as pb

LEN = 2                              # protobuf wire type: length-delimited
CROP_PIXELS = 4                      # Crop.pixels
PAYLOAD_LANDMARKS = 4                # ProbePayload.landmarks (packed floats)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field: int) -> bytes:
    return varint((field << 3) | LEN)


@dataclass(frozen=True)
class CropSource:
    """One crop of the payload: ``field`` of ProbePayload, cut from ``image`` at ``box``."""

    field: int
    image: np.ndarray
    box: tuple[int, int, int, int]       # x0, y0, x1, y1
    format: str
    depth_scale: float = 0.0


Digest = Callable[[memoryview], bytes]


def _sha256(data: memoryview) -> bytes:
    return hashlib.sha256(data).digest()


def _crop_meta(c: CropSource, digest: bytes, field: str) -> bytes:
    x0, y0, x1, y1 = c.box
    crop = pb.Crop(width=x1 - x0, height=y1 - y0, format=c.format, x=x0, y=y0, depth_scale=c.depth_scale)
    setattr(crop, field, digest)
    return crop.SerializeToString()


def serialize(meta: pb.ProbePayload, crops: list[CropSource], landmarks: np.ndarray, *,
              digest: Digest = _sha256, digest_field: str = "sha256") -> bytearray:
    """``meta`` (a ProbePayload without crops and landmarks) plus ``crops`` and ``landmarks``, as one
    serialized ProbePayload in a bytearray. Each crop carries ``digest`` of its pixels in the
    ``Crop`` field ``digest_field`` (SHA-256, or SM3 under the GM suite). Wipe it with :func:`wipe`
    when done."""
    lm = np.ascontiguousarray(landmarks, dtype="<f4").reshape(-1)
    tail = meta.SerializeToString()
    parts = []
    size = 0
    for c in crops:
        x0, y0, x1, y1 = c.box
        region = c.image[y0:y1, x0:x1]
        npx = region.size * region.itemsize
        inner = len(tag(CROP_PIXELS)) + len(varint(npx)) + npx + len(_crop_meta(c, bytes(32), digest_field))
        parts.append((c, region, npx, inner))
        size += len(tag(c.field)) + len(varint(inner)) + inner
    size += len(tag(PAYLOAD_LANDMARKS)) + len(varint(lm.nbytes)) + lm.nbytes + len(tail)
    buf = bytearray(size)
    view = memoryview(buf)
    off = 0

    def put(data: bytes) -> None:
        nonlocal off
        view[off:off + len(data)] = data
        off += len(data)

    try:
        for c, region, npx, inner in parts:
            put(tag(c.field) + varint(inner) + tag(CROP_PIXELS) + varint(npx))
            dst = np.frombuffer(buf, dtype=region.dtype.newbyteorder("<"), count=region.size,
                                offset=off).reshape(region.shape)
            np.copyto(dst, region)                     # frame -> buffer, the one copy
            del dst
            d = digest(view[off:off + npx])
            off += npx
            put(_crop_meta(c, d, digest_field))
        put(tag(PAYLOAD_LANDMARKS) + varint(lm.nbytes))
        dst = np.frombuffer(buf, dtype="<f4", count=lm.size, offset=off)
        np.copyto(dst, lm)
        del dst
        off += lm.nbytes
        put(tail)
        assert off == size
    finally:
        view.release()
    return buf


def wipe(buf: bytearray) -> None:
    """Zero ``buf`` in place (no temporary buffer of zeros the size of the face data)."""
    if len(buf):
        ctypes.memset(ctypes.addressof(ctypes.c_char.from_buffer(buf)), 0, len(buf))
