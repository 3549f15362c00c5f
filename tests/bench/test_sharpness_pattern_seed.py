"""``bench.sharpness_sampling``'s swapped dot pattern (``--seeds``; ``bench.skin_area``, ``bench.unit_pattern``) and
the enrolment's disk cache, whose key cannot see the swap (fix34: ``run`` switched the cache off for its whole
process, ``skin_area`` too, and no one for another caller of ``present_probed`` or ``_pattern_seed``)."""

from __future__ import annotations

import os

import numpy as np

from bench.sharpness_sampling import _pattern_seed
from drivers.sim.sensor import PATTERN_SEED, DotPattern
from hil import pad_enrolment


def test_an_enrolment_under_a_swapped_pattern_never_reaches_the_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTURE_AGENT_CACHE", str(tmp_path))
    monkeypatch.setattr(pad_enrolment, "_DOT_REFERENCES", {})
    own = DotPattern.make(64, 48, PATTERN_SEED).image
    swapped_3 = DotPattern.make(64, 48, 3).image
    enrolled: list[str] = []
    stored: list[str] = []

    class Ref:
        def to_bytes(self) -> bytes:
            return b"ref"

    monkeypatch.setattr(pad_enrolment, "enrol_uris", lambda uris, pairs: enrolled.append(uris[0]) or Ref())
    monkeypatch.setattr(pad_enrolment, "_store", lambda ref, path: stored.append(str(path)))
    uris = pad_enrolment.enrolment_uris("sim://?family=train&camera=d415&subject=live")
    undo = _pattern_seed(3)
    try:
        np.testing.assert_array_equal(DotPattern.make(64, 48).image, swapped_3)   # the cameras project seed 3's
        assert pad_enrolment.enrolment_cache_dir() is None
        pad_enrolment.dot_reference_from(uris)
        assert len(enrolled) == 1 and stored == []                                 # enrolled, never stored
    finally:
        undo()
    np.testing.assert_array_equal(DotPattern.make(64, 48).image, own)
    assert pad_enrolment.enrolment_cache_dir() == tmp_path / "dot-references"     # the caller's cache back
    pad_enrolment.dot_reference_from(uris)                                         # the own pattern: enrolled again
    assert len(enrolled) == 2 and len(stored) == 1                                 # and kept


def test_the_camera_s_own_pattern_leaves_the_cache_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPTURE_AGENT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    undo = _pattern_seed(None)
    assert pad_enrolment.enrolment_cache_dir() == tmp_path / "capture-agent" / "dot-references"
    undo()
    undo = _pattern_seed(5)
    undo()
    assert "CAPTURE_AGENT_CACHE" not in os.environ                                 # unset again, as it was
