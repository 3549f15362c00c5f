"""Typed settings from one TOML file.

The file is read with ``tomllib`` into frozen dataclasses. Unknown keys are errors (a typo in a
threshold must not silently fall back to a default), and every value is type-checked. Sections are
dataclasses; a section's module owns its fields and documents the clause of the standard each
threshold comes from. ``capture-agent.sample.toml`` at the repository root documents every key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import types
import typing
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from agent.devices.policy import DeviceSettings
from agent.errors import ConfigError
from agent.observe.settings import MetricsSettings
from firmware.settings import FirmwareSettings

if TYPE_CHECKING:                    # imported late at run time: config stays import-light
    from _typeshed import DataclassInstance

    from agent.quality.settings import QualitySettings

T = TypeVar("T", bound="DataclassInstance")

# A terminal id is a certificate CN and a file name: letters, digits, dot, dash, underscore.
TERMINAL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Characters no setting may hold: C0/C1 controls (a newline forges log lines), format characters
# (U+202E RIGHT-TO-LEFT OVERRIDE shows "kiosk-1\u202eexe.sys" as something else), line separators.
_BAD_TEXT_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


def check_text(path: str, value: str) -> str:
    """``value`` unless it holds a control, format or line-separator character."""
    for c in value:
        if unicodedata.category(c) in _BAD_TEXT_CATEGORIES:
            raise ConfigError(f"{path}: contains the control or formatting character U+{ord(c):04X} "
                              f"({unicodedata.name(c, 'unnamed')}), which no setting may hold")
    return value


def check_terminal_id(value: str, path: str = "terminal_id") -> str:
    """A terminal id: 1-64 of letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit
    (no path separators, no ``..``, nothing a certificate CN or a file name would mangle)."""
    check_text(path, value)
    if not TERMINAL_ID_RE.fullmatch(value):
        raise ConfigError(f"{path}: {value[:80]!r} is not a terminal id (1-64 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit)")
    return value


def _check_value(path: str, tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_value(path, a, value)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(f"{path}: {value!r} matches none of the allowed types")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {type(value).__name__}")
        return from_dict(tp, value, path)
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected an array, got {type(value).__name__}")
        item = args[0] if args else Any
        items = [_check_value(f"{path}[{i}]", item, v) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _check_value(f"{path}.{k}", vt, v) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return check_text(path, value)
    if isinstance(tp, type) and issubclass(tp, Path):
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a path string, got {value!r}")
        return Path(check_text(path, value))
    if typing.get_origin(tp) is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    raise ConfigError(f"{path}: unsupported setting type {tp!r}")


def from_dict(cls: type[T], data: dict[str, Any], path: str = "") -> T:
    """Build dataclass ``cls`` from a TOML table, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls, localns=_section_types())
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = path or "top level"
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _check_value(f"{path + '.' if path else ''}{name}", hints[name], value)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or 'config'}: {exc}") from None
    return obj


@dataclasses.dataclass(frozen=True)
class CameraSettings:
    # The cameras the daemon captures from: one URI, or a rig of several (e.g. Orbbec depth+IR and a
    # UVC colour camera; each stream comes from the first URI that provides it). The simulated camera
    # is the embedded default.
    uris: tuple[str, ...] = ("sim://",)
    read_timeout_s: float = 1.0           # one wait for a frame (the session's stage deadlines bound the rest)
    # Rig calibration JSON: extrinsics between separate cameras (agent/devices/calibration.py).
    calibration: str = ""
    # The camera's projector dot pattern (agent/liveness/dotref.py, `capture-agent projector-enrol`):
    # checked by `doctor --config` and at the daemon's start (a bad file LIV_DOT_REFERENCE_INVALID, one
    # recorded in another IR mode LIV_DOT_REFERENCE_MISMATCH: the start is refused), then handed to the
    # liveness worker's judge as data (agent/liveness/supervisor.py). Empty: the judge has none.
    dot_reference: str = ""

    def __post_init__(self) -> None:
        if not self.read_timeout_s > 0:
            raise ValueError("read_timeout_s must be positive")
        if not self.uris:
            raise ValueError("uris must name at least one camera")
        if len(set(self.uris)) != len(self.uris):
            raise ValueError("uris must not name a camera twice")


@dataclasses.dataclass(frozen=True)
class LoggingSettings:
    level: typing.Literal["debug", "info", "warning", "error"] = "info"


# ``[session] worker_timeout_s``'s bounds (s): above the verdict's worst case after a window's last frameset, and a
# hung worker released within two minutes.
WORKER_TIMEOUT_RANGE_S = (2.0, 120.0)


@dataclasses.dataclass(frozen=True)
class SessionSettings:
    """``[session]``: one capture from consent to receipt (agent/session/capture.py). Seconds are monotonic."""

    enroll_budget_ms: float = 3000.0       # §7.2: enrolment capture response time
    verify_budget_ms: float = 2000.0       # §7.2: verification response time
    quality_timeout_s: float = 20.0        # time the person has to get into position (prompts meanwhile)
    challenge_window_s: float = 10.0       # the framesets under the projector schedule must arrive within this
    max_failures: int = 5                  # §8.2.5 d: failed attempts (per terminal, per subject) ...
    failure_window_s: float = 600.0        # ... within this window lock both out ...
    lockout_s: float = 900.0               # ... for this long
    # A challenge window ended late or with frames lost while the terminal itself was busy (``host_late``, no
    # burst on the link) settles its charge without a strike this many times an hour per terminal and per
    # subject (audited ``lockout_graced``); beyond that, and always when 0, it counts like a failed one (late31).
    host_late_grace_per_hour: int = 1
    # The liveness worker's start (spawn, sandbox, face models, warm-up): killed when none of its
    # start phases completes within this of the one before (LIV_WORKER_START_STALLED).
    worker_start_stall_s: float = 60.0
    # The liveness worker's verdict once the challenge window's framesets are all sent: killed (LIV_WORKER_TIMEOUT,
    # the session fails, no strike) when none comes within this plus 0.5 s per frameset sent (its backlog on a busy
    # terminal). Within WORKER_TIMEOUT_RANGE_S: the verdict's worst case seen on a loaded 2-core machine is ~0.4 s
    # after the last frameset (issue 20's wall p95), so a deadline under 2 s would kill healthy workers; over 120 s a
    # hung worker holds the kiosk for minutes. The nonce is asked for challenge_window_s plus this (and the submit);
    # the 0.5 s a frameset is bounded by the nonce's life instead (LIV_VERDICT_PAST_NONCE, perf34).
    worker_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("enroll_budget_ms", "verify_budget_ms", "quality_timeout_s", "challenge_window_s",
                     "failure_window_s", "lockout_s", "worker_start_stall_s"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):   # inf too (fix33)
                raise ValueError(f"{name} must be positive and finite")
        if self.max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if self.host_late_grace_per_hour < 0:
            raise ValueError("host_late_grace_per_hour must not be negative")
        low, high = WORKER_TIMEOUT_RANGE_S
        if not low <= self.worker_timeout_s <= high:
            raise ValueError(f"worker_timeout_s must be within {low:g}..{high:g} s (the liveness worker's verdict "
                             f"deadline after the window's last frameset, plus 0.5 s per frameset); got "
                             f"{self.worker_timeout_s:g}")


@dataclasses.dataclass(frozen=True)
class ChallengeSettings:
    """``[challenge]``: what the terminal can be challenged with besides its camera (docs/liveness.md).
    The server's policy per channel says which challenges it demands (hil/ingest/evidence.py)."""

    # The kiosk app shows the illumination challenge's colours full screen when the local API sends
    # them (``Illumination`` events); false on a terminal whose app cannot (the illumination
    # challenge is then not offered, and a channel whose policy demands it refuses the terminal).
    kiosk_screen: bool = True
    # The screen's light on the face in a bright room (docs/liveness.md, *The screen brighter in bright
    # light*): when the face's illuminance before the window (the quality gate's estimate, a camera with
    # a lux calibration only) is at least ``screen_boost_lux``, the Illumination events ask the app to
    # show the sequence at ``screen_boost`` times the panel's everyday luminance (its backlight raised
    # for the sequence, capped by the app at the panel's maximum). 1: the panel has no headroom (or the
    # app cannot raise it), every window at the everyday luminance, as before. The estimate reads the
    # skin's level against a reference skin, so a darker skin reads less than its room's light (0.14-0.93
    # of it on the train family's ten faces): 600 is the least any of them read at 5,000 lux (673),
    # rounded down; a face that reads 600 stands in at least ~650 lux, where twice the screen's light
    # adds a tenth or so to the face's (no clipping).
    screen_boost: float = 1.0
    screen_boost_lux: float = 600.0

    def __post_init__(self) -> None:
        if not (isinstance(self.screen_boost, (int, float)) and math.isfinite(self.screen_boost)
                and 1.0 <= self.screen_boost <= 8.0):
            raise ValueError("screen_boost must be a number within 1..8")
        if not (isinstance(self.screen_boost_lux, (int, float)) and math.isfinite(self.screen_boost_lux)
                and self.screen_boost_lux > 0):
            raise ValueError("screen_boost_lux must be a positive number")


@dataclasses.dataclass(frozen=True)
class KeySettings:
    """``[keys]`` (agent/security/keys.py, tpm.py, gm.py).

    ``signing_key`` signs probes and audit checkpoints: ``file:PATH`` (mode 0600),
    ``pkcs11:module=...;token=...;object=...;pin-env=VAR`` or ``tpm:key=PATH[;tcti=...]``.
    ``profile``: ``standard`` (Ed25519 or P-256 signatures, HPKE suites x25519 / mlkem768-x25519) or
    ``gm`` (SM2-with-SM3 signatures from an SM2 key file, the sm2-sm4-gcm envelope, SM3 digests);
    a challenge naming a suite outside the profile is refused.
    ``attestation``: ``tpm:key=PATH[;tcti=...][;ima=PATH]``, the TPM attestation key whose quote of the enrolled
    PCRs goes with every probe ("" = no quotes); ``ima`` (pin34): the kernel's IMA measurement list sent with it."""

    signing_key: str = ""
    profile: typing.Literal["standard", "gm"] = "standard"
    attestation: str = ""

    def __post_init__(self) -> None:
        if self.attestation and not self.attestation.startswith("tpm:"):
            raise ValueError("attestation must be a tpm:key=PATH spec (or empty)")


@dataclasses.dataclass(frozen=True)
class UplinkSettings:
    """``[uplink]``: the ingest server(s), mutual TLS (§8.2.3). Paths are relative to the config file."""

    endpoints: tuple[str, ...] = ()        # "host:port", tried in order with failover
    ca: str = ""                           # the pinned CA that issued the server's certificate
    cert: str = ""                         # this terminal's client certificate (CN = terminal_id)
    key: str = ""                          # its private key: a file (mode 0600), or pkcs11:... / tpm:... (P-256)
    server_name: str = ""                  # name the server certificate must carry when endpoints are addresses
    suites: tuple[str, ...] = ()           # suites accepted in a challenge; empty = every suite of [keys] profile
    deadline_s: float = 2.0                # per call
    retries: int = 3                       # UNAVAILABLE / DEADLINE_EXCEEDED only, jittered backoff
    backoff_base_s: float = 0.05
    backoff_max_s: float = 1.0
    claim_lease_s: float = 5.0             # the server's claim_lease_s, when it does not say it (PROBE_IN_PROGRESS)
    in_progress_margin_s: float = 1.0      # waited beyond that lease for the probe's copy to be judged

    def __post_init__(self) -> None:
        if self.deadline_s <= 0 or self.retries < 0 or self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("uplink deadline must be positive and retries/backoff non-negative")
        if not 0 < self.claim_lease_s <= 3600 or not 0 <= self.in_progress_margin_s <= 60:
            raise ValueError("uplink claim_lease_s must be in (0, 3600] s and in_progress_margin_s in [0, 60] s")
        known = ("x25519", "mlkem768-x25519", "sm2-sm4-gcm")
        if any(s not in known for s in self.suites) or len(set(self.suites)) != len(self.suites):
            raise ValueError(f"uplink suites must be distinct names from {', '.join(known)} (the daemon also "
                             "checks them against [keys] profile)")


@dataclasses.dataclass(frozen=True)
class LocalApiSettings:
    """``[local_api]``: the kiosk app's gRPC endpoint, a Unix socket (agent/localapi/)."""

    socket: str = "/run/capture-agent/agent.sock"
    socket_mode: str = "0660"              # octal; the socket's group is socket_group
    socket_group: str = ""                 # group name or gid owning the socket ("" = the agent's)
    allowed_uids: tuple[int, ...] = ()     # peers allowed by SO_PEERCRED uid ...
    allowed_groups: tuple[str, ...] = ()   # ... or by primary/supplementary group (names or gids)
    max_message_bytes: int = 65536         # requests are small; anything bigger is refused
    max_connections: int = 16              # allowed peers at once (refused peers have their own, small pool)
    max_connections_per_uid: int = 8       # ... of which one uid may hold this many
    idle_timeout_s: float = 300.0          # a connection with no bytes either way is closed

    def __post_init__(self) -> None:
        if not re.fullmatch(r"0?[0-7]{3}", self.socket_mode):
            raise ValueError(f"socket_mode must be an octal mode such as \"0660\", not {self.socket_mode[:16]!r}")
        mode = int(self.socket_mode, 8)
        if mode & 0o007:
            raise ValueError("socket_mode must not grant access to others (last octal digit must be 0)")
        if not 1024 <= self.max_message_bytes <= 1 << 20 or self.max_connections < 1:
            raise ValueError("max_message_bytes must be 1 KiB-1 MiB and max_connections at least 1")
        if self.max_connections_per_uid < 1 or not self.idle_timeout_s > 0:
            raise ValueError("max_connections_per_uid must be at least 1 and idle_timeout_s positive")


@dataclasses.dataclass(frozen=True)
class AuditSettings:
    """``[audit]``: the hash-chained audit log of key operations (§8.2.5; agent/security/audit.py)."""

    path: str = "/var/lib/capture-agent/audit.jsonl"
    checkpoint_every: int = 50             # sign the chain head after this many entries ...
    checkpoint_interval_s: float = 300.0   # ... or this long after the last checkpoint
    # sec29: the TPM's NV counter that each lockout entry advances, and whose clock judges a lockout's end, and
    # (sec30) the NV extend index each one's hash is extended into (chain=, default the index after nv=):
    # tpm:nv=0x018C0A29[;chain=0x018C0A2A][;tcti=...][;owner-auth-env=VAR|owner-auth-file=PATH] (capture-agent keys
    # tpm-counter defines both). "" = none: the system clock alone, and a cut of the log's unanchored tail goes
    # undetected; a log with counted entries, or a TPM with written audit indices, then refuses the start.
    tpm_counter: str = ""

    def __post_init__(self) -> None:
        if self.checkpoint_every < 1 or self.checkpoint_interval_s <= 0:
            raise ValueError("checkpoint_every must be >= 1 and checkpoint_interval_s positive")
        if self.tpm_counter and not self.tpm_counter.startswith("tpm:"):
            raise ValueError("tpm_counter must be a tpm:nv=0x... spec (or empty)")


@dataclasses.dataclass(frozen=True)
class RecordSettings:
    """``[record]``: lab-only raw session recording (agent/session/record.py). Every session's frames
    go to ``dir`` as a RealSense ``.db3`` (any camera) or an OpenNI ``.oni`` (``openni://`` cameras).
    This writes face data to disk: only a config with ``lab = true`` may set it (§8.2.4 a)."""

    dir: str = ""                          # empty: off
    format: typing.Literal["db3", "oni"] = "db3"


def _quality_settings():
    from agent.quality.settings import QualitySettings
    return QualitySettings


@dataclasses.dataclass(frozen=True)
class Settings:
    terminal_id: str = "terminal-dev-0001"
    state_dir: str = "/var/lib/capture-agent"   # the probe counter (a number); never face data
    camera: CameraSettings = CameraSettings()
    logging: LoggingSettings = LoggingSettings()
    quality: QualitySettings = dataclasses.field(default_factory=lambda: _quality_settings()())
    devices: DeviceSettings = DeviceSettings()
    session: SessionSettings = SessionSettings()
    challenge: ChallengeSettings = ChallengeSettings()
    keys: KeySettings = KeySettings()
    uplink: UplinkSettings = UplinkSettings()
    local_api: LocalApiSettings = LocalApiSettings()
    audit: AuditSettings = AuditSettings()
    firmware: FirmwareSettings = FirmwareSettings()
    # A lab rig, not a production terminal: the only kind of config that may record raw sessions.
    lab: bool = False
    record: RecordSettings = RecordSettings()
    metrics: MetricsSettings = MetricsSettings()      # Prometheus endpoint, off by default (agent/observe)
    # Directory relative paths in the file are resolved against (the config file's own directory).
    base_dir: Path = Path(".")

    def __post_init__(self) -> None:
        check_terminal_id(self.terminal_id)
        if self.record.dir and not self.lab:
            raise ValueError("[record] writes raw face frames to disk: a production config refuses it "
                             "(only a lab rig's config, with lab = true, may record)")
        if self.record.dir and self.record.format == "oni" and not all(
                u.startswith("openni://") for u in self.camera.uris):
            raise ValueError("[record] format = \"oni\" records OpenNI devices only (openni:// cameras); "
                             "use \"db3\" for other cameras")

    def path(self, value: str) -> Path:
        """A path setting, resolved against the config file's directory."""
        p = Path(value)
        return p if p.is_absolute() else (self.base_dir / p)


def _section_types() -> dict[str, type]:
    """Section classes that live in their own modules (imported late to keep config import-light)."""
    from agent.quality.settings import QualitySettings
    return {"QualitySettings": QualitySettings}


def load(path: str | Path | None) -> Settings:
    """Read settings from ``path``; ``None`` gives the built-in defaults."""
    if path is None:
        return Settings()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    if "base_dir" in data:
        raise ConfigError("base_dir is not a setting (relative paths are resolved against the config file)")
    return dataclasses.replace(from_dict(Settings, data), base_dir=p.resolve().parent)
