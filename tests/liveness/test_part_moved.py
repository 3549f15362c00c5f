"""A pair's speckle read on a part of the region is dropped for light that moved on that part (issue 14, cause32;
``features.PART_MOVED``, off in the judge).

A spectacle frame a heater lights at its own angle moves with the head: its rims' edges fill the whole
region's noise pair (``moving`` over ``MAX_SAME_STATE_MID_SHARE``) while the lower cheeks clear of the rims,
where the rims rule reads the speckle, hold still (the twentieth family's heater lives, development:
docs/liveness.md, "A spectacle frame lit and moving"). Synthetic pairs: the whole region's readings with a
frame on the upper discs (0.32 against the lower cheeks' 0.24), the lower cheeks' own reading."""

from __future__ import annotations

import pytest

from agent.liveness import features
from agent.liveness.features import MAX_SAME_STATE_MID_SHARE, ProjectorLight, ProjectorMeasure

MOVED, STILL = 2.0 * MAX_SAME_STATE_MID_SHARE, 0.05 * MAX_SAME_STATE_MID_SHARE


def _pair(whole_moving: float, lower_moving: float, lower_gone: float = 0.0) -> ProjectorLight:
    lower = ProjectorLight(0.24 ** 2, 60.0, 4.0, 500, 0.6, sharpness=1.1, moving=lower_moving, gone=lower_gone)
    cheeks = ProjectorLight(0.27 ** 2, 60.0, 4.0, 900, 0.6, sharpness=1.1)
    return ProjectorLight(0.29 ** 2, 60.0, 4.0, 1800, 0.6, sharpness=1.1, moving=whole_moving, gone=0.0,
                          cheeks=cheeks, cheeks_sharpness=1.1, upper_contrast2=0.32 ** 2,
                          lower_contrast2=0.24 ** 2, lower_sharpness=1.1, lower=lower)


def _window(lower_moving: float, lower_gone: float = 0.0) -> list[ProjectorLight]:
    # 2 pairs nothing moved in, 6 whose whole region's noise pair carries the moving frame.
    return [_pair(STILL, STILL)] * 2 + [_pair(MOVED, lower_moving, lower_gone)] * 6


@pytest.mark.parametrize("on", [False, True])
def test_pairs_still_on_the_part_read_give_their_speckle_only_with_part_moved(monkeypatch, on):
    monkeypatch.setattr(features, "PART_MOVED", on)
    m = ProjectorMeasure.pool(_window(STILL))
    assert m.rims_dropped == 8 and m.speckle == pytest.approx(0.24)
    assert m.pairs == (8 if on else 2)
    # The dots' shape is the whole region's: the moved pairs still have none, and still say so.
    assert m.unshaped == 6


def test_light_moving_on_the_part_or_its_movement_unread_keeps_the_pair_out(monkeypatch):
    monkeypatch.setattr(features, "PART_MOVED", True)
    assert ProjectorMeasure.pool(_window(MOVED)).pairs == 2                  # moved there too
    assert ProjectorMeasure.pool(_window(STILL, lower_gone=1.0)).pairs == 2  # light went away there
    assert ProjectorMeasure.pool(_window(float("nan"))).pairs == 2           # not read there: the whole's
    assert ProjectorMeasure.pool(_window(STILL, lower_gone=float("nan"))).pairs == 2


def test_a_pair_read_whole_is_dropped_for_the_whole_regions_movement(monkeypatch):
    # No part read apart (no frame on the upper discs): the whole region's movement, as on main.
    monkeypatch.setattr(features, "PART_MOVED", True)
    lights = [ProjectorLight(0.24 ** 2, 60.0, 4.0, 1800, 0.6, sharpness=1.1, moving=m, gone=0.0)
              for m in (STILL, STILL, MOVED, MOVED)]
    m = ProjectorMeasure.pool(lights)
    assert m.pairs == 2 and m.rims_dropped == 0 and m.unshaped == 2
