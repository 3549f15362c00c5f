"""Issue 14, material measure: the two conditions that left it unmeasurable, on families that are not ``field``.

Both run on a camera whose projector power cannot be set (the field family's Gemini 335 drives its
projector on/off only), modelled by a simulated D435 with its power capability removed; 32
framesets, challenged with a fixed nonce, so a run before and after a change judges the same frames.

- ``clip``: train-family faces at 36 cm under LED and fluorescent light at 300, 2,000 and 7,500 lux,
  skin types I and VI: the projector's dots clip on close skin. (Train's lights carry little NIR.)
- ``halogen``: faces of family ``any`` (neither train nor field people) under tungsten-halogen light
  at 1,200, 2,500 and 4,000 lux, 40 and 50 cm, skin types I and VI: strong ambient NIR on the skin.

One JSON line per session (verdict, score, the material detector and the projector cues; no face
data)::

    nice -n 19 .venv/bin/python -m bench.material_sweep OUT.jsonl live clip
    nice -n 19 .venv/bin/python -m bench.material_sweep OUT.jsonl mask halogen
"""

from __future__ import annotations

import json
import sys

import drivers
from agent.liveness.fusion import load_thresholds
from agent.session.offline import capture_and_judge
from drivers.base import Capability

NONCE = bytes.fromhex("5be1c0de" * 8)


def uris(subject: str, condition: str) -> list[str]:
    out = []
    k = 0
    if condition == "clip":
        for light in ("led", "fluorescent"):
            for skin in (1, 6):
                for lux in (300, 2000, 7500):
                    k += 1
                    out.append(f"sim://?realtime=0&family=train&subject={subject}&identity={10 + k}&light={light}"
                               f"&skin={skin}&lux={lux}&distance_mm=360&seed={100 + k}")
    elif condition == "halogen":
        for skin in (1, 6):
            for lux in (1200, 2500, 4000):
                for distance in (400, 500):
                    k += 1
                    out.append(f"sim://?realtime=0&family=any&camera=d435&subject={subject}&identity={60 + k}"
                               f"&light=halogen&skin={skin}&lux={lux}&distance_mm={distance}&seed={300 + k}")
    else:
        raise SystemExit(f"unknown condition {condition!r} (clip, halogen)")
    return out


def main(out_path: str, subject: str = "live", condition: str = "clip") -> None:
    thresholds = load_thresholds("kiosk", challenged=True)
    with open(out_path, "a") as out:
        for uri in uris(subject, condition):
            cam = drivers.open(uri)
            cam.capabilities = cam.capabilities - {Capability.PROJECTOR_POWER}
            with cam:
                v = capture_and_judge(cam, 32, thresholds=thresholds, nonce=NONCE).verdict
            rec = {"uri": uri, "verdict": v.verdict, "score": round(v.score, 3),
                   "material": v.detectors.get("material"),
                   "cues": {c: x for c, x in v.cues.items() if c.startswith("projector_")},
                   "notes": [n for n in v.notes if "projector" in n or "material" in n]}
            out.write(json.dumps(rec) + "\n")
            out.flush()
            print(uri.split("?", 1)[1], v.verdict, round(v.score, 3), v.detectors.get("material"), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
