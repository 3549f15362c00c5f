"""The dot reference file (``agent.liveness.dotref``): its format and the strict checks on reading
it, without OpenCV, so the daemon (which never loads OpenCV: tests/session/test_daemon_no_opencv.py)
checks a configured reference before it hands the bytes to the liveness worker, and the worker
parses the same bytes the same way.

The file is a NumPy ``.npz`` (no pickles) with exactly the keys of :data:`FILE_KEYS`; its SHA-256
is the reference's digest. :func:`check_for_camera` is the one test that a reference belongs to a
camera's IR mode (``doctor``'s row and the daemon's start)."""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.bounded import read_at_most
from drivers.errors import CaptureAgentError

FORMAT = "capture-agent.dot-reference.v1"
FILE_KEYS = frozenset({"format", "pattern", "covered", "parallax_px_m", "origin_u", "fx"})
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_SIDE = 2048
# Projector columns kept left of the imager's first column: a dot at column u_p < 0 lands in view
# once f·b/z >= -u_p (a near surface). Enough for f·b up to MAX_PARALLAX at 0.3 m.
MARGIN_PX = 256
# f·b in px·m: 0 (projector at the imager) .. 0.12 m x 700 px.
MAX_PARALLAX = 84.0
# The largest array a valid file holds (the float32 pattern at MAX_SIDE + MARGIN_PX a side): a member that
# declares more, in its zip entry or its .npy header, is refused before anything is inflated or allocated
# (a 1 KB header can claim terabytes; a 16 MB deflated member can inflate to gigabytes).
MAX_ARRAY_BYTES = (MAX_SIDE + MARGIN_PX) ** 2 * 4
MAX_MEMBER_BYTES = MAX_ARRAY_BYTES + 4096


class ReferenceInvalid(CaptureAgentError):
    code = "LIV_DOT_REFERENCE_INVALID"


class ReferenceMismatch(CaptureAgentError):
    """A valid reference recorded for another IR mode (size or focal length) than the camera's."""
    code = "LIV_DOT_REFERENCE_MISMATCH"


@dataclass(frozen=True)
class ReferenceFile:
    """A dot reference as its file holds it (``dotref.DotReference`` adds what is done with it)."""

    pattern: np.ndarray          # (H, W) float32, 0 where not covered
    covered: np.ndarray          # (H, W) bool
    parallax_px_m: float
    origin_u: int
    fx: float
    digest: str = ""

    def fits(self, width: int, height: int, fx: float) -> bool:
        """Whether frames of this size and focal length are the ones it was recorded for."""
        return (self.pattern.shape[0] == height and self.pattern.shape[1] == width - self.origin_u
                and abs(fx - self.fx) <= 0.5)

    def mode(self) -> str:
        """The IR mode it was recorded in, as a person reads it."""
        return f"{self.pattern.shape[1] + self.origin_u}x{self.pattern.shape[0]}, fx {self.fx:.1f}"

    @classmethod
    def read_bytes(cls, path: str | Path) -> bytes:
        """The file's bytes, at most ``MAX_FILE_BYTES`` read (``ReferenceInvalid`` if more or unreadable)."""
        return read_at_most(Path(path), MAX_FILE_BYTES, ReferenceInvalid, "dot reference")

    @classmethod
    def load(cls, path: str | Path):
        return cls.parse(cls.read_bytes(path), str(path))

    @classmethod
    def parse(cls, raw: bytes, name: str = "dot reference"):
        if len(raw) > MAX_FILE_BYTES:
            raise ReferenceInvalid(f"{name} is larger than {MAX_FILE_BYTES} bytes")
        try:
            _check_members(raw, name)
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                if set(z.files) != FILE_KEYS:
                    raise ReferenceInvalid(f"{name} must hold exactly {', '.join(sorted(FILE_KEYS))}")
                arrays = {k: z[k] for k in FILE_KEYS}
        except ReferenceInvalid:
            raise
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError, MemoryError) as exc:
            raise ReferenceInvalid(f"{name} is not a dot reference file: {exc}") from None
        fmt = arrays["format"]
        if fmt.shape != () or fmt.dtype.kind != "U" or str(fmt) != FORMAT:
            raise ReferenceInvalid(f"{name}: format must be {FORMAT!r}")
        pattern, covered = arrays["pattern"], arrays["covered"]
        if pattern.dtype != np.float32 or pattern.ndim != 2 or not (
                8 <= min(pattern.shape) and max(pattern.shape) <= MAX_SIDE + MARGIN_PX):
            raise ReferenceInvalid(f"{name}: pattern must be a 2-D float32 image of at most {MAX_SIDE} px a side")
        if covered.dtype != np.bool_ or covered.shape != pattern.shape:
            raise ReferenceInvalid(f"{name}: covered must be a boolean image of the pattern's shape")
        if not np.isfinite(pattern).all() or float(pattern.min()) < 0.0 or float(pattern.max()) > 100.0:
            raise ReferenceInvalid(f"{name}: pattern values must be finite, 0..100")
        if covered.mean() < 0.2:
            raise ReferenceInvalid(f"{name}: covers {covered.mean():.0%} of the projector's field, too little")
        scalars = {}
        for key, lo, hi in (("parallax_px_m", 0.0, MAX_PARALLAX), ("fx", 50.0, 5000.0), ("origin_u", -MARGIN_PX, 0)):
            v = arrays[key]
            if v.shape != () or v.dtype.kind not in "fi" or not math.isfinite(float(v)) or not lo <= float(v) <= hi:
                raise ReferenceInvalid(f"{name}: {key} must be one number in {lo}..{hi}")
            scalars[key] = float(v)
        if scalars["origin_u"] != int(scalars["origin_u"]):
            raise ReferenceInvalid(f"{name}: origin_u must be whole")
        return cls(pattern, covered, scalars["parallax_px_m"], int(scalars["origin_u"]), scalars["fx"],
                   hashlib.sha256(raw).hexdigest())


def ir_mode(profiles) -> tuple[int, int, float] | None:
    """The IR stream's ``(width, height, fx)`` among a camera's stream profiles, None without one."""
    from drivers.frame import StreamKind
    ir = next((p.intrinsics for p in profiles if p.kind == StreamKind.IR and p.intrinsics is not None), None)
    return None if ir is None else (ir.width, ir.height, ir.fx)


def check_for_camera(ref: ReferenceFile, ir_mode: tuple[int, int, float] | None, name: str) -> None:
    """``ReferenceMismatch`` unless ``ref`` was recorded in the camera's IR mode ``(width, height,
    fx)``; a camera with no IR intrinsics cannot use any reference."""
    if ir_mode is None or not ref.fits(*ir_mode):
        raise ReferenceMismatch(f"{name} was recorded for another IR mode than this camera's ({ref.mode()})")


def _check_members(raw: bytes, name: str) -> None:
    """Refuse an archive member whose declared size, or whose .npy header's shape and dtype, exceed the largest
    array a valid file holds (``MAX_ARRAY_BYTES``), before numpy inflates or allocates it."""
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        for info in zf.infolist():
            if info.file_size > MAX_MEMBER_BYTES:
                raise ReferenceInvalid(f"{name}: member {info.filename!r} declares {info.file_size} bytes, more "
                                       f"than a dot reference holds")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(f)
            if math.prod(shape) * dtype.itemsize > MAX_ARRAY_BYTES:
                raise ReferenceInvalid(f"{name}: member {info.filename!r} declares a {shape} array, larger than a "
                                       f"dot reference holds")
