"""The daemon: wires settings into the parts and owns their lifecycle (``capture-agent run``).

Start order: signing key → audit log → uplink client → cameras (the device manager, each camera's
SDK in a camera host process) → liveness worker → local API. Readiness is signalled only when all of
them are up (systemd ``READY=1`` when ``NOTIFY_SOCKET`` is set, and a line on stdout). ``stop(grace)``
reverses it: the local API stops taking calls and cancels a running capture, which reports its error
event; then the worker, the cameras, the uplink and the audit log (whose close writes a signed
checkpoint) are closed.

Watchdog: under systemd's ``WatchdogSec`` (``WATCHDOG_USEC`` in the environment) the main loop calls
:meth:`Daemon.tick`, which sends ``WATCHDOG=1`` at half the interval, and only while the device
manager is healthy (every camera source's thread alive and recently active): a daemon stuck in a way
no deadline caught is restarted by systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import RecordSettings, Settings
from agent.devices.calibration import RigCalibration
from agent.devices.lease import DeviceManager
from agent.devices.policy import is_development_uri
from agent.errors import ConfigError
from agent.liveness.dotref_file import ReferenceFile, check_for_camera, ir_mode
from agent.liveness.supervisor import LivenessSupervisor, SupervisorSettings
from agent.localapi.service import SERVICE, LocalApiServer
from agent.observe.daemon import DaemonObservers
from agent.observe.health import camera_state_of
from agent.observe.ledger import LOCKOUT_EVENTS
from agent.security.audit import MAX_STRING, AuditLog, refuse_uncounted_tpm
from agent.security.keys import PROFILE_ALGORITHMS, Signer, load_signer
from agent.security.pseudonym import Pseudonymizer
from agent.session.capture import SessionDeps
from agent.session.counter import ProbeCounter
from agent.session.lockout import Lockout
from agent.uplink.client import UplinkClient, UplinkConnection
from agent.uplink.seal import PROFILE_SUITES
from agent.uplink.tls import load_client_key
from firmware import runtime as firmware_runtime
from firmware.maintenance import MaintenanceLock

if TYPE_CHECKING:
    from agent.security.tpm import TpmAttestor, TpmMonotonic

log = logging.getLogger(__name__)


def sd_notify(state: str) -> bool:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(state.encode())
    return True


def watchdog_interval_s() -> float | None:
    """systemd's watchdog interval for this process (``WATCHDOG_USEC``, for ``WATCHDOG_PID``), or None."""
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        v = int(usec) / 1e6
    except ValueError:
        return None
    return v if v > 0 else None


def uplink_settings(settings: Settings) -> UplinkConnection:
    u = settings.uplink
    if not u.endpoints:
        raise ConfigError("[uplink] endpoints is empty: the agent has no ingest server to send probes to")

    def read(name: str) -> bytes:
        v = getattr(u, name)
        if not v:
            raise ConfigError(f"[uplink] {name} is not set")
        try:
            return settings.path(v).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read [uplink] {name} {settings.path(v)}: {exc.strerror}") from None

    if not u.key:
        raise ConfigError("[uplink] key is not set")
    key = load_client_key(u.key, settings.base_dir)        # a 0600 file, or held by PKCS#11 / a TPM
    allowed = PROFILE_SUITES[settings.keys.profile]
    suites = tuple(u.suites) or allowed
    if any(s not in allowed for s in suites):
        raise ConfigError(f"[uplink] suites {', '.join(suites)} are not all suites of the "
                          f"{settings.keys.profile!r} profile ({', '.join(allowed)})")
    return UplinkConnection(endpoints=tuple(u.endpoints), ca_pem=read("ca"), cert_pem=read("cert"),
                          key_pem=key if isinstance(key, bytes) else b"",
                          client_key=None if isinstance(key, bytes) else key,
                          terminal_id=settings.terminal_id, deadline_s=u.deadline_s, retries=u.retries,
                          backoff_base_s=u.backoff_base_s, backoff_max_s=u.backoff_max_s,
                          claim_lease_s=u.claim_lease_s, in_progress_margin_s=u.in_progress_margin_s,
                          server_name=u.server_name or None, suites=suites)


def signer_spec(settings: Settings) -> str:
    spec = settings.keys.signing_key
    if not spec:
        raise ConfigError("[keys] signing_key is not set (file:PATH, pkcs11:... or tpm:...)")
    if spec.startswith(("pkcs11:", "tpm:")):
        return spec
    path = spec[len("file:"):] if spec.startswith("file:") else spec
    return "file:" + str(settings.path(path))


def check_profile(settings: Settings, signer: Signer) -> None:
    """The signing key's algorithm belongs to the configured profile (an SM2 key for ``gm``)."""
    allowed = PROFILE_ALGORITHMS[settings.keys.profile]
    if signer.algorithm not in allowed:
        raise ConfigError(f"[keys] profile {settings.keys.profile!r} signs with {' or '.join(allowed)}, but "
                          f"signing_key is a {signer.algorithm} key")



def supervisor_settings(settings: Settings, dot_reference: bytes = b"") -> SupervisorSettings:
    """The liveness worker's supervision from ``[session]``: its start's stall limit and its verdict's deadline
    after the window (``worker_timeout_s``, plus ``judge_per_frameset_s`` per frameset sent), with the camera's
    dot reference for its judge."""
    return SupervisorSettings(start_stall_s=settings.session.worker_start_stall_s,
                              judge_timeout_s=settings.session.worker_timeout_s, dot_reference=dot_reference)


def load_dot_reference(path: Path, devices: DeviceManager) -> tuple[bytes, ReferenceFile]:
    """``[camera] dot_reference``: the file's bytes, checked as the worker will parse them
    (``LIV_DOT_REFERENCE_INVALID``), and recorded in the IR mode of the camera now open
    (``LIV_DOT_REFERENCE_MISMATCH``); either refuses the start. A camera not plugged in yet is
    checked by the judge itself: a pair of frames the reference does not fit is not tested against it
    (``features.predicted_pattern``). The bytes go to the liveness worker (``SupervisorSettings``)."""
    raw = ReferenceFile.read_bytes(path)
    ref = ReferenceFile.parse(raw, str(path))
    profiles = [p for src in devices.rig.sources for p in src.profiles]
    if profiles:
        check_for_camera(ref, ir_mode(profiles), str(path))
    return raw, ref

class Daemon:
    def __init__(self, settings: Settings, config_digest: str = "", hardening: dict[str, object] | None = None):
        self.settings = settings
        self.config_digest = config_digest          # SHA-256 of the config file, for the audit log
        self.hardening = hardening or {}            # agent.security.process.harden_daemon()'s report
        self.audit: AuditLog | None = None
        self.uplink: UplinkClient | None = None
        self.supervisor: LivenessSupervisor | None = None
        self.api: LocalApiServer | None = None
        self.deps: SessionDeps | None = None
        self.devices: DeviceManager | None = None
        self._watchdog_s = watchdog_interval_s()
        self._last_ping = 0.0
        self.attestor: TpmAttestor | None = None
        self.tpm_counter: TpmMonotonic | None = None      # [audit] tpm_counter (sec29)
        self.observers: DaemonObservers | None = None     # health, metrics ([metrics]), camera state

    def start(self) -> None:
        s = self.settings
        for uri in s.camera.uris:
            if is_development_uri(uri) and not s.devices.allow_development_cameras:
                raise ConfigError(f"[camera] uris names {uri.split('://', 1)[0]}://, a simulated camera or a "
                                  "recording; a production terminal captures from a physical camera (set [devices] "
                                  "allow_development_cameras = true only for development, tests and the demo)")
        calibration = RigCalibration.load(s.path(s.camera.calibration)) if s.camera.calibration else None
        signer = load_signer(signer_spec(s))
        check_profile(s, signer)
        state = s.path(s.state_dir)
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        if s.audit.tpm_counter:                         # sec29: the counted lockout entries and the TPM's clock
            from agent.security.tpm import load_monotonic
            self.tpm_counter = load_monotonic(s.audit.tpm_counter)
        else:                                           # sec30: a counter that was in use, gone from the config
            refuse_uncounted_tpm()
        try:
            self.audit = AuditLog(s.path(s.audit.path), signer, checkpoint_every=s.audit.checkpoint_every,
                                  checkpoint_interval_s=s.audit.checkpoint_interval_s, counter=self.tpm_counter,
                                  counted=LOCKOUT_EVENTS)
        except BaseException:
            self.stop(0)
            raise
        try:
            self.uplink = UplinkClient(uplink_settings(s))
            maintenance = MaintenanceLock(state)
            # Health and metrics see the device manager's sources: their states and every fault and recovery.
            self.observers = DaemonObservers(s.metrics, SERVICE, maintenance=maintenance.update_running)
            # Firmware: the manifest is verified now (a bad one stops the start); the device manager's
            # sources run the gate at every open, sessions at every lease. The maintenance lock is
            # shared with `capture-agent firmware update`, which the manager hands its cameras over to.
            firmware_gate = firmware_runtime.build_gate(s.firmware, state, s.path, alert=self.audit.record)
            self.devices = DeviceManager(s.camera.uris, s.devices, calibration, on_event=self.observers.on_source_event,
                                         maintenance=maintenance, firmware=firmware_gate,
                                         on_maintenance=self.audit.record)
            devices = self.devices
            self.observers.camera_state = lambda: camera_state_of(st["state"] for st in devices.status().values())
            self.devices.start()
            if s.keys.attestation:
                from agent.security.tpm import load_attestor
                self.attestor = load_attestor(s.keys.attestation)
                if self.tpm_counter is not None:        # sec31: anchors carry the AK's NV_Certify of counter and chain
                    attestor, counter = self.attestor, self.tpm_counter
                    self.audit.certify = lambda nonce: attestor.certify_counter(nonce, counter)
            dot_reference = load_dot_reference(s.path(s.camera.dot_reference), self.devices) \
                if s.camera.dot_reference else None
            self.supervisor = LivenessSupervisor(supervisor_settings(
                s, dot_reference[0] if dot_reference is not None else b""))
            self.supervisor.start()
            self.observers.start(self.supervisor, self.audit, self.devices.status)
            self.deps = SessionDeps(terminal_id=s.terminal_id, camera_uri=s.camera.uris[0], uplink=self.uplink,
                                    signer=signer, supervisor=self.supervisor, audit=self.audit, settings=s.session,
                                    quality=s.quality, devices=s.devices, counter=ProbeCounter(state / "probe-counter"),
                                    lockout=Lockout(s.session, path=state / "lockout.json", audit=self.audit,
                                                    tpm=self.tpm_counter, terminal_key=f"terminal:{s.terminal_id}"),
                                    pseudonym=Pseudonymizer.load_or_create(state),
                                    read_timeout_s=s.camera.read_timeout_s, cameras=self.devices,
                                    attestor=self.attestor, recording=self._record_settings(),
                                    challenge=s.challenge, observer=self.observers.observe)
            # Updates that did not finish are audited and their cameras refused at open.
            self.deps.firmware = firmware_gate
            self.deps.maintenance = maintenance
            firmware_runtime.report_interrupted(state, self.audit.record)
            la = s.local_api
            self.api = LocalApiServer(self.deps, str(s.path(la.socket)), allowed_uids=la.allowed_uids,
                                      allowed_groups=la.allowed_groups, mode=int(la.socket_mode, 8),
                                      group=la.socket_group, max_message_bytes=la.max_message_bytes,
                                      max_connections=la.max_connections,
                                      max_connections_per_uid=la.max_connections_per_uid,
                                      idle_timeout_s=la.idle_timeout_s, record=self.deps.record,
                                      health_servicer=self.observers.health)
            self.api.start()
        except BaseException:
            self.stop(0)
            raise
        hello = self.supervisor.hello
        self.audit.record("agent_start", terminal_id=s.terminal_id, camera=" ".join(s.camera.uris)[:MAX_STRING],
                          calibration_sha256=calibration.digest if calibration else None,
                          dot_reference_sha256=hello.get("dot_reference_sha256"),
                          socket=str(s.path(s.local_api.socket))[:200], worker_pid=self.supervisor.pid,
                          config_sha256=self.config_digest or None, uid=os.getuid(),
                          dumpable=self.hardening.get("dumpable"), core_limit=self.hardening.get("core_limit"),
                          worker_uid=hello.get("uid"), worker_userns=hello.get("userns"),
                          worker_netns=hello.get("netns"), worker_landlock_abi=hello.get("landlock_abi"),
                          worker_seccomp=hello.get("seccomp"),
                          record=f"{s.record.format}:{s.path(s.record.dir)}"[:200] if s.record.dir else None)
        if s.record.dir:
            log.warning("lab record mode: every session's raw frames are written to %s", s.path(s.record.dir))
        self._note_config_change(self.audit, state / "config-sha256")
        self.observers.set_ready(True)
        sd_notify("READY=1")

    def _record_settings(self) -> RecordSettings:
        r = self.settings.record
        return replace(r, dir=str(self.settings.path(r.dir))) if r.dir else r

    def _note_config_change(self, audit: AuditLog, marker: Path) -> None:
        if not self.config_digest:
            return
        old = marker.read_text().strip() if marker.exists() else ""
        if old != self.config_digest:
            audit.record("config_changed", previous_sha256=old or None, config_sha256=self.config_digest)
            marker.write_text(self.config_digest + "\n")

    def stop(self, grace: float = 5.0) -> None:
        sd_notify("STOPPING=1")
        if self.observers is not None:
            self.observers.set_ready(False)           # health says NOT_SERVING before the API closes
        if self.api is not None:
            self.api.stop(grace)
            self.api = None
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        if self.devices is not None:
            self.devices.stop()
            self.devices = None
        if self.uplink is not None:
            self.uplink.close()
            self.uplink = None
        if self.attestor is not None:
            self.attestor.close()
            self.attestor = None
        if self.observers is not None:
            self.observers.stop()
            self.observers = None
        if self.audit is not None:
            self.audit.record("agent_stop")
            self.audit.close()
            self.audit = None
        if self.tpm_counter is not None:
            self.tpm_counter.close()
            self.tpm_counter = None

    def tick(self) -> None:
        """Called by the main loop (at least every 0.5 s): the systemd watchdog's ping."""
        if self._watchdog_s is None:
            return
        now = time.monotonic()
        if now - self._last_ping < self._watchdog_s / 2:
            return
        if self.devices is not None and not self.devices.healthy():
            log.error("device manager unhealthy (%s): withholding the watchdog ping", self.devices.status())
            return
        sd_notify("WATCHDOG=1")
        self._last_ping = now

    @property
    def socket_path(self) -> Path:
        return self.settings.path(self.settings.local_api.socket)
