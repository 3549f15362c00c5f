"""The capture spec's checks that need no face: the result of one check (``CheckResult``), and the
streams a camera offers against §7.5 h / §7.5 g / §7.4 (``check_stream_spec``). Apart from the
gate (``gate.py``), so that a process that runs no face model (the daemon) can check a camera's
streams without loading OpenCV or the face models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.errors import SpecViolation
from agent.quality.settings import QualityThresholds
from drivers.frame import StreamKind, StreamProfile


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    value: float | None
    limit: str
    clause: str
    prompt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        v = None if self.value is None or not np.isfinite(self.value) else round(float(self.value), 4)
        return {"name": self.name, "ok": self.ok, "value": v, "limit": self.limit, "clause": self.clause,
                "prompt": self.prompt}


def check_stream_spec(profiles: list[StreamProfile], t: QualityThresholds,
                      measured_fps: dict[str, float] | None = None) -> list[CheckResult]:
    """§7.5 h / §7.5 g / §7.4 checks on the configured streams (and measured rates, when known)."""
    by_kind = {p.kind: p for p in profiles}
    out = []
    for kind in (StreamKind.COLOR, StreamKind.DEPTH, StreamKind.IR):
        out.append(CheckResult(f"{kind.value}_present", kind in by_kind, None, "present", "7.5 g"))
    d = by_kind.get(StreamKind.DEPTH)
    if d is not None:
        out.append(CheckResult("depth_resolution", d.width >= t.depth_min_width and d.height >= t.depth_min_height,
                               d.width * d.height, f">= {t.depth_min_width}x{t.depth_min_height}", "7.5 h"))
        fps = (measured_fps or {}).get("depth", d.fps)
        out.append(CheckResult("depth_fps", fps >= t.depth_min_fps, fps, f">= {t.depth_min_fps:g}", "7.5 h"))
    c = by_kind.get(StreamKind.COLOR)
    if c is not None:
        out.append(CheckResult("color_resolution", c.width >= t.color_min_width and c.height >= t.color_min_height,
                               c.width * c.height, f">= {t.color_min_width}x{t.color_min_height}", "7.4"))
    return out


def require_stream_spec(profiles: list[StreamProfile], t: QualityThresholds) -> None:
    bad = [c for c in check_stream_spec(profiles, t) if not c.ok]
    if bad:
        raise SpecViolation("camera does not meet the capture spec: " +
                            "; ".join(f"{c.name} (§{c.clause}, needs {c.limit})" for c in bad))
