"""Configuration of the reference ingest server (``capture-agent server --config FILE``).

One TOML file; unknown keys are errors; relative paths are resolved against the file's directory.
The server re-reads it on SIGHUP: terminals, their keys and pins, revocations and HPKE keys change
without a restart (the store and the listening socket stay), and the subject keys change only as a
rotation the store accepts (``reload``; a reload it refuses changes nothing)::

    listen = "127.0.0.1:8443"
    cert = "server.pem"             # TLS certificate the terminals verify (pinned CA); its SANs name the server
    key = "server.key"              # mode 0600
    client_ca = "ca.pem"            # CA that issued the terminals' client certificates
    current_suite = "x25519"        # HPKE suite offered in challenges: x25519 | mlkem768-x25519
    nonce_ttl_s = 60.0              # a challenge's lifetime: the challenge window, liveness and submit retries
    frames = 0                      # framesets of the challenge window; 0: what the challenges demanded need
                                    # (24 with the illumination challenge, 48 for the projector's alone)
    retry_window_s = 10.0           # identical resubmits within this get the first receipt
    clock_skew_s = 120.0            # a probe's created_unix_ms may differ this much from the server's clock
    claim_lease_s = 5.0             # a copy of a probe being judged holds its probe id this long (by the
                                    # store's clock): past it, a server that died judging no longer makes
                                    # the terminal's retry PROBE_IN_PROGRESS (1 to nonce_ttl_s; docs/uplink.md);
                                    # said to the terminal with that answer (ca-claim-lease-ms), which waits it out
    subject_key_file = "subject.key"   # required: 32 random bytes (hex), mode 0600, never logged: the key of the
                                    # HMAC-SHA256 that names subjects in the store and in receipts (subject_mac).
                                    # Every server sharing a store, and the bank's matcher, use the same file;
                                    # a degenerate key (all zero, one repeated byte, a counting sequence, text) is
                                    # refused (as the previous key below only warned of: the way away from one);
                                    # a server whose key is not the one the store pins is refused
    subject_key_previous_file = ""  # during a subject key rotation: the key being retired. New challenges name
                                    # subjects under subject_key_file; failures under the previous key's names still
                                    # count against every limit. The store pins the pair from the first server that
                                    # starts (or reloads) with it; it can be dropped failure_window_s + nonce_ttl_s
                                    # after that, not before. SIGHUP applies a change of either key only as such a
                                    # rotation (docs/uplink.md); any other change is refused and the old keys stay
    store = "memory"                # or redis://HOST:PORT/DB or unix:///PATH/redis.sock (shared by several servers)
    store_prefix = "ca:"            # key prefix in a shared store
    store_allow_eviction = false    # Redis must run with maxmemory-policy noeviction: any other policy may evict
                                    # failure counts or the subject key pin, and the server refuses to start on
                                    # it (AGT_STORE_EVICTION) unless this is true (docs/uplink.md says the cost)
    store_allow_volatile = false    # Redis must persist (appendonly yes): one that persists nothing forgets every
                                    # failure count when it restarts, and the server refuses to start on it
                                    # (AGT_STORE_VOLATILE) unless this is true; then every restart of Redis is a
                                    # loss of its data: no challenge for a failure window (docs/uplink.md)
    store_allow_snapshots = false   # RDB save points without appendonly lose the writes since the last snapshot at
                                    # a crash (up to an hour of failure counts at Redis's defaults): refused
                                    # (AGT_STORE_SNAPSHOTS) unless this is true. Every check is run again when
                                    # Redis restarts or fails over (another run_id; docs/uplink.md)
    store_wait_replicas = 0         # a charge waits (WAIT) until this many replicas have it, or the challenge is
                                    # refused STORE_UNAVAILABLE: a failover then loses no issued charge (0: off;
                                    # a replica's round trip per BeginCapture, docs/uplink.md)
    store_wait_ms = 100             # ... for at most this long (1-10000)
    nonces_per_terminal = 8         # a terminal asking for more evicts its oldest
    max_failures = 5                # challenges not taken back by an accepted probe (hil/ingest/limits.py)
                                    # per subject at one terminal (1-64; 0: no limits at all, for load
                                    # generators and HIL runs, never a bank) ...
    max_subject_failures = 10       # ... per subject across terminals (above max_failures, so one terminal
                                    # cannot lock a subject out everywhere; 0: not counted; left out:
                                    # 2 x max_failures, at most 64) ...
    max_terminal_failures = 15      # ... per terminal, whatever the subject (0: not counted; left out:
                                    # 3 x max_failures, at most 64) ...
    failure_window_s = 600.0        # ... within this window: no more until it moves on (at least nonce_ttl_s);
                                    # also how long this server charges nothing after the store lost its data
    revoked_serials = []            # client certificate serials, hex ("5c:e9:..." or "5ce9...")
    crl = ""                        # a CRL file (PEM or DER) from client_ca, re-read when it changes
    [transport]                     # gRPC policy (hil/ingest/server.py ServeOptions)
    workers = 8
    max_concurrent_rpcs = 64
    [[hpke_keys]]                   # the server's HPKE private keys (hex of the raw key, mode 0600)
    suite = "x25519"
    file = "server-x25519.hpke"
    [[terminals]]                   # registered terminals
    id = "kiosk-0001"               # the client certificate's CN
    certificate_spki_sha256 = ["..."]   # SHA-256 of its certificate's public key (one, or two while replacing it)
    public_key = "kiosk-0001.pub.pem"   # its signing key
    previous_public_key = ""        # during a key rotation: the key being retired ...
    previous_key_until = ""         # ... accepted until this RFC 3339 time, e.g. "2026-03-01T00:00:00Z"
    attestation = ""                # optional: the registration `capture-agent keys tpm-enrol` wrote
                                    # (attestation key + PCR values); then every probe needs a TPM quote
    [terminals.camera]              # optional: the camera it was provisioned with (dev-provision writes it;
    serial = "..."                  # `capture-agent camera-identity` prints it); probes from any other
    firmware = "..."                # camera are UNKNOWN_CAMERA
    calibration_sha256 = "..."
    dot_reference_sha256 = "..."    # optional (pin34): the dot reference enrolled on it (`capture-agent
                                    # projector-enrol` prints its sha256); probes judged without it are
                                    # DOT_REFERENCE_MISSING, with another DOT_REFERENCE_MISMATCH
    [[challenge_policy]]            # challenges demanded per channel (hil/ingest/evidence.py); default:
    channel = "*"                   # every channel requires the illumination challenge, and every
    require = ["illumination"]      # challenge a terminal can take is demanded
    frames = 0                      # this channel's window (0: `frames` above)
    [evidence]                      # the server's own thresholds for the challenge evidence
    projector_min_separation = 3.0
    illumination_min_separation = 2.0

``public_key`` may be Ed25519, P-256, or SM2 for the GM profile. ``current_suite = "sm2-sm4-gcm"``
with an ``[[hpke_keys]]`` entry of that suite (hex of the SM2 scalar followed by the public point)
makes the server offer the GM profile's envelope.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import secrets
import threading
import time
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from agent.config import from_dict
from agent.errors import ConfigError
from agent.security.keys import KeyStoreError, algorithm_of, load_public_key_pem, read_private_file
from agent.uplink.seal import SUITES, ServerKey
from hil.ingest.attestation import AttestationPolicy
from hil.ingest.evidence import DEFAULT_POLICY, CameraPin, ChannelPolicy, EvidenceThresholds
from hil.ingest.identity import Registry, Revocation, Terminal
from hil.ingest.limits import SUBJECT_KEY_BYTES, FailureLimits
from hil.ingest.server import ServeOptions, ServerState, ServerTLS
from hil.ingest.store import (
    CLAIM_LEASE_MS,
    MAX_FAILURES_KEPT,
    MemoryStore,
    PinResult,
    Store,
    StoreLimits,
    StoreUnavailable,
)
from hil.ingest.subject_keys import KEY_ID_HEX, SubjectKey, SubjectKeys, weakness

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class HpkeKeyEntry:
    suite: str = "x25519"
    file: str = ""

    def __post_init__(self) -> None:
        if self.suite not in SUITES:
            raise ValueError(f"hpke_keys.suite must be one of {', '.join(SUITES)}")


@dataclasses.dataclass(frozen=True)
class TerminalEntry:
    id: str = ""
    certificate_spki_sha256: tuple[str, ...] = ()
    public_key: str = ""
    previous_public_key: str = ""
    previous_key_until: str = ""
    attestation: str = ""                  # the registration `capture-agent keys tpm-enrol` wrote, if any
    camera: CameraPin = CameraPin()        # the camera it was provisioned with (empty: not pinned)


NONCE_TTL_MAX_S = 3600          # the longest lifetime nonce_ttl_s may give a challenge (StoreWatch._retire_unmeasured)


def _ranged(name: str, value: float, lo: float, hi: float) -> None:
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}")


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:8443"
    cert: str = ""
    key: str = ""
    client_ca: str = ""
    current_suite: str = "x25519"
    nonce_ttl_s: float = 60.0
    frames: int = 0
    retry_window_s: float = 10.0
    clock_skew_s: float = 120.0
    claim_lease_s: float = CLAIM_LEASE_MS / 1000
    keep_sealed: int = 0
    subject_key_file: str = ""
    subject_key_previous_file: str = ""
    store: str = "memory"
    store_prefix: str = "ca:"
    store_allow_eviction: bool = False
    store_allow_volatile: bool = False
    store_allow_snapshots: bool = False
    store_wait_replicas: int = 0
    store_wait_ms: int = 100
    nonces_per_terminal: int = 8
    max_failures: int = 5
    max_subject_failures: int | None = None       # None (left out): derived from max_failures (2x, capped)
    max_terminal_failures: int | None = None      # None (left out): derived from max_failures (3x, capped)
    failure_window_s: float = 600.0
    revoked_serials: tuple[str, ...] = ()
    crl: str = ""
    transport: ServeOptions = ServeOptions()
    hpke_keys: tuple[HpkeKeyEntry, ...] = ()
    terminals: tuple[TerminalEntry, ...] = ()
    challenge_policy: tuple[ChannelPolicy, ...] = DEFAULT_POLICY
    evidence: EvidenceThresholds = EvidenceThresholds()

    def __post_init__(self) -> None:
        channels = [p.channel for p in self.challenge_policy]
        if len(set(channels)) != len(channels):
            raise ValueError("challenge_policy names a channel twice")
        if self.frames and not 8 <= self.frames <= 120:
            raise ValueError("frames must be 0 (from the challenges) or 8-120")
        _ranged("nonce_ttl_s", self.nonce_ttl_s, 5, NONCE_TTL_MAX_S)
        _ranged("retry_window_s", self.retry_window_s, 0, 600)
        _ranged("clock_skew_s", self.clock_skew_s, 0, 3600)
        _ranged("claim_lease_s", self.claim_lease_s, 1, 3600)
        if self.claim_lease_s > self.nonce_ttl_s:
            raise ValueError("claim_lease_s must be at most nonce_ttl_s: a hold that outlives its nonce frees "
                             "nothing")
        _ranged("failure_window_s", self.failure_window_s, 1, 86400)
        _ranged("store_wait_replicas", self.store_wait_replicas, 0, 16)
        _ranged("store_wait_ms", self.store_wait_ms, 1, 10_000)
        if self.failure_window_s < self.nonce_ttl_s:
            raise ValueError("failure_window_s must be at least nonce_ttl_s: a charge would leave the window "
                             "before its probe is judged, and the stores then disagree on the count")
        if not 0 <= self.max_failures <= MAX_FAILURES_KEPT:
            raise ValueError(f"max_failures must be 1-{MAX_FAILURES_KEPT} (the charges the store keeps per key: a "
                             "higher limit would never be reached), or 0 for no limits (never a bank)")
        # Left out, the other two limits follow max_failures (5 gives 15 and 10, the defaults), so a
        # bank that tightened max_failures tightens them too, and one that raised it still starts.
        if self.max_subject_failures is None:
            if self.max_failures >= MAX_FAILURES_KEPT:
                raise ValueError(f"max_failures = {self.max_failures} leaves no room for max_subject_failures "
                                 f"(2 x max_failures, at most {MAX_FAILURES_KEPT}, must be above it): set "
                                 "max_subject_failures (0: not counted) or lower max_failures")
            object.__setattr__(self, "max_subject_failures", min(2 * self.max_failures, MAX_FAILURES_KEPT))
        if self.max_terminal_failures is None:
            object.__setattr__(self, "max_terminal_failures", min(3 * self.max_failures, MAX_FAILURES_KEPT))
        for name in ("max_subject_failures", "max_terminal_failures"):
            if not 0 <= getattr(self, name) <= MAX_FAILURES_KEPT:
                raise ValueError(f"{name} must be 1-{MAX_FAILURES_KEPT} (the charges the store keeps per key), "
                                 "or 0 for that key not counted")
        if self.max_failures and self.max_subject_failures and self.max_subject_failures <= self.max_failures:
            raise ValueError("max_subject_failures must be above max_failures (or 0): at or under it one terminal's "
                             "challenges lock the subject out on every terminal")
        if not 0 <= self.keep_sealed <= 64:
            raise ValueError("keep_sealed must be 0-64 (each kept probe is up to a few MiB)")
        if self.current_suite not in SUITES:
            raise ValueError(f"current_suite must be one of {', '.join(SUITES)}")
        if self.store != "memory" and not self.store.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("store must be \"memory\", redis://HOST:PORT[/DB] or unix:///PATH")

    def failure_limits(self) -> FailureLimits:
        # Never None here: __post_init__ derived them.
        return FailureLimits(self.max_failures, self.failure_window_s,
                             max_terminal_failures=self.max_terminal_failures or 0,
                             max_subject_failures=self.max_subject_failures or 0)

    def store_limits(self) -> StoreLimits:
        # Used nonces are remembered well past their lifetime so a late replay is told REPLAYED.
        return StoreLimits(nonces_per_terminal=self.nonces_per_terminal,
                           keep_used_s=max(self.retry_window_s, 10 * self.nonce_ttl_s))


def write_hpke_key(path: Path, key: ServerKey) -> None:
    from hil.pki import write_private
    write_private(path, key.private_bytes().hex().encode() + b"\n")


class SubjectKeyError(ConfigError):
    """The subject key cannot be used, or not with this store. Codes (stable):
    ``AGT_SUBJECT_KEY_WEAK`` (a degenerate key), ``AGT_SUBJECT_KEY_MISMATCH`` (the store counts
    under another key), ``AGT_SUBJECT_KEY_ROTATION_OPEN`` (a rotation's overlap has not passed: its
    previous key is still needed), ``AGT_SUBJECT_KEY_UNCHECKED`` (a reload changes a key while the
    store cannot be reached to check it), ``AGT_SUBJECT_KEY_RETIRED`` (a rotation back to a key the
    store has rotated away from: the two files swapped, say)."""

    code = "AGT_SUBJECT_KEY_MISMATCH"


def new_subject_key() -> bytes:
    """32 bytes from the system's CSPRNG, never one :func:`weakness` refuses (redrawn: p < 1e-9)."""
    while True:
        key = secrets.token_bytes(SUBJECT_KEY_BYTES)
        if weakness(key) is None:
            return key


def write_subject_key(path: Path) -> None:
    """A new subject key file: 32 random bytes, hex, mode 0600 (``subject_key_file``)."""
    from hil.pki import write_private
    write_private(path, new_subject_key().hex().encode() + b"\n")


def _read_one_subject_key(base: Path, name: str, what: str, *, retiring: bool = False) -> SubjectKey:
    """One subject key file. A degenerate key is refused, except as the key a rotation retires
    (``retiring``): that one is only read (the overlap's counts under its names; nothing is named or
    sent under it), and refusing it left a store first used with such a key no way out but deleting
    its pin by hand, which forgets every subject's failures (review 13); a warning says so."""
    path = _Files(base).at(name)
    try:                        # a missing file or a wrong mode: KeyStoreError, as for every key file
        key = bytes.fromhex(read_private_file(path).decode("ascii", "replace").strip())
    except ValueError:
        key = b""
    if len(key) != SUBJECT_KEY_BYTES:
        raise ConfigError(f"{what} {path} must hold {SUBJECT_KEY_BYTES} random bytes in hex")
    weak = weakness(key)
    if weak is not None and retiring:       # says why, never the key
        log.warning("%s %s is a degenerate key (%s): accepted only as the key this rotation retires, whose "
                    "names the store's counts are under; it names nothing new", what, path, weak)
    elif weak is not None:      # says why, never the key
        raise SubjectKeyError(f"{what} {path} is not a usable key: {weak}; write a new one "
                              "(capture-agent dev-provision, or 32 bytes from a CSPRNG in hex)",
                              code="AGT_SUBJECT_KEY_WEAK")
    return SubjectKey(key)


def read_subject_keys(cfg: ServerConfig, base: Path) -> SubjectKeys:
    """The subject key (``subject_key_file``) and, during a rotation, the previous one
    (``subject_key_previous_file``), each from a private file (mode checked as for every key file)."""
    if not cfg.subject_key_file:
        raise ConfigError("server config needs subject_key_file: 32 random bytes (hex, mode 0600) keying the "
                          "HMAC that names subjects in the store and in receipts; every server sharing a store "
                          "and the bank's matcher must use the same file (capture-agent dev-provision writes one)")
    current = _read_one_subject_key(base, cfg.subject_key_file, "subject_key_file")
    previous = None
    if cfg.subject_key_previous_file:
        previous = _read_one_subject_key(base, cfg.subject_key_previous_file, "subject_key_previous_file",
                                         retiring=True)
        if previous.secret == current.secret:
            raise ConfigError("subject_key_previous_file holds the same key as subject_key_file")
    return SubjectKeys(current, previous)


def overlap_ms(cfg: ServerConfig) -> int:
    """How long after a rotation begins its previous key is still needed: a failure under the old
    name is timed at most ``nonce_ttl_s`` after the rotation began (the last old-key challenge judged)
    and stays within the window ``failure_window_s`` after that."""
    return int((cfg.failure_window_s + cfg.nonce_ttl_s) * 1000)


def check_subject_key(store: Store, keys: SubjectKeys, cfg: ServerConfig, *,
                      required: bool = False) -> PinResult | None:
    """Servers sharing a store must name subjects under one key: a server with another names every
    subject afresh, so each key file would count its own limits for the same customer (review 11).
    The store pins a check value of the key (an HMAC of a fixed label, which says nothing of the
    key) and, during a rotation, the previous key's and when the rotation began
    (``Store.pin_subject_keys``, ``hil/ingest/subject_keys.py``); a server with another key, or
    without the previous key while the rotation's overlap lasts, is refused. A store that cannot be
    reached is not checked (the server starts, as it does without its store) unless ``required``
    (a reload that changes a key: refused). The rotation's start and its overlap are timed by the
    store's clock, never this server's (another server's clock would be compared with it: their
    skew shortened the overlap). Returns what the store did (None: not checked)."""
    previous = keys.previous.check if keys.previous is not None else ""
    try:
        result, pinned = store.pin_subject_keys(keys.current.check, previous, overlap_ms(cfg))
    except StoreUnavailable:
        if required:
            raise SubjectKeyError("the store cannot be reached to check the changed subject key against it; "
                                  "the previous keys stay (reload again when the store answers)",
                                  code="AGT_SUBJECT_KEY_UNCHECKED") from None
        log.warning("subject key not checked against the store: the store is unreachable")
        return None
    where = f"the store {store_said(cfg.store)!r} (prefix {cfg.store_prefix!r})"
    if result is PinResult.MISMATCH:
        raise SubjectKeyError(
            f"{where} counts subjects under another subject_key_file (key id {pinned.current[:KEY_ID_HEX]}"
            f"{', rotating from ' + pinned.previous[:KEY_ID_HEX] if pinned.previous else ''}) than this server's "
            f"(key id {keys.current.key_id}{', previous ' + keys.previous.key_id if keys.previous else ''}): every "
            "server sharing a store, and the bank's matcher, must use the same key; to rotate it, set "
            "subject_key_previous_file to the store's key and subject_key_file to the new one")
    if result is PinResult.RETIRED:
        raise SubjectKeyError(
            f"{where} has rotated away from key id {keys.current.key_id} (it now pins key id "
            f"{pinned.current[:KEY_ID_HEX]}): a rotation back to a retired key is refused; check that "
            "subject_key_file (the new key) and subject_key_previous_file (the store's) are not swapped, "
            "or rotate to a newly written key", code="AGT_SUBJECT_KEY_RETIRED")
    if result is PinResult.OPEN:
        try:                                        # the store's clock, as the decision's
            now_ms = store.now_ms()
        except StoreUnavailable:
            now_ms = pinned.since_ms
        left_s = max(pinned.since_ms + overlap_ms(cfg) - now_ms, 0) / 1000
        raise SubjectKeyError(
            f"{where} is rotating its subject key from key id {pinned.previous[:KEY_ID_HEX]} to "
            f"{pinned.current[:KEY_ID_HEX]}, begun {max(now_ms - pinned.since_ms, 0) / 1000:.0f} s ago: failures "
            f"under the previous key still count for another {left_s:.0f} s (failure_window_s + nonce_ttl_s), "
            "so subject_key_previous_file must stay until then (and no new rotation may begin)",
            code="AGT_SUBJECT_KEY_ROTATION_OPEN")
    if result is PinResult.ROTATED:
        log.warning("subject key rotation begun in %s: key id %s, previous %s; the previous key is needed for "
                    "another %.0f s", where, keys.current.key_id, previous[:KEY_ID_HEX], overlap_ms(cfg) / 1000)
    elif result is PinResult.ENDED:
        log.warning("subject key rotation ended in %s: key id %s alone", where, keys.current.key_id)
    return result


def read_hpke_key(path: Path, suite: str) -> ServerKey:
    try:
        raw = bytes.fromhex(read_private_file(path).decode("ascii", "replace").strip())
    except ValueError:
        raise ConfigError(f"{path} is not a hex-encoded HPKE private key") from None
    return ServerKey.from_private_bytes(suite, raw)


def load_server_config(path: str | Path) -> tuple[ServerConfig, Path]:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read server config {p}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"server config {p} is not valid TOML: {exc}") from None
    return from_dict(ServerConfig, data), p.resolve().parent


class _Files:
    def __init__(self, base: Path):
        self.base = base

    def at(self, v: str) -> Path:
        q = Path(v)
        return q if q.is_absolute() else self.base / q

    def read(self, v: str, what: str) -> bytes:
        if not v:
            raise ConfigError(f"server config needs {what}")
        try:
            return self.at(v).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {what} {self.at(v)}: {exc.strerror}") from None

    def public_key(self, v: str, what: str):
        try:
            pub = load_public_key_pem(self.read(v, what))
            algorithm_of(pub)
        except (ValueError, KeyStoreError):
            raise ConfigError(f"{what} is not a PEM Ed25519, P-256 or SM2 public key") from None
        return pub


def _serial(text: str) -> int:
    try:
        return int(text.replace(":", "").removeprefix("0x"), 16)
    except ValueError:
        raise ConfigError(f"revoked_serials: {text!r} is not a hexadecimal serial number") from None


def _until_ms(text: str, terminal: str) -> int:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise ConfigError(f"terminal {terminal}: previous_key_until must be an RFC 3339 time with a zone, "
                          "e.g. \"2026-03-01T00:00:00Z\"")
    return int(t.timestamp() * 1000)


def build_registry(cfg: ServerConfig, base: Path) -> Registry:
    """Terminals (pins, signing keys) and revocation, from the config (read again on SIGHUP)."""
    files = _Files(base)
    terminals = []
    for t in cfg.terminals:
        if not t.id:
            raise ConfigError("every [[terminals]] entry needs an id")
        pins = frozenset(p.lower().replace(":", "") for p in t.certificate_spki_sha256)
        if not pins:
            raise ConfigError(f"terminal {t.id}: certificate_spki_sha256 is required (the SHA-256 of its client "
                              "certificate's public key; docs/uplink.md shows how to compute it)")
        current = files.public_key(t.public_key, f"public key of terminal {t.id}")
        previous, until = None, 0
        if t.previous_public_key:
            previous = files.public_key(t.previous_public_key, f"previous public key of terminal {t.id}")
            if not t.previous_key_until:
                raise ConfigError(f"terminal {t.id}: previous_public_key needs previous_key_until")
            until = _until_ms(t.previous_key_until, t.id)
        policy = None
        if t.attestation:
            try:
                policy = AttestationPolicy.load(files.at(t.attestation))
            except ValueError as exc:
                raise ConfigError(f"terminal {t.id}: {exc}") from None
        try:
            terminals.append(Terminal(t.id, current, pins, previous, until, policy,
                                      t.camera if t.camera.pinned else None))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    issuer = x509.load_pem_x509_certificate(files.read(cfg.client_ca, "client_ca")) if cfg.crl else None
    revocation = Revocation((_serial(s) for s in cfg.revoked_serials), files.at(cfg.crl) if cfg.crl else None, issuer)
    try:
        return Registry(terminals, revocation)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build_keys(cfg: ServerConfig, base: Path) -> tuple[dict[str, ServerKey], str]:
    """The server's HPKE keys by key id, and the id of the one challenges offer."""
    files = _Files(base)
    keys = {}
    for entry in cfg.hpke_keys:
        k = read_hpke_key(files.at(entry.file), entry.suite)
        keys[k.key_id] = k
    current = [k for k in keys.values() if k.suite == cfg.current_suite]
    if not current:
        raise ConfigError(f"no hpke_keys entry for current_suite {cfg.current_suite!r}")
    return keys, current[-1].key_id


def build_store(cfg: ServerConfig) -> Store:
    if cfg.store == "memory":
        return MemoryStore(cfg.store_limits())
    from hil.ingest.redis_store import RedisStore
    store = RedisStore.from_url(cfg.store, cfg.store_limits(), prefix=cfg.store_prefix)
    store.wait_replicas, store.wait_ms = int(cfg.store_wait_replicas), int(cfg.store_wait_ms)
    return store


def store_said(url: str) -> str:
    """The store's address as logs and errors say it: never its user, password or query (a
    ``redis://user:password@host`` URL, or ``?password=``, would put the store's secret in the log)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


class StoreEvictionError(ConfigError):
    """The shared store may evict what the server must not lose: ``AGT_STORE_EVICTION``."""

    code = "AGT_STORE_EVICTION"


def check_store_eviction(store: Store, cfg: ServerConfig, *, reloading: bool = False,
                         strict: bool = False, read: object = None) -> str | None:
    """A Redis store must run with ``maxmemory-policy noeviction``. Under any other policy Redis,
    at its ``maxmemory``, deletes keys to make room: a subject's or a terminal's failure set (its
    failures forgotten: more tries for whoever caused them), the subject key pin (re-pinned by the
    next charge, perhaps to an old key) or a used nonce (its probe id free again). With
    ``noeviction`` a full Redis refuses writes instead: calls are refused, nothing is forgotten.
    Refused at start (``AGT_STORE_EVICTION``) unless ``store_allow_eviction``; at a reload the
    server is already running on that store, so a refusal is logged with the code and the reload
    applied (a revocation must not wait on the store's operator). A policy Redis will not tell (an
    ACL without CONFIG, a managed Redis that renamed it) is logged, never fatal. Returns the policy
    ("" : not read; None: not a Redis store). ``read``: the policy as ``RedisStore.survey`` read it
    (``StoreWatch``), else read here."""
    from hil.ingest.redis_store import PolicyUnreadable, RedisStore
    if not isinstance(store, RedisStore):
        return None
    where = f"the store {store_said(cfg.store)!r}"
    try:
        policy = _given(read, store.eviction_policy)
    except StoreUnavailable:
        if strict:
            raise
        log.warning("store eviction policy not checked: %s is unreachable", where)
        return ""
    except PolicyUnreadable as exc:
        log.warning("store eviction policy not checked: %s refused CONFIG GET maxmemory-policy (%s); make sure it "
                    "runs with maxmemory-policy noeviction (docs/uplink.md)", where, exc)
        return ""
    if policy == "noeviction":
        return policy
    said = (f"{where} runs with maxmemory-policy {policy}: at its maxmemory Redis evicts keys, which can forget "
            "failure counts (more tries for whoever caused them) or the subject key pin; set maxmemory-policy "
            "noeviction (a full Redis then refuses writes, and calls are refused, not forgotten), or set "
            "store_allow_eviction = true to accept that")
    _refuse_unless_allowed(said, StoreEvictionError, "store_allow_eviction", cfg.store_allow_eviction, reloading)
    return policy


def _given(read: Any, reader: Callable[[], Any]) -> Any:
    """A setting already read (``RedisStore.survey``; an exception: what reading it raised), else read now."""
    if read is None:
        return reader()
    if isinstance(read, Exception):
        raise read
    return read


def _refuse_unless_allowed(said: str, error: type[ConfigError], allow_key: str, allowed: bool,
                           reloading: bool) -> None:
    """A store check's finding ``said``: a warning when the operator allowed it (``allow_key``), an
    error line with its code at a reload (the reload still applies), else refused with ``error``."""
    if allowed:
        log.warning("store: %s (allowed by %s)", said, allow_key)
    elif reloading:
        log.error("store: error[%s]: %s", error.code, said)
    else:
        raise error(said)


class StoreVolatileError(ConfigError):
    """The shared store persists nothing: a restart of Redis forgets every failure count: ``AGT_STORE_VOLATILE``."""

    code = "AGT_STORE_VOLATILE"


def check_store_persistence(store: Store, cfg: ServerConfig, *, reloading: bool = False,
                            strict: bool = False, read: object = None) -> str | None:
    """A Redis store must keep its data across a restart: ``appendonly yes`` (every write logged,
    fsynced each second by default). A Redis that persists nothing forgets, when it restarts (a crash,
    an OOM kill, a reboot, a failover to an empty replica), every failure count (whoever can make it
    restart resets every lockout), the subject key pin and the used nonces: refused
    (``AGT_STORE_VOLATILE``) unless ``store_allow_volatile``. RDB ``save`` points alone lose, at a
    crash, every write since the last snapshot (a clean shutdown saves one): refused
    (``AGT_STORE_SNAPSHOTS``, sec18; before, a warning) unless ``store_allow_snapshots``. At a reload
    a refusal is logged with the code and the reload applied, as ``check_store_eviction``. A Redis
    that will not say (``CONFIG`` refused) is logged, never fatal; one that cannot be reached is
    logged (``strict``: raised, ``StoreWatch`` counts the store unchecked). Returns "appendonly",
    "rdb" or "none" ("" : not read; None: not a Redis store). ``read``: as ``check_store_eviction``."""
    from hil.ingest.redis_store import PolicyUnreadable, RedisStore
    if not isinstance(store, RedisStore):
        return None
    where = f"the store {store_said(cfg.store)!r}"
    try:
        aof, save = _given(read, store.persistence)
    except StoreUnavailable:
        if strict:
            raise
        log.warning("store persistence not checked: %s is unreachable", where)
        return ""
    except PolicyUnreadable as exc:
        log.warning("store persistence not checked: %s refused CONFIG GET appendonly (%s); make sure it runs with "
                    "appendonly yes (docs/uplink.md)", where, exc)
        return ""
    if aof:
        return "appendonly"
    if save:
        said = (f"{where} persists by RDB snapshots only (save {save!r}, appendonly no): a crash of Redis (an OOM "
                "kill, a power cut) loses every write since the last snapshot, so whoever can make it crash resets "
                "the failure counts of up to the longest save interval; set appendonly yes in its redis.conf, or "
                "set store_allow_snapshots = true to accept that")
        _refuse_unless_allowed(said, StoreSnapshotsError, "store_allow_snapshots", cfg.store_allow_snapshots,
                               reloading)
        return "rdb"
    said = (f"{where} persists nothing (appendonly no, no save points): a restart of Redis (a crash, an OOM kill, a "
            "reboot) forgets every failure count, so whoever can make it restart resets every lockout, and the "
            "subject key pin; set appendonly yes in its redis.conf, or set "
            "store_allow_volatile = true to accept that")
    _refuse_unless_allowed(said, StoreVolatileError, "store_allow_volatile", cfg.store_allow_volatile, reloading)
    return "none"


class StoreSnapshotsError(ConfigError):
    """The shared store persists by RDB snapshots alone: a crash loses the writes since the last:
    ``AGT_STORE_SNAPSHOTS``."""

    code = "AGT_STORE_SNAPSHOTS"


class StoreDataLostError(ConfigError):
    """The shared store lost its data while this server ran (its epoch is gone or another):
    ``AGT_STORE_DATA_LOST``."""

    code = "AGT_STORE_DATA_LOST"


class StoreClockJumpError(ConfigError):
    """The shared store's clock ran ahead of this server's elapsed time (a step of the Redis host's
    clock): ``AGT_STORE_CLOCK``."""

    code = "AGT_STORE_CLOCK"


class StoreClockBackError(ConfigError):
    """The shared store's clock ran behind this server's elapsed time (a step back of the Redis host's
    clock; back21): ``AGT_STORE_CLOCK_BACK``. Logged, never a refusal: the step is marked in the store
    and the nonces charged before it expire when they would have on the old clock."""

    code = "AGT_STORE_CLOCK_BACK"


class StoreClockUnmeasuredError(ConfigError):
    """A server's first check on a host with no reading of Redis's clock from this boot (every server host
    rebooted, or a new one) while the scripts read Redis's clock less than a nonce's longest lifetime ago
    (sec27): a step back since cannot be told from time passing, so every unused nonce charged before is
    retired: ``AGT_STORE_CLOCK_UNMEASURED``. Logged, never a refusal."""

    code = "AGT_STORE_CLOCK_UNMEASURED"


class StoreClockDeferredError(ConfigError):
    """A server's first check on a host with no reading of Redis's clock from this boot, with the scripts'
    latest reading recent (sec28): its host's trust is deferred, its claims on nonces charged before it
    held (not judged, not retired) and its own charges refused (``STORE_UNAVAILABLE``: the terminal tries
    another server) until a host with a live reading vouches or ``CLOCK_DEFER_BOUND_MS`` passes:
    ``AGT_STORE_CLOCK_DEFERRED``."""

    code = "AGT_STORE_CLOCK_DEFERRED"


class StoreUnwatchedError(ConfigError):
    """The shared store will not say its ``run_id`` (``INFO`` refused): ``AGT_STORE_UNWATCHED``."""

    code = "AGT_STORE_UNWATCHED"


class StoreVersionError(ConfigError):
    """The shared store's Redis is older than 7.0: ``AGT_STORE_VERSION``."""

    code = "AGT_STORE_VERSION"


REDIS_MIN_VERSION = (7, 0)


def check_store_version(store: Store, cfg: ServerConfig, *, strict: bool = False,
                        read: object = None) -> tuple[int, ...] | None:
    """A Redis store must be 7.0 or later: the store's scripts declare Redis 7's script flags (a
    ``#!lua`` shebang, so that Redis over its ``maxmemory`` refuses the nonce's whole: ``redis_store``),
    which an older Redis cannot compile: every call would fail. Refused at start (``AGT_STORE_VERSION``),
    with no setting to allow it. A Redis that cannot be reached or will not say (``INFO`` refused) is
    logged here (``strict``: unreachable raised); ``StoreWatch`` then charges nothing on it (it needs
    ``INFO``'s ``run_id``). Returns the version (() : not read; None: not a Redis store). ``read``: as
    ``check_store_eviction``."""
    from hil.ingest.redis_store import PolicyUnreadable, RedisStore
    if not isinstance(store, RedisStore):
        return None
    where = f"the store {store_said(cfg.store)!r}"
    try:
        version = _given(read, store.version)
    except StoreUnavailable:
        if strict:
            raise
        log.warning("store version not checked: %s is unreachable", where)
        return ()
    except PolicyUnreadable as exc:
        log.warning("store version not checked: %s refused INFO server (%s); it must be Redis 7.0 or later",
                    where, exc)
        return ()
    if version and version < REDIS_MIN_VERSION:
        raise StoreVersionError(f"{where} runs Redis {'.'.join(map(str, version))}: the server needs Redis 7.0 or "
                                "later (its scripts declare Redis 7's script flags, so that a full Redis refuses "
                                "them whole); upgrade the store")
    return version


STORE_RECHECK_MS = 60_000      # a checked store's settings are read again at most this often (at a charge)
STORE_RETRY_MS = 2_000         # a store that failed its checks is checked again at most this often
CLOCK_SLACK_MS = 2_000         # Redis's clock may run this far ahead of a server's elapsed time ...
CLOCK_SLACK_RATE = 0.01        # ... plus this share of it (slewing, rate error) before it counts as a jump
CLOCK_DEFER_BOUND_MS = 150_000 # a deferred host (sec28) retires the nonces it holds this long after its deferral
                               # by its elapsed clock, unless a live host vouched: two of a charging live
                               # server's checks (STORE_RECHECK_MS) and half a minute more
CLOCK_TRIP_MS = 5_000          # the nonce's script's slack (a charge's bound is computed before the script
                               # runs: a server stalled between the two must not trip it; the check measures)


def _elapsed_s() -> float:
    """This host's elapsed time (CLOCK_BOOTTIME: steps of the wall clock do not move it, and a suspend
    does, so a server resumed from one does not take Redis's clock for having jumped)."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else time.monotonic()


_HOST_ID = re.compile(r"[0-9a-f][0-9a-f.+-]{0,79}")


def host_id(boot_file: Path = Path("/proc/sys/kernel/random/boot_id"),
            offsets_file: Path = Path("/proc/self/timens_offsets")) -> str | None:
    """This host's id for its elapsed clock (sec24): the kernel's boot id, which every process on the host
    reads alike until it reboots, as ``CLOCK_BOOTTIME`` runs for all of them from that boot; in a time
    namespace (``/proc/self/timens_offsets``, a container restored elsewhere) its boottime offset is added,
    since that clock is then another. None where there is none (not Linux: no reading is kept).

    Read on each call, and called once per server process (``StoreWatch.__init__``; every check and a reload keep
    that id, sec33, as boot32's terminal reads its own once): a process cannot outlive a reboot, so the id read at its
    start names its CLOCK_BOOTTIME for as long as it runs, and a ``boot_id`` bind-mounted later changes nothing."""
    try:
        boot = boot_file.read_text().strip()
    except OSError:
        return None
    if not re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", boot):
        return None
    try:
        offsets = offsets_file.read_text()
    except OSError:
        offsets = ""
    for line in offsets.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("boottime", "7") and (parts[1], parts[2]) != ("0", "0"):
            if not all(re.fullmatch(r"-?\d{1,20}", p) for p in parts[1:]):
                return None
            return f"{boot}+{parts[1]}.{parts[2]}"
    return boot


class StoreWatch:
    """The store's checks (version, eviction, persistence), bound to the Redis they were run on
    (sec18). They ran only at start before: a Redis that restarted later with persistence turned off,
    or failed over to a replica that had lost writes, was used as checked, and a Redis unreachable at
    start was never checked at all. Now a check that passes records Redis's ``run_id`` in the store
    (``RedisStore.checked_run``) and the nonce's script compares it with Redis's own at every charge:
    after a restart or a failover (another ``run_id``), or before any check passed, the charge is
    refused whole (``StoreUnchecked``), the server checks the store again (``recheck``: at most once
    per ``STORE_RETRY_MS`` while it fails, a terminal can ask at will) and issues the challenge if it
    passes; otherwise ``STORE_UNAVAILABLE`` and the refusal logged with its code. The settings are also
    read again every ``STORE_RECHECK_MS`` at a charge (a ``CONFIG SET`` under a running server, no
    restart). A check's refusal here is never fatal (the server runs): it refuses charges instead.
    The store's data is checked too (``_check_epoch``): a Redis that comes back with its settings but
    without its data (an empty replica, a wiped append-only file) is quarantined for a failure window.
    And its clock (``_check_clock``, sec19): every window is Redis's clock, so a step of it forward
    shortens every window by the step; each check pairs Redis's time with this server's ``elapsed``
    time, the nonce's script refuses a charge when Redis's clock is further on than the elapsed time
    since allows, and the check then holds this server's charges for its failure window. A step back
    (back21): the nonce's and the claim's scripts refuse when Redis's clock is behind what the elapsed
    time since allows, and the check measures the step and marks it in the store, after which every
    unused nonce charged before it expires when it would have on the old clock; nothing is held. A server's
    first check compares Redis's clock with its host's last reading (sec24, ``_adopt_host``), so a step
    either way made while no server ran on a host that stayed up is measured at the next start."""

    def __init__(self, store, cfg: ServerConfig, *, elapsed: Callable[[], float] = _elapsed_s,
                 host: str | None = None):
        from hil.ingest.redis_store import RedisStore
        assert isinstance(store, RedisStore)
        self.store: RedisStore = store
        self.cfg = cfg                          # a reload replaces it (the allow settings)
        self._lock = threading.Lock()
        self._passed_ms: int | None = None      # when the checks last passed (the server's clock)
        self._failed_ms: int | None = None      # when they last failed (or could not be run)
        self._passed_run = ""                   # the run_id they last passed on
        self._epoch = ""                        # the store's epoch as this server last read it
        self._runs = 0                          # checks run (recheck: one per refusal wave, not one per thread)
        store.checked_run = ""                  # refused until a check passes
        store.quarantine_ms = self._window_ms()  # after a data loss: this server's own window (sec19)
        self._elapsed = elapsed                 # seconds, this host's (tests inject one)
        # Redis's time (ms) at the last check, the elapsed time before and after it, and the store's total of
        # steps back of its clock then (ms, back21)
        self._pair: tuple[int, float, float, int] | None = None
        self._first_ms: int | None = None       # Redis's time at this server's first reading (sec20)
        self._marks_said: tuple[int, int] | None = None   # the last other server's jump mark logged
        store.clock_seen = self._seen           # Redis's time at each charge, compared after its reply
        # The host whose elapsed clock ``elapsed`` is (sec24: its last reading of Redis's clock is kept in the
        # store for the next server started on it): this host's (host_id) for the real clock, none for another
        # unless named ("" : none).
        if host is None:
            host = host_id() if elapsed is _elapsed_s else ""
        if host and not _HOST_ID.fullmatch(host):
            raise ValueError("a host id is 1-80 lower-case hex digits, dots, dashes or pluses")
        self._host = host or ""
        self._from_host = False                 # the reading compared at this check is the host's (sec24)
        # sec28: the clock generation this host is vouched from (0: every nonce; None: not known, no host) and,
        # while its trust is deferred, its own deferral's generation and the elapsed time (s) it began
        self._vouched: int | None = None
        self._deferred: tuple[int, float] | None = None
        store.host = self._host

    def _window_ms(self) -> int:
        return int(self.cfg.failure_window_s * 1000)

    def check(self, now_ms: int, *, starting: bool = False) -> bool:
        """Run the checks on the Redis answering now; True (and charges go through) when they pass.
        ``starting``: a refusal raises its ``ConfigError`` (the start is refused), as before."""
        where = f"the store {store_said(self.cfg.store)!r}"
        from hil.ingest.redis_store import PolicyUnreadable
        self._failed_ms = now_ms                # until they pass
        self._runs += 1
        self.store.quarantine_ms = self._window_ms()    # (a reload may change it)
        try:
            # One Redis's answers, read in one round trip (sec19: each on the connection the pool gave it,
            # a failover between two reads bound one Redis's run_id to another's settings).
            before = self._elapsed()
            said = self.store.survey(secrets.token_hex(8), self._epoch, self._window_ms(), self._host)
            after = self._elapsed()
            # the version first (sec20): a Redis before 7.0 was read only that far (its scripts never loaded)
            check_store_version(self.store, self.cfg, strict=True, read=said.version)
            self._adopt_host(where, said.host_reading, after)
            compared = self._pair is not None
            back = self._defer(where, said, after)
            self._check_clock(where, said.epoch[2], before, after, back)
            self._vouch(where, compared)
            self._check_mark(where, said.clock_mark, said.epoch[2])
            self._note_host()
            run = said.run
            check_store_eviction(self.store, self.cfg, strict=True, read=said.policy)
            check_store_persistence(self.store, self.cfg, strict=True, read=said.persistence)
            self._check_epoch(where, said.epoch)
            if self._deferred is not None:      # (sec28: after the other checks, as the hold below)
                left = CLOCK_DEFER_BOUND_MS / 1000 - (after - self._deferred[1])
                raise StoreClockDeferredError(f"{where}: this host's trust in its clock is deferred (no reading of "
                                              "it from this boot): this server charges nothing until a host with a "
                                              f"live reading vouches, or for {max(left, 0):.0f} s more")
            if said.epoch[2] < self.store.held_until_ms:        # (_check_clock's hold, after the other checks)
                raise StoreClockJumpError(f"{where}'s clock jumped: this server charges nothing for "
                                          f"{(self.store.held_until_ms - said.epoch[2]) / 1000:.0f} s more")
        except StoreUnavailable as exc:
            self.store.checked_run = ""
            log.warning("store not checked: %s is unreachable or takes no writes (%s); challenges are refused "
                        "(STORE_UNAVAILABLE) until it answers and passes its checks", where, exc)
            return False
        except PolicyUnreadable as exc:
            self.store.checked_run = ""
            log.error("store: error[%s]: %s refused INFO server (%s): the server cannot tell when it restarts, "
                      "and refuses challenges (STORE_UNAVAILABLE); allow INFO to its user", StoreUnwatchedError.code,
                      where, exc)
            return False
        except ConfigError as exc:
            self.store.checked_run = ""
            if starting and not isinstance(exc, (StoreDataLostError, StoreClockJumpError,   # (these end: the
                                                 StoreClockDeferredError)):                 # start goes on)
                raise
            log.error("store: error[%s]: %s; challenges are refused (STORE_UNAVAILABLE) until it passes",
                      exc.code, exc.message)
            return False
        if self._passed_run and self._passed_run != run:
            log.warning("store: %s restarted or failed over (run_id %s, was %s): checked again, passed", where,
                        run[:12], self._passed_run[:12])
        self.store.checked_run = self._passed_run = run
        self._passed_ms, self._failed_ms = now_ms, None
        return True

    def _check_epoch(self, where: str, read: tuple[str, int, int]) -> None:
        """The store's data against what this server saw of it: its epoch (``RedisStore.epoch``, here
        as ``survey`` read it with the settings), a key written once, with no expiry, that goes with
        the data. Missing, or another than the one this server knew: the store lost its data (a
        failover to an empty replica, a wiped append-only file, a ``FLUSHALL``), every failure count
        with it. Charges are then refused (by the nonce's script, for every server sharing the store)
        until ``failure_window_s`` after the new epoch was written, each server's own (sec19; before,
        the longest of those that saw the loss, for all): by then every count the loss took has left
        this server's window, so it decides as if nothing was lost; a loss resets no lockout, it costs
        that window's challenges instead. A store first seen by this server (at its start) is taken as
        it is: an empty store and a wiped one look alike."""
        known = self._epoch
        epoch, until, now = read
        if known and epoch != known:
            log.error("store: error[%s]: %s lost its data (its epoch %s is gone, now %s), every failure count "
                      "with it: challenges are refused for %.0f s (until a failure window has passed)",
                      StoreDataLostError.code, where, known, epoch, max(until - now, 0) / 1000)
        self._epoch = epoch
        if now < until:
            raise StoreDataLostError(f"{where} lost its data: challenges are refused for {(until - now) / 1000:.0f} s "
                                     "more, until every failure count it lost would have left the window")

    def _adopt_host(self, where: str, reading: tuple[int, float, float, int] | None, after: float) -> None:
        """A server with no reading of its own yet (its first check) takes its host's last one (sec24:
        ``RedisStore.note_host_reading``, written at every check of every server on this host, by the
        host's elapsed clock, which ran on while no server did), so ``_check_clock`` measures Redis's clock
        across the time no server ran: a step back, or a jump forward, during a maintenance window or
        between a server's stop and its restart is seen at the start (before sec24, by none: a server
        started after it had no reading from before it, and the scripts' latest time, ``store-clock-high``,
        shows only a step back larger than the time since the last script plus 2 s). A reading later
        than this host's elapsed clock after the survey that read it (``after``: a server on this host wrote
        it before then) is not used: a virtual machine restored from a snapshot."""
        if self._pair is not None or reading is None:
            return
        if after < reading[2]:
            log.warning("store: %s: this host's last reading of its clock is %.1f s ahead of this host's elapsed "
                        "time (a restored snapshot?): not compared", where, reading[2] - after)
            return
        self._pair, self._from_host = reading, True

    def _defer(self, where: str, said, after: float) -> int:
        """sec28: what sec27's ``_retire_unmeasured`` did at a host's first reading, deferred. A first check
        with nothing to measure Redis's clock against and the scripts' latest reading recent takes the store's
        next clock generation (``RedisStore.defer_clock``): this server's claims on unused nonces charged before
        it (their ``g`` below the generation its host is vouched from) are refused ``StoreClockDeferred``
        (``STORE_UNAVAILABLE``: the terminal tries again, another server judges), neither judged nor retired,
        until a server on a host with a live reading vouches (``_vouch``: it measured Redis's clock across the
        time in question, any step back marked) or ``CLOCK_DEFER_BOUND_MS`` passes by this host's elapsed clock
        with the deferral still there: then sec27's retire (``_retire_unmeasured``), fail closed, and every
        deferral taken before it ends (``RedisStore.end_deferrals``). A server on a host that has a reading
        (sec24) takes on that host's deferral, as the store holds it. Returns the store's total of steps back."""
        back = said.clock_back
        if not self._host:
            return back
        if self._pair is None:
            high, redis_ms = said.clock_high, said.epoch[2]
            if high <= 0 or redis_ms - high >= NONCE_TTL_MAX_S * 1000:
                self._vouched, self._deferred = 0, None        # no nonce charged before can be alive
                return back
            gen = self.store.defer_clock(self._host, math.floor(after * 1000))
            self._vouched, self._deferred = gen, (gen, after)
            log.error("store: error[%s]: %s: this host has no reading of its clock from this boot and the store's "
                      "scripts last read it %.1f s ago: a step of its clock while no server ran cannot be told from "
                      "time passing here, so this server judges no unused nonce charged before now (generation %d) "
                      "and charges nothing until a server on a host with a live reading vouches, or retires them in "
                      "%.0f s", StoreClockDeferredError.code, where, (redis_ms - high) / 1000, gen,
                      CLOCK_DEFER_BOUND_MS / 1000)
            return back
        mine = said.deferral
        if mine is None:
            if self._deferred is not None:
                log.warning("store: %s: this host's deferral (generation %d) has ended: a server on a host with a "
                            "live reading vouched for it, or one retired the nonces charged before it", where,
                            self._deferred[0])
            self._vouched, self._deferred = 0, None
            return back
        self._vouched, self._deferred = mine[1], (mine[0], mine[2] / 1000)
        if after - self._deferred[1] < CLOCK_DEFER_BOUND_MS / 1000:
            return back
        return self._retire_unmeasured(where, said.clock_high, said.epoch[2], back, bound=True)

    def _vouch(self, where: str, compared: bool) -> None:
        """sec28: a check that measured Redis's clock against this host's earlier reading (``compared``: its own
        server's, or the host's from before, sec24) vouches for the other hosts deferred from a later clock
        generation than this host is vouched from (``RedisStore.vouch_clock``, with this check's floor: Redis's
        clock read in the script behind it vouches nothing, the next check measures the step)."""
        if not compared or self._vouched is None or self._pair is None:
            return
        try:
            n = self.store.vouch_clock(self._vouched, self._floor(self._pair, self._elapsed()), self._host)
        except StoreUnavailable:                # (the next check vouches)
            return
        if n > 0:
            log.warning("store: %s: vouched for %d deferred host(s) from clock generation %d (their servers judge "
                        "the nonces charged before their first reading now)", where, n, self._vouched)

    def deferral_due(self) -> bool:
        """After a claim refused ``StoreClockDeferred``: True when the deferral's bound passed and the retire
        ran now (the claim is made again), False otherwise (refused ``STORE_UNAVAILABLE``)."""
        with self._lock:
            deferred = self._deferred
            if deferred is None or self._elapsed() - deferred[1] < CLOCK_DEFER_BOUND_MS / 1000:
                return False
            return self.check(int(time.time() * 1000))

    def _retire_unmeasured(self, where: str, high: int, redis_ms: int, back: int, *, bound: bool = False) -> int:
        """A first check with nothing to measure Redis's clock against (sec27): this host has no reading of
        it from this boot (``_adopt_host`` took none: every server host rebooted, or a new host, or a restored
        snapshot's). A step back of Redis's clock by J while no server ran, D long, shows only as Redis's time
        having moved on less (D - J) since the scripts' latest reading (``store-clock-high``, which survives
        with the store's data), and is marked by the scripts only when J > D + 2 s: below that every unused
        nonce charged before the stop lived J longer (a rooted terminal's capture windows on a charge whose
        challenge had expired). Redis keeps no clock of its own that a step leaves alone (its ``INFO``
        uptime and LRU clock are its wall clock's), so nothing can tell such a step from time passing, and
        this fails closed: when the scripts' latest reading is less than the longest lifetime a nonce may
        have (``NONCE_TTL_MAX_S``) behind Redis's time now (some unused nonce may still be alive), a step
        back of that lifetime (plus any of Redis's time behind the reading) is marked
        (``RedisStore.mark_clock_back``, as a measured step, less what another server starting with it
        marked), and every unused nonce charged before is gone: an honest session in its challenge window
        then is refused ``EXPIRED`` and starts again. A nonce charged after it is untouched, as is a used
        one (its replay is told ``REPLAYED`` by its record as before). Servers on a host without an id
        (``host_id`` None: not Linux) are not covered. Returns the store's total of steps back now."""
        step = NONCE_TTL_MAX_S * 1000 + max(high - redis_ms, 0)
        added, total = self.store.mark_clock_back(back, step, 0, high, redis_ms)
        self.store.end_deferrals()
        self._vouched, self._deferred = 0, None
        if added:
            why = (f"no host with a live reading vouched for it in {CLOCK_DEFER_BOUND_MS / 1000:.0f} s"
                   if bound else f"the store's scripts last read it {(redis_ms - high) / 1000:.1f} s ago")
            log.error("store: error[%s]: %s: this host has no reading of its clock from this boot and %s: a step back "
                      "of its clock while no server ran cannot be told from time passing, so every unused nonce "
                      "charged before now is retired (a session in its challenge window is refused EXPIRED and "
                      "starts again); charges go on", StoreClockUnmeasuredError.code, where, why)
        return total

    def _note_host(self) -> None:
        """This server's latest reading, kept in the store for the next server started on this host."""
        if not self._host or self._pair is None:
            return
        try:
            self.store.note_host_reading(self._host, *self._pair)
        except StoreUnavailable:                # (the next check writes it again)
            pass

    @staticmethod
    def _bound(pair: tuple[int, float, float, int], elapsed: float, slack_ms: int = CLOCK_SLACK_MS) -> int:
        """The latest Redis time (ms) the elapsed time since ``pair`` allows, with the slack."""
        gone_ms = (elapsed - pair[1]) * 1000
        return int(pair[0] + gone_ms + slack_ms + CLOCK_SLACK_RATE * abs(gone_ms))

    @staticmethod
    def _floor(pair: tuple[int, float, float, int], elapsed: float) -> int:
        """The earliest Redis time (ms) the elapsed time since ``pair`` allows (back21): Redis read it
        before ``pair[2]``, so at least ``elapsed - pair[2]`` has passed since, less the slack
        (``CLOCK_SLACK_MS`` plus ``CLOCK_SLACK_RATE`` of it). Computed before a script runs, it is
        only looser by then: no stall makes it trip (the forward bound needs ``CLOCK_TRIP_MS``)."""
        gone_ms = max(elapsed - pair[2], 0.0) * 1000
        return int(pair[0] + gone_ms - CLOCK_SLACK_MS - CLOCK_SLACK_RATE * gone_ms)

    def _check_clock(self, where: str, redis_ms: int, before: float, after: float, back: int = 0) -> None:
        """Redis's clock (``redis_ms``, read between ``before`` and ``after`` on this server's elapsed
        clock) against the last check's: further on than the elapsed time since allows (the slack:
        ``CLOCK_SLACK_MS`` plus ``CLOCK_SLACK_RATE`` of it), it jumped by the excess J, and every window
        in the store (failure counts, the quarantine, a rotation's overlap) lost up to J: each count
        alive then leaves its window J early, and a failure set whose expiry was less than J away is
        gone at once (Redis expires keys by the same clock). As after a data loss, this server then
        charges nothing for its own failure window by Redis's clock (``RedisStore.held_until_ms``; the
        nonce's script refuses), after which every count the jump cut short would have left its window
        anyway (a hold of J would not do: the counts cut short are missing in the last J of each one's
        window, spread over the next window). The same bound, carried forward, is handed
        to the nonce's script (``RedisStore.clock_bound``, with ``CLOCK_TRIP_MS`` of slack: it is computed
        before the script runs), so the first charge after a jump of more than that is refused and the
        check that follows measures it; a smaller one after the reply of the charge it let through (``_seen``).
        Each reading is an upper bound on the real time between two of Redis's (``before`` the first,
        ``after`` the second), so a slow call or a stalled server never reads as a jump. A server
        started after the jump has no earlier reading: the jump measured here is marked in the store for
        it (``_check_mark``, sec20). Each running server holds its own charges, for what it saw (one whose
        own elapsed clock misbehaved holds itself and the servers started after its mark, for a window).
        A jump under ``CLOCK_TRIP_MS`` is caught after the charge that reveals it (``_seen``, sec20).

        Behind the earliest time the elapsed time allows (``_floor``, back21) Redis's clock stepped back
        by J, and Redis, which expires keys by it, keeps every unused nonce J longer than its lifetime on
        the clock it was charged by. That step is added to the store's total (``RedisStore.mark_clock_back``,
        less what other servers marked of it), and every unused nonce charged before it expires when it
        would have on the old clock (J is measured at its largest, the elapsed time from before the last
        reading to after this one, so none lives longer). Nothing is held: no count left its window early
        (each counts J longer). The floor goes to the nonce's and the claim's scripts
        (``RedisStore.clock_floor``), so the first charge or probe after a step is refused until this
        check has marked it (``back`` is the store's total as the reading saw it)."""
        pair = self._pair
        since = ("this host's last reading of it (a server on this host before this one started)" if self._from_host
                 else "the last check")
        self._from_host = False
        if pair is not None and redis_ms < self._floor(pair, before):
            step = int(pair[0] + (after - pair[1]) * 1000) - redis_ms
            # Unmarked (StoreUnavailable: the check fails), the last reading and its floor stay, so the next
            # charge or probe is refused again and the check measures the step again.
            added, back = self.store.mark_clock_back(pair[3], step, CLOCK_SLACK_MS, pair[0], redis_ms)
            log.error("store: error[%s]: %s: its clock ran %.1f s behind this server's elapsed time since %s "
                      "(a step back of the Redis host's clock): %s; charges go on",
                      StoreClockBackError.code, where, step / 1000, since,
                      "every unused nonce charged before it now expires when it would have on the old clock "
                      f"(the steps back marked in the store: {back / 1000:.1f} s)" if added else
                      "another server marked it already")
        elif pair is not None and back > pair[3]:
            # Marked by another server, or by a script that read Redis's time behind the latest any had
            # read (redis_store.BACK_SLACK_MS): said here too, as an audit of what every server saw.
            log.error("store: error[%s]: %s: a step back of its clock of %.1f s was marked in the store since this "
                      "server's last reading (by another server, or by a script that read Redis's time behind the "
                      "latest it had read): every unused nonce charged before it expires when it would have on "
                      "the old clock; charges go on", StoreClockBackError.code, where, (back - pair[3]) / 1000)
        self._pair = (redis_ms, before, after, back)
        if self._first_ms is None:
            self._first_ms = redis_ms
            self.store.first_ms = redis_ms      # the nonce's script reads a later mark against it (sec21)
        self.store.clock_bound = lambda: self._bound((redis_ms, before, after, back), self._elapsed(), CLOCK_TRIP_MS)
        self.store.clock_floor = lambda: self._floor((redis_ms, before, after, back), self._elapsed())
        if pair is not None and redis_ms > self._bound(pair, after):
            jump = redis_ms - int(pair[0] + (after - pair[1]) * 1000)
            self.store.held_until_ms = max(self.store.held_until_ms, redis_ms + self._window_ms())
            try:                                 # for the servers that start after it (sec20)
                self.store.mark_clock_jump(pair[0], redis_ms)
            except StoreUnavailable:
                pass
            log.error("store: error[%s]: %s: its clock ran %.1f s ahead of this server's elapsed time since %s "
                      "(a step of the Redis host's clock): every failure count there left its window that much "
                      "early; this server charges nothing for its failure window, %.0f s (by Redis's clock)",
                      StoreClockJumpError.code, where, jump / 1000, since, self._window_ms() / 1000)

    def _check_mark(self, where: str, mark: tuple[int, int] | None, redis_ms: int) -> None:
        """Another server's measured jump of Redis's clock (``RedisStore.mark_clock_jump``: Redis's times
        of the two readings it fell between), for a server whose own readings began after the earlier
        of them (sec20): it has no reading from before the jump to measure it by (sec19: it saw nothing),
        so it holds its charges as the measuring server did, for its own failure window from the later
        reading. A server whose readings began before that measures the jump itself (or finds none
        beyond its slack), so one server's misbehaving elapsed clock does not stop the servers that
        were running with it, only those started after it said so. Since sec21 the nonce's script
        applies the same rule at every charge (``RedisStore.first_ms``), so a mark written after this
        server's start refuses its next charge, and the check that follows holds it here."""
        if mark is None or self._first_ms is None or self._first_ms <= mark[0]:
            return
        until = mark[1] + self._window_ms()
        if redis_ms >= until or until <= self.store.held_until_ms:
            return
        self.store.held_until_ms = until
        if mark != self._marks_said:
            self._marks_said = mark
            log.error("store: error[%s]: %s: another server measured a jump of its clock (between Redis times %d "
                      "and %d ms), before this server's first reading of it: every failure count there left its "
                      "window early; this server charges nothing for %.0f s more (its failure window from then)",
                      StoreClockJumpError.code, where, mark[0], mark[1], (until - redis_ms) / 1000)

    def _seen(self, redis_ms: int) -> None:
        """After a charge: Redis's time that the nonce's script read, against the last check's reading
        and this server's elapsed time now (an upper bound on the time between). Beyond the check's
        slack (``CLOCK_SLACK_MS``, not the script's ``CLOCK_TRIP_MS``), the checks run now and measure
        the jump (sec20: a jump between 2 s and 5 s went through the script, and was measured at the
        next check, up to ``STORE_RECHECK_MS`` later; now it costs that one charge)."""
        pair = self._pair
        if pair is None or redis_ms <= self._bound(pair, self._elapsed()):
            return
        if self._lock.acquire(blocking=False):
            try:
                self.check(int(time.time() * 1000))
            finally:
                self._lock.release()

    def recheck(self, now_ms: int) -> bool:
        """After a charge refused ``StoreUnchecked``: the checks again, unless they failed less than
        ``STORE_RETRY_MS`` ago (then False: refused). True when they pass."""
        runs = self._runs
        with self._lock:
            if self._runs != runs:              # another thread checked while this one waited: its result
                return bool(self.store.checked_run)
            failed = self._failed_ms
            if failed is not None and 0 <= now_ms - failed < STORE_RETRY_MS:
                return False
            return self.check(now_ms)

    def ready(self, now_ms: int) -> bool:
        """For the health check (``hil/ingest/health.py``): whether the Redis answering now is the one
        that passed the checks (its ``run_id``, one ``INFO``); if not, the checks again (``recheck``'s
        rate). A store unreachable at start is so checked without waiting for a terminal's charge,
        which a load balancer would not send to a server it sees NOT_SERVING."""
        from hil.ingest.redis_store import PolicyUnreadable
        checked = self.store.checked_run
        if checked:
            try:
                if self.store.run_id() == checked:
                    return True
            except StoreUnavailable:
                return False
            except PolicyUnreadable:            # (recheck logs why)
                pass
        return self.recheck(now_ms)

    def reconfigure(self, cfg: ServerConfig, now_ms: int) -> bool:
        """A reload's config (its allow settings), and the checks run with it now; True when they pass."""
        with self._lock:
            self.cfg = cfg
            return self.check(now_ms)

    def keep_checked(self, now_ms: int) -> None:
        """At a charge: the checks again when they last passed ``STORE_RECHECK_MS`` ago or more (a
        setting changed under a running Redis, no restart), unless they failed less than
        ``STORE_RETRY_MS`` ago. One thread checks; the others go on meanwhile (the script holds them to
        the last result)."""
        passed, failed = self._passed_ms, self._failed_ms
        if passed is None or 0 <= now_ms - passed < STORE_RECHECK_MS:
            return
        if failed is not None and 0 <= now_ms - failed < STORE_RETRY_MS:
            return
        if self._lock.acquire(blocking=False):
            try:
                self.check(now_ms)
            finally:
                self._lock.release()


def build_state(cfg: ServerConfig, base: Path, store: Store | None = None) -> tuple[ServerState, ServerTLS]:
    files = _Files(base)
    if not cfg.key:
        raise ConfigError("server config needs key")
    tls = ServerTLS(files.read(cfg.cert, "cert"), read_private_file(files.at(cfg.key)),
                    files.read(cfg.client_ca, "client_ca"))
    keys, current = build_keys(cfg, base)
    subject_keys = read_subject_keys(cfg, base)
    built = store is None
    store = build_store(cfg) if store is None else store      # (an empty MemoryStore is falsy: len 0)
    from hil.ingest.redis_store import RedisStore
    watch = StoreWatch(store, cfg) if isinstance(store, RedisStore) else None
    try:
        if watch is not None:               # unreachable: started, and charges refused until it passes
            watch.check(int(time.time() * 1000), starting=True)
        check_subject_key(store, subject_keys, cfg)
    except ConfigError:
        if built:
            store.close()
        raise
    state = ServerState(registry=build_registry(cfg, base), keys=keys, current_key_id=current,
                        store=store, nonce_ttl_s=cfg.nonce_ttl_s, frames=cfg.frames,
                        retry_window_s=cfg.retry_window_s, clock_skew_s=cfg.clock_skew_s,
                        claim_lease_s=cfg.claim_lease_s, limits=cfg.failure_limits(), keep_sealed=cfg.keep_sealed,
                        policies=cfg.challenge_policy, evidence=cfg.evidence,
                        subject_key=subject_keys.current.secret, subject_keys=subject_keys, store_watch=watch)
    return state, tls


def reload(state: ServerState, path: str | Path) -> ServerConfig:
    """Re-read the config into a running server: terminals, revocation, HPKE keys, the policy
    numbers and the subject keys. The store, TLS credentials and the listening address stay as they
    were started. A change of the subject keys is applied only as a rotation the store accepts
    (``check_subject_key``: a new key whose previous is the store's, or the previous key dropped
    after the overlap); anything else refuses the whole reload (a ``SubjectKeyError``), so the
    server never runs the new config with the old key, nor the new key with an unchecked store."""
    cfg, base = load_server_config(path)
    registry = build_registry(cfg, base)
    keys, current = build_keys(cfg, base)
    subject_keys = read_subject_keys(cfg, base)
    old = state.subject_keys
    changed = old is None or not subject_keys.same_as(old)
    # Last but for the store's checks (which refuse no reload: they log, and bind the charges), as the
    # only step that writes outside this process (a rotation's start or end in the store): nothing
    # after it refuses. Keys unchanged, the store is checked again (it may pin them only now:
    # it was unreachable at start) but a refusal does not stop the rest of the reload (a revocation
    # must not wait on the subject key): it is logged, and the store refuses this server's charges
    # under a key it does not pin (SUBJECT_KEY_STALE) whatever the reload does.
    if changed:
        check_subject_key(state.store, subject_keys, cfg, required=True)
    else:
        try:
            check_subject_key(state.store, subject_keys, cfg)
        except SubjectKeyError as exc:
            log.error("subject key: error[%s]: %s", exc.code, exc.message)
    # The store's settings, after the one refusal above (review18: before it, so a reload refused for
    # its subject key still handed its allow settings to the store's checks). A Redis store's checks
    # run at once with the new config and bind the charges to their result: one that no longer passes
    # (a CONFIG SET appendonly no, a setting no longer allowed) gets no charge from now on (before,
    # the reload logged the refusal and charges went on until the periodic check, up to a minute).
    if state.store_watch is not None:
        state.store_watch.reconfigure(cfg, int(time.time() * 1000))      # logged, never a refusal here
    else:
        check_store_eviction(state.store, cfg, reloading=True)
        check_store_persistence(state.store, cfg, reloading=True)
    # Each assignment is atomic; a call sees either the old or the new registry, never a mix of one.
    state.keys = {**state.keys, **keys}
    state.current_key_id = current
    state.keys = keys
    state.registry = registry
    state.nonce_ttl_s, state.frames, state.retry_window_s = cfg.nonce_ttl_s, cfg.frames, cfg.retry_window_s
    state.clock_skew_s, state.claim_lease_s = cfg.clock_skew_s, cfg.claim_lease_s
    state.limits = cfg.failure_limits()
    state.policies, state.evidence = cfg.challenge_policy, cfg.evidence
    if changed:
        state.subject_keys = subject_keys                  # one assignment: a call reads one pair
        state.subject_key = subject_keys.current.secret
    return cfg
