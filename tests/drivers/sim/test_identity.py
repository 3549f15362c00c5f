"""Identities: every parameter does, in measured pixels and ground truth, what it claims."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from agent.face.detector import FaceDetector
from agent.face.mesh import face_mesh
from drivers.frame import StreamKind
from drivers.sim.identity import SKIN_TONES, Identity
from tests.helpers.sim import grab

D, C, IR = StreamKind.DEPTH, StreamKind.COLOR, StreamKind.IR
BASE = "sim://?realtime=0&seed=6&identity=12&glasses=none&beard=0&fringe=0"


def _gt(uri: str, ticks: int = 1):
    sets, cam = grab(uri, ticks)
    return sets, cam, cam.ground_truth(D, sets[-1][D].frame_number)


def _tip(gt: np.ndarray) -> tuple[int, int]:
    v, u = np.unravel_index(np.nanargmin(gt), gt.shape)
    return int(v), int(u)


def test_nose_relief_follows_nose_mm_in_ground_truth_depth():
    # distance_mm is measured to the nose tip, so a longer nose leaves the tip where it was and
    # moves the cheeks back by the difference.
    out = {}
    for nose in (16, 30):
        _, cam, gt = _gt(f"{BASE}&nose_mm={nose}&distance_mm=500")
        v, u = _tip(gt)
        dx = int(round(0.040 * cam.profile.depth_intrinsics.fx / 0.55))
        cheeks = np.nanmedian(np.r_[gt[v - 2:v + 3, u - dx - 2:u - dx + 3].ravel(),
                                    gt[v - 2:v + 3, u + dx - 2:u + dx + 3].ravel()])
        out[nose] = (float(gt[v, u]), float(cheeks - gt[v, u]))
    assert out[16][0] == pytest.approx(0.500, abs=0.003) and out[30][0] == pytest.approx(0.500, abs=0.003)
    assert out[30][1] - out[16][1] == pytest.approx(0.014, abs=0.002)


@pytest.mark.parametrize("key,low,high", [("brow_mm", 0, 10), ("chin_mm", 0, 14)])
def test_brow_and_chin_depth_follow_their_keys(key, low, high):
    _, _, g_lo = _gt(f"{BASE}&{key}={low}")
    _, _, g_hi = _gt(f"{BASE}&{key}={high}")
    diff = g_lo - g_hi                       # positive where the high setting stands nearer
    v_tip, _ = _tip(g_lo)
    assert np.nanmax(diff) == pytest.approx((high - low) / 1000, abs=0.0015)
    v, _ = np.unravel_index(np.nanargmax(diff), diff.shape)
    # The brow stands above the nose tip, the chin below it.
    assert (v < v_tip - 10) if key == "brow_mm" else (v > v_tip + 20)


def test_face_width_sets_the_head_silhouette():
    widths = {}
    for w in (124, 158):
        _, _, gt = _gt(f"{BASE}&face_width_mm={w}&torso=0")
        v, _ = _tip(gt)
        row = gt[v - 25] < 0.7                   # at eye level, the head against the wall
        widths[w] = row.sum()
    # The hair adds the same few millimetres to both sides of either head.
    assert widths[158] / widths[124] == pytest.approx((158 + 14) / (124 + 14), rel=0.06)


def test_ipd_as_measured_by_the_face_mesh_scales_with_ipd_mm():
    det = FaceDetector()
    ipd = {}
    for mm in (56, 70):
        sets, _ = grab(f"{BASE}&ipd_mm={mm}", 3)
        img = sets[-1][C].pixels
        d = max(det.detect(img), key=lambda d: d.score)
        ipd[mm] = face_mesh(img, d).ipd_px
    assert ipd[70] / ipd[56] == pytest.approx(70 / 56, rel=0.06)


def _linear(px: np.ndarray) -> np.ndarray:
    c = px.astype(np.float32) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _cheek_means(uri: str) -> tuple[float, float]:
    """(linear colour per unit exposure x gain, IR level) on the cheeks, projector off."""
    sets, cam = grab(uri, 3)
    s = sets[-1]
    gt_d = cam.ground_truth(D, s[D].frame_number)
    gt_c = cam.ground_truth(C, s[C].frame_number)

    def cheek_mask(gt, fx):
        v, u = _tip(gt)
        dx = int(round(0.04 * fx / 0.53))
        m = np.zeros(gt.shape, bool)
        m[v - 3:v + 6, u - dx - 4:u - dx + 4] = True
        m[v - 3:v + 6, u + dx - 4:u + dx + 4] = True
        return m
    mc = cheek_mask(gt_c, cam.profile.color_intrinsics.fx)
    md = cheek_mask(gt_d, cam.profile.depth_intrinsics.fx)
    meta = s[C].metadata
    lin = float(_linear(s[C].pixels)[mc].mean()) / (meta.exposure_us * meta.gain)
    return lin, float(s[IR].pixels[md].mean())


def test_skin_tone_changes_visible_reflectance_far_more_than_nir():
    q = f"{BASE}&projector=0&lux=800&cct=3000"
    light_vis, light_ir = _cheek_means(f"{q}&skin=1")
    dark_vis, dark_ir = _cheek_means(f"{q}&skin=6")
    vis_ratio = light_vis / dark_vis
    nir_ratio = light_ir / dark_ir
    assert vis_ratio > 4.0
    # 850 nm reflectance I : VI is 0.62 : 0.43 in the model (published spectra).
    assert nir_ratio == pytest.approx(SKIN_TONES[1][1] / SKIN_TONES[6][1], rel=0.15)


def _eye_region_means(uri: str) -> tuple[float, float, float]:
    """(colour mean, IR mean, share of clipped IR pixels) around the eyes."""
    sets, cam = grab(uri, 3)
    s = sets[-1]
    out = []
    for kind, fx in ((C, cam.profile.color_intrinsics.fx), (D, cam.profile.depth_intrinsics.fx)):
        gt = cam.ground_truth(kind, s[kind].frame_number)
        v, u = _tip(gt)
        up = int(round(0.030 * fx / 0.53))
        half = int(round(0.045 * fx / 0.53))
        m = np.zeros(gt.shape, bool)
        m[v - up - 4:v - up + 5, u - half:u + half] = True
        out.append(m)
    ir = s[IR].pixels[out[1]]
    return float(s[C].pixels[out[0]].mean()), float(ir.mean()), float((ir == 255).mean())


def test_tinted_glasses_darken_the_eyes_in_colour_not_in_nir():
    q = f"{BASE}&lux=400&projector=0"
    none_c, none_ir, _ = _eye_region_means(f"{q}&glasses=none")
    tint_c, tint_ir, _ = _eye_region_means(f"{q}&glasses=tinted")
    clear_c, _, _ = _eye_region_means(f"{q}&glasses=clear")
    assert tint_c < 0.75 * none_c
    assert clear_c > tint_c + 10
    # Dyed lenses pass most 850 nm light: the IR eye region keeps most of its level.
    assert tint_ir > 0.6 * none_ir


def test_glasses_mirror_the_projector_into_saturated_glints_that_stereo_cannot_match():
    def lens_region(uri):
        sets, cam = grab(uri, 3)
        s = sets[-1]
        gt = cam.ground_truth(D, s[D].frame_number)
        v, u = _tip(gt)
        m = np.zeros(gt.shape, bool)
        m[v - 45:v - 3, u - 40:u + 41] = True          # both lenses, above the nose tip
        return s, gt, m
    s0, _, m0 = lens_region(f"{BASE}&lux=150&glasses=none")
    s1, gt, m1 = lens_region(f"{BASE}&lux=150&glasses=clear")
    assert (s0[IR].pixels[m0] == 255).sum() == 0
    glint = (s1[IR].pixels == 255) & m1
    assert glint.sum() >= 5
    # No depth where the glints are, though ground truth (the face behind the lens) has it.
    assert (s1[D].pixels[glint] == 0).mean() > 0.9 and np.isfinite(gt[glint]).all()
    # Without the projector the glints go: they are its mirror image.
    s2, _, m2 = lens_region(f"{BASE}&lux=150&glasses=clear&projector=0")
    assert (s2[IR].pixels[m2] == 255).sum() == 0


def test_beard_darkens_the_chin_in_nir_and_stands_out_in_depth():
    q = f"{BASE}&projector=0&lux=600&cct=3000"
    res = {}
    for b in (0, 1):
        sets, cam = grab(f"{q}&beard={b}", 2)
        s = sets[-1]
        gt = cam.ground_truth(D, s[D].frame_number)
        v, u = _tip(gt)
        down = int(round(0.065 * cam.profile.depth_intrinsics.fx / 0.53))
        m = np.zeros(gt.shape, bool)
        m[v + down - 4:v + down + 4, u - 6:u + 6] = True
        res[b] = (float(s[IR].pixels[m].mean()), float(np.nanmedian(gt[m])))
    assert res[1][0] < 0.85 * res[0][0]
    assert res[0][1] - res[1][1] > 0.002


def test_fringe_covers_the_forehead_with_hair():
    res = {}
    for f in (0, 1):
        sets, cam = grab(f"{BASE}&fringe={f}&lux=400", 2)
        s = sets[-1]
        gt = cam.ground_truth(C, s[C].frame_number)
        v, u = _tip(gt)
        px_per_m = cam.profile.color_intrinsics.fx / 0.53
        m = np.zeros(gt.shape, bool)
        m[v - int(0.056 * px_per_m):v - int(0.045 * px_per_m), u - 15:u + 15] = True   # above the brows
        res[f] = (float(s[C].pixels[m].mean()), gt)
    assert res[1][0] < 0.95 * res[0][0]        # identity 12's light-brown hair is darker than its skin
    lift = (res[0][1] - res[1][1])[m]
    # The fringe lies 4 mm deep on the forehead (its ragged lower edge crosses the window).
    assert np.nanmax(lift) == pytest.approx(0.004, abs=0.0012)   # along the slanted forehead
    assert np.mean(lift > 0.002) > 0.3


@pytest.mark.parametrize("index", [0, 1, 2, 3, 5, 8, 9, 11, 13, 17])
def test_face_models_detect_and_landmark_every_kind_of_identity(index):
    """Skin I-VI, clear and tinted glasses, beards, fringes, long hair: one face, a confident mesh,
    and an IPD that matches the identity's."""
    ident = Identity.draw(index)
    sets, cam = grab(f"sim://?realtime=0&seed=2&identity={index}&distance_mm=500", 3)
    img = sets[-1][C].pixels
    dets = FaceDetector().detect(img)
    assert len(dets) == 1 and dets[0].score > 0.8
    mesh = face_mesh(img, dets[0])
    assert mesh.presence > 0.9
    # IPD in pixels over the identity's IPD: the same scale for everyone at one distance.
    scale = mesh.ipd_px / (ident.ipd_m * 1000)
    ref = Identity.reference()
    ref_sets, _ = grab("sim://?realtime=0&seed=2&identity=0&distance_mm=500", 3)
    ref_img = ref_sets[-1][C].pixels
    ref_scale = face_mesh(ref_img, FaceDetector().detect(ref_img)[0]).ipd_px / (ref.ipd_m * 1000)
    assert scale == pytest.approx(ref_scale, rel=0.12)


def test_identity_draws_are_deterministic_and_families_are_different_people():
    assert Identity.draw(7) == Identity.draw(7)
    assert Identity.draw(7, "train") != Identity.draw(7, "heldout") != Identity.draw(7)
    field = [Identity.draw(i, "field") for i in range(1, 30)]
    others = [Identity.draw(i, fam) for i in range(1, 30) for fam in ("any", "train", "heldout")]
    assert field == [Identity.draw(i, "field") for i in range(1, 30)]
    assert all(f != o for f in field for o in others)
    skins = {Identity.draw(i).skin for i in range(1, 60)}
    assert skins == {1, 2, 3, 4, 5, 6}
    noses = [Identity.draw(i).nose_m for i in range(1, 200)]
    ipds = [Identity.draw(i).ipd_m for i in range(1, 200)]
    assert 0.014 <= min(noses) < 0.016 and 0.030 < max(noses) <= 0.032
    assert min(ipds) >= 0.054 and max(ipds) <= 0.072 and np.std(ipds) > 0.003
    assert {Identity.draw(i).glasses for i in range(1, 60)} == {"none", "clear", "tinted"}


def test_same_uri_gives_bit_identical_frames_in_another_process():
    uri = ("sim://?realtime=0&seed=3&identity=8&family=heldout&subject=silicone_mask&background=moving"
           "&bystander=1&light=mixed&fps=5")
    code = ("import hashlib, drivers\n"
            f"c = drivers.open({uri!r}); c.start(); h = hashlib.sha256()\n"
            "for _ in range(9):\n    h.update(c.read().pixels.tobytes())\n"
            "print(h.hexdigest())\n")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
            for _ in range(2)]
    cam = __import__("drivers").open(uri)
    cam.start()
    h = hashlib.sha256()
    for _ in range(9):
        h.update(cam.read().pixels.tobytes())
    assert runs[0] == runs[1] == h.hexdigest()
