"""``capture-agent sim-preview OUT.png``: a montage of what the simulator renders.

One row per scene (a live subject, then each presentation-attack species), three columns:
color | depth (colormap, black = no depth) | IR (with the projector's dots).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

import drivers
from agent.errors import UsageError
from drivers.frame import Frame, StreamKind
from drivers.sim import ATTACKS


def register(sub) -> None:
    p = sub.add_parser("sim-preview", help="write a color|depth|IR montage of the sim's live subject and attacks")
    p.add_argument("out", help="output PNG path")
    p.add_argument("--query", default="", help="extra sim:// query applied to every row, e.g. lux=50&yaw=10")
    p.add_argument("--scale", type=float, default=0.5, help="scale of each tile (default 0.5)")
    p.set_defaults(func=run)


def depth_colormap(depth_u16: np.ndarray, near_mm: float = 300, far_mm: float = 1700) -> np.ndarray:
    z = np.clip((depth_u16.astype(np.float32) - near_mm) / (far_mm - near_mm), 0, 1)
    img = cv2.applyColorMap((255 * (1 - z)).astype(np.uint8), cv2.COLORMAP_TURBO)
    img[depth_u16 == 0] = 0
    return img


def render_row(subject: str, query: str) -> np.ndarray:
    uri = f"sim://?realtime=0&subject={subject}" + (f"&{query}" if query else "")
    cam = drivers.open(uri)
    frames: dict[StreamKind, Frame] = {}
    with cam:
        # A few ticks so auto-exposure settles; keep the last complete set.
        for _ in range(3 * 4):
            f = cam.read(timeout_s=5)
            frames[f.stream] = f
    color = frames[StreamKind.COLOR].pixels.copy()
    depth = depth_colormap(frames[StreamKind.DEPTH].pixels)
    ir = cv2.cvtColor(frames[StreamKind.IR].pixels, cv2.COLOR_GRAY2BGR)
    row = np.hstack([color, depth, ir])
    cv2.putText(row, subject, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(row, subject, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 1, cv2.LINE_AA)
    return row


def run(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError("sim-preview writes a PNG: give a path ending in .png")
    if not 0.1 <= args.scale <= 2:
        raise UsageError("--scale must be within 0.1..2")
    rows = [render_row(s, args.query) for s in ("live",) + ATTACKS]
    montage = cv2.resize(np.vstack(rows), None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_AREA)
    if not cv2.imwrite(str(out), montage):
        raise UsageError(f"cannot write {out}")
    print(f"wrote {out}: {len(rows)} rows (live, {', '.join(ATTACKS)}); columns color | depth | IR")
    return 0
