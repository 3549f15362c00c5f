"""The interface every rig implements, and what it reports about the conditions it set up."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Protocol

from hil.scenario import Scenario


class UsbPower(Protocol):
    """Power of the USB port the camera hangs on (``uhubctl`` on a bench)."""

    def power(self, on: bool) -> None: ...

    def powered(self) -> bool: ...


@dataclass(frozen=True)
class Conditions:
    """What the rig set up for one session; measured values where the rig can measure."""

    lux_set: float                     # the scenario's illuminance
    lux_measured: float | None         # the light meter's reading (None: the rig has no meter)
    cct: float
    distance_mm: float
    yaw: float
    scene: dict[str, Any] = field(default_factory=dict)   # rig-specific: sim URI, lamp level, angle...

    def to_dict(self) -> dict[str, Any]:
        return {"lux_set": self.lux_set, "lux_measured": self.lux_measured, "cct": self.cct,
                "distance_mm": self.distance_mm, "yaw": self.yaw, "scene": self.scene}


class Rig(abc.ABC):
    """A bench the runner drives. The agent's config names ``camera_uri`` for the whole run."""

    name: str = "rig"
    usb: UsbPower | None = None

    @property
    @abc.abstractmethod
    def camera_uri(self) -> str:
        """The camera the agent captures from (the same for every session of a run)."""

    @abc.abstractmethod
    def device_policy(self) -> dict[str, Any]:
        """The agent's ``[devices]`` settings for this rig: the genuine camera on the allowlist,
        virtual cameras refused, as in production."""

    def session_settings(self) -> dict[str, Any]:
        """``[session]`` settings this rig needs unless the run sets them (a slow camera's window)."""
        return {}

    def server_settings(self) -> dict[str, Any]:
        """Reference server settings this rig needs (``provision_dev`` keywords, e.g. ``nonce_ttl_s``)."""
        return {}

    def species(self) -> tuple[str, ...]:
        """Attack species this rig can present beyond the simulator's (its instrument table)."""
        return ()

    @abc.abstractmethod
    def check(self, scenario: Scenario) -> None:
        """Refuse, before the run starts, a scenario this rig cannot set up (typed error)."""

    @abc.abstractmethod
    def prepare(self, scenario: Scenario, repetition: int) -> Conditions:
        """Set the bench up for one session of ``scenario``."""

    def close(self) -> None:  # noqa: B027 - most rigs have something to leave safe; the default is nothing
        """Leave the bench safe (lamp off, turntable home, port powered)."""
