"""The terminal's mTLS client credentials: its certificate, and a private key that is either a 0600
PEM file or held by a PKCS#11 token or a TPM and never leaves it.

A held key signs the TLS handshake through gRPC's custom signer,
``grpc.experimental.ssl_channel_credentials_with_custom_signer`` (gRFC A107; grpcio 1.85.3 has it).
gRPC hands the signer the handshake message (for TLS 1.3 the 130-byte CertificateVerify content,
not a digest) and the algorithm it wants; the key must be ECDSA P-256, because that is the one
algorithm of gRPC's list (RSA PKCS#1/PSS, ECDSA P-256/384/521) that our key stores all hold, and
the signature it returns is DER ECDSA over SHA-256 of that message, which is what
:meth:`Signer.sign` makes for a P-256 key. Signing runs on a thread of its own (gRPC's asynchronous
form), so a slow TPM does not stall gRPC's I/O threads.

The API is experimental; it lives behind this one module. A grpcio without it gives
``UPL_TLS_SIGNER_UNSUPPORTED`` at start, not a failure at the first handshake. The certificate must
name the held key's public key (``KEY_MISMATCH`` otherwise), so a wrong pairing is caught before any
connection is tried.

Only the transport is P-256 even in the GM profile: gRPC's BoringSSL has no SM2/SM3/SM4 cipher
suites (RFC 8998), so GM applies to the sealed probe, not to TLS.
"""

from __future__ import annotations

import importlib
import logging
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from agent.security.keys import P256, KeyMismatch, KeyUnsupported, Signer, load_signer, read_private_file
from drivers.errors import CaptureAgentError

log = logging.getLogger(__name__)

HELD_KEY_SCHEMES = ("pkcs11:", "tpm:")


class TlsSignerUnsupported(CaptureAgentError):
    code = "UPL_TLS_SIGNER_UNSUPPORTED"


def _experimental() -> Any:
    try:
        return importlib.import_module("grpc.experimental")
    except ImportError:
        return None


def custom_signer_api():
    """gRPC's custom-signer credentials function, or a clear error if this grpcio lacks it."""
    fn = getattr(_experimental(), "ssl_channel_credentials_with_custom_signer", None)
    if fn is None:
        raise TlsSignerUnsupported(
            f"grpcio {getattr(grpc, '__version__', '?')} cannot use an mTLS key held in PKCS#11 or a TPM: it lacks "
            "grpc.experimental.ssl_channel_credentials_with_custom_signer (grpcio 1.85.3 has it); upgrade grpcio "
            "or use a key file for [uplink] key")
    return fn


def load_client_key(spec: str, base_dir: Path = Path(".")) -> bytes | Signer:
    """``[uplink] key``: a PEM file path (read after the 0600 check) or a ``pkcs11:``/``tpm:`` spec."""
    if spec.startswith(HELD_KEY_SCHEMES):
        return load_signer(spec)
    path = Path(spec[len("file:"):] if spec.startswith("file:") else spec)
    path = path if path.is_absolute() else base_dir / path
    return read_private_file(path)


def _no_cancel() -> None:
    return None


class HandshakeSigner:
    """The callable gRPC calls during each handshake; remembers the last failure so the client can
    report why no connection could be made (a PCR policy refusal, a removed token)."""

    def __init__(self, signer: Signer):
        self._signer = signer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tls-signer")
        self._lock = threading.Lock()
        self.calls = 0
        self.last_error: CaptureAgentError | None = None

    def __call__(self, data: bytes, algorithm, on_complete):
        with self._lock:
            self.calls += 1
        wanted = _experimental().PrivateKeySignatureAlgorithm.ECDSA_SECP256R1_SHA256
        if algorithm != wanted:
            on_complete(ValueError(f"the mTLS key can only make {wanted.name} signatures, not {algorithm!r}"))
            return _no_cancel
        cancelled = threading.Event()
        # on_complete is always called from the signer's thread, never from inside this call: an
        # inline completion (a fast token finishing before a done-callback is attached) left about
        # one handshake in four hanging with grpcio 1.85.3 (measured: 16 of 60 against SoftHSM2).
        self._pool.submit(self._sign, bytes(data), on_complete, cancelled)
        return cancelled.set

    def _sign(self, data: bytes, on_complete, cancelled: threading.Event) -> None:
        if cancelled.is_set():
            return
        try:
            signature = self._signer.sign(data)
        except CaptureAgentError as exc:
            self.last_error = exc
            log.warning("mTLS handshake: the client key did not sign: error[%s]: %s", exc.code, exc.message)
            result: bytes | Exception = exc
        except Exception as exc:                    # a token or TSS failure outside our types
            result = RuntimeError(f"the mTLS client key did not sign: {type(exc).__name__}")
        else:
            result = signature
        if not cancelled.is_set():
            on_complete(result)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def check_pairing(cert_pem: bytes, signer: Signer) -> None:
    """The leaf certificate names the signer's public key, and the key is one TLS here can use."""
    if signer.algorithm != P256:
        raise KeyUnsupported(f"the mTLS client key must be ECDSA P-256 (it is {signer.algorithm}); gRPC's TLS "
                             "signs the handshake with ECDSA P-256, RSA or larger NIST curves only")
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise KeyMismatch("the mTLS client certificate is not a PEM certificate") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, spki) != \
            signer.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise KeyMismatch(f"the mTLS client certificate ({cert.subject.rfc4514_string()[:120]}) is not for the "
                          f"held key {signer.key_id}")


def client_credentials(ca_pem: bytes, cert_pem: bytes, key: bytes | Signer
                       ) -> tuple[grpc.ChannelCredentials, HandshakeSigner | None]:
    """Channel credentials for mutual TLS with the pinned CA, and the handshake signer if the key is held."""
    if isinstance(key, bytes):
        return grpc.ssl_channel_credentials(root_certificates=ca_pem, private_key=key, certificate_chain=cert_pem), None
    make = custom_signer_api()
    check_pairing(cert_pem, key)
    hs = HandshakeSigner(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", getattr(_experimental(), "ExperimentalApiWarning", Warning))
        creds = make(private_key_sign_fn=hs, root_certificates=ca_pem, certificate_chain=cert_pem)
    return creds, hs


def certificate_request(signer: Signer, common_name: str, organization: str = "capture-agent") -> bytes:
    """A PKCS#10 CSR (PEM) for the held mTLS key, signed by it, for the bank's CA to issue the
    terminal certificate from (CN = terminal id). ``cryptography`` builds CSRs from private keys it
    holds only, so the request is assembled here and only its signature comes from the token or TPM."""
    from asn1crypto import csr, keys, pem
    from asn1crypto import x509 as asn1_x509
    if signer.algorithm != P256:
        raise KeyUnsupported("a CSR is made for the mTLS key, which must be ECDSA P-256")
    spki = signer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    info = csr.CertificationRequestInfo({
        "version": "v1",
        "subject": asn1_x509.Name.build({"organization_name": organization, "common_name": common_name}),
        "subject_pk_info": keys.PublicKeyInfo.load(spki),
        "attributes": [],
    })
    request = csr.CertificationRequest({"certification_request_info": info,
                                        "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                                        "signature": signer.sign(info.dump())})
    return pem.armor("CERTIFICATE REQUEST", request.dump())
