"""The twenty-third family: the Intel RealSense D435if profile (the D435's optics behind the D435f's IR-pass filter),
the sun off a lobby fountain's pool thrown onto the face and the wall as a swimming caustic network
(``reflected.Caustics``), a mirror ball's spots under a halogen pin spot sweeping the face and the wall
(``reflected.MirrorBall``), its seated people (``identity.SEATED_*``, ``scene.Scene.pose``), and the earlier
families (the twenty-second included) left as they were.

Nothing here computes a verdict, a score or a quality decision on the twenty-third family: it was the unseen test
family of the thirty-fourth session, built and not run by its builder, evaluated once since (docs/liveness.md, *The
twenty-third family*) and a development set after that. Tests read its lights' fields, its frames' light, its
people's pose and pools only (rendering checks)."""

import cv2
import numpy as np
import pytest

from drivers.errors import InvalidUri
from drivers.sim import reflected
from drivers.sim.config import SimConfig
from drivers.sim.families import ENVELOPE, LIGHT_CCT, LIGHT_LUX, POOLS, presentation_query
from drivers.sim.identity import SEATED_DROP_MM, SEATED_PITCH_DEG, SEATED_SHARE, Identity
from drivers.sim.profiles import get_profile
from drivers.sim.scene import LIGHT_NIR_SHARE, Scene
from tests.drivers.sim.test_eighteenth_family import _CORNEA_CAP_MAKEUP
from tests.drivers.sim.test_eighth_family import _FIELDS
from tests.drivers.sim.test_fourteenth_family import _LATER
from tests.drivers.sim.test_twentyfirst_family import _AGE_WINTER_PIERCING
from tests.helpers.family_digest import family_digest
from tests.helpers.family_pools import (
    assert_another_unit_resolving_eyes,
    assert_live_queries_in_range,
    assert_own_pools,
)
from tests.helpers.sim import lit_and_bare, scene_lights, session_camera

EARLIER = ("train", "heldout", "field", "fresh", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
           "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth",
           "twentieth", "twentyfirst", "twentysecond")
LIGHTS = ("caustics", "mirrorball")
FRAME = 1.0 / 30.0


def test_d435if_profile_is_the_d435s_optics_behind_the_d435fs_filter_on_another_unit():
    g, f = get_profile("d435if"), get_profile("d435f")
    assert g.stereo_baseline_m == 0.050 and g.has_projector and not g.structured_light
    assert g.projector_power == f.projector_power                              # librealsense's laser power
    assert g.ir_band == "nir" and g.visible_response is None                   # the filter: no visible light in IR
    with pytest.raises(InvalidUri, match="ir_leak"):
        SimConfig.from_query({"camera": "d435if", "ir_leak": "1"})
    assert g.depth_range_m[0] < 0.35 < 0.52 < g.depth_range_m[1]
    # At 1280x800 (640x480 is that image x0.6, cropped): 87° ±3° depth; the OV2740's rolling colour.
    native = float(np.degrees(2 * np.arctan(640 * 0.6 / g.depth_intrinsics.fx)))
    assert 84.0 < native < 90.0 and g.color_shutter == "rolling"
    assert not SimConfig.from_query({"family": "twentythird"}).ir_leak_on
    assert_another_unit_resolving_eyes(g)


def test_twentythird_family_draws_its_own_pools_with_the_cornea_and_no_leak():
    assert_own_pools("twentythird", "d435if", LIGHTS)
    assert_live_queries_in_range("twentythird", "d435if")
    assert POOLS["twentythird"].cornea and not POOLS["twentythird"].ir_leak
    assert {presentation_query("twentythird", "live", i)["light"] for i in range(40)} == set(LIGHTS)
    for i in range(10):
        cfg = SimConfig.from_query(presentation_query("twentythird", "live", i))
        assert cfg.cornea_on and not cfg.cornea and not cfg.ir_leak_on
    # Inside the capture spec's 2300-7500 K and the envelope's 15-7500 lux.
    assert LIGHT_LUX["caustics"] == (300.0, 1500.0) and LIGHT_CCT["caustics"] == (5000, 6500)
    assert LIGHT_LUX["mirrorball"] == (50.0, 300.0) and LIGHT_CCT["mirrorball"] == (2700, 4000)
    assert LIGHT_NIR_SHARE["caustics"] == LIGHT_NIR_SHARE["daylight"]
    assert LIGHT_NIR_SHARE["mirrorball"] == LIGHT_NIR_SHARE["led"]
    assert reflected.CAUSTIC_NIR_SHARE == LIGHT_NIR_SHARE["direct_sun"]
    assert reflected.BALL_NIR_SHARE == LIGHT_NIR_SHARE["halogen"]
    for e in EARLIER:
        s = Scene(SimConfig.from_query({"family": e, "seed": "1"}))
        assert s.caustics is None and s.mirrorball is None
    assert not set(LIGHTS) & {light for f, p in POOLS.items() if f != "twentythird" for light in p.lights}


# --- The fountain's caustics ----------------------------------------------------------------------------------
def test_each_session_draws_its_own_network_thrown_up_from_the_pool():
    nets = scene_lights("twentythird", "caustics", "caustics")
    assert all(isinstance(c, reflected.Caustics) for c in nets)
    assert len({c.waves for c in nets}) == len(nets)
    assert {float(np.sign(w[2])) for c in nets for w in c.waves} == {-1.0, 1.0}
    for c in nets:
        _, y, _ = c.direction
        assert abs(np.linalg.norm(c.direction) - 1.0) < 1e-9
        assert np.sin(np.deg2rad(10.0)) - 1e-9 <= y <= np.sin(np.deg2rad(40.0)) + 1e-9       # below the face
        assert reflected.CAUSTIC_PEAK_LUX[0] <= c.peak <= reflected.CAUSTIC_PEAK_LUX[1]
        assert reflected.CAUSTIC_FLOOR[0] <= c.floor <= reflected.CAUSTIC_FLOOR[1]
        assert reflected.CAUSTIC_CELL_M[0] <= c.cell_m <= reflected.CAUSTIC_CELL_M[1]
        assert len(c.waves) == reflected.CAUSTIC_WAVES and c.nir_share == reflected.CAUSTIC_NIR_SHARE
        for _, _, omega, _ in c.waves:
            assert reflected.CAUSTIC_HZ[0] <= abs(omega) / (2 * np.pi) <= reflected.CAUSTIC_HZ[1]


def test_the_network_is_sharp_lines_a_few_cm_apart_that_swim_between_frames_the_same_at_every_depth():
    c = scene_lights("twentythird", "caustics", "caustics", n=1)[0]
    line = np.linspace(-0.3, 0.3, 60001, dtype=np.float32)
    step = float(line[1] - line[0])
    prof = c.pattern(line, np.full_like(line, np.float32(0.05)), 0.0)
    assert float(prof.max()) > 0.95 and abs(float(prof.min()) - c.floor) < 1e-6
    on = prof > c.floor + 0.5 * (1.0 - c.floor)
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    lines = len(edges) // 2
    spacing = 0.6 / lines
    widths = np.diff(edges)[(0 if on[edges[0] + 1] else 1)::2] * step
    # Lines a fraction of the cell apart (a few cm, the projector's dots' scale at 0.45 m), each a few mm wide:
    # sharp against the cells they bound.
    assert 0.3 * c.cell_m < spacing < 1.5 * c.cell_m and 0.01 < spacing < 0.09
    assert 0.0002 < float(np.median(widths)) < 0.006 and float(np.median(widths)) < 0.25 * spacing
    # A frame later the lines have moved; the light at a point follows the ripple trains at 0.5-3 Hz only.
    rng = np.random.default_rng(3)
    u = rng.uniform(-0.3, 0.3, 4000).astype(np.float32)
    v = rng.uniform(-0.3, 0.3, 4000).astype(np.float32)
    assert float((np.abs(c.pattern(u, v, FRAME) - c.pattern(u, v, 0.0)) > 0.3).mean()) > 0.01
    ts = np.arange(0.0, 8.0, 1.0 / 64.0)
    at = np.array([c.ripple(u[:1], v[:1], float(t))[0] for t in ts])
    power = np.abs(np.fft.rfft(at)) ** 2
    hz = np.fft.rfftfreq(len(ts), 1.0 / 64.0)
    band = (hz >= reflected.CAUSTIC_HZ[0] - 0.25) & (hz <= reflected.CAUSTIC_HZ[1] + 0.25)
    assert float(power[band].sum()) > 0.95 * float(power[1:].sum())
    # The sun is a distant source: moved along the beam, a point's coordinates across it do not change.
    e1, e2, d = reflected._beam_basis(c.direction)
    pts = np.stack([u, v, np.full_like(u, 0.45)], axis=1).astype(np.float64)
    shifted = pts + 0.8 * d
    assert np.allclose(pts @ e1, shifted @ e1) and np.allclose(pts @ e2, shifted @ e2)


_CAUSTICS = ("sim://?realtime=0&seed={seed}&family=twentythird&identity=2&light=caustics&lux=600&cct=5500"
             "&projector=0&distance_mm=450&yaw=0&pitch=0&background=plain")


def test_the_network_falls_on_the_face_and_the_wall_with_the_suns_850_nm_over_its_floor():
    cam, _, dmaps, face = session_camera(_CAUSTICS, "twentythird", "caustics",
                                         lambda s: s.caustics.direction[2] < -0.7)
    c = cam._scene.caustics
    view = cam._depth_view
    wall = np.isfinite(dmaps.z) & ~face
    lit0, lit1 = c.light(view, dmaps.z, 0.0), c.light(view, dmaps.z, FRAME)
    facing = face & (lit0 > 0.05)
    ratio = lit0[facing] / np.maximum(lit0[facing].max(), 1e-6)
    # Lines and the floor between them on the face and on the wall; a frame later the lines lie elsewhere.
    assert float((ratio > 0.6).mean()) > 0.005 and float((ratio < 0.45).mean()) > 0.5
    assert float((lit0[wall] > 0.0).mean()) > 0.2
    assert float((np.abs(lit1 - lit0)[face] > 0.1 * float(lit0[face].max())).mean()) > 0.005
    [(ir_lit, _)], [(ir_bare, _)] = lit_and_bare(cam, face, "caustics", (0.0,), (0.0,))
    gain = ir_lit.astype(np.float64) - ir_bare
    on_line, between = facing & (lit0 > 0.6 * float(lit0[facing].max())), facing & (lit0 < 0.3 * float(
        lit0[facing].max()))
    # The sun's 850 nm on the lines, less (the floor's) between them.
    assert float(gain[on_line].mean()) > 1.0 and 0.0 < float(gain[between].mean()) < 0.7 * float(gain[on_line].mean())


# --- The mirror ball ------------------------------------------------------------------------------------------
def test_each_session_draws_its_own_ball_above_turning_at_half_to_three_rpm():
    balls = scene_lights("twentythird", "mirrorball", "mirrorball")
    assert all(isinstance(b, reflected.MirrorBall) for b in balls)
    assert len({b.seed for b in balls}) == len(balls) and {np.sign(b.rev_s) for b in balls} == {-1.0, 1.0}
    for b in balls:
        _, y, _ = b.direction
        assert abs(np.linalg.norm(b.direction) - 1.0) < 1e-9
        assert -np.sin(np.deg2rad(45.0)) - 1e-9 <= y <= -np.sin(np.deg2rad(15.0)) + 1e-9     # above the face
        assert reflected.BALL_SPOT_LUX[0] <= b.peak <= reflected.BALL_SPOT_LUX[1]
        assert reflected.BALL_RPM[0] <= abs(b.rev_s) * 60.0 <= reflected.BALL_RPM[1]
        assert reflected.BALL_DISTANCE_M[0] <= b.distance_m <= reflected.BALL_DISTANCE_M[1]
        assert reflected.BALL_SPACING_RAD[0] <= b.spacing <= reflected.BALL_SPACING_RAD[1]
        diameter = 2.0 * b.radius * b.distance_m
        assert diameter <= reflected.BALL_SPOT_M[1] + 1e-9 and b.radius <= reflected.BALL_MAX_RADIUS * b.spacing
        assert diameter >= min(reflected.BALL_SPOT_M[0], 2 * reflected.BALL_MAX_RADIUS * b.spacing * b.distance_m)
        assert b.nir_share == reflected.BALL_NIR_SHARE


def _spots(b: reflected.MirrorBall, w: float, t: float, half: float = 1.0, px: float = 0.002):
    """The ball's spots over a ``2 half`` m square across its direction at ``w`` m toward it: (count, their mean
    area (m^2), their centres (m))."""
    g = np.arange(-half, half, px, dtype=np.float32)
    u, v = np.meshgrid(g, g)
    lit = (b.spots(u, v, np.full_like(u, np.float32(w)), t) > 0.5).astype(np.uint8)
    n, _, stats, centres = cv2.connectedComponentsWithStats(lit)
    inner = [k for k in range(1, n) if stats[k, 0] > 0 and stats[k, 1] > 0 and stats[k, 0] + stats[k, 2] < len(g)
             and stats[k, 1] + stats[k, 3] < len(g)]
    area = float(np.mean(stats[inner, cv2.CC_STAT_AREA])) * px * px
    return len(inner), area, centres[inner] * px - half


def test_dozens_of_spots_a_few_cm_across_diverge_from_the_ball_and_sweep_as_it_turns():
    b = next(x for x in scene_lights("twentythird", "mirrorball", "mirrorball") if x.spacing * x.distance_m < 0.25)
    n, area, c0 = _spots(b, 0.0, 0.0)
    cell = b.spacing * b.distance_m
    # Every facet's spot: a lattice of them (dozens in 2 m x 2 m), each of the drawn angular size.
    assert n >= 24 and 0.6 * (2.0 / cell) ** 2 < n < 1.4 * (2.0 / cell) ** 2
    assert area == pytest.approx(np.pi * (b.radius * b.distance_m) ** 2, rel=0.2)
    # On the wall a metre behind the face (farther from the ball) the spots are larger and farther apart.
    n_wall, area_wall, _ = _spots(b, -1.0, 0.0)
    grow = (b.distance_m + 1.0) / b.distance_m
    assert area_wall == pytest.approx(area * grow**2, rel=0.2) and n_wall < n
    # A frame later every spot has moved across (about the ball's vertical axis) by the ball's rate x its distance.
    _, _, c1 = _spots(b, 0.0, FRAME)
    expected = -2.0 * np.pi * b.rev_s * np.cos(b.elevation) * b.distance_m * FRAME
    near = c0[np.hypot(c0[:, 0], c0[:, 1]) < 0.5]
    moved = np.array([c1[np.argmin(np.hypot(*(c1 - p).T))] - p for p in near])
    assert np.allclose(moved[:, 0], expected, atol=0.004) and np.allclose(moved[:, 1], 0.0, atol=0.004)
    assert abs(expected) > 0.002


_BALL = ("sim://?realtime=0&seed={seed}&family=twentythird&identity=2&light=mirrorball&lux=100&cct=3000"
         "&projector=0&distance_mm=450&yaw=0&pitch=0&background=plain")


def test_the_spots_cross_the_face_with_the_halogens_850_nm_and_nothing_between_them():
    cam, _, dmaps, face = session_camera(_BALL, "twentythird", "mirrorball",
                                         lambda s: s.mirrorball.direction[2] < -0.6)
    b = cam._scene.mirrorball
    view = cam._depth_view
    t = next(k * FRAME for k in range(600) if float((b.light(view, dmaps.z, k * FRAME)[face] > 0.3).mean()) > 0.01)
    lit = b.light(view, dmaps.z, t)
    [(ir_lit, _)], [(ir_bare, _)] = lit_and_bare(cam, face, "mirrorball", (t,), (t,))
    gain = ir_lit.astype(np.float64) - ir_bare
    bright, dark = face & (lit > 0.3), face & (lit == 0.0)
    assert float(gain[bright].mean()) > 1.0 and abs(float(gain[dark].mean())) < 0.05 * float(gain[bright].mean())
    assert reflected.BALL_NIR_SHARE > 100 * LIGHT_NIR_SHARE["mirrorball"]      # the spots' 850 nm, not the room's


# --- The seated people ----------------------------------------------------------------------------------------
def test_a_share_of_the_twentythirds_people_are_seated_and_nobody_elsewhere():
    people = [Identity.draw(i, "twentythird") for i in range(400)]
    seated = [p.seated for p in people if p.seated is not None]
    assert abs(len(seated) / len(people) - SEATED_SHARE) < 0.05
    assert all(SEATED_PITCH_DEG[0] <= a <= SEATED_PITCH_DEG[1] and SEATED_DROP_MM[0] <= d <= SEATED_DROP_MM[1]
               for a, d in seated)
    assert all(Identity.draw(i, f).seated is None for f in EARLIER + ("any",) for i in range(30))


def _posed(identity: int, subject: str, pitch: float, seated: bool, t: float):
    scene = Scene(SimConfig.from_query({"family": "twentythird", "identity": str(identity), "subject": subject,
                                        "seed": "5", "pitch": str(pitch)}))
    if not seated:
        import dataclasses
        scene.identity = dataclasses.replace(scene.identity, seated=None)
    return scene.identity.seated, scene.pose(t, rigid_static=False)


def test_a_seated_person_faces_the_camera_lower_and_tilted_back_within_the_envelope():
    i = next(k for k in range(1, 200) if Identity.draw(k, "twentythird").seated is not None)
    for subject in ("live", "mask"):                  # an attack presented for the person comes the same way
        for t in (0.0, 1.3):
            seat, (R, T, (_, pitch, _)) = _posed(i, subject, 5.0, True, t)
            _, (R0, T0, (_, pitch0, _)) = _posed(i, subject, 5.0, False, t)
            assert seat is not None
            # Lower in the frame (+y) by the drop, the same distance and side; the chin up by the seat's tilt.
            assert np.allclose(T - T0, [0.0, seat[1] / 1000.0, 0.0], atol=1e-12)
            assert pitch == pytest.approx(pitch0 - seat[0], abs=1e-9)
            gaze, gaze0 = R @ np.array([0.0, 0.0, -1.0]), R0 @ np.array([0.0, 0.0, -1.0])
            assert float(gaze[1]) < float(gaze0[1]) - np.sin(np.deg2rad(0.9 * seat[0]))   # looking up (-y)
    # Drawn near the envelope's edge, the tilt stops at it (the envelope is what the gate admits).
    seat, (_, _, (_, pitch, _)) = _posed(i, "live", -10.0, True, 0.0)
    _, (_, _, (_, pitch0, _)) = _posed(i, "live", -10.0, False, 0.0)
    assert seat is not None and pitch - pitch0 == pytest.approx(ENVELOPE["pitch"][0] - (-10.0), abs=1e-9)


# --- The earlier families, the twenty-second included, as main 031df87 drew, posed and blinked them -----------
# Computed by family_digest(f, _FIELDS + _LATER + the corneas', the caps', the make-up's, the ages', the winter
# scarves', the piercings', the chin masks' and the bangs' fields, skin_nir=True) with main 031df87's tree (git
# archive 031df87; session 34: /tmp/fam34/digests.py), equal with this tree's.
_MAIN_DIGESTS = {"any": "e466c8c9869bb5bb", "train": "0ece1cc4989f24f3", "heldout": "1f01cbfd2338dce8",
                 "field": "2183e818708b56ac", "fresh": "6c6852d411182da6", "fifth": "2ad0b1fff4b1bb68",
                 "sixth": "ce5da524f0f23a02", "seventh": "9dc0ed962b49db98", "eighth": "1ae701560b077d57",
                 "ninth": "3b87106517acad5d", "tenth": "c5731d62dc5571da", "eleventh": "e291ac768904b419",
                 "twelfth": "de6b3900ffcdf36d", "thirteenth": "6601e2ffb47853da", "fourteenth": "5e8a8cff5c0b4e3f",
                 "fifteenth": "99e7cd917b1d9254", "sixteenth": "b4395fd60133cf53", "seventeenth": "d14ebc9e257e7277",
                 "eighteenth": "48469a30bd6009ba", "nineteenth": "9509f10c0dce1d9f", "twentieth": "2b4568c22723bfd7",
                 "twentyfirst": "e3117b7deaaca3ff", "twentysecond": "e3646d0b354cb114"}


@pytest.mark.parametrize("family", ("any",) + EARLIER)
def test_earlier_families_people_scenes_poses_and_blinks_are_unchanged(family):
    assert family_digest(family, _FIELDS + _LATER + _CORNEA_CAP_MAKEUP + _AGE_WINTER_PIERCING + ("chin_mask", "bangs"),
                         skin_nir=True) == _MAIN_DIGESTS[family]
