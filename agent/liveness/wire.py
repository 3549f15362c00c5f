"""What crosses the boundary between the daemon and the liveness worker, and nothing more.

* Control messages: 4-byte big-endian length + UTF-8 JSON, at most ``MAX_MESSAGE`` bytes, over an
  AF_UNIX socketpair. JSON, not pickle: a compromised worker must not be able to make the daemon
  run code by what it sends back.
* Arrays of numbers in a message (the verdict's face grids and landmarks): packed, not JSON lists
  (:func:`pack_floats`: little-endian float64 bytes in base64, with their dtype and shape), and
  unpacked only as :func:`unpack_floats` checks them (the dtype, the shape the reader expects, the
  length, at most ``MAX_PACKED_BYTES``, every value finite). The same float64 values as the lists
  carried, so the daemon rebuilds the same numbers to the bit.
* Pixels: written by the daemon into a slot of a shared-memory ring (an anonymous ``memfd``
  handed to the worker as a file descriptor; no name in ``/dev/shm``). The control message says
  where each frame's bytes are; the worker copies them out and acknowledges the slot.
"""

from __future__ import annotations

import binascii
import ctypes
import fcntl
import hashlib
import json
import math
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


PACKED_DTYPE = "<f8"                      # the one dtype packed arrays travel in
MAX_PACKED_BYTES = 1 << 18                # one packed array's bytes (a window's grids: 32 x 48 x 8 = 12 KiB)
FACE_GRID_VALUES = 48                     # a frame's face grid in the evidence: 4 x 4 cells, R, G, B
LANDMARKS = 468                           # the face mesh's landmarks (x, y, z each) in the verdict's ``best``


def pack_floats(values: Any) -> dict[str, Any]:
    """``values`` (an array, or nested lists of numbers of one shape) as a message carries them:
    their float64 bytes, little-endian, in base64, with the dtype and shape (:func:`unpack_floats`)."""
    a = np.ascontiguousarray(values, dtype=PACKED_DTYPE)
    return {"dtype": PACKED_DTYPE, "shape": list(a.shape),
            "data": binascii.b2a_base64(a.data, newline=False).decode("ascii")}


# How near a half the scaled value must be for :func:`rounded` to ask Python: far above the error of
# one multiplication (2**-53 of the value) for any value it is given (|v| * 10**ndigits < 2**40).
_TIE_MARGIN = 1e-4


def rounded(values: Any, ndigits: int) -> np.ndarray:
    """``round(float(v), ndigits)`` of every value, to the bit, as a float64 array, without a Python
    call per value (a face mesh's 1,404 took 0.5 ms so). ``v * 10**ndigits`` is rounded to an
    integer ``n`` and ``n / 10**ndigits`` is the double nearest that decimal, as Python's own is;
    where the scaled value lies within ``_TIE_MARGIN`` of a half (the product's rounding might have
    carried it across) or is too large for that, Python rounds the value itself."""
    a = np.asarray(values, dtype=np.float64)
    scale = 10.0 ** ndigits
    s = a * scale
    n = np.rint(s)
    out = n / scale
    doubtful = ~(np.abs(np.abs(s - n) - 0.5) > _TIE_MARGIN) | ~(np.abs(s) < 2.0 ** 40)
    if doubtful.any():
        flat, src = out.reshape(-1), a.reshape(-1)
        for i in np.flatnonzero(doubtful.reshape(-1)):
            flat[i] = round(float(src[i]), ndigits)
    return out


def unpack_floats(obj: Any, shape: tuple[int | None, ...], max_bytes: int = MAX_PACKED_BYTES) -> np.ndarray:
    """A packed array (:func:`pack_floats`), checked: exactly its three fields, the dtype
    ``PACKED_DTYPE``, a shape of ``len(shape)`` sizes each equal to ``shape``'s where that is not
    None, at most ``max_bytes`` (refused before anything is decoded), base64 that decodes to exactly
    that many bytes, and every value finite. Anything else is a :class:`WireError`. The array is
    read-only (a view of the decoded bytes)."""
    if not isinstance(obj, dict) or obj.keys() != {"dtype", "shape", "data"}:
        raise WireError("a packed array is an object of dtype, shape and data")
    if obj["dtype"] != PACKED_DTYPE:
        raise WireError(f"a packed array's dtype must be {PACKED_DTYPE}")
    dims = obj["shape"]
    if not (isinstance(dims, list) and len(dims) == len(shape)
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= max_bytes for d in dims)
            and all(want is None or d == want for d, want in zip(dims, shape, strict=True))):
        raise WireError(f"a packed array's shape must be {list(shape)} (None: any size)")
    nbytes = math.prod(dims) * np.dtype(PACKED_DTYPE).itemsize
    if nbytes > max_bytes:
        raise WireError(f"a packed array of {nbytes} bytes exceeds {max_bytes}")
    data = obj["data"]
    if not isinstance(data, str) or len(data) != 4 * ((nbytes + 2) // 3):
        raise WireError("a packed array's data is not as long as its shape says")
    try:
        raw = binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise WireError(f"a packed array's data is not base64: {exc}") from None
    if len(raw) != nbytes:
        raise WireError("a packed array's data is not as long as its shape says")
    a = np.frombuffer(raw, dtype=PACKED_DTYPE).reshape(dims)
    if not np.isfinite(a).all():
        raise WireError("a packed array holds a value that is not finite")
    return a


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

    def write_bytes(self, slot: int, raw: bytes) -> None:
        """Copy ``raw`` to the start of ``slot`` (the daemon's, before the worker starts: the
        camera's dot reference, ``--dot-reference``); wiped like a frameset's pixels."""
        if len(raw) > self.slot_bytes:
            raise WireError(f"{len(raw)} bytes do not fit a ring slot of {self.slot_bytes}")
        base = slot * self.slot_bytes
        self.map[base:base + len(raw)] = raw
        self._dirty[slot] = max(self._dirty[slot], len(raw))

    def read_bytes(self, slot: int, n: int) -> bytes:
        """A copy of the first ``n`` bytes of ``slot`` (the worker's side of :meth:`write_bytes`)."""
        if not 0 <= slot < self.slots or not 0 <= n <= self.slot_bytes:
            raise WireError("bytes fall outside their ring slot")
        base = slot * self.slot_bytes
        return bytes(self.map[base:base + n])

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
