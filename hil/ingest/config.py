"""Configuration of the reference ingest server (``capture-agent server --config FILE``).

One TOML file; unknown keys are errors; relative paths are resolved against the file's directory::

    listen = "127.0.0.1:8443"
    cert = "server.pem"             # TLS certificate the terminals verify (pinned CA)
    key = "server.key"              # mode 0600
    client_ca = "ca.pem"            # CA that issued the terminals' client certificates
    current_suite = "x25519"        # HPKE suite offered in challenges: x25519 | mlkem768-x25519
    nonce_ttl_s = 30.0              # a challenge's lifetime
    frames = 32                     # framesets the terminal captures under the projector schedule
    retry_window_s = 10.0           # identical resubmits within this get the first receipt
    [[hpke_keys]]                   # the server's HPKE private keys (hex of the raw key, mode 0600)
    suite = "x25519"
    file = "server-x25519.hpke"
    [[terminals]]                   # registered terminals: id = certificate CN, and signing key
    id = "kiosk-0001"
    public_key = "kiosk-0001.pub.pem"
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from agent.config import from_dict
from agent.errors import ConfigError
from agent.security.keys import algorithm_of, check_private_file
from agent.uplink.seal import SUITES, ServerKey
from hil.ingest.server import ServerState, ServerTLS, Terminal


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
    public_key: str = ""


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    listen: str = "127.0.0.1:8443"
    cert: str = ""
    key: str = ""
    client_ca: str = ""
    current_suite: str = "x25519"
    nonce_ttl_s: float = 30.0
    frames: int = 32
    retry_window_s: float = 10.0
    keep_sealed: int = 0
    workers: int = 8
    hpke_keys: tuple[HpkeKeyEntry, ...] = ()
    terminals: tuple[TerminalEntry, ...] = ()

    def __post_init__(self) -> None:
        if not 8 <= self.frames <= 120:
            raise ValueError("frames must be 8-120")
        if self.nonce_ttl_s <= 0 or self.retry_window_s < 0:
            raise ValueError("nonce_ttl_s must be positive and retry_window_s non-negative")


def write_hpke_key(path: Path, key: ServerKey) -> None:
    from hil.pki import write_private
    write_private(path, key.private_bytes().hex().encode() + b"\n")


def read_hpke_key(path: Path, suite: str) -> ServerKey:
    check_private_file(path)
    try:
        raw = bytes.fromhex(path.read_text().strip())
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


def build_state(cfg: ServerConfig, base: Path) -> tuple[ServerState, ServerTLS]:
    def at(v: str) -> Path:
        q = Path(v)
        return q if q.is_absolute() else base / q

    def read(v: str, what: str) -> bytes:
        if not v:
            raise ConfigError(f"server config needs {what}")
        try:
            return at(v).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {what} {at(v)}: {exc.strerror}") from None

    check_private_file(at(cfg.key))
    tls = ServerTLS(read(cfg.cert, "cert"), read(cfg.key, "key"), read(cfg.client_ca, "client_ca"))
    keys = {}
    for entry in cfg.hpke_keys:
        k = read_hpke_key(at(entry.file), entry.suite)
        keys[k.key_id] = k
    current = [k for k in keys.values() if k.suite == cfg.current_suite]
    if not current:
        raise ConfigError(f"no hpke_keys entry for current_suite {cfg.current_suite!r}")
    terminals = {}
    for t in cfg.terminals:
        if not t.id:
            raise ConfigError("every [[terminals]] entry needs an id")
        try:
            pub = serialization.load_pem_public_key(read(t.public_key, f"public key of terminal {t.id}"))
            algorithm_of(pub)
        except ValueError:
            raise ConfigError(f"terminal {t.id}: public_key is not a PEM public key") from None
        terminals[t.id] = Terminal(t.id, pub)
    state = ServerState(terminals=terminals, keys=keys, current_key_id=current[-1].key_id,
                        nonce_ttl_s=cfg.nonce_ttl_s, frames=cfg.frames, retry_window_s=cfg.retry_window_s,
                        keep_sealed=cfg.keep_sealed)
    return state, tls
