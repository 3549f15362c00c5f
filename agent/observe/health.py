"""gRPC health (``grpc.health.v1``) that says something: readiness and the camera's state.

:class:`ReadinessHealth` is grpcio's ``HealthServicer`` whose statuses come from a function of the
server's state. They are computed again on every ``Check`` (at most every ``min_interval_s``) and on
:meth:`ReadinessHealth.refresh`, which the owner calls when its state changes (``Watch`` streams get
the change at once) and from a slow background refresher as a safety net.

The daemon's local API reports (:func:`daemon_statuses`):

- ``""`` and ``capture_agent.v1.local.CaptureService``: SERVING when the daemon has started and is
  not stopping, no firmware update holds the camera, and the camera has not failed;
- ``capture_agent.v1.local.Camera``: SERVING while the camera is online; NOT_SERVING when it is
  reconnecting, failed or under a firmware update; UNKNOWN before anyone has seen it.

The camera's state comes from whoever watches it: :class:`CameraFromSessions` (what each session's
audited events show: a session that got frames, or one that ended with a camera error), or a device
manager's source states through :func:`camera_state_of` (``DeviceManager.status()``).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from grpc_health.v1 import health, health_pb2

CAMERA_SERVICE = "capture_agent.v1.local.Camera"
Status: TypeAlias = int                    # a HealthCheckResponse.ServingStatus value
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UNKNOWN = health_pb2.HealthCheckResponse.UNKNOWN

# Codes that mean the camera itself failed a session (not the person, the server or the worker).
CAMERA_CODE_PREFIXES = ("DRV_", "DEV_", "FW_", "SYN_")


class CameraState(str, enum.Enum):
    UNKNOWN = "unknown"              # nobody has looked yet
    ONLINE = "online"
    RECONNECTING = "reconnecting"    # a device manager is recovering it
    FAILED = "failed"
    MAINTENANCE = "maintenance"      # a firmware update holds it


def camera_state_of(states: Iterable[str]) -> CameraState:
    """One state for a rig from its sources' states (``SourceState`` values): the worst one wins."""
    seen = {getattr(s, "value", s) for s in states}
    if not seen:
        return CameraState.UNKNOWN
    if "maintenance" in seen:                # handed over to a firmware update
        return CameraState.MAINTENANCE
    if seen & {"failed", "stopped"}:
        return CameraState.FAILED
    if seen & {"reconnecting", "starting"}:
        return CameraState.RECONNECTING
    return CameraState.ONLINE if seen == {"online"} else CameraState.UNKNOWN


class CameraFromSessions:
    """The camera's state as sessions find it (a session observer): online once a session got past
    the quality loop or reached a result; failed when a session ended with a camera, sync or
    firmware error. Other failures (a person who never posed, the server, the worker) change nothing."""

    def __init__(self, on_change: Callable[[], None] | None = None):
        self.state = CameraState.UNKNOWN
        self.code = ""                   # the error code behind FAILED
        self._on_change = on_change

    def __call__(self, event: str, data: Mapping[str, Any]) -> None:
        before = self.state
        code = str(data.get("code", ""))
        if event == "error" and code.startswith(CAMERA_CODE_PREFIXES) and code != "FW_MAINTENANCE":
            self.state, self.code = CameraState.FAILED, code
        elif event == "result" or (event == "error" and data.get("stage") not in ("consent", "capture")):
            self.state, self.code = CameraState.ONLINE, ""
        if self.state is not before and self._on_change is not None:
            self._on_change()


def daemon_statuses(service: str, *, ready: Callable[[], bool], camera: Callable[[], CameraState],
                    maintenance: Callable[[], bool] = lambda: False) -> dict[str, Status]:
    """The local API's health statuses from the daemon's readiness and the camera's state."""
    cam = CameraState.MAINTENANCE if maintenance() else camera()
    cam_status = {CameraState.ONLINE: SERVING, CameraState.UNKNOWN: UNKNOWN}.get(cam, NOT_SERVING)
    up = SERVING if ready() and cam not in (CameraState.FAILED, CameraState.MAINTENANCE) else NOT_SERVING
    return {"": up, service: up, CAMERA_SERVICE: cam_status}


class ReadinessHealth(health.HealthServicer):
    """A HealthServicer whose statuses are ``statuses()``, refreshed on Check and on ``refresh()``."""

    def __init__(self, statuses: Callable[[], Mapping[str, Status]], *, min_interval_s: float = 0.5):
        super().__init__()
        self._statuses = statuses
        self._min_interval_s = min_interval_s
        self._refreshed = -1e9
        self._refresh_lock = threading.Lock()
        self._current: dict[str, Status] = {"": SERVING}     # as HealthServicer starts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh()

    def refresh(self) -> None:
        with self._refresh_lock:
            self._refreshed = time.monotonic()
            try:
                statuses = dict(self._statuses())
            except Exception:            # a broken probe is a server that cannot say it is fine
                statuses = dict.fromkeys(self._current, NOT_SERVING)
            for svc, status in statuses.items():
                if self._current.get(svc) != status:     # Watch streams hear of changes only
                    self._current[svc] = status
                    self.set(svc, status)

    def Check(self, request, context):
        if time.monotonic() - self._refreshed >= self._min_interval_s:
            self.refresh()
        return super().Check(request, context)

    def start_refresher(self, every_s: float = 2.0) -> None:
        """Refresh in the background too (states polled from elsewhere reach ``Watch`` streams)."""
        def loop() -> None:
            while not self._stop.wait(every_s):
                self.refresh()
        self._thread = threading.Thread(target=loop, name="health-refresh", daemon=True)
        self._thread.start()

    def enter_graceful_shutdown(self) -> None:
        self._stop.set()
        super().enter_graceful_shutdown()


def probe_local_api(socket_path: str, service: str, timeout_s: float = 2.0) -> dict[str, dict[str, Any]]:
    """Ask a running daemon's local API how it is (for the diagnostics page): ``{"daemon": {...},
    "camera (daemon)": {...}}``, each ``{"text", "ok"}``. The socket's peer gate decides whether
    this user may ask."""
    import os

    import grpc
    from grpc_health.v1 import health_pb2_grpc

    if not os.path.exists(socket_path):
        return {"daemon": {"text": f"not running (no socket at {socket_path})", "ok": None}}
    names = {SERVING: "SERVING", NOT_SERVING: "NOT_SERVING", UNKNOWN: "UNKNOWN"}
    out: dict[str, dict[str, Any]] = {}
    with grpc.insecure_channel(f"unix:{socket_path}") as ch:
        stub: Any = health_pb2_grpc.HealthStub(ch)      # its stub types lack the methods
        for label, svc in (("daemon", service), ("camera (daemon)", CAMERA_SERVICE)):
            try:
                st = stub.Check(health_pb2.HealthCheckRequest(service=svc), timeout=timeout_s).status
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, grpc.Call) else None
                text = ("running; this user is not allowed to ask it" if code == grpc.StatusCode.PERMISSION_DENIED
                        else f"no answer ({code.name if code else 'error'})")
                out[label] = {"text": text, "ok": None}
                break
            out[label] = {"text": names.get(st, str(st)), "ok": {SERVING: True, NOT_SERVING: False}.get(st)}
    return out
