"""``capture-agent capture --socket PATH --purpose verify --consent REF``: one capture through a
running daemon's local API, as the kiosk app would make it; prompts and progress as they come, and
the illumination challenge's colours as the kiosk app would show them full screen (here: one line
each, a block of the colour on a terminal). Exit status: 0 accepted, 1 not accepted, 2 an error
(``error[CODE]``)."""

from __future__ import annotations

import json
import sys

from agent.localapi.client import LocalClient
from agent.purpose import Purpose
from agent.quality.prompts import Prompt
from agent.session.events import CaptureEvent, Error, Illumination, Progress, Result, as_dict
from agent.session.request import CaptureRequest


def register(sub) -> None:
    p = sub.add_parser("capture", help="run one capture through a running daemon's local API")
    p.add_argument("--socket", required=True, help="the daemon's local API socket")
    p.add_argument("--purpose", choices=["enroll", "verify"], default="verify")
    p.add_argument("--consent", default="", help="the consent record reference (required by the agent)")
    p.add_argument("--channel", default="kiosk")
    p.add_argument("--subject", default="", help="the bank's opaque subject reference")
    p.add_argument("--business", default="", help="the business transaction reference")
    p.add_argument("--json", action="store_true", help="one JSON object per event")
    p.set_defaults(func=run)


COLOUR_NAMES: dict[tuple[int, ...], str] = {(0, 0, 0): "black", (1, 0, 0): "red", (0, 1, 0): "green", (0, 0, 1): "blue",
                                             (1, 1, 0): "yellow", (1, 0, 1): "magenta", (0, 1, 1): "cyan",
                                             (1, 1, 1): "white"}


def show_illumination(ev: Illumination, tty: bool = False) -> str:
    """One line per step; on a terminal, a block painted in the colour (24-bit ANSI background)."""
    if ev.end:
        return "  screen   end of the illumination sequence"
    r, g, b = (round(v * 255) for v in ev.rgb)
    name = COLOUR_NAMES.get(tuple(round(v) for v in ev.rgb), f"rgb({r},{g},{b})")
    block = f"\x1b[48;2;{r};{g};{b}m      \x1b[0m " if tty else ""
    brighter = f", {ev.luminance:g}x the panel's everyday luminance" if ev.luminance != 1.0 else ""
    return (f"  screen   {block}step {ev.step} {name:<8} from frame {ev.frame} for {ev.frames} frames "
            f"({ev.frames * ev.frame_interval_ms:.0f} ms{brighter})")


def show(ev: CaptureEvent, tty: bool = False) -> str:
    if isinstance(ev, Prompt):
        return f"  prompt   {ev.code:<16} {ev.en} / {ev.zh}"
    if isinstance(ev, Progress):
        return f"  progress {ev.percent:>3}% {ev.stage}"
    if isinstance(ev, Result):
        return (f"  result   {'ACCEPTED' if ev.accepted else 'REJECTED'} reason={ev.reason} "
                f"liveness={ev.liveness_verdict} total={ev.timings_ms.get('total', 0):.0f} ms"
                + (f" ({ev.detail})" if ev.detail and not ev.accepted else ""))
    if isinstance(ev, Illumination):
        return show_illumination(ev, tty)
    return f"  error    {ev.code}: {ev.message}"


def run(args) -> int:
    result: Result | None = None
    req = CaptureRequest(Purpose.from_name(args.purpose), args.channel, args.consent, args.subject, args.business)
    with LocalClient(args.socket) as c:
        for ev in c.capture(req):
            print(json.dumps(as_dict(ev)) if args.json else show(ev, sys.stdout.isatty()), flush=True)
            if isinstance(ev, Result):
                result = ev
            if isinstance(ev, Error):
                return 2
    return 0 if result is not None and result.accepted else 1
