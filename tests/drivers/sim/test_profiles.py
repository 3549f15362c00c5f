"""Camera profiles (``camera=NAME``) and the train, held-out and field families."""

import itertools

import numpy as np
import pytest

import drivers
from drivers.base import Capability
from drivers.errors import CapabilityUnsupported, InvalidUri
from drivers.frame import StreamKind
from drivers.sim.families import LIGHT_CCT, POOLS, presentation_query
from drivers.sim.modes import StreamMode, color_intrinsics, depth_intrinsics
from drivers.sim.modes import color_mode as sim_color_mode
from drivers.sim.profiles import GAIN_RS16, PROFILES, get_profile
from tests.helpers.sim import dot_energy, grab, plane_fit_rms

D, C, IR = StreamKind.DEPTH, StreamKind.COLOR, StreamKind.IR


@pytest.mark.parametrize("name", list(PROFILES))
def test_each_profile_delivers_its_own_calibration(name):
    prof = get_profile(name)
    # The profile's colour calibration is its 640x480 one; larger modes are in test_color_modes.py.
    cam = drivers.open(f"sim://?realtime=0&camera={name}&color_mode=640x480@30")
    cam.start()
    profiles = {p.kind: p for p in cam.profiles()}
    assert profiles[D].intrinsics == prof.depth_intrinsics == profiles[IR].intrinsics
    assert profiles[C].intrinsics == prof.color_intrinsics
    assert cam.extrinsics(D, C) == prof.depth_to_color
    assert prof.model in cam.info.name
    sets, _ = grab("", 1, cam)
    assert sets[0][D].depth_scale == pytest.approx(prof.depth_scale)
    assert sets[0][D].intrinsics == prof.depth_intrinsics and sets[0][C].intrinsics == prof.color_intrinsics
    # Every profile offers the 640x480 modes the simulator renders.
    for kind in ("depth", "ir", "color"):
        assert any(m[0] == kind and m[1:3] == (640, 480) for m in prof.stream_modes)


def test_fields_of_view_differ_as_the_datasheets_say():
    d435, d455, d415 = (get_profile(n) for n in ("d435", "d455", "d415"))
    assert d455.color_hfov_deg > d435.color_hfov_deg + 20      # 90° vs 69° colour module
    assert d415.hfov_deg < d435.hfov_deg - 15                    # 65° vs 87° depth
    assert (d435.stereo_baseline_m, d455.stereo_baseline_m, d415.stereo_baseline_m) == (0.050, 0.095, 0.055)
    # The same head looks smaller through the D455's wider colour lens: its width in the colour
    # image's ground truth, at the row of the nose tip.
    widths = {}
    for name in ("d435", "d455"):
        sets, cam = grab(f"sim://?realtime=0&seed=1&camera={name}&torso=0&color_mode=640x480@30", 1)
        gt = cam.ground_truth(C, sets[0][C].frame_number)
        v = np.unravel_index(np.nanargmin(gt), gt.shape)[0]
        widths[name] = int((gt[v] < 0.8).sum())
    ratio = get_profile("d455").color_intrinsics.fx / get_profile("d435").color_intrinsics.fx
    assert widths["d455"] / widths["d435"] == pytest.approx(ratio, rel=0.05)


def test_gemini335_fields_of_view_and_colour_offset_are_the_published_ones():
    g = get_profile("gemini335")
    # [G335]: 90° depth and 86° colour horizontally at the native 1280x800; the 640x480 modes crop it.
    native_depth = depth_intrinsics(g, StreamMode(1280, 800, 30))
    native_color = color_intrinsics(g, 1280, 800)
    assert np.degrees(2 * np.arctan(640 / native_depth.fx)) == pytest.approx(90.0, abs=0.5)
    assert np.degrees(2 * np.arctan(640 / native_color.fx)) == pytest.approx(86.0, abs=0.5)
    assert g.hfov_deg < 90.0 and g.color_hfov_deg < 86.0
    assert g.stereo_baseline_m == 0.050 and g.has_projector and not g.structured_light
    # [G330-CS]: colour 14.00 mm right of and 2.02 mm in front of the left imager.
    t = np.asarray(g.depth_to_color.translation)
    np.testing.assert_allclose(t, [0.0140, 0.0, 0.00202], atol=1e-6)
    # Its depth lens is neither the D435's nor the D455's (a different camera, not a renamed one).
    assert {round(p.depth_intrinsics.fx) for p in (get_profile("d435"), get_profile("d455"), g)} == {383, 391, 384}


def test_occlusion_band_beside_the_head_grows_with_the_baseline():
    def band(name):
        sets, cam = grab(f"sim://?realtime=0&seed=1&camera={name}&torso=0&distance_mm=600", 1)
        gt = cam.ground_truth(D, sets[0][D].frame_number)
        v = np.unravel_index(np.nanargmin(gt), gt.shape)[0]
        head = np.nonzero(gt[v] < 1.0)[0]
        # Invalid depth (ground truth NaN: seen by one imager only) just left of the head.
        left = np.isnan(gt[v, :head[0]])[::-1]
        return int(np.argmin(left)) if not left.all() else head[0]
    p435 = get_profile("d435")
    for name in ("d455", "gemini335"):
        p = get_profile(name)
        expected = (p.depth_intrinsics.fx * p.stereo_baseline_m) / (p435.depth_intrinsics.fx * p435.stereo_baseline_m)
        assert band(name) / band("d435") == pytest.approx(expected, rel=0.2)


def test_depth_noise_follows_each_profiles_baseline_and_matcher():
    rms = {}
    for name in ("d435", "d455", "astra", "gemini335"):
        res = []
        sets, cam = grab(f"sim://?realtime=0&subject=print&seed=5&camera={name}&distance_mm=700", 3)
        for s in sets:
            z = s[D].depth_m()
            gt = cam.ground_truth(D, s[D].frame_number)
            m = (np.abs(gt - 0.7) < 0.01) & np.isfinite(z)
            v, u = np.nonzero(m)
            core = m & (np.abs(np.arange(m.shape[0])[:, None] - v.mean()) < 25) & \
                (np.abs(np.arange(m.shape[1])[None, :] - u.mean()) < 25)
            res.append(plane_fit_rms(z, core))
        rms[name] = float(np.mean(res))

    def model(name):
        p = get_profile(name)
        sigma = 0.7 ** 2 * p.sigma_disparity_px / (p.depth_intrinsics.fx * p.stereo_baseline_m)
        return np.hypot(sigma, 0.001 / np.sqrt(12))
    for a, b in (("d435", "d455"), ("astra", "d455"), ("gemini335", "d455")):
        assert rms[a] / rms[b] == pytest.approx(model(a) / model(b), rel=0.35)


def test_d405_has_no_projector_and_its_ir_cut_imagers_see_no_dots():
    cam = drivers.open("sim://?realtime=0&camera=d405&seed=2")
    cam.start()
    assert Capability.PROJECTOR_CONTROL not in cam.capabilities
    with pytest.raises(CapabilityUnsupported):
        cam.set_projector(True)
    with pytest.raises(CapabilityUnsupported):
        cam.projector_power_range()
    sets, _ = grab("", 2, cam)
    s = sets[-1]
    gt = cam.ground_truth(D, s[D].frame_number)
    face = gt < np.nanmin(gt) + 0.04
    d435, cam2 = grab("sim://?realtime=0&camera=d435&seed=2", 2)
    gt2 = cam2.ground_truth(D, d435[-1][D].frame_number)
    assert dot_energy(s[IR].pixels, face) < 0.5 * dot_energy(d435[-1][IR].pixels, gt2 < np.nanmin(gt2) + 0.04)
    # It still measures depth on the textured face by passive stereo, in 0.1 mm units.
    z = s[D].depth_m()
    ok = face & (z > 0)
    assert ok.mean() > 0.3 * face.mean() and np.nanmedian(np.abs(z[ok] - gt[ok])) < 0.01
    assert s[D].depth_scale == pytest.approx(0.0001)


def test_d405_ir_follows_visible_skin_tone():
    def face_ir(name, skin):
        sets, cam = grab(f"sim://?realtime=0&camera={name}&seed=2&skin={skin}&projector=0&lux=500&cct=3000", 2)
        s = sets[-1]
        gt = cam.ground_truth(D, s[D].frame_number)
        return float(s[IR].pixels[gt < np.nanmin(gt) + 0.02].mean())
    nir_ratio = face_ir("d435", 1) / face_ir("d435", 6)
    vis_ratio = face_ir("d405", 1) / face_ir("d405", 6)
    assert vis_ratio > 2 * nir_ratio


def test_structured_light_has_no_depth_without_its_projector():
    cam = drivers.open("sim://?realtime=0&camera=astra&seed=2")
    cam.start()
    assert Capability.PROJECTOR_CONTROL in cam.capabilities and Capability.PROJECTOR_POWER not in cam.capabilities
    with pytest.raises(CapabilityUnsupported):
        cam.set_projector_power(150)
    sets, _ = grab("", 2, cam)
    s = sets[-1]
    gt = cam.ground_truth(D, s[D].frame_number)
    face = gt < np.nanmin(gt) + 0.04
    assert (s[D].pixels[face] > 0).mean() > 0.7
    cam.set_projector(False)
    off, _ = grab("", 5, cam)                 # the Astra's projector lands 2 frames late, +1 with jitter
    assert (off[-1][D].pixels > 0).sum() == 0
    # An active-stereo D435 with its projector off still matches the face's own texture in light.
    d435 = drivers.open("sim://?realtime=0&camera=d435&seed=2&projector=0&lux=1000")
    d435.start()
    sets, _ = grab("", 2, d435)
    gt = d435.ground_truth(D, sets[-1][D].frame_number)
    assert (sets[-1][D].pixels[gt < np.nanmin(gt) + 0.04] > 0).mean() > 0.3


def test_metadata_units_of_the_profiles():
    assert get_profile("d435").ir_units.gain == GAIN_RS16
    assert get_profile("d435").ir_units.report_gain(2.0) == 32.0
    assert get_profile("d435").color_units.report_exposure(0.0156) == 156       # 100 µs units
    assert get_profile("d435").ir_units.report_exposure(0.0085) == pytest.approx(8500)
    assert get_profile("astra").color_units.report_exposure(0.01) is None        # OpenNI: not reported
    assert get_profile("d405").projector is None and get_profile("d405").projector_power is None
    assert get_profile("astra").projector is not None and get_profile("astra").projector_power is None
    for p in PROFILES.values():
        assert p.projector_latency_frames >= 0 and 0 <= p.projector_jitter < 1


@pytest.mark.slow          # 80 URIs opened: 27-35 s at load ~5 on two shared cores
def test_families_keep_cameras_and_lights_apart():
    for a, b in itertools.combinations(POOLS, 2):
        assert not set(POOLS[a].cameras) & set(POOLS[b].cameras), (a, b)
        assert not set(POOLS[a].lights) & set(POOLS[b].lights), (a, b)
    for fam in POOLS:
        assert set(POOLS[fam].cameras) <= set(PROFILES) and set(POOLS[fam].lights) <= set(LIGHT_CCT)
    with pytest.raises(InvalidUri):
        drivers.open("sim://?family=train&camera=d455")
    with pytest.raises(InvalidUri):
        drivers.open("sim://?family=heldout&light=led")
    # The field family refuses the other families' cameras and lights, and they refuse its own.
    for uri in ("family=field&camera=d435", "family=field&camera=astra", "family=field&light=daylight",
                "family=field&light=fluorescent", "family=train&camera=gemini335", "family=heldout&light=halogen"):
        with pytest.raises(InvalidUri, match="family"):
            drivers.open(f"sim://?{uri}")
    picked = {drivers.open(f"sim://?family=heldout&identity={i}").profile.name for i in range(4)}
    assert picked == set(POOLS["heldout"].cameras)
    assert {drivers.open(f"sim://?family=field&identity={i}").profile.name for i in range(4)} == {"gemini335"}
    q1 = presentation_query("train", "mask_eyeholes", 3)
    assert q1 == presentation_query("train", "mask_eyeholes", 3)
    assert q1 != presentation_query("heldout", "mask_eyeholes", 3)
    f1 = presentation_query("field", "mask_eyeholes", 3)
    assert f1 == presentation_query("field", "mask_eyeholes", 3)
    assert f1 not in (q1, presentation_query("heldout", "mask_eyeholes", 3))
    for fam in POOLS:
        for i in range(80 // len(POOLS)):         # 80 URIs opened in all, however many families
            q = presentation_query(fam, "live", i)
            assert q["camera"] in POOLS[fam].cameras and q["light"] in POOLS[fam].lights
            lo, hi = LIGHT_CCT[q["light"]]
            assert lo <= float(q["cct"]) <= hi
            drivers.open("sim://?" + "&".join(f"{k}={v}" for k, v in q.items()))   # valid URIs
    with pytest.raises(ValueError, match="field"):
        presentation_query("lab", "live", 0)


def test_gemini335_offers_its_sensors_1920x1080_colour_and_still_chooses_1280x720():
    # [G336-SEEED]: colour 86° x 55° (16:9), up to 1920x1080 at 30 fps. The full mode has the
    # published field both ways and the focal length of a public 1920x1080 calibration (fx 1035.8).
    g = get_profile("gemini335")
    assert g.offers("color", 1920, 1080, 30) and not g.offers("color", 1920, 1080, 60)
    full = color_intrinsics(g, 1920, 1080)
    assert np.degrees(2 * np.arctan(960 / full.fx)) == pytest.approx(86.0, abs=0.5)
    assert np.degrees(2 * np.arctan(540 / full.fy)) == pytest.approx(55.0, abs=1.0)
    assert full.fx == pytest.approx(1035.8, rel=0.01)
    # 1280x720 is the same field at 2/3 scale, and still the mode the driver's rule chooses (the sim
    # camera's own choice, ``color_mode``), at the family's 30 fps and at a rate no mode offers
    # (every size a candidate); 1920x1080 streams only when forced.
    assert color_intrinsics(g, 1280, 720).fx == pytest.approx(full.fx * 2 / 3, rel=1e-9)
    for fps in (30.0, 8.0):
        chosen = sim_color_mode("", None, fps, g)
        assert (chosen.mode.width, chosen.mode.height) == (1280, 720) and "smallest" in chosen.why
    forced = sim_color_mode("1920x1080@30", None, 30.0, g)
    assert forced.mode == StreamMode(1920, 1080, 30.0) and forced.intrinsics == full
    with pytest.raises(InvalidUri, match="not offered"):
        sim_color_mode("1920x1080@60", None, 60.0, g)
