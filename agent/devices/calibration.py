"""The calibration of a rig of several cameras: where each camera's streams sit relative to the others.

One device knows its own extrinsics (RealSense, Orbbec, the sim report them). A rig composed of
separate devices (an Orbbec depth camera and a UVC colour camera, say) does not: the transform
between them is measured once when the terminal is assembled (a checkerboard seen by both) and
kept in a JSON file that ``[camera] calibration`` names::

    {"extrinsics": [{"from": "depth", "to": "color",
                     "rotation": [r00, r01, r02, r10, r11, r12, r20, r21, r22],
                     "translation": [tx, ty, tz]}]}

Rotation row-major, translation in metres, ``p_to = R @ p_from + t`` (as ``drivers.Extrinsics``).
The file is checked strictly: a rotation that is not a rotation, a translation longer than a
terminal is wide, or a pair given twice is ``DEV_CALIBRATION_INVALID``. Its SHA-256 is the rig's
calibration digest (the server pins it per terminal with the cameras' serials).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivers import Extrinsics, StreamKind
from drivers.errors import CaptureAgentError

MAX_BASELINE_M = 0.5                 # two cameras of one kiosk are never further apart than this
MAX_FILE_BYTES = 64 * 1024


class CalibrationInvalid(CaptureAgentError):
    code = "DEV_CALIBRATION_INVALID"


@dataclass(frozen=True)
class RigCalibration:
    extrinsics: dict[tuple[StreamKind, StreamKind], Extrinsics] = field(default_factory=dict)
    digest: str = ""                  # SHA-256 of the file, "" when there is none

    def between(self, src: StreamKind, dst: StreamKind) -> Extrinsics | None:
        if (src, dst) in self.extrinsics:
            return self.extrinsics[(src, dst)]
        if (dst, src) in self.extrinsics:
            return self.extrinsics[(dst, src)].inverse()
        return None

    @classmethod
    def load(cls, path: str | Path) -> RigCalibration:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise CalibrationInvalid(f"cannot read rig calibration {p}: {exc.strerror}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise CalibrationInvalid(f"rig calibration {p} is larger than {MAX_FILE_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise CalibrationInvalid(f"rig calibration {p} is not JSON: {exc}") from None
        return cls.parse(data, hashlib.sha256(raw).hexdigest())

    @classmethod
    def parse(cls, data: Any, digest: str = "") -> RigCalibration:
        if not isinstance(data, dict) or set(data) != {"extrinsics"} or not isinstance(data["extrinsics"], list):
            raise CalibrationInvalid('rig calibration must be {"extrinsics": [...]} and nothing else')
        out: dict[tuple[StreamKind, StreamKind], Extrinsics] = {}
        for i, item in enumerate(data["extrinsics"]):
            where = f"extrinsics[{i}]"
            if not isinstance(item, dict) or set(item) != {"from", "to", "rotation", "translation"}:
                raise CalibrationInvalid(f"{where} needs exactly from, to, rotation, translation")
            try:
                a, b = StreamKind(item["from"]), StreamKind(item["to"])
            except ValueError:
                raise CalibrationInvalid(f"{where}: from/to must be depth, ir or color") from None
            if a == b or (a, b) in out or (b, a) in out:
                raise CalibrationInvalid(f"{where}: {a.value}->{b.value} is not a new pair of different streams")
            out[(a, b)] = _extrinsics(item["rotation"], item["translation"], where)
        return cls(out, digest)


def _extrinsics(rotation: Any, translation: Any, where: str) -> Extrinsics:
    def numbers(v: Any, n: int, what: str) -> list[float]:
        if not isinstance(v, list) or len(v) != n or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
            raise CalibrationInvalid(f"{where}: {what} must be {n} finite numbers")
        return [float(x) for x in v]
    r = np.array(numbers(rotation, 9, "rotation")).reshape(3, 3)
    t = np.array(numbers(translation, 3, "translation"))
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-3) or not abs(np.linalg.det(r) - 1.0) < 1e-3:
        raise CalibrationInvalid(f"{where}: rotation is not a rotation matrix (orthonormal, determinant 1)")
    if float(np.linalg.norm(t)) > MAX_BASELINE_M:
        raise CalibrationInvalid(f"{where}: translation of {np.linalg.norm(t):.3f} m is longer than a kiosk "
                                 f"({MAX_BASELINE_M} m): metres expected")
    return Extrinsics.from_arrays(r, t)
