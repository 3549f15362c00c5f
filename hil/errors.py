"""Typed errors of the HIL tooling (rigs, scenarios, runs); codes are stable and listed in the README."""

from __future__ import annotations

from drivers.errors import CaptureAgentError


class ScenarioInvalid(CaptureAgentError):
    """A scenario file is not valid TOML, has unknown keys, bad values, or names an unknown species."""

    code = "HIL_SCENARIO_INVALID"


class RigConfigInvalid(CaptureAgentError):
    """The rig's configuration file is missing, malformed or incomplete."""

    code = "HIL_RIG_CONFIG_INVALID"


class RigDeviceError(CaptureAgentError):
    """A rig instrument (lamp, turntable, light meter) answered with an error or garbage."""

    code = "HIL_RIG_DEVICE_ERROR"


class RigTimeout(CaptureAgentError):
    """A rig instrument did not answer, or did not reach its set point, in time."""

    code = "HIL_RIG_TIMEOUT"


class LuxUnreachable(CaptureAgentError):
    """The lamp cannot bring the light meter's reading to the scenario's illuminance."""

    code = "HIL_LUX_UNREACHABLE"


class UsbPowerError(CaptureAgentError):
    """``uhubctl`` failed: no such hub or port, no permission, or output it could not read."""

    code = "HIL_USB_POWER"


class RigUnsupported(CaptureAgentError):
    """The rig cannot set up what a scenario asks for (for example an unplug cycle without USB power)."""

    code = "HIL_RIG_UNSUPPORTED"
