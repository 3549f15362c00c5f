"""A digest of how a simulator family draws, poses and blinks its people: the tests that add a family
pin every earlier family's digest as main computed it before the addition (bit-identical people)."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from drivers.sim import head
from drivers.sim.config import SimConfig
from drivers.sim.families import presentation_query
from drivers.sim.identity import Identity
from drivers.sim.scene import Scene


def family_digest(family: str, fields: tuple[str, ...], skin_nir: bool = False) -> str:
    """People (``fields`` of each, and their skin's NIR if ``skin_nir``), presentation queries, one
    face's height field, three subjects' poses over 6 s and their eyes over 20 s, rounded so only a
    change of the simulation shows."""
    h = hashlib.sha256()
    for i in range(30):
        p = Identity.draw(i, family)
        h.update(repr(tuple(getattr(p, n) for n in fields)).encode())
        if skin_nir:
            h.update(repr(p.skin_nir).encode())
        if family != "any":
            for sp in ("live", "mask_eyeholes", "print"):
                h.update(json.dumps(presentation_query(family, sp, i), sort_keys=True).encode())
    gx, gy = head.head_grid()
    h.update(np.round(head.face_height(Identity.draw(7, family), gx[::4, ::4], gy[::4, ::4]), 9).tobytes())
    for sp in ("live", "mask_eyeholes", "screen_video"):
        scene = Scene(SimConfig.from_query({"family": family, "identity": "7", "subject": sp, "seed": "5"}))
        for t in np.arange(0.0, 6.0, 0.4):
            R, T, _ = scene.pose(float(t), rigid_static=False)
            h.update(np.round(np.concatenate([R.ravel(), T]), 12).tobytes())
        h.update(np.round([scene.eyes_closed(float(t)) for t in np.arange(0.0, 20.0, 0.01)], 12).tobytes())
    return h.hexdigest()[:16]
