"""Camera units (unit33): ``unit=N`` draws the projector's dots with another seed, ``mount_dx``/``mount_dy``
move this design on the imager; unit 0 in place renders every earlier URI bit for bit."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import drivers
from drivers.errors import InvalidUri
from drivers.frame import StreamKind
from drivers.sim.sensor import PATTERN_SEED, DotPattern
from tests.helpers.sim import grab

URI = "sim://?realtime=0&family=train&identity=3&seed=5&camera=d415&distance_mm=500"
# The second frameset's IR image of ``URI`` on main f20a893 (before units existed).
IR_BEFORE_UNITS = "aed9710998639e129200db6a3042f7c56b492104eb816560145b29132bedb139"


def ir_digest(uri: str) -> tuple[str, np.ndarray]:
    sets, _ = grab(uri, 2)
    ir = sets[1][StreamKind.IR].pixels
    return hashlib.sha256(ir.tobytes()).hexdigest(), ir


def test_unit_zero_in_place_renders_as_before():
    assert ir_digest(URI)[0] == IR_BEFORE_UNITS
    assert ir_digest(URI + "&unit=0&mount_dx=0&mount_dy=0")[0] == IR_BEFORE_UNITS
    assert DotPattern.for_unit(640, 480).image.tobytes() == DotPattern.make(640, 480, PATTERN_SEED).image.tobytes()


def test_another_unit_projects_another_pattern():
    own = DotPattern.for_unit(640, 480).image
    other = DotPattern.for_unit(640, 480, unit=1).image
    assert abs(np.corrcoef(own.ravel(), other.ravel())[0, 1]) < 0.02            # unrelated dots
    assert other.tobytes() == DotPattern.make(640, 480, PATTERN_SEED + 1).image.tobytes()
    moved = DotPattern.for_unit(640, 480, mount=(3, -2)).image                  # the same design, mounted off
    np.testing.assert_array_equal(moved[:-2, 3:], own[2:, :-3])
    assert not moved[-2:, :].any() and not moved[:, :3].any()
    # And in the frames: the same scene, another unit's IR image.
    _, ir = ir_digest(URI)
    for key in ("unit=1", "mount_dx=2", "mount_dy=-3"):
        digest, other_ir = ir_digest(f"{URI}&{key}")
        assert digest != IR_BEFORE_UNITS and np.abs(other_ir.astype(float) - ir).mean() > 1.0, key


@pytest.mark.parametrize("query", ["unit=-1", "unit=1000", "unit=1.5", "mount_dx=17", "mount_dy=-17", "mount_dx=x"])
def test_unit_keys_are_validated(query):
    with pytest.raises(InvalidUri):
        drivers.open(f"sim://?realtime=0&{query}")


def test_each_unit_reports_its_own_serial_unit_zero_the_simulator_s():
    # fix34: every unit reported unit 0's serial; a real camera has its own. Unit 0's is unchanged (``SERIAL``).
    from drivers.sim.camera import SERIAL, serial_for

    seen = {}
    for key in ("", "&unit=0", "&unit=1", "&unit=999", "&mount_dx=2"):
        sets, cam = grab(URI + key, 1)
        cam.stop()
        (serials,) = {frozenset(f.device_serial for f in s.values()) for s in sets}
        assert serials == {cam.info.serial}, key                  # its frames carry the serial its info reports
        seen[key] = cam.info.serial
    assert seen[""] == seen["&unit=0"] == SERIAL == "SIM0000000001"
    assert seen["&unit=1"] == serial_for(1) == "SIM0000000002" and seen["&unit=999"] == "SIM0000001000"
    assert seen["&mount_dx=2"] == SERIAL                          # the unit's keys: only ``unit`` names another serial
