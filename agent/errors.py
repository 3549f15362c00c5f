"""Agent-level typed errors. Codes are stable; see drivers.errors for the base class."""

from __future__ import annotations

from drivers.errors import CaptureAgentError


class ConfigError(CaptureAgentError):
    """The configuration file is missing, malformed, or has unknown keys or bad values."""

    code = "AGT_CONFIG_INVALID"


class UsageError(CaptureAgentError):
    code = "AGT_USAGE"


class SpecViolation(CaptureAgentError):
    """A camera or stream does not meet the capture specification (T/IIFAA 3001.1 §7.5)."""

    code = "AGT_SPEC_VIOLATION"


class NoFace(CaptureAgentError):
    """Offline analysis: too few framesets show a face to judge anything (no verdict is made)."""

    code = "QLT_NO_FACE"


class NoDepth(CaptureAgentError):
    """Offline analysis: the depth stream is empty (all zero) on every frameset (no verdict is made)."""

    code = "QLT_NO_DEPTH"
