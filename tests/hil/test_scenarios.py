"""Scenario files: validated like the agent's config, species from the simulator and the files."""

from __future__ import annotations

import pytest

import drivers.sim
from hil import runner
from hil.errors import RigUnsupported, ScenarioInvalid
from hil.rig.sim import SimRig
from hil.scenario import SHIPPED, load_set, parse_set, resolve, with_repetitions


def one(**kw):
    return {"set": {"name": "t"}, "scenario": [{"name": "s", "expect": ["accepted"], **kw}]}


@pytest.mark.parametrize("name", ["smoke", "ibeta", "lux-sweep", "redteam"])
def test_shipped_sets_load_document_their_outcomes_and_pass_the_sim_rigs_check(name, tmp_path):
    sset = load_set(resolve(name))
    assert sset.scenarios and sset.description
    for s in sset.scenarios:
        assert s.description and s.expect, s.name
    runner.preflight([sset], SimRig(tmp_path))


def test_lux_sweep_spans_the_standards_range():
    lux = sorted({s.lux for s in load_set(SHIPPED / "lux-sweep.toml").scenarios})
    assert lux[0] == 15 and lux[-1] == 7500 and len(lux) >= 10


def test_redteam_covers_every_injection_kind_and_ibeta_both_levels():
    from hil.scenario import INJECTIONS
    assert {s.injection for s in load_set(resolve("redteam")).scenarios} == set(INJECTIONS)
    species = {s.subject for s in load_set(resolve("ibeta")).scenarios}
    assert {"print", "screen_video", "mask", "head_model", "live"} <= species


@pytest.mark.parametrize("bad, why", [
    (one(lux_level=3), "unknown setting(s) lux_level"),
    (one(lux="bright"), "expected a number"),
    (one(subject="hologram"), "unknown subject 'hologram'"),
    (one(injection="wormhole"), "injection must be one of"),
    (one(purpose="pay"), "is not one of"),
    ({"set": {"name": "t"}, "scenario": [{"name": "s", "expect": ["passed"]}]}, "expect must list outcomes"),
    ({"set": {"name": "t"}, "scenario": [{"name": "s", "expect": ["accepted"]}] * 2}, "appears twice"),
    ({"set": {"name": "t"}, "scenarios": []}, "unknown top-level key(s) scenarios"),
    (one(subject="print", unplug={"off_s": 1.0}), "unplug cycle presents a bona fide subject"),
])
def test_invalid_scenarios_are_refused_with_the_reason(bad, why):
    with pytest.raises(ScenarioInvalid, match=None) as exc:
        parse_set(bad, "x.toml")
    assert exc.value.code == "HIL_SCENARIO_INVALID" and why in exc.value.message


def test_broken_toml_and_missing_files_are_typed(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[set\nname=")
    with pytest.raises(ScenarioInvalid, match="not valid TOML"):
        load_set(p)
    with pytest.raises(ScenarioInvalid, match="shipped sets: ibeta, lux-sweep, redteam, smoke"):
        resolve("no-such-set")


def test_species_come_from_the_simulator_not_a_list_of_ours(monkeypatch):
    with pytest.raises(ScenarioInvalid):
        parse_set(one(subject="silicone_mask_v2"))
    monkeypatch.setattr(drivers.sim, "ATTACKS", (*drivers.sim.ATTACKS, "silicone_mask_v2"))
    s = parse_set(one(subject="silicone_mask_v2")).scenarios[0]
    assert s.species == "silicone_mask_v2" and s.is_attack
    # ... and from a rig's instrument table
    assert parse_set(one(subject="latex_glove"), extra_species=("latex_glove",)).scenarios[0].is_attack


def test_simulator_keys_are_validated_by_the_simulator(tmp_path):
    rig = SimRig(tmp_path)
    rig.check(parse_set(one(sim={"drop": 0.1, "jitter_ms": 1.0})).scenarios[0])
    with pytest.raises(ScenarioInvalid, match="unknown sim:// parameter"):
        rig.check(parse_set(one(sim={"warp_drive": 1})).scenarios[0])
    with pytest.raises(ScenarioInvalid, match="lux must be within"):
        rig.check(parse_set(one(lux=0.5)).scenarios[0])


def test_repetitions_vary_the_seed_unless_told_not_to(tmp_path):
    rig = SimRig(tmp_path)
    s = parse_set(one(seed=7, repetitions=3)).scenarios[0]
    uris = [rig.scene(s, k)[0] for k in range(3)]
    assert len(set(uris)) == 3 and "seed=9" in uris[2]
    fixed = parse_set(one(seed=7, repetitions=3, vary_seed=False)).scenarios[0]
    assert len({rig.scene(fixed, k)[0] for k in range(3)}) == 1
    assert with_repetitions(load_set(resolve("smoke")), 1).sessions == len(load_set(resolve("smoke")).scenarios)


def test_injections_present_what_the_attacker_would(tmp_path):
    rig = SimRig(tmp_path)
    uri, dev = rig.scene(parse_set(one(injection="virtual_camera")).scenarios[0], 0)
    assert dev["bus_path"] == "" and dev["serial"] == "SIM0000000001" and "inject=replay" in uri
    _, dev = rig.scene(parse_set(one(injection="hdmi_grabber")).scenarios[0], 0)
    assert dev["streams"] == ["color"] and dev["vendor_id"] == 0x534D
    # a scenario may pick the simulator's own injection mode instead of the rig's default
    uri, _ = rig.scene(parse_set(one(injection="spliced_replay", sim={"inject": "none"})).scenarios[0], 0)
    assert "inject=none" in uri


def test_an_unplug_cycle_needs_usb_power(tmp_path):
    rig = SimRig(tmp_path)
    rig.usb = None
    with pytest.raises(RigUnsupported):
        rig.check(parse_set(one(unplug={"off_s": 1.0})).scenarios[0])


def test_another_camera_unit_in_the_rig_reports_its_own_serial_and_is_off_the_allowlist(tmp_path):
    # fix34: every sim unit used to report unit 0's serial. A genuine scene with ``unit=N`` is another camera of the
    # model in the rig's place: its own serial on the link and in its frames, refused by the rig's allowlist.
    import drivers
    from drivers.base import UsbIdentity
    from drivers.usb import UsbPolicy

    rig = SimRig(tmp_path)
    policy = rig.device_policy()
    allow = UsbPolicy.from_strings(policy["usb_allow"], policy["refuse_virtual"])
    idents = {}
    for unit in (0, 3):
        uri, dev = rig.scene(parse_set(one(sim={"unit": unit})).scenarios[0], 0)
        with drivers.open(uri) as cam:
            assert cam.info.serial == dev["serial"]
        idents[unit] = UsbIdentity(dev["vendor_id"], dev["product_id"], dev["serial"], dev["bcd_device"],
                                   dev["bus_path"])
    assert idents[0].serial == "SIM0000000001" and allow.allows(idents[0])       # unit 0 unchanged
    assert idents[3].serial == "SIM0000000004" and not allow.allows(idents[3])
    _, dev = rig.scene(parse_set(one(injection="hooked_sdk", sim={"unit": 3})).scenarios[0], 0)
    assert dev["serial"] == "SIM0000000001"                  # an injector claims the genuine camera's serial
    with pytest.raises(ScenarioInvalid, match="unit must be an integer"):
        rig.check(parse_set(one(sim={"unit": "x"})).scenarios[0])
