"""pad-eval's injections from another camera unit (unit33): ``other_unit`` (another pattern, in the default
run) and ``other_mount`` (this design mounted off; only when named), judged against the terminal's own
unit's enrolment, which the cache keeps per unit."""

from __future__ import annotations

import argparse
import hashlib

import pytest

from agent.liveness.challenge import detail_code
from drivers.sim.config import UNIT_KEYS
from hil import pad_enrolment, pad_records
from hil import padeval as P
from hil.pad_presentations import MOUNT_OFFSETS, Presentation, presentations, terminal_uri


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """One enrolment cache for the module (unit 0's enrolment made once), none of the user's."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def enrolment_cache(module_cache, monkeypatch):
    monkeypatch.setenv("CAPTURE_AGENT_CACHE", str(module_cache))
    monkeypatch.setattr(pad_enrolment, "_DOT_REFERENCES", {})
    return module_cache / "dot-references"


def query(uri: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in uri.split("?", 1)[1].split("&"))


def test_the_default_run_grows_by_other_unit_and_other_mount_runs_when_named():
    assert P.INJECTIONS[-1] == "other_unit" and "other_mount" in P.NAMED_INJECTIONS
    items = presentations("train", live=0, per_species=0, injection=2)
    assert [p.species for p in items] == ["replay", "replay", "splice", "splice", "render", "render",
                                          "other_unit", "other_unit"]
    units = [p for p in items if p.species == "other_unit"]
    # Injection i draws person 10 000 + i (``presentations``), streamed from unit 1 + (10 000 + i) % 999.
    assert [query(p.uri)["unit"] for p in units] == ["11", "12"] and all("inject" not in query(p.uri) for p in units)
    # The same live people as the other injections draw, each from another unit's camera.
    replay = [p for p in items if p.species == "replay"]
    for u, r in zip(units, replay, strict=True):
        assert {k: v for k, v in query(u.uri).items() if k != "unit"} == \
            {k: v for k, v in query(r.uri).items() if k != "inject"}
    named = presentations("train", live=0, per_species=0, injection=9, species=["other_mount"])
    offsets = [(int(query(p.uri)["mount_dx"]), int(query(p.uri)["mount_dy"])) for p in named]
    assert offsets == list(MOUNT_OFFSETS) + [MOUNT_OFFSETS[0]] and all(p.kind == "injection" for p in named)


def test_the_terminal_keeps_its_own_units_reference_for_another_units_stream():
    other = presentations("train", live=0, per_species=0, injection=1, species=["other_unit"])[0]
    mine = terminal_uri(other)
    assert not set(query(mine)) & set(UNIT_KEYS) and "unit=11" in other.uri
    assert pad_enrolment.enrolment_uris(mine) != pad_enrolment.enrolment_uris(other.uri)
    live = Presentation("bona_fide", "live", "train", 0, other.uri)          # a unit's own camera keeps its unit
    assert terminal_uri(live) == other.uri


def test_the_enrolment_cache_keeps_each_unit_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTURE_AGENT_CACHE", str(tmp_path))       # its own: nothing the module enrolled for real
    base = "sim://?family=train&camera=d415&subject=live"
    enrolled: list[str] = []

    class Ref:
        def __init__(self, uri: str):
            self.uri = uri

        def to_bytes(self) -> bytes:
            return self.uri.encode()

    monkeypatch.setattr(pad_enrolment, "enrol_uris", lambda uris, pairs: enrolled.append(uris[0]) or Ref(uris[0]))
    monkeypatch.setattr(pad_enrolment, "_store", lambda ref, path: None)
    uris = [base, base + "&unit=1", base + "&unit=2", base + "&mount_dx=3", base + "&mount_dy=-2"]
    refs = [pad_enrolment.dot_reference_for(u) for u in uris]
    assert len(enrolled) == len(uris) and len({r.uri for r in refs}) == len(uris)      # each unit its own
    for u, r in zip(uris, refs, strict=True):
        assert pad_enrolment.dot_reference_for(u) is r                                  # and cached as its own
        for k in UNIT_KEYS:
            if f"{k}=" in u:
                assert f"{k}=" in r.uri
    keys = {pad_enrolment._enrolment_key(pad_enrolment.enrolment_uris(u)) for u in uris}
    assert len(keys) == len(uris)


@pytest.mark.slow      # three challenged sessions judged in-process and unit 0's enrolment (~35 s of CPU)
def test_pad_eval_runs_the_unit_injections_and_refuses_them(capsys, tmp_path):
    # fix34: this ran ``--injection 0``, which checked nothing about the unit injections. One of each (and the
    # second ``other_mount``, across the rows: the first is 2 px along them, which depth can undo), through the CLI
    # with its records, judged against unit 0's enrolment (made once for the module). It also stands for the slow
    # in-process test of one ``other_unit`` session it replaces.
    from agent.cli import main
    from hil.commands import pad_eval

    parser = argparse.ArgumentParser()
    pad_eval.register(parser.add_subparsers())
    assert parser.parse_args(["pad-eval", "--species", "other_unit,other_mount"]).species == "other_unit,other_mount"
    records = tmp_path / "records.jsonl"
    for species, n in (("other_unit", 1), ("other_mount", 2)):
        assert main(["pad-eval", "--split", "train", "--species", species, "--injection", str(n), "--json",
                     "--records", str(records)]) == 0
    capsys.readouterr()
    got = {(r["species"], r["index"]): r for r in pad_records.read_records(records)}
    assert sorted(got) == [("other_mount", 0), ("other_mount", 1), ("other_unit", 0)]
    for key, codes in ((("other_unit", 0), {"PROJECTOR_NOT_THIS_UNIT"}),
                       (("other_mount", 1), {"PROJECTOR_NOT_THIS_UNIT", "PROJECTOR_UNIT_UNSURE"})):
        rec = got[key]
        assert rec["outcome"] == "rejected" and rec["verdict"] in ("attack", "inconclusive"), (key, rec.get("notes"))
        assert detail_code(rec["challenge"]) in codes, (key, rec["challenge"])
    assert got[("other_unit", 0)]["verdict"] == "attack"               # a strike as any refusal
    p = presentations("train", live=0, per_species=0, injection=1, species=["other_unit"])[0]
    own = pad_enrolment.dot_reference_for(terminal_uri(p))
    assert {r["dot_reference_sha256"] for r in got.values()} == {hashlib.sha256(own.to_bytes()).hexdigest()}
    assert main(["pad-eval", "--split", "train", "--species", "another_unit", "--injection", "0"]) != 0
    err = capsys.readouterr().err
    assert "unknown species another_unit" in err and "other_mount" in err and "other_unit" in err


@pytest.mark.parametrize("bad", ["unit=eleven", "unit=1.5", "mount_dx=x", "unit=1000", "mount_dy=99"])
def test_a_malformed_unit_key_is_a_stable_error_not_a_bare_value_error(bad):
    # fix34: the cache key read the unit keys with a bare int(): a malformed one raised ValueError from
    # inside the cache; an out-of-range one was keyed (and enrolled) as if valid. Now the simulator's own check.
    from drivers.errors import InvalidUri

    uris = pad_enrolment.enrolment_uris(f"sim://?family=train&camera=d415&subject=live&{bad}")
    with pytest.raises(InvalidUri) as e:
        pad_enrolment._enrolment_key(uris)
    assert e.value.code == "DRV_INVALID_URI" and bad.split("=")[0] in e.value.message
    with pytest.raises(InvalidUri):
        pad_enrolment.dot_reference_from(uris)
