"""The daemon's observers in one place: the camera's state, the local API's health, and the
Prometheus metrics when ``[metrics] enabled`` (only then is ``prometheus_client`` imported, with the
HTTP modules it brings: about 4 MiB of a daemon that serves no metrics, issue 20).

``agent.daemon`` builds one :class:`DaemonObservers`, passes :meth:`DaemonObservers.observe` as the
session observer and :attr:`DaemonObservers.health` to the local API, calls :meth:`start` once the
liveness supervisor exists, ``set_ready(True)`` when it signals readiness and ``stop()`` last.
A device manager that watches the camera between sessions replaces :attr:`camera_state` (e.g.
``lambda: camera_state_of(s["state"] for s in manager.status().values())``) and passes
:meth:`on_source_event` to its sources.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from agent.observe.errors import MetricsUnavailable
from agent.observe.health import CameraFromSessions, CameraState, ReadinessHealth, daemon_statuses
from agent.observe.settings import MetricsSettings

if TYPE_CHECKING:        # prometheus_client (and its HTTP stack) only when [metrics] is enabled
    from agent.observe.metrics import AgentMetrics, MetricsServer

log = logging.getLogger(__name__)


class DaemonObservers:
    def __init__(self, settings: MetricsSettings, service: str, *,
                 maintenance: Callable[[], bool] = lambda: False):
        self.settings = settings
        self._ready = False
        self.sessions_camera = CameraFromSessions(on_change=self.refresh)
        self.camera_state: Callable[[], CameraState] = lambda: self.sessions_camera.state
        self.metrics: AgentMetrics | None = None
        if settings.enabled:
            from agent.observe.metrics import AgentMetrics
            self.metrics = AgentMetrics()
        self.server: MetricsServer | None = None
        self.health = ReadinessHealth(lambda: daemon_statuses(service, ready=lambda: self._ready,
                                                              camera=self.camera_state, maintenance=maintenance))

    def observe(self, event: str, data: Mapping[str, Any]) -> None:
        """``SessionDeps.observer``."""
        self.sessions_camera(event, data)
        if self.metrics is not None:
            self.metrics.observe(event, data)

    def on_source_event(self, ev: Any) -> None:
        """A device manager's ``SourceEvent``: metrics, and the health statuses at once."""
        if self.metrics is not None:
            self.metrics.on_source_event(ev)
        self.refresh()

    def start(self, supervisor: Any, audit: Any = None, devices: Callable[[], Mapping[str, Any]] | None = None) -> None:
        """Start the health refresher and, when enabled, the metrics endpoint (loopback); ``audit``:
        the daemon's ``AuditLog``, whose refused records the metrics count; ``devices``: the device
        manager's ``status``, whose cameras' recovery state the metrics show."""
        self.health.start_refresher()
        if self.metrics is None:
            return
        self.metrics.watch_supervisor(supervisor)
        if devices is not None:
            self.metrics.watch_devices(devices)
        if audit is not None:
            self.metrics.watch_audit(audit)
        try:
            self.server = self.metrics.serve(self.settings.listen)
        except OSError as exc:
            raise MetricsUnavailable(f"[metrics] listen {self.settings.listen}: {exc.strerror or exc}") from None
        log.info("metrics on http://%s/metrics", self.settings.listen.rsplit(":", 1)[0] + f":{self.server.port}")

    def set_ready(self, ready: bool) -> None:
        self._ready = ready
        if self.metrics is not None:
            self.metrics.ready.set(1.0 if ready else 0.0)
        self.refresh()

    def refresh(self) -> None:
        self.health.refresh()

    def stop(self) -> None:
        self.set_ready(False)
        self.health.enter_graceful_shutdown()
        if self.server is not None:
            self.server.stop()
            self.server = None
