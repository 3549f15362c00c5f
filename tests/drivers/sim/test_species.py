"""New presentation-attack species: each does to colour, IR and depth what its material and build do."""

import cv2
import numpy as np
import pytest

import drivers
from drivers.frame import StreamKind
from drivers.sim import ATTACKS, SUBJECTS, SimCamera
from tests.helpers.sim import grab

D, C, IR = StreamKind.DEPTH, StreamKind.COLOR, StreamKind.IR
NEW = ("mask_eyeholes", "silicone_mask", "paper_mask", "head_model_hand", "print_eyes", "glasses_print")


def _tip(gt):
    v, u = np.unravel_index(np.nanargmin(gt), gt.shape)
    return int(v), int(u)


def _face_box(gt, up=45, down=25, half=35):
    v, u = _tip(gt)
    m = np.zeros(gt.shape, bool)
    m[v - up:v + down, u - half:u + half] = True
    return m & (gt < np.nanmin(gt) + 0.045)


def _dot_sharpness(ir: np.ndarray, mask: np.ndarray) -> float:
    """High-pass energy relative to level: scattering in the material blurs the projector's dots."""
    x = ir.astype(np.float32)
    hp = x - cv2.GaussianBlur(x, (0, 0), 2.5)
    return float(np.std(hp[mask]) / max(float(x[mask].mean()), 1e-3))


def test_every_new_species_is_a_known_attack_and_opens():
    for sp in NEW:
        assert sp in ATTACKS and sp in SUBJECTS
        sets, _ = grab(f"sim://?realtime=0&subject={sp}&seed=1", 1)
        assert set(sets[0]) == {D, C, IR}


def _sharp(subject: str) -> float:
    # 650 mm and dim light: no clipping, dots well above the ambient.
    sets, cam = grab(f"sim://?realtime=0&subject={subject}&seed=4&lux=100&distance_mm=650", 2)
    s = sets[-1]
    gt = cam.ground_truth(D, s[D].frame_number)
    m = _face_box(gt)
    assert (s[IR].pixels[m] == 255).mean() < 0.03
    return _dot_sharpness(s[IR].pixels, m)


def test_silicone_blurs_projector_dots_like_skin_resin_and_paper_do_not():
    live, silicone = _sharp("live"), _sharp("silicone_mask")
    resin, paper = _sharp("mask_eyeholes"), _sharp("paper_mask")
    assert abs(silicone - live) < 0.5 * (resin - live)
    assert resin > 1.2 * live and paper > 1.2 * live


def _blink_contrast(subject: str, k: int | None = None) -> tuple[float, int]:
    """How much more the eye band changes across the first blink (frame k against 0.3 s before)
    than across the 0.3 s before that (head motion and noise), and k. The blink schedule follows the
    seed, so without ``k`` the most closed frame is taken from this scene (a live one) and can be
    handed to instruments that hide the blink."""
    # At 10 fps, 14 frames span the first blink (within 1.2 s; 0.3 s long) with a frame well closed.
    cam = drivers.open(f"sim://?realtime=0&subject={subject}&seed=0&fps=10&identity=3")
    assert isinstance(cam, SimCamera)
    cam.start()
    frames: list[np.ndarray] = []
    closure: list[float] = []
    gt = None
    while len(frames) < 14:
        f = cam.read()
        if f.stream is C:
            frames.append(f.pixels.astype(np.float32))
            assert cam.scene is not None
            closure.append(cam.scene.eyes_closed)
            if gt is None:
                gt = cam.ground_truth(C, f.frame_number)
    if k is None:
        k = int(np.argmax(closure))
        assert closure[k] > 0.6 and k >= 6
    v, u = _tip(gt)

    def change(a: int, b: int) -> float:
        d = cv2.GaussianBlur(np.abs(frames[a] - frames[b]).sum(axis=2), (0, 0), 2)
        return float(np.percentile(d[v - 55:v - 15, u - 60:u + 60], 99))
    return change(k, k - 3) / change(k - 3, k - 6), k


def test_eye_holes_show_the_wearers_blinking_eyes_a_closed_mask_does_not():
    live, k = _blink_contrast("live")
    holes, k_holes = _blink_contrast("mask_eyeholes")
    assert k_holes == k                      # the scene reports the blink it shows
    assert live > 2.5 and holes > 2.5
    # A mask without holes, a printed eye band, printed eyes in spectacle frames: no blink to see.
    for hidden in ("mask", "print_eyes", "glasses_print"):
        assert _blink_contrast(hidden, k)[0] < 1.5, hidden


def test_eye_holes_are_recessed_behind_the_mask_surface():
    sets, cam = grab("sim://?realtime=0&subject=mask_eyeholes&seed=2&identity=3", 2)
    gt = cam.ground_truth(D, sets[-1][D].frame_number)
    v, u = _tip(gt)
    band = gt[v - 30:v - 8, u - 45:u + 46]
    # Across the eye band the wearer's eyes lie clearly behind the mask around them.
    assert np.nanmax(band) - np.nanpercentile(band, 20) > 0.006


def _cylinder_fit_rms(gt: np.ndarray) -> tuple[float, tuple[int, int]]:
    """RMS of depth around a cylinder about a vertical axis (quadratic in the column, linear in the
    row), over the face's central region with deeper holes rejected; and that region's centre."""
    near = gt < np.nanmin(gt) + 0.02
    v0, u0 = (int(np.median(a)) for a in np.nonzero(near))
    box = np.zeros(gt.shape, bool)
    box[v0 - 45:v0 + 35, u0 - 35:u0 + 36] = True
    m = box & (gt < np.nanmin(gt) + 0.03)
    for _ in range(3):
        v, u = np.nonzero(m)
        a = np.c_[u ** 2, u, v, np.ones_like(u)].astype(float)
        coef, *_ = np.linalg.lstsq(a, gt[m], rcond=None)
        r = a @ coef - gt[m]
        keep = np.abs(r) < max(3 * r.std(), 0.0015)
        m[v[~keep], u[~keep]] = False
    return float(np.sqrt(np.mean(r[keep] ** 2))), (v0, u0)


def test_paper_mask_is_a_cylinder_without_a_nose_and_its_eye_holes_go_deep():
    sets, cam = grab("sim://?realtime=0&subject=live&seed=2&identity=5", 2)
    live_rms, _ = _cylinder_fit_rms(cam.ground_truth(D, sets[-1][D].frame_number))
    sets, cam = grab("sim://?realtime=0&subject=paper_mask&seed=2&identity=5", 2)
    gt = cam.ground_truth(D, sets[-1][D].frame_number)
    paper_rms, (v, u) = _cylinder_fit_rms(gt)
    assert live_rms > 0.003 and paper_rms < 0.001
    # Through the eye holes the wearer's face lies far behind the paper (its nose holds the paper off).
    box = gt[v - 45:v + 35, u - 50:u + 51]
    front = np.nanmin(box)
    assert np.mean((box > front + 0.015) & (box < front + 0.08)) > 0.01


def test_print_eyes_band_is_paper_over_a_live_face():
    sets, cam = grab("sim://?realtime=0&subject=print_eyes&seed=4&lux=100&distance_mm=650", 2)
    s = sets[-1]
    gt = cam.ground_truth(D, s[D].frame_number)
    v, u = _tip(gt)
    eyes = np.zeros(gt.shape, bool)
    eyes[v - 28:v - 14, u - 30:u + 31] = True
    cheeks = np.zeros(gt.shape, bool)
    cheeks[v + 2:v + 14, u - 30:u - 14] = True
    cheeks[v + 2:v + 14, u + 14:u + 30] = True
    assert _dot_sharpness(s[IR].pixels, eyes) > 1.2 * _dot_sharpness(s[IR].pixels, cheeks)


def test_head_model_by_hand_is_rigid_but_trembles_and_drifts():
    def tip_track(subject):
        sets, cam = grab(f"sim://?realtime=0&subject={subject}&seed=3&fps=30", 12)
        pts = []
        for s in sets:
            gt = cam.ground_truth(D, s[D].frame_number)
            v, u = _tip(gt)
            pts.append((u, v, float(gt[v, u])))
        return np.array(pts)
    stand = tip_track("head_model")
    hand = tip_track("head_model_hand")
    assert np.ptp(stand[:, 2]) < 1e-6
    assert np.ptp(hand[:, 2]) > 0.0005
    # Frame-to-frame jitter (tremor) on top of the drift: second differences are not all zero.
    assert np.abs(np.diff(hand[:, 2], 2)).max() > 5e-5


def test_instrument_instances_differ_between_families():
    from drivers.sim.species import instrument_rng
    a = instrument_rng("train", "silicone_mask", 3).uniform(size=4)
    b = instrument_rng("heldout", "silicone_mask", 3).uniform(size=4)
    c = instrument_rng("field", "silicone_mask", 3).uniform(size=4)
    assert not np.allclose(a, b) and not np.allclose(a, c) and not np.allclose(b, c)
    np.testing.assert_array_equal(a, instrument_rng("train", "silicone_mask", 3).uniform(size=4))


@pytest.mark.parametrize("subject", ["silicone_mask", "mask_eyeholes"])
def test_worn_masks_follow_the_wearers_motion(subject):
    sets, cam = grab(f"sim://?realtime=0&subject={subject}&seed=3&fps=30", 6)
    g = [cam.ground_truth(D, s[D].frame_number) for s in sets]
    assert np.nanmax(np.abs(g[0] - g[-1])) > 1e-4
