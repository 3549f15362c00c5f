"""``capture-agent capture --socket PATH --purpose verify --consent REF``: one capture through a
running daemon's local API, as the kiosk app would make it; prompts and progress as they come.
Exit status: 0 accepted, 1 not accepted, 2 an error (``error[CODE]``)."""

from __future__ import annotations

import json

from ..localclient import LocalClient


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


def show(ev: dict) -> str:
    if "prompt" in ev:
        return f"  prompt   {ev['prompt']['code']:<16} {ev['prompt']['en']} / {ev['prompt']['zh']}"
    if "progress" in ev:
        return f"  progress {ev['progress']['percent']:>3}% {ev['progress']['stage']}"
    if "result" in ev:
        r = ev["result"]
        t = r["timings_ms"]
        return (f"  result   {'ACCEPTED' if r['accepted'] else 'REJECTED'} reason={r['reason']} "
                f"liveness={r['liveness_verdict']} total={t.get('total', 0):.0f} ms"
                + (f" ({r['detail']})" if r["detail"] and not r["accepted"] else ""))
    return f"  error    {ev['error']['code']}: {ev['error']['message']}"


def run(args) -> int:
    result = None
    with LocalClient(args.socket) as c:
        for ev in c.capture(args.purpose, args.consent, args.channel, args.subject, args.business):
            print(json.dumps(ev) if args.json else show(ev), flush=True)
            if "result" in ev:
                result = ev["result"]
            if "error" in ev:
                return 2
    return 0 if result and result["accepted"] else 1
