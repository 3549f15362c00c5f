"""Who is calling: the mutual-TLS client certificate, mapped to a registered terminal.

* A terminal is identified by its client certificate's public key: the SHA-256 of the certificate's
  SubjectPublicKeyInfo is pinned in the server's registry (one pin, or two while a certificate is
  being replaced). The certificate's common name must also be the terminal id. A fresh certificate
  for the same name with another key is refused, even though the CA signed it.
* Revocation is checked on every call, not only when the connection was set up: serials listed in
  the server config, and a CRL file from the client CA that is re-read whenever it changes on disk.
  A CRL that does not parse or is not signed by the client CA refuses every call (fail closed); a
  CRL past its next update is still applied, with a warning.
* Each terminal has one signing key, and during a rotation a second one (the previous key) that is
  accepted until a stated time. The header names the key it was signed with (``signer_key_id``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from agent.security.keys import algorithm_of, public_key_id
from hil.ingest.attestation import AttestationPolicy
from hil.ingest.evidence import CameraPin

log = logging.getLogger(__name__)
_CA_KEYS = (ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey)


class PeerRefused(Exception):
    """The caller is not a registered, unrevoked terminal; ``reason`` is the receipt reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


def spki_sha256(cert: x509.Certificate | bytes) -> str:
    """Hex SHA-256 of a certificate's SubjectPublicKeyInfo (DER): the pin that names a terminal."""
    if isinstance(cert, bytes):
        cert = x509.load_pem_x509_certificate(cert)
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class Terminal:
    terminal_id: str
    public_key: Any                              # the current signing key (cryptography public key)
    spki_sha256: frozenset[str]                  # pinned client-certificate keys, hex, one or two
    previous_key: Any = None                     # during a rotation: the key being retired ...
    previous_until_ms: int = 0                   # ... accepted until this time (unix ms)
    attestation: AttestationPolicy | None = None  # when set, every probe must carry a matching TPM quote
    camera: CameraPin | None = None              # when set, probes must come from this camera

    def __post_init__(self) -> None:
        if not 1 <= len(self.spki_sha256) <= 2:
            raise ValueError(f"terminal {self.terminal_id}: pin one or two client certificate keys")
        for pin in self.spki_sha256:
            if len(pin) != 64 or any(c not in "0123456789abcdef" for c in pin):
                raise ValueError(f"terminal {self.terminal_id}: a pin is 64 lowercase hex digits (SHA-256)")
        if self.attestation is not None and self.attestation.ima_reference is not None \
                and (self.camera is None or not self.camera.dot_reference_sha256):
            raise ValueError(f"terminal {self.terminal_id}: an attestation registration with ima needs the camera's "
                             "dot reference pinned ([terminals.camera] dot_reference_sha256)")
        algorithm_of(self.public_key)
        if self.previous_key is not None:
            algorithm_of(self.previous_key)

    def signing_key(self, key_id: str, now_ms: int) -> Any | None:
        """The registered key named ``key_id`` that may sign now, or None."""
        if key_id == public_key_id(self.public_key):
            return self.public_key
        if self.previous_key is not None and now_ms <= self.previous_until_ms \
                and key_id == public_key_id(self.previous_key):
            return self.previous_key
        return None


class Revocation:
    """Revoked client certificates: serials from the config and, optionally, a CRL file."""

    def __init__(self, serials: Iterable[int] = (), crl_path: Path | None = None,
                 issuer: x509.Certificate | None = None):
        self.serials = frozenset(serials)
        self.crl_path = crl_path
        self._issuer = issuer
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._crl: x509.CertificateRevocationList | None = None
        self._crl_error: str | None = None
        if crl_path is not None and issuer is None:
            raise ValueError("a CRL needs the client CA's certificate to check its signature")

    def check(self, cert: x509.Certificate) -> None:
        """Raise :class:`PeerRefused` if ``cert`` is revoked or revocation cannot be decided."""
        if cert.serial_number in self.serials:
            raise PeerRefused("REVOKED", "the client certificate's serial is on the server's revoked list")
        if self.crl_path is None:
            return
        crl, error = self._current()
        if crl is None:
            raise PeerRefused("REVOKED", f"the revocation list cannot be used: {error}")
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None \
                and cert.issuer == crl.issuer:
            raise PeerRefused("REVOKED", "the client certificate is revoked by the CA's revocation list")

    def _current(self) -> tuple[x509.CertificateRevocationList | None, str | None]:
        assert self.crl_path is not None and self._issuer is not None
        try:
            st = os.stat(self.crl_path)
            seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError as exc:
            return None, f"{self.crl_path}: {exc.strerror}"
        with self._lock:
            if seen != self._seen:
                self._seen = seen
                self._crl, self._crl_error = self._load()
            return self._crl, self._crl_error

    def _load(self) -> tuple[x509.CertificateRevocationList | None, str | None]:
        assert self.crl_path is not None and self._issuer is not None
        try:
            data = self.crl_path.read_bytes()
            crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----")
                   else x509.load_der_x509_crl(data))
        except (OSError, ValueError) as exc:
            log.error("revocation list %s does not load (%s): refusing every terminal", self.crl_path,
                      type(exc).__name__)
            return None, "it does not load"
        ca_key = self._issuer.public_key()
        if crl.issuer != self._issuer.subject or not isinstance(ca_key, _CA_KEYS) or not crl.is_signature_valid(ca_key):
            log.error("revocation list %s is not signed by the client CA: refusing every terminal", self.crl_path)
            return None, "it is not signed by the client CA"
        nxt = crl.next_update_utc
        if nxt is not None and nxt < datetime.now(UTC):
            log.warning("revocation list %s is past its next update (%s); applying it anyway", self.crl_path, nxt)
        return crl, None


@dataclass(frozen=True)
class _Peer:
    cert: x509.Certificate
    spki: str
    common_name: str


class Registry:
    """The registered terminals and the revocation state; :meth:`identify` runs on every call."""

    CACHE = 4096                      # parsed client certificates kept (by their PEM bytes)

    def __init__(self, terminals: Iterable[Terminal], revocation: Revocation | None = None):
        self.terminals = {t.terminal_id: t for t in terminals}
        self.revocation = revocation or Revocation()
        self._by_pin: dict[str, Terminal] = {}
        for t in self.terminals.values():
            for pin in t.spki_sha256:
                if pin in self._by_pin:
                    raise ValueError(f"terminals {self._by_pin[pin].terminal_id} and {t.terminal_id} pin the same key")
                self._by_pin[pin] = t
        self._cache: OrderedDict[bytes, _Peer] = OrderedDict()
        self._lock = threading.Lock()

    def identify(self, auth_context: Mapping[str, Sequence[bytes]]) -> Terminal:
        """The terminal the verified client certificate belongs to, or :class:`PeerRefused`."""
        pems = auth_context.get("x509_pem_cert") or []
        if not pems:
            raise PeerRefused("UNKNOWN_TERMINAL", "the call carries no client certificate")
        peer = self._peer(pems[0])
        self.revocation.check(peer.cert)
        term = self._by_pin.get(peer.spki)
        if term is None:
            raise PeerRefused("UNKNOWN_TERMINAL", "the client certificate's key is not registered for any terminal")
        if peer.common_name != term.terminal_id:
            raise PeerRefused("UNKNOWN_TERMINAL", "the client certificate's name is not the terminal its key is "
                              "registered for")
        return term

    def _peer(self, pem: bytes) -> _Peer:
        with self._lock:
            hit = self._cache.get(pem)
            if hit is not None:
                self._cache.move_to_end(pem)
                return hit
        try:
            cert = x509.load_pem_x509_certificate(pem)
            names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
            cn = names[0].value if names else ""
            peer = _Peer(cert, spki_sha256(cert), cn if isinstance(cn, str) else cn.decode("utf-8", "replace"))
        except ValueError:
            raise PeerRefused("UNKNOWN_TERMINAL", "the client certificate does not parse") from None
        with self._lock:
            self._cache[pem] = peer
            while len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
        return peer
