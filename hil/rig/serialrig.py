"""The physical rig: a real camera, a serial lamp dimmer and light meter, a serial turntable carrying
the attack instruments (and the bona fide subject's chair), and USB port power through ``uhubctl``.

Configured by a rig file (TOML, unknown keys refused)::

    [camera]
    uri = "realsense://843112070001"
    usb_allow = ["8086:0b07:843112070001"]
    distance_mm = 500                  # the fixture's camera-to-face distance

    [lamp]       port = "/dev/ttyUSB0"     (baudrate = 9600)
    [meter]      port = "/dev/ttyUSB1"
    [turntable]  port = "/dev/ttyUSB2"     (optional)
    [usb]        location = "1-1"  port = 2   (optional: unplug cycles)

    [instruments]                       # turntable angle at which each faces the camera
    live = 180.0                        # the subject's chair
    print = 0.0
    mask = 90.0

What needs hands (a person in the chair, a fixture moved to another distance, an injection device
cabled in) goes through ``operator(message)``, which returns once the operator confirms; without an
operator such scenarios are refused before the run starts.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config import from_dict
from agent.errors import ConfigError
from hil.errors import RigConfigInvalid, RigDeviceError, RigUnsupported
from hil.rig.base import Conditions, Rig
from hil.rig.lamp import Lamp
from hil.rig.lightmeter import LightMeter
from hil.rig.serialline import LineDevice
from hil.rig.turntable import Turntable
from hil.rig.usbpower import UhubctlPower
from hil.scenario import BONA_FIDE, Scenario

Operator = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class CameraSection:
    uri: str
    usb_allow: tuple[str, ...] = ()
    distance_mm: float = 500.0
    distance_tolerance_mm: float = 20.0


@dataclasses.dataclass(frozen=True)
class PortSection:
    port: str
    baudrate: int = 9600
    timeout_s: float = 1.0


@dataclasses.dataclass(frozen=True)
class UsbSection:
    location: str
    port: int
    binary: str = "uhubctl"


@dataclasses.dataclass(frozen=True)
class RigFile:
    camera: CameraSection
    lamp: PortSection
    meter: PortSection
    turntable: PortSection | None = None
    usb: UsbSection | None = None
    instruments: dict[str, float] = dataclasses.field(default_factory=dict)
    lux_tolerance: float = 0.05


def load_rig_file(path: str | Path) -> RigFile:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
        return from_dict(RigFile, data)
    except OSError as exc:
        raise RigConfigInvalid(f"cannot read rig file {p}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RigConfigInvalid(f"rig file {p} is not valid TOML: {exc}") from None
    except ConfigError as exc:
        raise RigConfigInvalid(f"rig file {p}: {exc.message}") from None


def _line(section: PortSection, what: str) -> LineDevice:
    return LineDevice(section.port, baudrate=section.baudrate, timeout_s=section.timeout_s, what=what)


class SerialRig(Rig):
    name = "serial"

    def __init__(self, cfg: RigFile, operator: Operator | None = None):
        self.cfg = cfg
        self.operator = operator
        self._lines: list[LineDevice] = []
        try:
            self.lamp = Lamp(self._open(cfg.lamp, "lamp"))
            self.meter = LightMeter(self._open(cfg.meter, "light meter"))
            self.turntable = Turntable(self._open(cfg.turntable, "turntable")) if cfg.turntable else None
            self.instruments = {"lamp": self.lamp.line.identify(), "meter": self.meter.line.identify()}
            if self.turntable is not None:
                self.instruments["turntable"] = self.turntable.line.identify()
                self.turntable.home()
        except BaseException:
            self.close_lines()
            raise
        self.usb = UhubctlPower(cfg.usb.location, cfg.usb.port, binary=cfg.usb.binary) if cfg.usb else None
        self._tunable: bool | None = None

    def _open(self, section: PortSection, what: str) -> LineDevice:
        line = _line(section, what)
        self._lines.append(line)
        return line

    @property
    def camera_uri(self) -> str:
        return self.cfg.camera.uri

    def device_policy(self) -> dict[str, Any]:
        return {"usb_allow": list(self.cfg.camera.usb_allow), "refuse_virtual": True,
                "allow_development_cameras": False}

    def species(self) -> tuple[str, ...]:
        return tuple(k for k in self.cfg.instruments if k != BONA_FIDE)

    def _needs_hands(self, s: Scenario) -> list[str]:
        why = []
        if s.subject == BONA_FIDE:              # an unplug cycle too: it ends on an accepted capture
            why.append("a bona fide subject in the chair")
        if s.injection:
            why.append(f"the {s.injection.replace('_', ' ')} cabled in place of the camera")
        if abs(s.distance_mm - self.cfg.camera.distance_mm) > self.cfg.camera.distance_tolerance_mm:
            why.append(f"the fixture moved to {s.distance_mm:g} mm")
        return why

    def check(self, scenario: Scenario) -> None:
        if scenario.unplug is not None and self.usb is None:
            raise RigUnsupported(f"scenario {scenario.name!r} cycles USB power; the rig file has no [usb]")
        if scenario.subject not in self.cfg.instruments and not scenario.injection:
            if scenario.subject != BONA_FIDE or self.turntable is not None:
                raise RigUnsupported(f"scenario {scenario.name!r}: no instrument {scenario.subject!r} in the rig's "
                                     "[instruments] table")
        if scenario.sim:
            raise RigUnsupported(f"scenario {scenario.name!r} sets simulator keys; a physical rig has none")
        hands = self._needs_hands(scenario)
        if hands and self.operator is None:
            raise RigUnsupported(f"scenario {scenario.name!r} needs an operator ({'; '.join(hands)})")

    def prepare(self, scenario: Scenario, repetition: int) -> Conditions:
        scene: dict[str, Any] = {}
        if self.turntable is not None and scenario.subject in self.cfg.instruments:
            angle = self.cfg.instruments[scenario.subject] + scenario.yaw
            angle = (angle + 180) % 360 - 180
            scene["turntable_deg"] = self.turntable.move_to(angle)
        cct = self._set_cct(scenario.cct)
        lux = self.lamp.set_lux(scenario.lux, self.meter, tolerance=self.cfg.lux_tolerance)
        scene["lamp_level"] = self.lamp.level()
        hands = self._needs_hands(scenario)
        if hands:
            assert self.operator is not None          # check() refused this scenario otherwise
            self.operator(f"{scenario.name} #{repetition + 1}: " + "; ".join(hands))
        measured_cct = self.meter.cct()
        scene["cct_measured"] = measured_cct
        return Conditions(lux_set=scenario.lux, lux_measured=lux, cct=cct if cct is not None else measured_cct,
                          distance_mm=scenario.distance_mm, yaw=scenario.yaw, scene=scene)

    def _set_cct(self, kelvin: float) -> float | None:
        """Tunable-white lamps take the scenario's colour temperature; a fixed lamp keeps its own."""
        if self._tunable is False:
            return None
        try:
            self.lamp.set_cct(kelvin)
            self._tunable = True
            return kelvin
        except RigDeviceError:
            if self._tunable:
                raise
            self._tunable = False
            return None

    def close_lines(self) -> None:
        for line in self._lines:
            line.close()
        self._lines.clear()

    def close(self) -> None:
        try:
            self.lamp.off()
            if self.usb is not None and not self.usb.powered():
                self.usb.power(True)
        finally:
            self.close_lines()
