"""Scenario files: what a HIL run presents to the camera, and what it expects the agent to say.

A scenario file is TOML, read like the agent's own config (``agent.config.from_dict``): unknown keys
and wrong types are refused, so a typo never silently runs a different protocol. One file is one
set::

    [set]
    name = "smoke"
    description = "..."

    [[scenario]]
    name = "live-office"
    subject = "live"              # bona fide, or a PAI species (ISO/IEC 30107-3)
    lux = 300
    repetitions = 2
    expect = ["accepted"]         # the documented expected outcome(s)

Species are not a list of ours: a subject is ``live`` or any attack species the simulator knows
(``drivers.sim.ATTACKS``) or the rig's instrument table names; the report's species are those the
run's scenarios used. Simulator keys beyond the fields below (camera profiles, injection modes,
families...) go in a ``sim`` table and are validated by the simulator itself when the set loads.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.config import from_dict
from agent.errors import ConfigError
from agent.purpose import Purpose
from hil.errors import ScenarioInvalid

# What a session came to, as the kiosk app sees it (``hil.records.outcome_of`` decides).
OUTCOMES = ("accepted", "not_live", "rejected", "not_acquired", "device_refused", "error")
# Red-team attacks on the camera link, each reported like a species and never mixed with presentations.
INJECTIONS = ("virtual_camera", "usb_gadget", "hdmi_grabber", "spliced_replay", "hooked_sdk")
BONA_FIDE = "live"
# Subjects that are neither bona fide nor an attack: the quality gate's cases.
NO_PRESENTATION = ("none", "multi")
CHANNELS = ("counter", "kiosk", "vtm", "mobile")


@dataclass(frozen=True)
class Unplug:
    """An unplug cycle: the camera's USB port is powered off, then on, and the run measures how long
    the agent takes to accept a capture again."""

    off_s: float = 2.0                 # port power off this long
    recover_timeout_s: float = 60.0    # give up waiting for an accepted capture after power-on

    def __post_init__(self) -> None:
        if not 0 < self.off_s <= 120 or not 0 < self.recover_timeout_s <= 600:
            raise ValueError("off_s must be within (0, 120] and recover_timeout_s within (0, 600]")


@dataclass(frozen=True)
class Scenario:
    name: str
    expect: tuple[str, ...]            # outcomes that count as "as expected" (OUTCOMES)
    description: str = ""
    subject: str = BONA_FIDE           # "live", a PAI species, "none" (nobody) or "multi" (two people)
    injection: str = ""                # "" or one of INJECTIONS (red team: the camera link is attacked)
    lux: float = 300.0                 # illuminance on the face (§7.5 d: 15..7500 must work)
    cct: float = 5000.0                # colour temperature, K (§7.5 d: 2300..7500)
    distance_mm: float = 500.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    identity: int = 0                  # sim face variant (per repetition: identity + k when vary_identity)
    seed: int = 0                      # first repetition's seed; repetition k uses seed + k when vary_seed
    vary_seed: bool = True             # independent presentations (noise, motion, blinks) per repetition
    vary_identity: bool = False
    camera: str = ""                   # a simulator camera profile ("d455"...); "" = the rig's camera
    channel: str = "kiosk"
    purpose: Literal["enroll", "verify"] = "verify"
    repetitions: int = 1
    sim: dict[str, Any] = field(default_factory=dict)   # further sim:// keys, passed through
    unplug: Unplug | None = None

    def __post_init__(self) -> None:
        bad = [o for o in self.expect if o not in OUTCOMES]
        if not self.expect or bad:
            raise ValueError(f"expect must list outcomes from {', '.join(OUTCOMES)} (got {list(self.expect)})")
        if self.injection and self.injection not in INJECTIONS:
            raise ValueError(f"injection must be one of {', '.join(INJECTIONS)}")
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
        if not 1 <= self.repetitions <= 10000:
            raise ValueError("repetitions must be within 1..10000")
        if self.unplug is not None and (self.subject != BONA_FIDE or self.injection):
            raise ValueError("an unplug cycle presents a bona fide subject on the genuine camera")

    @property
    def species(self) -> str:
        """What the report counts this scenario's sessions under: "live", the PAI species, or
        ``injection:<kind>`` (never pooled with presentations)."""
        return f"injection:{self.injection}" if self.injection else self.subject

    @property
    def is_attack(self) -> bool:
        return self.subject not in (BONA_FIDE, *NO_PRESENTATION) and not self.injection

    @property
    def purpose_enum(self) -> Purpose:
        return Purpose(self.purpose)

    def repetition(self, k: int) -> dict[str, Any]:
        """Scene values of repetition ``k`` (0-based): the seed and identity it uses."""
        return {"seed": self.seed + (k if self.vary_seed else 0),
                "identity": self.identity + (k if self.vary_identity else 0)}


@dataclass(frozen=True)
class ScenarioSet:
    name: str
    description: str = ""
    scenarios: tuple[Scenario, ...] = ()
    source: str = ""

    @property
    def sessions(self) -> int:
        return sum(s.repetitions for s in self.scenarios)


@dataclass(frozen=True)
class _SetHeader:
    name: str
    description: str = ""


def known_subjects(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """``live``, the quality gate's no-presentation cases, every attack species the simulator knows
    (``drivers.sim.ATTACKS``, extended by others) and any the rig adds (its instrument table)."""
    from drivers.sim import ATTACKS
    return (BONA_FIDE, *NO_PRESENTATION, *ATTACKS, *[s for s in extra if s not in ATTACKS])


def parse_set(data: Mapping[str, Any], source: str = "", extra_species: Iterable[str] = ()) -> ScenarioSet:
    data = dict(data)
    unknown = sorted(set(data) - {"set", "scenario"})
    if unknown:
        raise ScenarioInvalid(f"{source}: unknown top-level key(s) {', '.join(unknown)}; known: scenario, set")
    try:
        header = from_dict(_SetHeader, data.get("set", {}), "set")
        raw = data.get("scenario", [])
        if not isinstance(raw, list) or not raw:
            raise ConfigError("a set needs at least one [[scenario]]")
        items = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise ConfigError(f"scenario[{i}]: expected a table")
            items.append(from_dict(Scenario, entry, f"scenario[{i}]"))
    except ConfigError as exc:
        raise ScenarioInvalid(f"{source}: {exc.message}") from None
    subjects = known_subjects(extra_species)
    names: set[str] = set()
    for s in items:
        if s.name in names:
            raise ScenarioInvalid(f"{source}: scenario name {s.name!r} appears twice")
        names.add(s.name)
        if s.subject not in subjects:
            raise ScenarioInvalid(f"{source}: scenario {s.name!r}: unknown subject {s.subject!r}; "
                                  f"known: {', '.join(subjects)}")
    return ScenarioSet(header.name, header.description, tuple(items), source)


def load_set(path: str | Path, extra_species: Iterable[str] = ()) -> ScenarioSet:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioInvalid(f"cannot read scenario file {p}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioInvalid(f"scenario file {p} is not valid TOML: {exc}") from None
    return parse_set(data, str(p), extra_species)


SHIPPED = Path(__file__).resolve().parent / "scenarios"


def resolve(name_or_path: str) -> Path:
    """A shipped set by name (``smoke``, ``ibeta``, ``lux-sweep``, ``redteam``) or a file path."""
    p = Path(name_or_path)
    if p.exists():
        return p
    shipped = SHIPPED / f"{name_or_path}.toml"
    if shipped.exists():
        return shipped
    names = ", ".join(sorted(x.stem for x in SHIPPED.glob("*.toml")))
    raise ScenarioInvalid(f"no scenario file {name_or_path!r} (shipped sets: {names})")


def with_repetitions(sset: ScenarioSet, repetitions: int) -> ScenarioSet:
    """The same set with every scenario's repetitions replaced (quick dry runs of a big protocol)."""
    return dataclasses.replace(sset, scenarios=tuple(dataclasses.replace(s, repetitions=repetitions)
                                                     for s in sset.scenarios))
