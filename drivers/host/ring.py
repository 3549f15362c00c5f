"""A shared-memory ring of frame slots: pixels cross from a camera host to the daemon without pickling.

The daemon creates an anonymous ``memfd`` (no name in ``/dev/shm``), maps it read-only, and hands
the descriptor to the host, which maps it read-write. One frame per slot. The host writes a frame's
pixels into a free slot and sends its description (:func:`describe`); the daemon copies the pixels
out (:meth:`FrameRing.read`), or only reads its description (:meth:`FrameRing.read_header`, a
watchdog's read between sessions), and sends the slot back as free. A slot is never written while the
daemon holds it, so a frame is never torn.

The same idea as the liveness worker's ring (``agent/liveness/wire.py``), one frame per slot instead
of one frameset, since a camera's streams arrive independently.
"""

from __future__ import annotations

import mmap
import os
from typing import Any

import numpy as np

from ..buffers import BufferPool
from ..errors import CameraHostProtocol
from ..frame import ClockDomain, Frame, FrameHeader, PixelFormat, StreamKind, check_pixels
from . import codec
from .channel import finite

_DTYPES = {"uint8": np.uint8, "uint16": np.uint16}
# Frame copies the daemon keeps per stream (shape): the frames a session's reader holds at once while
# it matches and hands on framesets (its window's framesets, which it keeps, get arrays of their own).
BUFFERS_PER_STREAM = 2


class FrameRing:
    """``slots`` slots of ``slot_bytes`` each in one shared mapping."""

    def __init__(self, slots: int, slot_bytes: int, fd: int | None = None, *, writable: bool = False):
        if not (1 <= slots <= 64 and 4096 <= slot_bytes <= 64 << 20):
            raise ValueError("ring: 1-64 slots of 4 KiB-64 MiB")
        self.slots, self.slot_bytes = slots, slot_bytes
        self.size = slots * slot_bytes
        if fd is None:
            fd = os.memfd_create("capture-agent-camera-ring", os.MFD_CLOEXEC)
            os.ftruncate(fd, self.size)
        elif os.fstat(fd).st_size != self.size:
            raise ValueError("ring descriptor has the wrong size")
        self.fd = fd
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        self.map = mmap.mmap(fd, self.size, mmap.MAP_SHARED, prot)
        # The daemon's copies of the frames: each array lent again once nobody holds its frame.
        self.buffers = BufferPool(BUFFERS_PER_STREAM)

    # -- the host's side ----------------------------------------------------------------------------
    def write(self, slot: int, frame: Frame) -> dict[str, Any]:
        """Copy ``frame``'s pixels into ``slot``; return its description for the control message."""
        px = np.ascontiguousarray(frame.pixels)
        if px.nbytes > self.slot_bytes:
            raise ValueError(f"a frame of {px.nbytes} bytes does not fit a {self.slot_bytes}-byte slot")
        dst = np.frombuffer(self.map, dtype=np.uint8, count=px.nbytes, offset=slot * self.slot_bytes)
        np.copyto(dst, px.reshape(-1).view(np.uint8))
        return describe(frame, slot, px)

    # -- the daemon's side ----------------------------------------------------------------------------
    def read(self, desc: Any) -> Frame:
        """The frame ``desc`` describes, with its pixels copied out of shared memory. Every field is
        validated; anything outside its slot or of the wrong type is ``CameraHostProtocol``."""
        slot, shape, dtype, fields = self._parse(desc)
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        # Out of shared memory at once, into an array nobody holds (``drivers/buffers.py``), and no
        # name left on the mapping: a refused frame's traceback must not keep the ring from closing.
        px = self.buffers.take(shape, dtype)
        np.copyto(px, np.frombuffer(self.map, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize,
                                    offset=slot * self.slot_bytes).reshape(shape))
        px.flags.writeable = False
        try:
            return Frame(pixels=px, **fields)
        except ValueError as exc:               # Frame's own checks: shape vs format and intrinsics
            raise CameraHostProtocol(f"inconsistent frame: {exc}") from None

    def read_header(self, desc: Any) -> FrameHeader:
        """The header of the frame ``desc`` describes, its pixels left in shared memory (a watchdog's
        read). The same validation as :meth:`read`, the same ``CameraHostProtocol`` for the same fault."""
        _, shape, dtype, fields = self._parse(desc)
        try:
            check_pixels(fields["format"], shape, dtype, fields["intrinsics"], fields["depth_scale"])
        except ValueError as exc:
            raise CameraHostProtocol(f"inconsistent frame: {exc}") from None
        return FrameHeader(fields["stream"], fields["frame_number"], fields["timestamp_ms"],
                           fields["metadata"].frame_counter, fields["index"])

    def _parse(self, desc: Any) -> tuple[int, tuple[int, ...], Any, dict[str, Any]]:
        if not isinstance(desc, dict):
            raise CameraHostProtocol("frame description must be an object")
        slot = codec.integer(desc.get("slot"), "slot", 0, self.slots - 1)
        shape_v = desc.get("shape")
        if not isinstance(shape_v, list) or not 2 <= len(shape_v) <= 3:
            raise CameraHostProtocol("frame shape must have 2 or 3 dimensions")
        shape = tuple(codec.integer(v, "shape", 1, 16384) for v in shape_v)
        dtype = _DTYPES.get(desc.get("dtype"))  # type: ignore[arg-type]
        if dtype is None:
            raise CameraHostProtocol(f"frame dtype {desc.get('dtype')!r} is not allowed")
        if int(np.prod(shape)) * np.dtype(dtype).itemsize > self.slot_bytes:
            raise CameraHostProtocol("frame bytes fall outside their ring slot")
        get = desc.get
        fields: dict[str, Any] = {
            "stream": codec.member(StreamKind, get("stream"), "stream"),
            "format": codec.member(PixelFormat, get("format"), "format"),
            "timestamp_ms": finite(get("timestamp_ms"), "timestamp_ms"),
            "clock_domain": codec.member(ClockDomain, get("clock_domain"), "clock domain"),
            "host_time_ns": codec.integer(get("host_time_ns"), "host_time_ns", 0),
            "frame_number": codec.integer(get("frame_number"), "frame_number"),
            "intrinsics": codec.intrinsics_from(get("intrinsics")),
            "index": codec.integer(get("index"), "index", 0, 8),
            "device_serial": codec.text(get("device_serial"), "device_serial", 128),
            "depth_scale": finite(get("depth_scale"), "depth_scale"),
            "metadata": codec.metadata_from(get("metadata"))}
        return slot, shape, dtype, fields

    def close(self) -> None:
        self.buffers.clear()                    # the frame copies kept to lend again go with the ring
        try:
            self.map.close()
        finally:
            os.close(self.fd)


def describe(f: Frame, slot: int, px: np.ndarray) -> dict[str, Any]:
    return {"slot": slot, "stream": f.stream.value, "format": f.format.value, "shape": list(px.shape),
            "dtype": str(px.dtype), "timestamp_ms": f.timestamp_ms, "clock_domain": f.clock_domain.value,
            "host_time_ns": f.host_time_ns, "frame_number": f.frame_number, "index": f.index,
            "device_serial": f.device_serial, "depth_scale": f.depth_scale,
            "intrinsics": codec.intrinsics_to(f.intrinsics), "metadata": codec.metadata_to(f.metadata)}
