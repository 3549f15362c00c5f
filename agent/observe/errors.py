"""Typed errors of the metrics endpoint and the diagnostics page (stable codes, README)."""

from __future__ import annotations

from drivers.errors import CaptureAgentError


class MetricsUnavailable(CaptureAgentError):
    """``[metrics]`` is enabled but its endpoint cannot listen (the port is taken)."""

    code = "OBS_METRICS_LISTEN"


class DiagnosticsListen(CaptureAgentError):
    """The diagnostics page cannot listen: ``--listen`` is not a loopback HOST:PORT, or the port is taken."""

    code = "DIAG_LISTEN"
