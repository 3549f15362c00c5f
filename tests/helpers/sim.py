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


def session_camera(uri: str, family: str, light: str, pick) -> tuple[SimCamera, object, object, np.ndarray]:
    """A sim camera on ``uri`` with ``{seed}`` the first of seeds 0-39 whose ``family``/``light`` scene ``pick``
    accepts, started and stopped (its scene drawn), its projector-off depth tick at 0 s, that tick's view maps
    and the face's mask in them (the sixteenth's and the seventeenth's light tests)."""
    from drivers.sim.config import SimConfig
    from drivers.sim.scene import Scene
    seed = next(s for s in range(40)
                if pick(Scene(SimConfig.from_query({"family": family, "light": light, "seed": str(s)}))))
    cam = sim_camera(uri.format(seed=seed))
    cam.start()
    cam.stop()
    tick, dmaps = cam._render_depth(0.0, False, cam.POWER_RANGE.default)
    return cam, tick, dmaps, (dmaps.object_id == 0) & np.isfinite(dmaps.z)


def colour_face_mean(cam: SimCamera, t: float, face: np.ndarray) -> np.ndarray:
    """The mean B, G, R of the colour frame rendered at ``t`` (screen dark, exposure held) over ``face`` (the
    depth view's mask; the whole frame where the colour frame's size differs)."""
    c = cam._render_color(t, (0.0, 0.0, 0.0), update_ae=False).color.astype(np.float64)
    fm = face if c.shape[:2] == face.shape else np.ones(c.shape[:2], bool)
    return c[fm].mean(axis=0)


def scene_lights(family: str, light: str, attr: str, n: int = 40) -> list:
    """The ``attr`` light (a Scene attribute: ``heater``, ``glint``, ...) drawn by each of seeds 0..n-1's
    ``family``/``light`` scenes."""
    from drivers.sim.config import SimConfig
    from drivers.sim.scene import Scene
    return [getattr(Scene(SimConfig.from_query({"family": family, "light": light, "seed": str(k)})), attr)
            for k in range(n)]


def lit_and_bare(cam: SimCamera, face: np.ndarray, light: str, lit_at: tuple[float, ...],
                 bare_at: tuple[float, ...]) -> tuple[list[tuple[np.ndarray, np.ndarray]],
                                                       list[tuple[np.ndarray, np.ndarray]]]:
    """The IR signal (projector off) and the face's mean colour (:func:`colour_face_mean`) rendered at each of
    ``lit_at`` with the scene's light ``light`` (its ``Scene`` attribute: ``door``, ``heater``, ``glint``,
    ``phone``) and at each of ``bare_at`` without it (the attribute set to None: the camera keeps it off after)."""
    def at(t: float) -> tuple[np.ndarray, np.ndarray]:
        return cam._render_depth(t, False, cam.POWER_RANGE.default)[0].ir_signal, colour_face_mean(cam, t, face)
    lit = [at(t) for t in lit_at]
    setattr(cam._scene, light, None)
    return lit, [at(t) for t in bare_at]
