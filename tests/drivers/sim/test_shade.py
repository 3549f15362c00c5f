"""``shade=1``: the person stands in shade, out of the direct sun (pad-eval's person who follows
``TOO_BRIGHT_TO_VERIFY``): under ``direct_sun`` the whole face on the shadow edge's shaded side, under
``dappled_sun`` no sunfleck; the scene's ``lux`` and every other draw kept. Frames and light only:
nothing here computes a verdict."""

import numpy as np
import pytest

from drivers.errors import InvalidUri
from drivers.sim.config import SimConfig
from drivers.sim.families import light_for
from drivers.sim.scene import Scene
from drivers.sim.sun import shade_color, shade_ir
from tests.helpers.sim import sim_camera


def test_shade_is_a_validated_key_whose_default_is_the_old_config():
    assert SimConfig.from_query({}).shade is False
    assert SimConfig.from_query({"family": "eleventh", "light": "dappled_sun", "shade": "0"}) \
        == SimConfig.from_query({"family": "eleventh", "light": "dappled_sun"})
    assert SimConfig.from_query({"family": "eighth", "light": "direct_sun", "shade": "1"}).shade is True
    # The family's own draw counts: an eleventh identity whose light is the tree's.
    ident = next(i for i in range(10) if light_for("eleventh", i, None) == "dappled_sun")
    assert SimConfig.from_query({"family": "eleventh", "identity": str(ident), "shade": "1"}).shade is True
    for bad in ({"light": "led", "shade": "1"}, {"shade": "1"}, {"family": "twelfth", "light": "headlights",
                                                                  "shade": "1"},
                {"family": "eleventh", "identity": str(ident + 2), "shade": "1"},     # its signage
                {"family": "eighth", "light": "direct_sun", "shade": "maybe"}):
        with pytest.raises(InvalidUri):
            SimConfig.from_query(bad)


def test_in_shade_the_tree_lets_no_fleck_through_and_nothing_else_drawn_changes():
    q = {"family": "eleventh", "light": "dappled_sun", "seed": "3", "identity": "4", "lux": "300"}
    sun, shade = Scene(SimConfig.from_query(q)), Scene(SimConfig.from_query({**q, "shade": "1"}))
    assert sun.dapple is not None and shade.dapple is None
    assert shade.identity == sun.identity and shade._blinks == sun._blinks
    uri = ("sim://?realtime=0&seed=3&family=eleventh&light=dappled_sun&lux=300&identity=4&projector=0"
           "&distance_mm=450&yaw=0&color_mode=640x480@30")
    lit, shaded = sim_camera(uri), sim_camera(uri + "&shade=1")
    dmaps = lit._render(lit._depth_view, *lit._objects(0.0)[:2])
    ones = np.full(dmaps.z.shape, 100.0, np.float32)
    assert lit._street_ir(ones.copy(), dmaps, 0.0).max() > 100.0 or \
        lit._street_ir(ones.copy(), dmaps, 0.5).max() > 100.0                   # flecks on the face in the sun
    for t in (0.0, 0.5):
        assert np.array_equal(shaded._street_ir(ones.copy(), dmaps, t), ones)  # none in the shade


def test_out_of_the_direct_sun_the_whole_face_is_on_the_shaded_side():
    # Seed 16 puts this session's shadow edge across the face (test_eighth_family): half of it sunlit.
    uri = ("sim://?realtime=0&seed=16&family=eighth&light=direct_sun&lux=3000&identity=4&projector=0"
           "&distance_mm=450&color_mode=640x480@30")
    lit, shaded = sim_camera(uri), sim_camera(uri + "&shade=1")
    assert shaded._scene.sun_edge == lit._scene.sun_edge                        # the same scene
    dmaps = lit._render(lit._depth_view, *lit._objects(0.0)[:2])
    face = np.isfinite(dmaps.z) & (dmaps.object_id == 0)
    assert (lit._scene.sun_edge.sunlit(lit._depth_view, dmaps.z)[face] > 0.99).mean() > 0.2
    ones = np.full(dmaps.z.shape, 100.0, np.float32)
    none = np.zeros(dmaps.z.shape, np.float32)
    assert np.array_equal(shaded._shaded_ir(ones.copy(), dmaps),
                          shade_ir(ones.copy(), dmaps, 3000.0, shaded._nir_share, none))
    assert not np.array_equal(lit._shaded_ir(ones.copy(), dmaps), shaded._shaded_ir(ones.copy(), dmaps))
    cmaps = lit._render(lit._color_view, *lit._objects(0.0)[:2])
    irr = np.full(cmaps.z.shape + (3,), 100.0, np.float32)
    assert np.array_equal(shaded._shaded_color(irr.copy(), cmaps),
                          shade_color(irr.copy(), cmaps, 3000.0, shaded.cfg.cct,
                                      np.zeros(cmaps.z.shape, np.float32)))
