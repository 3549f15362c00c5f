import numpy as np

import drivers
from drivers.sim.camera import SimCamera


def grab(uri: str, ticks: int, cam=None):
    """Open (or reuse) a sim camera and return ``ticks`` framesets as {kind: frame} dicts, plus the camera."""
    if cam is None:
        cam = drivers.open(uri)
        cam.start()
    sets: dict[int, dict] = {}
    while len([s for s in sets.values() if len(s) == 3]) < ticks:
        f = cam.read(timeout_s=5)
        sets.setdefault(f.frame_number, {})[f.stream] = f
    return [s for _, s in sorted(sets.items()) if len(s) == 3][:ticks], cam


def plane_fit_rms(z: np.ndarray, mask: np.ndarray) -> float:
    v, u = np.nonzero(mask)
    a = np.c_[u, v, np.ones_like(u)].astype(np.float64)
    coef, *_ = np.linalg.lstsq(a, z[mask].astype(np.float64), rcond=None)
    return float(np.sqrt(np.mean((a @ coef - z[mask]) ** 2)))


def dot_energy(ir: np.ndarray, mask: np.ndarray) -> float:
    """High-frequency energy (DN) of the IR image inside ``mask``: the projected dots dominate it."""
    import cv2
    x = ir.astype(np.float32)
    hp = x - cv2.GaussianBlur(x, (0, 0), 2.5)
    return float(np.std(hp[mask]))


def sim_camera(uri: str) -> SimCamera:
    """``drivers.open`` of a ``sim://`` URI, typed as the simulator (tests read its ground truth)."""
    cam = drivers.open(uri)
    assert isinstance(cam, SimCamera)
    return cam
