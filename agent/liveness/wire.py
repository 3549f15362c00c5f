"""What crosses the boundary between the daemon and the liveness worker, and nothing more.

* Control messages: 4-byte big-endian length + UTF-8 JSON, at most ``MAX_MESSAGE`` bytes, over an
  AF_UNIX socketpair. JSON, not pickle: a compromised worker must not be able to make the daemon
  run code by what it sends back.
* Pixels: written by the daemon into a slot of a shared-memory ring (an anonymous ``memfd``
  handed to the worker as a file descriptor; no name in ``/dev/shm``). The control message says
  where each frame's bytes are; the worker copies them out and acknowledges the slot.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import mmap
import os
import socket
import struct
from typing import Any

import numpy as np

from drivers.buffers import BufferPool
from drivers.errors import CaptureAgentError
from drivers.frame import (
    ClockDomain,
    DistortionModel,
    Extrinsics,
    Frame,
    FrameMetadata,
    FrameSet,
    Intrinsics,
    PixelFormat,
    StreamKind,
    distortion_coeffs,
)

MAX_MESSAGE = 1 << 20
BUFFERS_PER_STREAM = 2                    # frame copies the worker keeps per stream (shape)
_DTYPES = {"uint8": np.uint8, "uint16": np.uint16}


class WireError(CaptureAgentError):
    """A malformed message or frame description crossed the worker boundary."""

    code = "LIV_WIRE_INVALID"


def frameset_digest(fs: FrameSet) -> str:
    """SHA-256 over the exact pixels sent (color, depth, IR, in that order): what the worker's
    verdict is bound to. The one definition: the judge (worker side) imports it from here, and the
    daemon computes it without importing the judge, and with it OpenCV and the face models."""
    h = hashlib.sha256()
    for kind in (StreamKind.COLOR, StreamKind.DEPTH, StreamKind.IR):
        f = fs.get(kind)
        if f is not None:
            h.update(kind.value.encode())
            h.update(np.ascontiguousarray(f.pixels).data)       # the array's own bytes, no copy
    return h.hexdigest()


def send(sock: socket.socket, msg: dict[str, Any]) -> None:
    data = json.dumps(msg, separators=(",", ":"), allow_nan=False).encode()
    if len(data) > MAX_MESSAGE:
        raise WireError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed the channel")
        buf += chunk
    return bytes(buf)


def recv(sock: socket.socket) -> dict[str, Any]:
    (n,) = struct.unpack(">I", _recv_exact(sock, 4))
    if n > MAX_MESSAGE:
        raise WireError(f"message length {n} exceeds {MAX_MESSAGE}")
    try:
        msg = json.loads(_recv_exact(sock, n))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"message is not JSON: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
        raise WireError("message must be an object with an 'op'")
    return msg


F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_FUTURE_WRITE = 0x1, 0x2, 0x4, 0x10
RING_SEALS = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL


class Ring:
    """``slots`` fixed-size slots in one anonymous shared mapping.

    The daemon creates it (``writable=True``): a ``memfd`` mapped once for writing, then sealed
    (no shrinking or growing, and ``F_SEAL_FUTURE_WRITE``: no new writable mapping and no
    ``write()``; the daemon's own mapping keeps working), so the worker it is handed to can only
    map it read-only. Both sides mark the mapping ``MADV_DONTDUMP`` (no face pixels in a core),
    and the daemon zeroes every byte it wrote with :meth:`wipe` after each session."""

    def __init__(self, slots: int, slot_bytes: int, fd: int | None = None, *, writable: bool = True):
        self.slots, self.slot_bytes = slots, slot_bytes
        self.size = slots * slot_bytes
        self.writable = writable
        if fd is None:
            if not writable:
                raise ValueError("a new ring is the daemon's and writable")
            fd = os.memfd_create("capture-agent-liveness-ring", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(fd, self.size)
            self.map = mmap.mmap(fd, self.size)
            fcntl.fcntl(fd, F_ADD_SEALS, RING_SEALS)
        else:
            if os.fstat(fd).st_size != self.size:
                raise WireError("ring descriptor has the wrong size")
            if not writable and fcntl.fcntl(fd, F_GET_SEALS) & RING_SEALS != RING_SEALS:
                raise WireError("ring descriptor is not sealed against writes and resizing")
            self.map = mmap.mmap(fd, self.size, prot=mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0))
        self.fd = fd
        self.map.madvise(mmap.MADV_DONTDUMP)
        self._dirty = [0] * slots                 # bytes written into each slot since the last wipe
        # The worker's copies of the frames (``drivers/buffers.py``): an array is lent again once
        # nobody holds its frame (the quality loop drops each frameset once assessed; a judge keeps
        # its window's, which then get arrays of their own).
        self.buffers = BufferPool(BUFFERS_PER_STREAM)

    def wipe(self) -> None:
        """Zero every byte written since the last wipe (in place: no temporary buffer of zeros)."""
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        for slot, n in enumerate(self._dirty):
            if n:
                ctypes.memset(base + slot * self.slot_bytes, 0, n)
                self._dirty[slot] = 0

    def write(self, slot: int, fs: FrameSet) -> dict[str, Any]:
        """Copy a frameset's pixels into ``slot``; return its JSON description."""
        base = slot * self.slot_bytes
        off = 0
        frames = []
        for f in fs.frames.values():
            px = np.ascontiguousarray(f.pixels)
            if off + px.nbytes > self.slot_bytes:
                raise WireError(f"frameset of more than {self.slot_bytes} bytes does not fit a ring slot")
            dst = np.frombuffer(self.map, dtype=np.uint8, count=px.nbytes, offset=base + off)
            np.copyto(dst, px.reshape(-1).view(np.uint8))            # one copy, straight into the slot
            frames.append(describe_frame(f, off, px))
            off += px.nbytes
            self._dirty[slot] = max(self._dirty[slot], off)
        ext = [[a.value, b.value, list(e.rotation), list(e.translation)] for (a, b), e in fs.extrinsics.items()]
        return {"slot": slot, "frames": frames, "extrinsics": ext, "skew_ms": float(fs.skew_ms)}

    def read(self, desc: dict[str, Any]) -> FrameSet:
        """Rebuild a FrameSet from ``desc`` (validated: every offset and shape stays in its slot)."""
        try:
            slot = int(desc["slot"])
            if not 0 <= slot < self.slots:
                raise WireError(f"slot {slot} out of range")
            base = slot * self.slot_bytes
            frames = {}
            for d in desc["frames"]:
                shape = tuple(int(v) for v in d["shape"])
                dtype = _DTYPES[d["dtype"]]
                nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
                off = int(d["offset"])
                if off < 0 or off + nbytes > self.slot_bytes or not 2 <= len(shape) <= 3:
                    raise WireError("frame bytes fall outside their ring slot")
                px = np.frombuffer(self.map, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize,
                                   offset=base + off).reshape(shape)
                own = self.buffers.take(shape, dtype)
                np.copyto(own, px)                 # out of shared memory at once
                own.flags.writeable = False
                f = build_frame(d, own)
                frames[f.stream] = f
            ext = {(StreamKind(a), StreamKind(b)): Extrinsics(tuple(r), tuple(t)) for a, b, r, t in desc["extrinsics"]}
            return FrameSet(frames, ext, skew_ms=float(desc["skew_ms"]))
        except WireError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"bad frameset description: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self.buffers.clear()                      # the frame copies kept to lend again go with the ring
        try:
            if self.writable:
                self.wipe()
            self.map.close()
        finally:
            os.close(self.fd)


def describe_frame(f: Frame, offset: int, px: np.ndarray) -> dict[str, Any]:
    i = f.intrinsics
    m = f.metadata
    return {"stream": f.stream.value, "format": f.format.value, "shape": list(px.shape), "dtype": str(px.dtype),
            "offset": offset, "timestamp_ms": f.timestamp_ms, "clock_domain": f.clock_domain.value,
            "host_time_ns": f.host_time_ns, "frame_number": f.frame_number, "index": f.index,
            "device_serial": f.device_serial, "depth_scale": f.depth_scale,
            "intrinsics": [i.width, i.height, i.fx, i.fy, i.ppx, i.ppy, i.model.value, list(i.coeffs)],
            "metadata": {"exposure_us": m.exposure_us, "gain": m.gain, "projector_on": m.projector_on,
                         "projector_power_mw": m.projector_power_mw, "frame_counter": m.frame_counter,
                         "sensor_timestamp_us": m.sensor_timestamp_us, "white_balance_k": m.white_balance_k,
                         "depth_min_m": m.depth_min_m, "depth_max_m": m.depth_max_m}}


def build_frame(d: dict[str, Any], px: np.ndarray) -> Frame:
    w, h, fx, fy, ppx, ppy, model, coeffs = d["intrinsics"]
    intr = Intrinsics(int(w), int(h), float(fx), float(fy), float(ppx), float(ppy), DistortionModel(model),
                      distortion_coeffs(coeffs))
    md = d.get("metadata") or {}
    allowed = {"exposure_us", "gain", "projector_on", "projector_power_mw", "frame_counter", "sensor_timestamp_us",
               "white_balance_k", "depth_min_m", "depth_max_m"}
    meta = FrameMetadata(**{k: v for k, v in md.items() if k in allowed})
    return Frame(stream=StreamKind(d["stream"]), pixels=px, format=PixelFormat(d["format"]),
                 timestamp_ms=float(d["timestamp_ms"]), clock_domain=ClockDomain(d["clock_domain"]),
                 host_time_ns=int(d["host_time_ns"]), frame_number=int(d["frame_number"]), intrinsics=intr,
                 index=int(d["index"]), device_serial=str(d["device_serial"]), depth_scale=float(d["depth_scale"]),
                 metadata=meta)
