"""One family's own people, camera, lights and instruments, disjoint from every other family's
(the shape each family test checks; docs/sim.md)."""

from __future__ import annotations

import numpy as np

from drivers.sim.families import POOLS, camera_for, light_for
from drivers.sim.identity import Identity
from drivers.sim.species import instrument_rng


def assert_own_pools(family: str, camera: str, lights: tuple[str, ...]) -> None:
    others = [f for f in POOLS if f != family]
    for i in range(1, 20):
        me = Identity.draw(i, family)
        assert all(me != Identity.draw(i, f) for f in others + ["any"])
        assert camera_for(family, i, None) == camera
        assert light_for(family, i, None) in lights
    assert POOLS[family].cameras == (camera,) and POOLS[family].lights == lights
    # Its instruments come from its own stream too.
    for sp in ("silicone_mask", "print", "head_model"):
        mine = instrument_rng(family, sp, 3).uniform(size=4)
        assert not any(np.array_equal(mine, instrument_rng(f, sp, 3).uniform(size=4)) for f in others + ["any"])
    for other in others:
        assert not set(POOLS[other].cameras) & set(POOLS[family].cameras)
        assert not set(POOLS[other].lights) & set(POOLS[family].lights)


def assert_live_queries_in_range(family: str, camera: str, n: int = 40) -> None:
    """The family's first ``n`` live presentations name its camera, and a lux and colour temperature
    inside their light's ranges."""
    from drivers.sim.families import LIGHT_CCT, LIGHT_LUX, presentation_query
    for i in range(n):
        q = presentation_query(family, "live", i)
        lo, hi = LIGHT_LUX[q["light"]]
        assert lo <= float(q["lux"]) <= hi and q["camera"] == camera
        assert LIGHT_CCT[q["light"]][0] <= int(q["cct"]) <= LIGHT_CCT[q["light"]][1]


def assert_another_unit_resolving_eyes(profile) -> None:
    """A family's camera is another unit (no other profile shares its focal lengths) and resolves 63 mm
    eyes over 60 px in depth at 350 mm and in its default colour mode at 520 mm."""
    from drivers.sim.modes import color_mode
    from drivers.sim.profiles import PROFILES
    others = [p for n, p in PROFILES.items() if n != profile.name]
    assert all(round(p.depth_intrinsics.fx) != round(profile.depth_intrinsics.fx) for p in others)
    assert all(round(p.color_intrinsics.fx) != round(profile.color_intrinsics.fx) for p in others)
    assert profile.depth_intrinsics.fx * 0.063 / 0.35 > 60
    assert color_mode("", None, 30.0, profile).intrinsics.fx * 0.063 / 0.52 > 60


def assert_leak_and_cornea_on_every_uri(family: str, camera: str, lights: tuple[str, ...]) -> None:
    """The family's own pools (``assert_own_pools``), its live presentations in range under both its lights,
    and visible light in IR and the corneas set by the family itself on every URI (not by the URI's keys)."""
    from drivers.sim.config import SimConfig
    from drivers.sim.families import presentation_query
    assert_own_pools(family, camera, lights)
    assert_live_queries_in_range(family, camera)
    assert POOLS[family].ir_leak and POOLS[family].cornea
    assert {presentation_query(family, "live", i)["light"] for i in range(40)} == set(lights)
    for i in range(10):
        cfg = SimConfig.from_query(presentation_query(family, "live", i))
        assert cfg.ir_leak_on and cfg.cornea_on and not cfg.ir_leak and not cfg.cornea
