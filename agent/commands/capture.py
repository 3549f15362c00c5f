"""``capture-agent capture --socket PATH --purpose verify --consent REF``: one capture through a
running daemon's local API, as the kiosk app would make it; prompts and progress as they come.
Exit status: 0 accepted, 1 not accepted, 2 an error (``error[CODE]``)."""

from __future__ import annotations

import json

from agent.localapi.client import LocalClient
from agent.purpose import Purpose
from agent.quality.prompts import Prompt
from agent.session.events import CaptureEvent, Error, Progress, Result, as_dict
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


def show(ev: CaptureEvent) -> str:
    if isinstance(ev, Prompt):
        return f"  prompt   {ev.code:<16} {ev.en} / {ev.zh}"
    if isinstance(ev, Progress):
        return f"  progress {ev.percent:>3}% {ev.stage}"
    if isinstance(ev, Result):
        return (f"  result   {'ACCEPTED' if ev.accepted else 'REJECTED'} reason={ev.reason} "
                f"liveness={ev.liveness_verdict} total={ev.timings_ms.get('total', 0):.0f} ms"
                + (f" ({ev.detail})" if ev.detail and not ev.accepted else ""))
    return f"  error    {ev.code}: {ev.message}"


def run(args) -> int:
    result: Result | None = None
    req = CaptureRequest(Purpose.from_name(args.purpose), args.channel, args.consent, args.subject, args.business)
    with LocalClient(args.socket) as c:
        for ev in c.capture(req):
            print(json.dumps(as_dict(ev)) if args.json else show(ev), flush=True)
            if isinstance(ev, Result):
                result = ev
            if isinstance(ev, Error):
                return 2
    return 0 if result is not None and result.accepted else 1
