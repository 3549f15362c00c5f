"""An attacker who knows the forehead rule (``features.ProjectorMeasure.pool``): a real fringe over an
instrument's forehead, rendered through the simulator's species (issue 14, twentieth session).

The material measure drops the forehead's discs when a session's forehead reads over
``FOREHEAD_OVER_CHEEKS`` times its cheeks' and its dots are softer than ``FOREHEAD_SHARP_DOTS``: a
fringe does both. The cheapest exploit is a fringe (a wig's, or the wearer's own hair) combed over
the instrument: a rigid mask or a paper mask worn by someone with a fringe, a head model with a wig
fringe glued on, a printed eye band with the fringe over its top edge. Here every worn species'
wearer has a fringe lying on the instrument (the hair's NIR, strands and dot blur over the
instrument's, 4 mm proud of it, as ``drivers.sim.head`` draws a fringe on skin), and the head model
wears the target's fringe as real hair over its plaster. Everything else of the presentation (its
URI, scene, nonce) is ``pad-eval``'s; ``--bare`` runs the same presentations without the fringe.

    python -m bench.fringe_attack --split train --species mask,head_model --per-species 5 \
        [--bare] [--follow-prompts 2] [--out OUT.jsonl]

Prints per presentation the verdict, the detectors and the forehead rule's readings. Nothing of a
face is written. Never on a family that may not be looked at (``hil.padeval.UNSEEN_SPLITS``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench import attack_variant
from drivers.sim import species as S
from drivers.sim.head import HeadLayers, head_layers
from drivers.sim.subject import HAIR, MISS, SKIN

CUES = ("projector_speckle", "projector_speckle_low", "projector_speckle_high", "projector_sharpness",
        "projector_speckle_forehead", "projector_speckle_cheeks", "projector_sharpness_forehead",
        "projector_sharpness_cheeks", "projector_forehead_dropped_pairs", "eye_recess_mm", "blink_drop")


def fringe_over(ident) -> tuple[HeadLayers, np.ndarray, np.ndarray, np.ndarray]:
    """``ident``'s head with a fringe, its fringe's alpha (0..1, from the dot blur it adds over the
    same head without one) and the fringe's own albedo and NIR share (what it adds at that alpha)."""
    bare = head_layers(replace(ident, fringe=False))
    hairy = head_layers(replace(ident, fringe=True))
    alpha = np.clip((bare.dot_blur - hairy.dot_blur) / (SKIN.dot_blur_px - HAIR.dot_blur_px), 0, 1)
    alpha = np.where(bare.face_height > MISS / 2, alpha, 0.0).astype(np.float32)
    a3 = alpha[..., None]
    return hairy, alpha, hairy.albedo - bare.albedo * (1 - a3), hairy.nir - bare.nir * (1 - alpha)


def overlay(alpha, hair_albedo, hair_nir, height, albedo, nir, dot_blur):
    """An instrument's cells with the fringe lying on them (as ``head_layers`` lays one on skin)."""
    a3 = alpha[..., None]
    dot_blur = np.broadcast_to(np.asarray(dot_blur, np.float32), alpha.shape)
    raised = np.where(alpha > 0.05, height + 0.004 * np.clip(alpha * 1.5, 0, 1), height)
    return (np.where(height > MISS / 2, raised, height).astype(np.float32),
            (albedo * (1 - a3) + hair_albedo).astype(np.float32),
            (nir * (1 - alpha) + hair_nir).astype(np.float32),
            (dot_blur * (1 - alpha) + HAIR.dot_blur_px * alpha).astype(np.float32))


def install() -> None:
    """Every worn instrument's wearer and every head model get a fringe over the instrument."""
    worn, rigid = S._worn, S.rigid_head.__wrapped__

    def worn_with_fringe(wear, cover, height, albedo, nir, dot_blur, mouth_follow, material):
        hairy, alpha, h_alb, h_nir = fringe_over(wear.identity)
        alpha = np.where(cover, alpha, 0.0).astype(np.float32)
        h, alb, n, db = overlay(alpha, h_alb, h_nir, np.where(cover, height, MISS).astype(np.float32),
                                albedo, nir, dot_blur)
        return worn(hairy, cover, np.where(cover, h, height), alb, n, db, mouth_follow, material)

    def rigid_with_fringe(ident, kind="mask", base_nir=None):
        surf = rigid(ident, kind, base_nir)
        if kind == "mask":
            return surf
        # The head model's own surface on the head grid again (as ``rigid_head`` builds it), then
        # a real fringe glued over its painted forehead.
        lay = head_layers(replace(ident, glasses="none"))
        _, alpha, h_alb, h_nir = fringe_over(replace(ident, glasses="none"))
        base = 0.80 if base_nir is None else base_nir
        h, alb, n, db = overlay(alpha, h_alb, h_nir, lay.height, lay.albedo, S._painted_nir(lay.albedo, base),
                                S.PLASTER.dot_blur_px)
        return S.surface_from_layers(lay, S.PLASTER, height=h, albedo=alb, nir=n, dot_blur=db, blinks=False,
                                     mouth_weight=np.zeros_like(h))

    S._worn = worn_with_fringe
    S.rigid_head = rigid_with_fringe  # type: ignore[assignment]  # the scene looks it up on the module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="train")
    ap.add_argument("--species", default="mask,head_model")
    ap.add_argument("--per-species", type=int, default=5)
    ap.add_argument("--first", type=int, default=0, help="first presentation index")
    ap.add_argument("--bare", action="store_true", help="the same presentations without the fringe")
    ap.add_argument("--follow-prompts", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    attack_variant.refuse_unseen(args.split)
    if not args.bare:
        install()
    items = ((sp, i) for sp in args.species.split(",") for i in range(args.first, args.first + args.per_species))
    attack_variant.run(args.split, items, args.follow_prompts, args.out, {"fringe": not args.bare}, CUES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
