"""The serial rig's controllers against fake instruments on ptys (no lamp, turntable or light meter
here): the documented line protocol, refusals, timeouts, closed-loop illuminance, and a whole rig
set up from its file."""

from __future__ import annotations

import pytest

from hil.errors import LuxUnreachable, RigConfigInvalid, RigDeviceError, RigTimeout, RigUnsupported
from hil.fakes import uhubctl
from hil.fakes.serialdevs import FakeLamp, FakeLightMeter, FakeRoom, FakeTurntable
from hil.rig.lamp import Lamp
from hil.rig.lightmeter import LightMeter
from hil.rig.serialline import LineDevice
from hil.rig.serialrig import SerialRig, load_rig_file
from hil.rig.turntable import Turntable
from hil.scenario import parse_set


@pytest.fixture
def room():
    return FakeRoom(ambient_lux=12.0, lamp_max_lux=9000.0, seed=3)


@pytest.fixture
def lamp_dev(room):
    dev = FakeLamp(room)
    yield dev
    dev.close()


@pytest.fixture
def meter_dev(room):
    dev = FakeLightMeter(room)
    yield dev
    dev.close()


@pytest.fixture
def table_dev():
    dev = FakeTurntable(speed_dps=180.0)
    yield dev
    dev.close()


def test_line_protocol_identify_set_and_read_back(lamp_dev):
    line = LineDevice(lamp_dev.path, what="lamp")
    try:
        assert line.identify() == "HILRIG,LAMP-1,LMP00017,1.4.2"
        lamp = Lamp(line)
        lamp.set_level(420)
        assert lamp.level() == 420
        lamp.set_cct(2700)
        assert lamp.cct() == 2700
        assert lamp_dev.commands[-4:] == ["LEVEL 420", "LEVEL?", "CCT 2700", "CCT?"]
    finally:
        line.close()


def test_refusals_and_silence_are_typed(lamp_dev):
    # The refusals are replies from the fake's thread: a generous timeout (a 0.3 s one turned a late
    # ERR reply on a loaded machine into a RigTimeout). Only the silence is waited out, briefly.
    line = LineDevice(lamp_dev.path, timeout_s=10.0, what="lamp")
    try:
        with pytest.raises(RigDeviceError, match="ERR 2"):
            line.ok("LEVEL 1001")
        with pytest.raises(RigDeviceError, match="ERR 1"):
            line.ok("BRIGHTER")
        with pytest.raises(ValueError):
            line.ask("LEVEL 1\nLEVEL 2")                         # one command per line, never two
    finally:
        line.close()
    lamp_dev.mute = True
    quiet = LineDevice(lamp_dev.path, timeout_s=0.3, what="lamp")
    try:
        with pytest.raises(RigTimeout) as exc:
            quiet.ask("LEVEL?")
        assert exc.value.code == "HIL_RIG_TIMEOUT"
    finally:
        quiet.close()
    with pytest.raises(RigDeviceError, match="cannot open"):
        LineDevice("/dev/does-not-exist", what="lamp")


def test_fixed_colour_lamp_refuses_cct(room):
    dev = FakeLamp(room, tunable=False)
    line = LineDevice(dev.path)
    try:
        with pytest.raises(RigDeviceError, match="ERR 3"):
            Lamp(line).set_cct(3000)
    finally:
        line.close()
        dev.close()


@pytest.mark.parametrize("target", [15, 60, 300, 1000, 7500])
def test_the_lamp_reaches_illuminance_through_the_meter(lamp_dev, meter_dev, target):
    lamp, meter = Lamp(LineDevice(lamp_dev.path)), LightMeter(LineDevice(meter_dev.path))
    try:
        got = lamp.set_lux(target, meter)
        assert abs(got - target) <= 0.05 * target
        assert abs(meter.lux() - target) <= 0.08 * target       # the room holds it (meter noise 0.5 %)
    finally:
        lamp.line.close()
        meter.line.close()


def test_unreachable_illuminance_is_refused(lamp_dev, meter_dev):
    lamp, meter = Lamp(LineDevice(lamp_dev.path)), LightMeter(LineDevice(meter_dev.path))
    try:
        with pytest.raises(LuxUnreachable, match="below the room's own light"):
            lamp.set_lux(5, meter)
        with pytest.raises(LuxUnreachable, match="above the lamp's reach"):
            lamp.set_lux(20000, meter)
    finally:
        lamp.line.close()
        meter.line.close()


def test_turntable_homes_moves_and_waits(table_dev):
    table = Turntable(LineDevice(table_dev.path))
    try:
        with pytest.raises(RigDeviceError, match="ERR 4"):         # a move before HOME is refused
            table.line.ok("MOVE 10")
        table.home()
        assert table.move_to(90.0) == pytest.approx(90.0)
        angle, moving = table.position()
        assert angle == pytest.approx(90.0) and not moving
        assert "POS?" in table_dev.commands                       # it polled while the table moved
        with pytest.raises(RigDeviceError, match="ERR 2"):
            table.line.ok("MOVE 270")
        table_dev.speed_dps = 10.0
        with pytest.raises(RigTimeout, match="did not reach"):
            table.move_to(-90.0, timeout_s=0.3)
        assert table_dev.commands[-1] == "STOP"
    finally:
        table.line.close()


def _rig_file(tmp_path, lamp_dev, meter_dev, table_dev, extra=""):
    p = tmp_path / "rig.toml"
    p.write_text(f"""
[camera]
uri = "realsense://843112070001"
usb_allow = ["8086:0b07:843112070001"]
distance_mm = 500

[lamp]
port = "{lamp_dev.path}"

[meter]
port = "{meter_dev.path}"

[turntable]
port = "{table_dev.path}"

[usb]
location = "1-1"
port = 2

[instruments]
live = 180.0
print = 0.0
mask = 90.0
{extra}""")
    return p


def sc(**kw):
    return parse_set({"set": {"name": "t"}, "scenario": [{"name": "s", "expect": ["not_live"], **kw}]},
                     extra_species=("print", "mask")).scenarios[0]


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A fake uhubctl first on PATH, hub 1-1 with four ports."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    uhubctl.install(bin_dir, tmp_path / "hub.json", [{"location": "1-1", "description": "hub, ppps", "nports": 4,
                                                      "ports": {"2": {"power": True}}}])
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_a_serial_rig_sets_up_a_scenario(tmp_path, fake_hub, lamp_dev, meter_dev, table_dev):
    asked: list[str] = []
    rig = SerialRig(load_rig_file(_rig_file(tmp_path, lamp_dev, meter_dev, table_dev)), operator=asked.append)
    try:
        assert rig.instruments["turntable"].startswith("HILRIG,TURN-1")
        assert rig.device_policy()["usb_allow"] == ["8086:0b07:843112070001"] and rig.species() == ("print", "mask")
        cond = rig.prepare(sc(subject="mask", lux=800, cct=3000, yaw=10), 0)
        assert cond.scene["turntable_deg"] == pytest.approx(100.0)
        assert abs(cond.lux_measured - 800) <= 40 and cond.cct == 3000
        assert asked == []                                        # an instrument needs no hands
        rig.prepare(sc(subject="live", expect=["accepted"]), 2)
        assert "bona fide subject" in asked[-1] and "#3" in asked[-1]
        rig.usb.power(False)
    finally:
        rig.close()                                               # lamp off, port powered again
    assert lamp_dev.commands[-1] == "LEVEL 0" and rig.usb.powered()


def test_a_serial_rig_refuses_what_it_cannot_set_up(tmp_path, fake_hub, lamp_dev, meter_dev, table_dev):
    rig = SerialRig(load_rig_file(_rig_file(tmp_path, lamp_dev, meter_dev, table_dev)))
    try:
        with pytest.raises(RigUnsupported, match="needs an operator"):
            rig.check(sc(subject="live", expect=["accepted"]))
        with pytest.raises(RigUnsupported, match="no instrument 'head_model'"):
            rig.check(sc(subject="head_model"))
        with pytest.raises(RigUnsupported, match="simulator keys"):
            rig.check(sc(subject="print", sim={"drop": 0.1}))
        rig.check(sc(subject="print"))
    finally:
        rig.close()
    with pytest.raises(RigConfigInvalid, match="unknown setting"):
        load_rig_file(_rig_file(tmp_path, lamp_dev, meter_dev, table_dev, extra="\n[smoke_machine]\nport = 1\n"))
