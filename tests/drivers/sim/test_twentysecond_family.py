"""The twenty-second family: the Intel RealSense D555 profile (the D455's optics on PoE, no IR-pass filter), a mall
atrium's rotating holiday gobo sweeping sharp snowflakes or stars over the face and the wall (``atrium.GoboSpot``),
a storm's multi-stroke lightning through a branch's glass front (``atrium.Lightning``), its people's long bangs over
the brows (``identity.BANGS_*``, ``head.bangs_parts``), and the earlier families (the twenty-first included) left as
they were.

Nothing here computes a verdict, a score or a quality decision on the twenty-second family: it was the unseen test
family of the thirty-third session, built and not run by its builder, and evaluated once since (docs/liveness.md,
*The twenty-second family*). Tests read its lights' fields, its frames' light, its people's geometry and pools only
(rendering checks)."""

import dataclasses

import numpy as np
import pytest

from drivers.sim import atrium
from drivers.sim.config import SimConfig
from drivers.sim.families import LIGHT_CCT, LIGHT_LUX, POOLS
from drivers.sim.head import BROW_ABOVE_EYE_M, bangs_parts, head_layers
from drivers.sim.identity import BANGS_REACH_MM, BANGS_SHARE, BANGS_STANDOFF_MM, Identity
from drivers.sim.profiles import get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from drivers.sim.subject import MISS
from tests.drivers.sim.test_eighteenth_family import _CORNEA_CAP_MAKEUP
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.drivers.sim.test_fourteenth_family import _LATER
from tests.drivers.sim.test_twentyfirst_family import _AGE_WINTER_PIERCING
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import assert_another_unit_resolving_eyes, assert_leak_and_cornea_on_every_uri
from tests.helpers.sim import lit_and_bare, scene_lights, session_camera

EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
           "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth",
           "twentieth", "twentyfirst")
LIGHTS = ("gobo", "lightning")


def test_d555_profile_is_the_d455s_optics_without_an_ir_pass_filter_on_another_unit():
    g, d455 = get_profile("d555"), get_profile("d455")
    assert g.stereo_baseline_m == 0.095 and g.has_projector and not g.structured_light
    assert g.projector_power == d455.projector_power                           # the D4's laser power, in steps
    assert g.ir_band == "nir" and g.visible_response == (0.25, 0.5, 0.25)      # the D455's colour imagers, unfiltered
    assert g.depth_range_m[0] < 0.45 < 0.52 < g.depth_range_m[1]
    # At 1280x800 (640x480 is that image x0.6, cropped): 87° depth and 90° colour within ±3°.
    native = [float(np.degrees(2 * np.arctan(640 * 0.6 / i.fx))) for i in (g.depth_intrinsics, g.color_intrinsics)]
    assert g.color_shutter == "global" and 84.0 < native[0] < 90.0 and 87.0 < native[1] < 93.0
    assert g.projector_jitter > d455.projector_jitter                          # a network property write
    assert SimConfig.from_query({"family": "twentysecond"}).ir_leak_on
    assert_another_unit_resolving_eyes(g)


def test_twentysecond_family_draws_its_own_pools_with_the_leak_and_the_cornea():
    assert_leak_and_cornea_on_every_uri("twentysecond", "d555", LIGHTS)
    # Inside the capture spec's 2300-7500 K and the envelope's 15-7500 lux.
    assert LIGHT_LUX["gobo"] == (150.0, 600.0) and LIGHT_CCT["gobo"] == (3000, 4200)
    assert LIGHT_LUX["lightning"] == (100.0, 800.0) and LIGHT_CCT["lightning"] == (5500, 7500)
    assert LIGHT_NIR_SHARE["gobo"] == LIGHT_NIR_SHARE["metal_halide"]
    assert LIGHT_NIR_SHARE["lightning"] == LIGHT_NIR_SHARE["daylight"]
    assert atrium.HALOGEN_NIR_SHARE == LIGHT_NIR_SHARE["halogen"]
    for e in EARLIER:
        s = Scene(SimConfig.from_query({"family": e, "seed": "1"}))
        assert s.gobo is None and s.lightning is None
    assert not set(LIGHTS) & {light for f, p in POOLS.items() if f != "twentysecond" for light in p.lights}


# --- The gobo -------------------------------------------------------------------------------------------------
def test_each_session_draws_its_own_gobo_from_the_gallery_turning_at_its_own_rate():
    gobos = scene_lights("twentysecond", "gobo", "gobo")
    assert all(isinstance(g, atrium.GoboSpot) for g in gobos)
    assert len({g.seed for g in gobos}) == len(gobos)
    assert {g.nir_share for g in gobos} == {atrium.HALOGEN_NIR_SHARE, atrium.DISCHARGE_NIR_SHARE}
    assert {g.tint for g in gobos} == {(1.0, 1.0, 1.0), atrium.DICHROIC_BGR}
    assert {g.points for g in gobos} == {5, 6} and {np.sign(g.rev_s) for g in gobos} == {-1.0, 1.0}
    for g in gobos:
        _, y, _ = g.direction
        assert abs(np.linalg.norm(g.direction) - 1.0) < 1e-9
        assert -np.sin(np.deg2rad(50.0)) - 1e-9 <= y <= -np.sin(np.deg2rad(20.0)) + 1e-9     # above the face
        assert atrium.GOBO_LUX[0] <= g.lux <= atrium.GOBO_LUX[1]
        assert atrium.GOBO_REV_S[0] <= abs(g.rev_s) <= atrium.GOBO_REV_S[1]
        assert atrium.GOBO_AXIS_M[0] - 1e-9 <= float(np.hypot(*g.axis)) <= atrium.GOBO_AXIS_M[1] + 1e-9
        e1, e2 = g.basis()
        assert abs(e1 @ np.asarray(g.direction)) < 1e-9 and abs(e2 @ np.asarray(g.direction)) < 1e-9


def test_the_pattern_turns_about_the_beams_axis_with_sharp_edges_the_same_at_every_depth():
    g = scene_lights("twentysecond", "gobo", "gobo", n=1)[0]
    rng = np.random.default_rng(3)
    u = rng.uniform(-0.4, 0.4, 4000).astype(np.float32)
    v = rng.uniform(-0.4, 0.4, 4000).astype(np.float32)
    p0 = g.pattern(u, v, 0.0)
    assert 0.05 < float((p0 > 0.5).mean()) < 0.6                     # cut-outs and the steel between
    # A frame later the wheel has turned by 2 pi rev_s / 30 about the axis: the pattern there is the pattern
    # here, rotated; and it differs from the one a frame before.
    dt = 1.0 / 30.0
    a = 2.0 * np.pi * g.rev_s * dt
    ax, ay = g.axis
    ru = ax + np.cos(a) * (u - ax) - np.sin(a) * (v - ay)
    rv = ay + np.sin(a) * (u - ax) + np.cos(a) * (v - ay)
    assert np.allclose(g.pattern(ru.astype(np.float32), rv.astype(np.float32), dt), p0, atol=2e-3)
    moved = float((np.abs(g.pattern(u, v, dt) - p0) > 0.5).mean())
    assert moved > 0.002
    # Sharp: across a cut-out's edge the light goes from none to full within the lens's blur (edge_m), not the
    # cell's size; a point's light depends on where it lies across the beam only (moved along the beam, none
    # of its pattern coordinates change).
    line = np.linspace(-0.4, 0.4, 80001, dtype=np.float32)
    prof = g.pattern(line, np.full_like(line, np.float32(0.05)), 0.0)
    partial = float(((prof > 0.02) & (prof < 0.98)).sum()) * float(line[1] - line[0])
    edges = int((np.abs(np.diff((prof > 0.5).astype(int))) > 0).sum())
    assert edges >= 2 and partial / edges < 1.2 * g.edge_m
    pts = np.stack([u, v, np.full_like(u, 0.45)], axis=1).astype(np.float64)
    e1, e2 = g.basis()
    shifted = pts + 0.8 * np.asarray(g.direction)
    assert np.allclose(pts @ e1, shifted @ e1) and np.allclose(pts @ e2, shifted @ e2)


_GOBO = ("sim://?realtime=0&seed={seed}&family=twentysecond&identity=2&light=gobo&lux=300&cct=3500"
         "&projector=0&distance_mm=450&yaw=0&pitch=0&background=plain")


def test_the_gobo_sweeps_its_cut_outs_over_the_face_and_the_wall_with_its_lamps_850_nm():
    cam, _, dmaps, face = session_camera(_GOBO, "twentysecond", "gobo",
                                         lambda s: s.gobo.tint_nir == 1.0 and abs(s.gobo.rev_s) > 0.15)
    g = cam._scene.gobo
    view = cam._depth_view
    wall = np.isfinite(dmaps.z) & ~face
    u, v = g.plane_coords(view, dmaps.z)
    t = next(k / 30.0 for k in range(300) if float((g.pattern(u, v, k / 30.0)[face] > 0.5).mean()) > 0.15)
    lit0, lit1 = g.light(view, dmaps.z, t), g.light(view, dmaps.z, t + 1.0 / 30.0)
    # On the face and on the wall, and a frame later elsewhere on the face.
    assert float((lit0[face] > 0.3).mean()) > 0.1 and float((lit0[wall] > 0.3).mean()) > 0.02
    assert float((np.abs(lit1 - lit0)[face] > 0.3).mean()) > 0.01
    [(ir_lit, _)], [(ir_bare, _)] = lit_and_bare(cam, face, "gobo", (t,), (t,))
    gain = ir_lit.astype(np.float64) - ir_bare
    bright, dark = face & (lit0 > 0.5), face & (lit0 == 0.0)
    # The lamp's 850 nm (and its visible, leaking into the unfiltered imagers) where the cut-outs fall; none
    # between them.
    assert float(gain[bright].mean()) > 1.0 and abs(float(gain[dark].mean())) < 0.05 * float(gain[bright].mean())


# --- The storm ------------------------------------------------------------------------------------------------
def test_each_session_draws_0_to_3_flashes_of_2_to_6_strokes_20_to_120_ms_apart():
    storms = scene_lights("twentysecond", "lightning", "lightning", n=60)
    assert all(isinstance(s, atrium.Lightning) for s in storms)
    assert {s.flashes for s in storms} == {0, 1, 2, 3}
    for s in storms:
        assert abs(np.linalg.norm(s.direction) - 1.0) < 1e-9
        assert abs(s.direction[0]) >= np.sin(np.deg2rad(40.0)) * np.cos(np.deg2rad(30.0)) - 1e-9     # a side
        starts = [st for st, _, _ in s.strokes]
        assert starts == sorted(starts) and 0.0 <= min(starts, default=0.0)
        assert max(starts, default=0.0) < atrium.LIGHTNING_CYCLE_S
        # The flashes a second apart at least (one flash's strokes, then the next's).
        firsts = [flash[0][0] for flash in s.flash_strokes]
        lasts = [flash[-1][0] for flash in s.flash_strokes]
        assert all(f1 - l0 > 1.0 - 5 * atrium.STROKE_GAP_S[1] for l0, f1 in zip(lasts, firsts[1:], strict=False))
        for flash in s.flash_strokes:
            gaps = np.diff([st for st, _, _ in flash])
            assert all(atrium.STROKE_GAP_S[0] - 1e-9 <= gp <= atrium.STROKE_GAP_S[1] + 1e-9 for gp in gaps)
            assert atrium.LIGHTNING_STROKES[0] <= len(flash) <= atrium.LIGHTNING_STROKES[1]
            first = flash[0][1]
            assert atrium.LIGHTNING_PEAK_LUX[0] <= first <= atrium.LIGHTNING_PEAK_LUX[1]
            assert all(atrium.LATER_STROKE[0] * first - 1e-6 <= p <= first + 1e-6 for _, p, _ in flash[1:])
            assert all(atrium.STROKE_DECAY_S[0] <= tau <= atrium.STROKE_DECAY_S[1] for _, _, tau in flash)
    assert {len(flash) for s in storms for flash in s.flash_strokes} == set(range(2, 7))


def test_a_stroke_lights_a_frame_or_two_and_the_flashes_repeat_on_the_cycle():
    s = next(x for x in scene_lights("twentysecond", "lightning", "lightning", n=60) if x.flashes >= 1)
    start, peak, tau = s.strokes[0]
    frame = atrium.FRAME_S
    # The frame opening at the stroke holds its light (peak x tau x (1 - e^-(33 ms/tau)) / 33 ms, plus any later
    # stroke inside it); two frames after its flash's last stroke, nearly nothing; before it, nothing.
    assert s.lux(start, start + frame) >= peak * tau * (1.0 - np.exp(-frame / tau)) / frame - 1e-6
    assert s.lux(start - 2 * frame, start - frame) == pytest.approx(0.0, abs=1e-9)
    last = max(st for st, _, _ in s.strokes if st - start < 0.8)
    assert s.lux(last + 4 * frame, last + 5 * frame) < 0.05 * s.lux(start, start + frame)
    # The 10 s cycle repeats (a session opened late, t0_s up to 3600 s).
    for k in (1, 7, 360):
        t = start + k * atrium.LIGHTNING_CYCLE_S
        assert s.lux(t, t + frame) == pytest.approx(s.lux(start, start + frame), rel=1e-6)


_STORM = ("sim://?realtime=0&seed={seed}&family=twentysecond&identity=2&light=lightning&lux=300&cct=6500"
          "&projector=0&distance_mm=450&yaw=0&pitch=0&background=plain")


def test_a_stroke_adds_broadband_light_with_its_850_nm_lines_and_nothing_between_flashes():
    cam, _, _, face = session_camera(_STORM, "twentysecond", "lightning",
                                     lambda s: s.lightning.flashes == 1 and s.lightning.strokes[0][0] > 1.0)
    s = cam._scene.lightning
    start = s.strokes[0][0]
    t_flash, t_dark = start - cam.cfg.t0_s, start - 1.0 - cam.cfg.t0_s     # the first stroke's frame; a second before
    assert s.lux(start - 1.0, start - 1.0 + atrium.FRAME_S) == 0.0
    [(ir_flash, c_flash), (ir_dark, c_dark)], [(ir_bare, c_bare)] = lit_and_bare(
        cam, face, "lightning", (t_flash, t_dark), (t_dark,))
    assert np.array_equal(ir_dark, ir_bare) and np.allclose(c_dark, c_bare, atol=0.05)
    # Bright in every colour and in the 850 nm band (0.25 per lux against daylight's 0.09).
    assert np.all(c_flash > c_bare + 1.0)
    assert float(ir_flash[face].mean()) > float(ir_bare[face].mean()) + 2.0
    assert atrium.LIGHTNING_NIR_SHARE > LIGHT_NIR_SHARE["daylight"]


# --- The bangs ------------------------------------------------------------------------------------------------
def test_a_share_of_the_twentyseconds_people_wear_long_bangs_and_nobody_elsewhere():
    people = [Identity.draw(i, "twentysecond") for i in range(400)]
    wearing = [p for p in people if p.bangs is not None]
    assert abs(len(wearing) / len(people) - BANGS_SHARE) < 0.05
    assert all(not p.fringe for p in wearing)                       # the bangs take the shorter fringe's place
    swept = [p for p in wearing if p.bangs is not None and p.bangs[1] != 0.0]
    assert 0.3 < len(swept) / len(wearing) < 0.7
    for p in wearing:
        assert p.bangs is not None
        reach, sweep, wisp, standoff = p.bangs
        assert BANGS_REACH_MM[0] <= reach <= BANGS_REACH_MM[1] and abs(sweep) <= 15.0
        assert 0.0 <= wisp <= 0.5 and BANGS_STANDOFF_MM[0] <= standoff <= BANGS_STANDOFF_MM[1]
    assert all(Identity.draw(i, f).bangs is None for f in EARLIER + ("any",) for i in range(30))


def test_the_bangs_cover_the_forehead_and_the_brows_down_to_their_edge_and_nothing_else_changes():
    p = next(q for q in (Identity.draw(i, "twentysecond") for i in range(1, 400))
             if q.bangs is not None and q.glasses == "none" and q.bangs[0] > 2.0 and q.bangs[2] < 0.2
             and q.bangs[1] == 0.0)
    assert p.bangs is not None
    bare = dataclasses.replace(p, bangs=None)
    worn, plain = head_layers(p), head_layers(bare)
    lm = worn.landmarks
    alpha, edge = bangs_parts(p, worn.gx, worn.gy, lm)
    on_head = plain.height > MISS / 2
    covered = (alpha > 0.0) & on_head
    # Every change lies under the hair; the eyes' weight drops only there.
    assert np.array_equal(worn.height[~covered], plain.height[~covered])
    assert np.array_equal(worn.albedo[~covered], plain.albedo[~covered])
    assert np.array_equal(worn.nir[~covered], plain.nir[~covered])
    assert np.all(worn.eye_weight[~covered] == plain.eye_weight[~covered])
    # Nothing below the edge (its clumps' tips and softness aside); the brows over each eye under the hair.
    assert not (alpha[worn.gy > edge + 0.0015 + 0.0015] > 0).any()
    brow_y = 0.5 * (lm.eyes[0][1] + lm.eyes[1][1]) - BROW_ABOVE_EYE_M
    row = int(np.argmin(np.abs(worn.gy[:, 0] - brow_y)))
    for ex, _ in lm.eyes:
        col = int(np.argmin(np.abs(worn.gx[0] - ex)))
        assert alpha[row, col] >= 1.0 - p.bangs[2] - 1e-6     # the wisps thin the edge's last 10 mm
    # The pupils' line stays bare.
    eye_row = int(np.argmin(np.abs(worn.gy[:, 0] - lm.eyes[0][1])))
    assert not (alpha[eye_row] > 0).any()
    # Off the forehead by at most its standoff, with the hair's 850 nm (not the skin's).
    solid = (alpha >= 1.0) & on_head
    rise = (worn.height - plain.height)[solid]
    assert rise.min() >= -1e-9 and rise.max() <= p.bangs[3] / 1000.0 + 1e-6 and rise.max() > 0.0
    assert not np.allclose(worn.nir[solid], plain.nir[solid])


# --- The earlier families, the twenty-first included, as main f20a893 drew, posed and blinked them ------------
# Computed by family_digest(f, _FIELDS + _LATER + the corneas', the caps', the make-up's, the ages', the winter
# scarves', the piercings' and the chin masks' fields, skin_nir=True) with main f20a893's tree (git archive
# f20a893; session 33: /tmp/fam33-digests.py), equal with this tree's.
_MAIN_DIGESTS = {"any": "e47dae3b383e9d94", "train": "6a29cc8a5f4328b2", "heldout": "89d817641809ef2b",
                 "field": "72162ec37c942b3e", "fresh": "3ce2cdab350b1b56", "fifth": "7fa435704a005c2e",
                 "sixth": "72230c7a39b8b893", "seventh": "1142cc6c216e248d", "eighth": "8cad3a851fac0b2a",
                 "ninth": "b75125420370d0a1", "tenth": "ec2a6bd90aa93ed8", "eleventh": "c62877f476518c55",
                 "twelfth": "a63f1b43ed64d65c", "thirteenth": "53bbd08ce248b1c8", "fourteenth": "49701cbdda35b5b3",
                 "fifteenth": "d68c584a518ec1f8", "sixteenth": "8958f469c2b4ee37", "seventeenth": "308d4853c3807887",
                 "eighteenth": "b4f589f7c6b8388c", "nineteenth": "7f21ded739affdfe", "twentieth": "b4caec69a6905231",
                 "twentyfirst": "1c8e334ca3f710c3"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS + _LATER + _CORNEA_CAP_MAKEUP + _AGE_WINTER_PIERCING + ("chin_mask",),
                         skin_nir=True) == _MAIN_DIGESTS[family]
