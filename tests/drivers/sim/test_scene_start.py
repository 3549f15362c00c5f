"""``t0_s``: the scene's time-varying lights start later (a session opened later in the same scene, as
pad-eval's retry after ``LIGHT_CHANGED``); 0, the default, is the config of a URI without it.
Frames and light only: nothing here computes a verdict on the tenth or ninth family."""

import numpy as np
import pytest

from drivers.errors import InvalidUri
from drivers.sim.config import SimConfig
from tests.drivers.sim.test_tenth_family import _crossing_seed
from tests.helpers.sim import sim_camera


def test_the_start_time_is_a_validated_key_whose_default_is_the_old_config():
    assert SimConfig.from_query({}).t0_s == 0.0
    assert SimConfig.from_query({"t0_s": "0"}) == SimConfig.from_query({})
    assert SimConfig.from_query({"t0_s": "12.5"}).t0_s == 12.5
    for bad in ("-1", "3601", "nan", "x"):
        with pytest.raises(InvalidUri):
            SimConfig.from_query({"t0_s": bad})


def test_a_passing_shadow_at_t_with_the_start_moved_is_the_shadow_at_t0_plus_t():
    # Closed form: with t0_s = T the lights at session time t are the scene's at T + t; the band
    # (street.PassingShadows) is where band_centre(T + t) puts it.
    seed, sh = _crossing_seed()                      # its band crosses the face 0.1-0.5 s into the scene
    late = sim_camera(f"sim://?realtime=0&seed={seed}&family=tenth&light=passing_shade&lux=800&identity=4"
                      "&projector=0&distance_mm=450&yaw=0&t0_s=0.3")
    assert late._scene.shadows == sh
    dmaps = late._render(late._depth_view, *late._objects(0.0)[:2])
    ones = np.full(dmaps.z.shape, 100.0, np.float32)
    got = late._street_ir(ones.copy(), dmaps, 0.0)
    assert np.array_equal(got, sh.ir(ones.copy(), late._depth_view, dmaps, 800.0, late._nir_share, 0.3))
    assert not np.array_equal(got, sh.ir(ones.copy(), late._depth_view, dmaps, 800.0, late._nir_share, 0.0))
    assert got.min() < 100.0                          # the band is on the face 0.3 s into the scene


def test_a_flicker_at_t_with_the_start_moved_is_the_flicker_at_t0_plus_t():
    late = sim_camera("sim://?realtime=0&seed=3&family=ninth&light=flicker_led&lux=1000&identity=4&projector=0"
                      "&distance_mm=450&t0_s=0.0025")
    f = late._scene.flicker
    assert f is not None
    for t in (0.0, 0.01, 1 / 30):
        assert late._flicker(t, 0.0002) == f.factor(t + 0.0025, 0.0002)
    assert late._flicker(0.0, 0.0002) != pytest.approx(f.factor(0.0, 0.0002), abs=1e-3)
