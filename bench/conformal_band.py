"""An attacker who knows what holds a printed eye band (issue 14, twentieth session's review): the band
pressed onto the wearer's face instead of lying in front of it.

``print_eyes`` (``drivers.sim.species``) is a paper band bent as a cylinder that clears the wearer's
nose bridge by 2 mm: its printed eyes sit level with the bridge or in front of it, and the eye region
detector (``eye_recess_mm``, the pupils' depth behind the bridge; ramp attack end 3.50 mm, live end
10.4 mm) refuses it. The material measure does not see it: its discs (``features.SKIN_PATCHES``)
lie on the forehead and the cheeks, outside the band, so the speckle and the dots' sharpness are the
wearer's real skin. A band as thin as a sticker or a printed film pressed into the eye sockets
(``--thickness-mm`` over the wearer's own surface, default 0.4) keeps the wearer's own eye recess
under the printed eyes. Everything else is the species' own: the same band outline, print, paper
(``--soft``: a film whose dots spread like silicone's), URI, scene and nonce as ``pad-eval``'s.

    python -m bench.conformal_band --split train --per-species 2 [--first 0] [--narrow] [--down-mm MM] [--soft] \\
        [--gloss R] [--front] [--salts a,b,c] [--out OUT.jsonl]

``--down-mm 5``: the band's lower edge at about the lower lid (5 mm below the eye line), so that what the
eye cue's discs reach below the lid is the wearer's skin (docs/liveness.md, "The eye discs at 0.12").
``--front`` renders the species as it is (the band in front of the eyes), for a paired control.
``--salts a,b,c``: each presentation again under other challenge nonces, one per salt (``hil.padeval``'s
nonce replaced by SHA-256 of the salt and the URI: another projector schedule and screen sequence, so
other on-off pairs; review 22's method), and with ``--out`` a tally of this run's verdicts at the end: what
a verdict owes to one nonce's pairs (docs/liveness.md, "The eye discs cut at the lower lids, measured").
Prints per presentation the verdict, the detectors and the readings that decide them. Nothing of a
face is written. Never on a family that may not be looked at (``hil.padeval.UNSEEN_SPLITS``).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench import attack_variant
from drivers.sim import species as S
from drivers.sim.head import head_layers
from drivers.sim.subject import MISS, PAPER, SILICONE, print_texture
from hil import pad_presentations, pad_records

CUES = ("projector_speckle", "projector_sharpness", "projector_speckle_forehead", "projector_speckle_cheeks",
        "projector_sharpness_cheeks", "projector_speckle_upper", "projector_speckle_lower",
        "projector_sharpness_lower", "projector_forehead_dropped_pairs", "projector_rims_dropped_pairs",
        "projector_lower_rims_pairs", "eye_recess_mm", "eye_dot_sharpness", "projector_sharpness_eyes", "blink_drop")


def install(thickness_m: float, soft: bool, narrow: bool = False, down_m: float | None = None,
            gloss: float = 0.0) -> None:
    """``print_eyes`` becomes the same band pressed onto the wearer's face, ``thickness_m`` proud of it;
    ``narrow``: cut to 12 mm above and 9 mm below the eye line, off the cheekbones (the material
    measure's upper cheek discs, landmarks 50 and 280) and the brows' upper half; ``down_m``: its lower
    edge this far below the eye line instead (5 mm: at the lower lid, off whatever lies below it); ``gloss``:
    the film's specular reflectance (a glossy laminate, ~0.05 for n 1.57), mirroring the projector dot by
    dot and the lamp where its surface, the wearer's own, bisects them (``Surface.gloss_dots``)."""

    @lru_cache(maxsize=8)
    def pressed_band(target, instance: int):
        # The species' own draws, in its order, so the band has the outline ``print_eyes`` gives it.
        rng = S.instrument_rng(target.family, "print_eyes", instance)
        tgt = head_layers(replace(target, glasses="none"))
        wear = head_layers(S.wearer_of(target))
        gx, gy = wear.gx, wear.gy
        eye_y = wear.landmarks.eyes[0][1]
        half_w = float(rng.uniform(0.058, 0.070))
        up, down = float(rng.uniform(0.016, 0.022)), float(rng.uniform(0.013, 0.018))
        if narrow:
            up, down = 0.012, 0.009
        if down_m is not None:
            down = down_m
        band = (np.abs(gx) < half_w) & (gy > eye_y - up) & (gy < eye_y + down) & (wear.height > MISS / 2)
        height = (wear.height + thickness_m).astype(np.float32)
        printed, nir = print_texture(S._aligned_target(tgt, wear, tgt.albedo))
        blur = SILICONE.dot_blur_px if soft else PAPER.dot_blur_px
        surf = S._worn(wear, band, height, printed, nir, blur, 1.0, PAPER)
        if gloss <= 0:
            return surf
        res = float(gx[0, 1] - gx[0, 0])
        sy, sx = np.gradient(height, res)
        j0, i0 = int(round((surf.y0 - gy[0, 0]) / res)), int(round((surf.x0 - gx[0, 0]) / res))
        h, w = surf.height.shape
        cut = np.s_[j0:j0 + h, i0:i0 + w]
        film = np.where(band, gloss, 0.0).astype(np.float32)[cut]
        slope = np.ascontiguousarray(np.stack([sx, sy], axis=-1).astype(np.float32)[cut])
        return replace(surf, gloss=np.ascontiguousarray(film), gloss_slope=slope, gloss_dots=True)

    S.NEW_WORN["print_eyes"] = pressed_band


def salted_nonce(salt: str) -> Callable[[pad_presentations.Presentation], bytes]:
    """A presentation's challenge nonce under ``salt`` in place of ``hil.pad_presentations.presentation_nonce``'s:
    fixed by the salt and the URI (repeatable), another for each salt."""
    key = b"capture-agent/conformal_band/" + salt.encode() + b"\0"
    return lambda p: hashlib.sha256(key + p.uri.encode()).digest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="train")
    ap.add_argument("--per-species", type=int, default=2)
    ap.add_argument("--first", type=int, default=0, help="first presentation index")
    ap.add_argument("--thickness-mm", type=float, default=0.4)
    ap.add_argument("--soft", action="store_true", help="a film whose dots spread like silicone's")
    ap.add_argument("--gloss", type=float, default=0.0, help="the film's specular reflectance (0: matte)")
    ap.add_argument("--narrow", action="store_true", help="the band cut to 12 mm above, 9 mm below the eye line")
    ap.add_argument("--down-mm", type=float, help="the band's lower edge this far below the eye line")
    ap.add_argument("--front", action="store_true", help="the species as it is (band in front of the eyes)")
    ap.add_argument("--salts", help="comma-separated salts: each presentation again under a nonce of each")
    ap.add_argument("--follow-prompts", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    attack_variant.refuse_unseen(args.split)
    if not args.front:
        install(args.thickness_mm / 1000, args.soft, args.narrow,
                None if args.down_mm is None else args.down_mm / 1000, args.gloss)
    kind = "pressed" + ("+narrow" if args.narrow else "") + ("+soft" if args.soft else "") + \
        (f"+down{args.down_mm:g}mm" if args.down_mm is not None else "") + \
        (f"+gloss{args.gloss:g}" if args.gloss > 0 else "")
    items = [("print_eyes", i) for i in range(args.first, args.first + args.per_species)]
    tag: dict[str, object] = {"band": "front" if args.front else kind}
    if not args.salts:
        attack_variant.run(args.split, items, args.follow_prompts, args.out, tag, CUES)
        return 0
    own = pad_records.presentation_nonce            # the name pad_records.run_presentation reads
    before = len(args.out.read_text().splitlines()) if args.out and args.out.exists() else 0
    tally: collections.Counter[str] = collections.Counter()
    salts = [x for x in args.salts.split(",") if x]
    try:
        for salt in salts:
            pad_records.presentation_nonce = salted_nonce(salt)  # type: ignore[assignment]
            print("salt", salt, flush=True)
            attack_variant.run(args.split, items, args.follow_prompts, args.out, {**tag, "salt": salt}, CUES)
    finally:
        pad_records.presentation_nonce = own
    if args.out:
        for line in args.out.read_text().splitlines()[before:]:
            rec = json.loads(line)
            tally[str(rec.get("verdict") or rec.get("outcome"))] += 1
        print("tally over", len(salts), "nonces:", dict(tally), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
