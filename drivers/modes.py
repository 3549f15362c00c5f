"""Choosing a depth camera's stream modes for a face at the counter (shared by RealSense and Orbbec).

Depth must meet T/IIFAA 3001.1 §7.5 h (≥ 640×400, ≥ 10 fps); IR runs at depth's mode (one imager).
Colour is chosen for the face: the inter-pupil distance (63 mm) must cover ``ipd_px`` pixels (§7.4:
≥ 60) at the working distance, and that depends on the colour lens (its focal length in pixels at
each mode, reported by the device, else from the lens's nominal field of view). The smallest colour
mode that keeps it is taken (least USB bandwidth), at depth's frame rate; depth's rate is lowered
(highest first) until a colour mode keeps it, and only when no rate has one is the largest colour
mode taken, with a note (a 60 fps session whose face is too small to judge helps nobody: §7.5 h asks
for 10 fps). On a USB 2 link the streams must fit what USB 2 carries (``USB2_BUDGET``): lower rates
and smaller modes are tried before a combination is refused.

``choose_color`` is the colour rule alone, for a device whose depth mode is already fixed (the
simulator's ``sim://`` camera chooses its colour mode with it, as a RealSense or Orbbec camera would).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import UnsupportedMode
from .frame import StreamKind

IPD_M = 0.063
WORKING_DISTANCE_M = 0.6            # the face's distance the colour mode is chosen for (drivers' ``distance_m``)
MIN_IPD_PX = 60.0                   # §7.4: pixels between the eyes (drivers' ``ipd_px``)
USB2_BUDGET = 30e6                  # bytes/s the streams may take together on a USB 2.0 link
_BPP = {"z16": 2, "y8": 1, "y16": 2, "bgr8": 3, "rgb8": 3, "yuyv": 2, "uyvy": 2, "bgra8": 4, "rgba8": 4,
        "mjpg": 1}
COLOR_FORMATS = ("bgr8", "rgb8", "yuyv", "mjpg")


@dataclass(frozen=True)
class Mode:
    kind: StreamKind
    width: int
    height: int
    fps: int
    format: str
    index: int = 0
    fx: float = 0.0                 # colour modes: focal length in pixels (0 = unknown)

    @property
    def bandwidth(self) -> float:
        return self.width * self.height * _BPP.get(self.format, 2) * self.fps

    def ipd_px(self, distance_m: float, hfov_deg: float) -> float:
        fx = self.fx or (self.width / 2) / math.tan(math.radians(hfov_deg) / 2)
        return fx * IPD_M / distance_m


@dataclass(frozen=True)
class Choice:
    depth: Mode
    ir: Mode | None
    color: Mode | None
    note: str = ""


def choose_color(colours: list[Mode], *, distance_m: float = WORKING_DISTANCE_M, ipd_px: float = MIN_IPD_PX,
                 color_hfov_deg: float = 70.0) -> tuple[Mode, str]:
    """Of ``colours`` (colour modes at one frame rate, any order), the smallest that keeps ``ipd_px``
    between the eyes at ``distance_m``, with an empty note; when none does, the largest, with a note
    saying how many pixels it gives. ``colours`` must not be empty."""
    ordered = sorted(colours, key=lambda m: (m.width * m.height, COLOR_FORMATS.index(m.format)
                                             if m.format in COLOR_FORMATS else len(COLOR_FORMATS)))
    good = [m for m in ordered if m.ipd_px(distance_m, color_hfov_deg) >= ipd_px]
    if good:
        return good[0], ""
    best = ordered[-1]
    return best, (f"no colour mode keeps {ipd_px:g} px between the eyes at {distance_m:g} m; "
                  f"{best.width}x{best.height} gives {best.ipd_px(distance_m, color_hfov_deg):.0f} px")


def choose_modes(offered: list[Mode], *, usb2: bool, color_hfov_deg: float = 70.0,
                 distance_m: float = WORKING_DISTANCE_M, ipd_px: float = MIN_IPD_PX, want_color: bool = True,
                 want_ir: bool = True, ir_index: int = 0) -> Choice:
    """The modes to stream (see the module doc); ``UnsupportedMode`` when none fits. ``color_hfov_deg``
    is used for colour modes whose focal length the device did not report; ``ir_index`` is the IR
    imager to use (RealSense's left imager is 1)."""
    budget = USB2_BUDGET if usb2 else math.inf
    depths = [m for m in offered if m.kind is StreamKind.DEPTH and m.format == "z16"
              and m.width >= 640 and m.height >= 400 and m.fps >= 10]
    if not depths:
        raise UnsupportedMode("the device offers no depth mode of at least 640x400 at 10 fps (§7.5 h)"
                              + (" on this USB 2 link" if usb2 else ""))
    # Highest rate first, then the smallest picture: depth beyond 640x480 buys nothing for a face at 0.6 m.
    depths.sort(key=lambda m: (-m.fps, m.width * m.height))
    fallback: Choice | None = None          # the first combination whose colour is too small for the face
    for d in depths:
        ir = None
        if want_ir:
            ir = next((m for m in offered if m.kind is StreamKind.IR and m.format == "y8" and m.index == ir_index
                       and (m.width, m.height, m.fps) == (d.width, d.height, d.fps)), None)
            if ir is None:
                continue
        used = d.bandwidth + (ir.bandwidth if ir else 0.0)
        if used > budget:
            continue
        if not want_color:
            return Choice(d, ir, None)
        colours = [m for m in offered if m.kind is StreamKind.COLOR and m.format in COLOR_FORMATS and m.fps == d.fps
                   and m.width >= 640 and m.height >= 480 and used + m.bandwidth <= budget]
        if not colours:
            continue
        colour, note = choose_color(colours, distance_m=distance_m, ipd_px=ipd_px, color_hfov_deg=color_hfov_deg)
        if not note:
            return Choice(d, ir, colour)
        if fallback is None:
            fallback = Choice(d, ir, colour, note)
    if fallback is not None:
        return fallback
    raise UnsupportedMode("no combination of depth, IR and colour modes fits"
                          + (f" the USB 2 link ({USB2_BUDGET / 1e6:.0f} MB/s)" if usb2 else ""))
