"""``capture-agent sim-preview OUT.png``: a montage of what the simulator renders.

One row per scene — a live subject, each presentation-attack species, then a few identities,
camera profiles and busy scenes (``VARIANTS``) — and three columns: color | depth (colormap,
black = no depth) | IR (with the projector's dots). Each row's label names the colour mode the
simulated camera chose (``docs/sim.md``: a D455 streams 1280x720 colour, shown here letterboxed
into the depth tile's size).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

import drivers
from agent.errors import UsageError
from drivers.frame import Frame, StreamKind

# Rows after the species: identities (skin tone, glasses, beard, fringe), camera profiles, scenes.
VARIANTS = (
    "subject=live&identity=1",                       # Fitzpatrick VI, tinted glasses
    "subject=live&identity=2",                       # IV, clear glasses with projector glints, beard
    "subject=live&identity=9",                       # V, fringe
    "subject=live&camera=d455",                      # wide colour FOV, 95 mm baseline
    "subject=live&camera=d405",                      # no projector, IR-cut imagers
    "subject=live&camera=astra",                     # structured light
    "subject=live&background=moving&bystander=1&light=incandescent",
)


def register(sub) -> None:
    p = sub.add_parser("sim-preview", help="write a color|depth|IR montage of the sim's live subject, attacks, "
                                           "identities, camera profiles and scenes")
    p.add_argument("out", help="output PNG path")
    p.add_argument("--query", default="", help="extra sim:// query applied to every row, e.g. lux=50&yaw=10")
    p.add_argument("--scale", type=float, default=0.5, help="scale of each tile (default 0.5)")
    p.set_defaults(func=run)


def depth_colormap(depth_u16: np.ndarray, near_mm: float = 300, far_mm: float = 1700) -> np.ndarray:
    z = np.clip((depth_u16.astype(np.float32) - near_mm) / (far_mm - near_mm), 0, 1)
    img = cv2.applyColorMap((255 * (1 - z)).astype(np.uint8), cv2.COLORMAP_TURBO)
    img[depth_u16 == 0] = 0
    return img


def render_row(scene: str, query: str) -> np.ndarray:
    """One montage row; ``scene`` is a species name or a sim:// query."""
    scene_q = scene if "=" in scene else f"subject={scene}"
    uri = f"sim://?realtime=0&{scene_q}" + (f"&{query}" if query else "")
    cam = drivers.open(uri)
    frames: dict[StreamKind, Frame] = {}
    with cam:
        # A few ticks so auto-exposure settles; keep the last complete set.
        for _ in range(3 * 4):
            f = cam.read(timeout_s=5)
            frames[f.stream] = f
    color = frames[StreamKind.COLOR].pixels
    d = frames[StreamKind.DEPTH]
    # Colour streams in the mode the camera chose (1280x720 on a D455): fitted into a tile of the
    # depth image's size (letterboxed) so the rows line up, and labelled with its real size.
    ch, cw = color.shape[:2]
    th, tw = d.pixels.shape[:2]
    if (ch, cw) != (th, tw):
        s = min(tw / cw, th / ch)
        fitted = cv2.resize(color, (round(cw * s), round(ch * s)), interpolation=cv2.INTER_AREA)
        color = np.zeros((th, tw, 3), np.uint8)
        y0, x0 = (th - fitted.shape[0]) // 2, (tw - fitted.shape[1]) // 2
        color[y0:y0 + fitted.shape[0], x0:x0 + fitted.shape[1]] = fitted
    else:
        color = color.copy()
    depth = depth_colormap(np.round(d.pixels * (d.depth_scale * 1000.0)).astype(np.uint16))
    ir = cv2.cvtColor(frames[StreamKind.IR].pixels, cv2.COLOR_GRAY2BGR)
    row = np.hstack([color, depth, ir])
    label = f"{scene.removeprefix('subject=')} (colour {cw}x{ch})"
    cv2.putText(row, label, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(row, label, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 1, cv2.LINE_AA)
    return row


def run(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError("sim-preview writes a PNG: give a path ending in .png")
    if not 0.1 <= args.scale <= 2:
        raise UsageError("--scale must be within 0.1..2")
    # Here, not at the top: every command module is imported when the CLI starts, the daemon's
    # `run` included, and the simulator (with SciPy) is ~50 MiB a daemon never needs.
    from drivers.sim import ATTACKS
    scenes = ("live",) + ATTACKS + VARIANTS
    rows = [render_row(s, args.query) for s in scenes]
    montage = cv2.resize(np.vstack(rows), None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_AREA)
    if not cv2.imwrite(str(out), montage):
        raise UsageError(f"cannot write {out}")
    print(f"wrote {out}: {len(rows)} rows (live, {', '.join(ATTACKS)}, then {len(VARIANTS)} identity/camera/scene "
          "variants); columns color | depth | IR")
    return 0
