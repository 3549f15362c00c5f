"""A synthetic flat face facing the camera, as the renderer's per-pixel maps (closed-form light tests)."""

from __future__ import annotations

import numpy as np

from drivers.sim.render import ViewMaps


def flat_face_maps(h: int = 480, w: int = 640, z: float = 0.45) -> ViewMaps:
    rng = np.random.default_rng(1)
    return ViewMaps(
        z=np.full((h, w), z, np.float32),
        albedo=rng.uniform(0.2, 0.6, (h, w, 3)).astype(np.float32),
        nir=rng.uniform(0.3, 0.6, (h, w)).astype(np.float32),
        shade=rng.uniform(0.5, 1.0, (h, w)).astype(np.float32),
        object_id=np.zeros((h, w), np.int8),
        dot_blur=np.zeros((h, w), np.float32), specular=rng.uniform(0.0, 0.1, (h, w)).astype(np.float32),
        emissive=np.zeros((h, w), bool))
