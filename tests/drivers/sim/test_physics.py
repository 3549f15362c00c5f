"""The simulator's physics: each test checks a modelled relation against measured pixels."""

import numpy as np
import pytest

from drivers.frame import StreamKind
from drivers.sim.optics import DEPTH_INTRINSICS, SIGMA_DISPARITY_PX, STEREO_BASELINE_M
from tests.helpers.sim import dot_energy, grab, plane_fit_rms

D, C, IR = StreamKind.DEPTH, StreamKind.COLOR, StreamKind.IR


def sigma_model(z):
    return z * z * SIGMA_DISPARITY_PX / (DEPTH_INTRINSICS.fx * STEREO_BASELINE_M)


def test_depth_at_nose_lies_within_noise_model_of_set_distance():
    sets, cam = grab("sim://?realtime=0&distance_mm=550&seed=3", 6)
    errs = []
    for s in sets:
        gt = cam.ground_truth(D, s[D].frame_number)
        # The nose tip is the nearest point of the face; the set distance is measured to it.
        v, u = np.unravel_index(np.nanargmin(gt), gt.shape)
        assert gt[v, u] == pytest.approx(0.550, abs=0.004)
        patch = s[D].depth_m()[v - 1:v + 2, u - 1:u + 2]
        errs.append(np.nanmedian(patch) - gt[v, u])
    errs = np.array(errs)
    assert np.all(np.isfinite(errs))
    assert np.abs(errs).max() < 4 * sigma_model(0.55) * 2.5 + 0.001   # quantisation is 1 mm


def test_depth_noise_grows_as_distance_squared():
    zs, sig = [], []
    for dist in (400, 600, 900, 1200):
        sets, cam = grab(f"sim://?realtime=0&subject=print&distance_mm={dist}&seed=5", 3)
        res = []
        for s in sets:
            z = s[D].depth_m()
            gt = cam.ground_truth(D, s[D].frame_number)
            # Centre of the print: a flat patch a little smaller than the face.
            m = np.abs(gt - dist / 1000) < 0.01
            m &= np.isfinite(z)
            v, u = np.nonzero(m)
            core = (m & (np.abs(np.arange(m.shape[0])[:, None] - v.mean()) < 25)
                    & (np.abs(np.arange(m.shape[1])[None, :] - u.mean()) < 25))
            res.append(plane_fit_rms(z, core))
        zs.append(dist / 1000)
        sig.append(float(np.mean(res)))
    slope = np.polyfit(np.log(zs), np.log(sig), 1)[0]
    assert 1.6 < slope < 2.5, (zs, sig)
    # Magnitude: the measured scatter sits within a factor two of the model (1 mm steps add a floor).
    for z, s in zip(zs, sig, strict=True):
        q = np.sqrt(sigma_model(z) ** 2 + 0.001 ** 2 / 12)
        assert 0.5 * q < s < 2.0 * q, (z, s, q)


def test_ir_dots_only_when_projector_on_and_switch_on_next_tick():
    sets, cam = grab("sim://?realtime=0&seed=2", 2)
    gt = cam.ground_truth(D, sets[-1][D].frame_number)
    face = gt < 0.65
    on = dot_energy(sets[-1][IR].pixels, face)
    cam.set_projector(False)
    sets_off, _ = grab("", 2, cam)
    off = dot_energy(sets_off[0][IR].pixels, face)
    assert sets_off[0][IR].metadata.projector_on is False
    assert on > 2.5 * off, (on, off)
    cam.set_projector(True)
    sets_on, _ = grab("", 1, cam)
    assert dot_energy(sets_on[0][IR].pixels, face) > 2.5 * off


def _face_stats(uri, ticks=3):
    sets, cam = grab(uri, ticks)
    gt = cam.ground_truth(C, sets[0][C].frame_number)
    face = gt < 0.6
    grays = [s[C].pixels.mean(axis=2)[face] for s in sets]
    mean = float(np.mean([g.mean() for g in grays]))
    # Temporal noise on the static wall (the face moves between frames; the wall does not).
    wall = gt > 1.5
    g0, g1 = (s[C].pixels[..., 1][wall].astype(np.float32) for s in sets[:2])
    temporal = float(np.std(g0 - g1) / np.sqrt(2))
    md = sets[-1][C].metadata
    return mean, temporal, md.exposure_us * md.gain


def test_lux_sets_exposure_gray_level_and_noise_as_modelled():
    bright = _face_stats("sim://?realtime=0&lux=1000&seed=4")
    normal = _face_stats("sim://?realtime=0&lux=300&seed=4")
    dim = _face_stats("sim://?realtime=0&lux=30&seed=4")
    dark = _face_stats("sim://?realtime=0&lux=2&seed=4")
    # Within the auto-exposure range the face keeps its gray level and exposure x gain ~ 1/lux.
    assert abs(bright[0] - normal[0]) < 15 and abs(dim[0] - normal[0]) < 15
    assert normal[2] / bright[2] == pytest.approx(1000 / 300, rel=0.25)
    assert dim[2] / normal[2] == pytest.approx(300 / 30, rel=0.25)
    # Same electrons at unity gain give the same noise; below that, gain amplifies shot noise.
    assert bright[1] == pytest.approx(normal[1], rel=0.25)
    assert dim[1] > 1.3 * normal[1]
    # Below the range the sensor runs out of exposure and gain: the face gets darker.
    assert dark[0] < normal[0] - 30


def test_color_temperature_leaves_a_cast_white_balance_reports_it():
    warm, cam = grab("sim://?realtime=0&cct=2700&seed=1", 2)
    cool, _ = grab("sim://?realtime=0&cct=7000&seed=1", 2)
    wm = warm[-1][C].pixels.reshape(-1, 3).mean(axis=0)
    cm = cool[-1][C].pixels.reshape(-1, 3).mean(axis=0)
    # BGR: the warm scene keeps a red-over-blue cast after partial white balance.
    assert (wm[2] - wm[0]) > (cm[2] - cm[0]) + 10
    assert warm[-1][C].metadata.white_balance_k == pytest.approx(2700, rel=0.1)


def test_print_is_planar_curved_print_cylindrical_mask_has_relief():
    def region(uri):
        sets, cam = grab(uri, 2)
        s = sets[-1]
        gt = cam.ground_truth(D, s[D].frame_number)
        z = s[D].depth_m()
        m = (gt < 0.58) & np.isfinite(z)
        return z, m

    z, m = region("sim://?realtime=0&subject=print&seed=7")
    assert plane_fit_rms(z, m) < 0.0025
    z, m = region("sim://?realtime=0&subject=print_curved&seed=7")
    assert plane_fit_rms(z, m) > 0.005
    v, u = np.nonzero(m)
    # A cylinder about the vertical axis: depth is quadratic in the column and flat along rows.
    a = np.c_[u ** 2, u, v, np.ones_like(u)].astype(float)
    coef, *_ = np.linalg.lstsq(a, z[m], rcond=None)
    assert np.sqrt(np.mean((a @ coef - z[m]) ** 2)) < 0.0025
    z, m = region("sim://?realtime=0&subject=mask&seed=7")
    assert plane_fit_rms(z, m) > 0.008
    # The nose stands well out of the face: nearest point vs the median of the face region.
    assert np.median(z[m]) - np.min(z[m]) > 0.015


def test_screen_has_low_nir_and_depth_holes():
    sets, cam = grab("sim://?realtime=0&subject=screen_still&seed=1", 2)
    s = sets[-1]
    gt = cam.ground_truth(D, s[D].frame_number)
    m = gt < 0.55
    assert (s[D].pixels[m] > 0).mean() < 0.3            # glass returns too little pattern to match
    live, cam2 = grab("sim://?realtime=0&seed=1", 2)
    gl = cam2.ground_truth(D, live[-1][D].frame_number)
    assert s[IR].pixels[m].mean() < 0.3 * live[-1][IR].pixels[gl < 0.6].mean()


def test_live_subject_blinks_and_rigid_head_model_does_not_move():
    sets, cam = grab("sim://?realtime=0&seed=0&fps=30", 40)
    # The first blink comes within 1.2 s; the scene state reports it.
    assert cam.scene is not None
    model, cam2 = grab("sim://?realtime=0&subject=head_model&seed=0", 2)
    g1 = cam2.ground_truth(D, model[0][D].frame_number)
    g2 = cam2.ground_truth(D, model[1][D].frame_number)
    assert np.nanmax(np.abs(g1 - g2)) < 1e-6
    l1 = cam.ground_truth(D, sets[-2][D].frame_number)
    l2 = cam.ground_truth(D, sets[-1][D].frame_number)
    assert np.nanmax(np.abs(l1 - l2)) > 1e-4
