"""Keys in a TPM 2.0, bound to the machine's measured state, and quotes of that state.

What the TPM gives a bank terminal that a file or an HSM does not: a key that works only while the
machine booted what it was enrolled with. Each key here is created under the owner hierarchy's
storage primary (the ``tpm2_createprimary -C o -G ecc`` template, so the TPM re-derives the same
parent on every start) and stored as a *blob*: its public part and its private part encrypted by
that parent. The blob is useless on another TPM or after the TPM is cleared.

* **Signing and mTLS keys** (ECDSA P-256) carry ``authPolicy = PolicyPCR(selection, values at
  enrolment)`` and no ``userWithAuth``: the TPM signs only inside a policy session whose PolicyPCR
  matches the current PCR values. After a firmware, bootloader or kernel change the TPM refuses
  (``KEY_PCR_MISMATCH``) and the terminal must be re-enrolled; a production fleet would use
  PolicyAuthorize (a policy the bank signs) instead, so that updates do not brick keys.
* **The attestation key (AK)** is a restricted signing key: it signs only data the TPM itself
  produced, so it cannot be made to sign a forged quote. ``quote(nonce)`` returns a TPM2_Quote over
  the enrolled PCRs, qualified by ``SHA-256("capture-agent/quote/v1\\0" || challenge nonce)``, with
  the PCR values; the server checks it against the terminal's registered AK and expected values
  (``hil/ingest/attestation.py``).

Specs (``[keys] signing_key``, ``[uplink] key``, ``[keys] attestation``)::

    tpm:key=/var/lib/capture-agent/signing.tpmkey[;tcti=device:/dev/tpmrm0][;owner-auth-env=VAR|owner-auth-file=PATH]

``tcti`` defaults to the kernel's resource manager, ``device:/dev/tpmrm0``; tests use
``swtpm:host=127.0.0.1,port=N``. The owner hierarchy's authorisation, if it has one, comes only from
the environment or a 0600 file. ``enrol`` (``capture-agent keys tpm-enrol``) creates the blobs.

The audit log's counter and the lockout's clock (sec29, ``[audit] tpm_counter``): ``TpmMonotonic`` is an NV
counter index, an NV extend index that binds the counted entries' content (sec30; ``capture-agent keys tpm-counter``
defines both) and TPM2_ReadClock (``docs/keys.md``). Since sec31 the attestation key certifies both indices
(TPM2_NV_Certify, ``TpmAttestor.certify_counter``) for each probe's nonce, and the server pins their names
(``counter_registration``); ``define_counter(platform=True)`` defines them with the platform hierarchy, which the owner
cannot undefine.

Not done here: tying the AK to the TPM's endorsement key (EK certificate, MakeCredential /
ActivateCredential), which is what proves to a server that the AK lives in a genuine TPM. The
server trusts the AK it was given at registration.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from agent.security.keys import (
    P256,
    KeyNotFound,
    KeyStoreError,
    KeyUnsupported,
    Signer,
    algorithm_of,
    check_private_file,
    parse_spec,
    read_secret,
)
from proto.capture_agent.v1 import ingest_pb2 as pb

DEFAULT_TCTI = "device:/dev/tpmrm0"
BLOB_FORMAT = "capture-agent/tpm-key/1"
QUOTE_PREFIX = b"capture-agent/quote/v1\x00"
NV_CERTIFY_PREFIX = b"capture-agent/nv-certify/v1\x00"
BANKS = ("sha1", "sha256", "sha384")
MAX_PCRS = 24


class TpmError(KeyStoreError):
    code = "KEY_TPM"


class PcrPolicyRefused(KeyStoreError):
    """The TPM refused a key because the PCRs differ from the values it was bound to."""

    code = "KEY_PCR_MISMATCH"


def _tss() -> Any:
    try:
        import tpm2_pytss
    except ImportError:
        raise KeyUnsupported("TPM keys need tpm2-pytss (pip install 'capture-agent[tpm]', "
                             "which needs libtss2-dev to build)") from None
    return tpm2_pytss


@dataclass(frozen=True)
class PcrSelection:
    """A PCR bank and indices, written ``sha256:0,1,2,3,7``."""

    bank: str
    indices: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> PcrSelection:
        bank, sep, rest = text.partition(":")
        try:
            indices = tuple(sorted({int(i) for i in rest.split(",")})) if sep and rest else ()
        except ValueError:
            indices = ()
        if bank not in BANKS or not indices or not all(0 <= i < MAX_PCRS for i in indices):
            raise KeyStoreError(f"bad PCR selection {text[:60]!r}: expected BANK:i,j,... with BANK one of "
                                f"{', '.join(BANKS)} and indices 0-{MAX_PCRS - 1}")
        return cls(bank, indices)

    def __str__(self) -> str:
        return f"{self.bank}:{','.join(map(str, self.indices))}"


def quote_qualifier(nonce: bytes) -> bytes:
    """What a quote's ``extraData`` must be for a challenge nonce (domain-separated from other uses)."""
    return hashlib.sha256(QUOTE_PREFIX + nonce).digest()


def nv_certify_qualifier(nonce: bytes) -> bytes:
    """What a TPM2_NV_Certify's ``extraData`` must be for a challenge nonce (sec31; domain-separated from quotes)."""
    return hashlib.sha256(NV_CERTIFY_PREFIX + nonce).digest()


class TpmConnection:
    """One ESAPI context per TCTI in this process, shared by the keys that use it (a socket TPM
    serves one connection at a time, and ESAPI contexts are not thread-safe: every use holds
    ``lock``)."""

    _open: dict[str, TpmConnection] = {}
    _open_lock = threading.Lock()

    def __init__(self, tcti: str):
        tss = _tss()
        try:
            self.esapi = tss.ESAPI(tcti)
        except (tss.TSS2_Exception, RuntimeError) as exc:
            raise TpmError(f"cannot open the TPM at {tcti!r}: {exc}") from None
        self.tcti = tcti
        self.lock = threading.RLock()
        self._refs = 0

    @classmethod
    def get(cls, tcti: str) -> TpmConnection:
        with cls._open_lock:
            conn = cls._open.get(tcti)
            if conn is None:
                conn = cls._open[tcti] = cls(tcti)
            conn._refs += 1
            return conn

    def release(self) -> None:
        with TpmConnection._open_lock:
            self._refs -= 1
            if self._refs <= 0 and TpmConnection._open.get(self.tcti) is self:
                del TpmConnection._open[self.tcti]
                with self.lock:
                    self.esapi.close()

    def set_owner_auth(self, auth: str | None) -> None:
        if auth:
            tss = _tss()
            with self.lock:
                self.esapi.tr_set_auth(tss.constants.ESYS_TR.OWNER, auth.encode())

    def storage_primary(self):
        """The owner hierarchy's ECC storage primary (deterministic; the caller flushes it)."""
        tss = _tss()
        c, t = tss.constants, tss.types
        template = t.TPM2B_PUBLIC(t.TPMT_PUBLIC.parse(
            "ecc256:aes128cfb", objectAttributes=c.TPMA_OBJECT.DEFAULT_TPM2_TOOLS_CREATEPRIMARY_ATTRS))
        handle, *_ = self.esapi.create_primary(t.TPM2B_SENSITIVE_CREATE(), template, c.ESYS_TR.OWNER)
        return handle

    def read_pcrs(self, sel: PcrSelection) -> list[bytes]:
        """The values of ``sel``'s PCRs in index order (TPM2_PCR_Read returns at most 8 per call)."""
        out: dict[int, bytes] = {}
        for k in range(0, len(sel.indices), 8):
            chunk = PcrSelection(sel.bank, sel.indices[k:k + 8])
            _, got, values = self.esapi.pcr_read(str(chunk))
            read = [i for s in got.pcrSelections[:got.count] for i in _selected(bytes(s.pcrSelect)[:s.sizeofSelect])]
            if read != list(chunk.indices):
                raise TpmError(f"the TPM has no {sel.bank} bank for PCRs {chunk} (it returned {read})")
            out.update(zip(read, (bytes(d) for d in values.digests[:values.count]), strict=True))
        return [out[i] for i in sel.indices]


def _selected(bitmap: bytes) -> list[int]:
    return [8 * byte + bit for byte, v in enumerate(bitmap) for bit in range(8) if v >> bit & 1]


def _tss_error(what: str, exc: Exception) -> TpmError:
    return TpmError(f"TPM {what} failed: {exc}")


# --- key blobs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyBlob:
    use: str                    # "signing" (also the mTLS key) or "attestation"
    public: bytes               # TPM2B_PUBLIC, marshalled
    private: bytes              # TPM2B_PRIVATE, marshalled (encrypted by the storage primary)
    pcrs: PcrSelection          # signing: the policy's PCRs; attestation: the PCRs it quotes

    def write(self, path: Path) -> None:
        doc = {"format": BLOB_FORMAT, "use": self.use, "public": self.public.hex(), "private": self.private.hex(),
               "pcrs": str(self.pcrs)}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyStoreError(f"TPM key blob {path} already exists; refusing to overwrite it") from None
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1)

    @classmethod
    def read(cls, path: Path) -> KeyBlob:
        check_private_file(path)
        try:
            doc = json.loads(path.read_text())
            if doc["format"] != BLOB_FORMAT or doc["use"] not in ("signing", "attestation"):
                raise ValueError("format")
            return cls(doc["use"], bytes.fromhex(doc["public"]), bytes.fromhex(doc["private"]),
                       PcrSelection.parse(doc["pcrs"]))
        except (ValueError, KeyError, TypeError):
            raise KeyStoreError(f"{path} is not a capture-agent TPM key blob ({BLOB_FORMAT})") from None


class _LoadedKey:
    """A blob loaded once, then kept as a saved context outside the TPM and loaded only for each use.

    A TPM has few transient object slots (three in swtpm, often three on hardware) and a socket TPM
    has no resource manager to swap them: a terminal's three keys plus the storage primary do not
    fit at once. Context save/load is that swapping, cheap and without re-deriving the primary."""

    def __init__(self, conn: TpmConnection, blob: KeyBlob, path: Path):
        tss = _tss()
        t = tss.types
        self.conn, self.blob = conn, blob
        try:
            pub, _ = t.TPM2B_PUBLIC.unmarshal(blob.public)
            priv, _ = t.TPM2B_PRIVATE.unmarshal(blob.private)
        except Exception:
            raise KeyStoreError(f"{path}: the key blob does not unmarshal") from None
        with conn.lock:
            try:
                parent = conn.storage_primary()
            except tss.TSS2_Exception as exc:
                raise _tss_error("creating the storage primary (owner authorisation?)", exc) from None
            try:
                handle = conn.esapi.load(parent, priv, pub)
            except tss.TSS2_Exception as exc:
                raise TpmError(f"the TPM cannot load {path}: it was made by another TPM, or this TPM was "
                               f"cleared since ({exc})") from None
            finally:
                conn.esapi.flush_context(parent)
            try:
                self._context = conn.esapi.context_save(handle)
            finally:
                conn.esapi.flush_context(handle)
        self.public_key = serialization.load_pem_public_key(pub.to_pem())
        if algorithm_of(self.public_key) != P256:
            raise KeyUnsupported(f"{path}: only ECDSA P-256 TPM keys are supported")

    @contextlib.contextmanager
    def loaded(self) -> Iterator[Any]:
        """The key's handle for one use; the caller holds ``conn.lock``."""
        tss = _tss()
        try:
            handle = self.conn.esapi.context_load(self._context)
        except tss.TSS2_Exception as exc:
            raise TpmError(f"the TPM cannot reload a key it loaded before (was it reset?): {exc}") from None
        try:
            yield handle
        finally:
            try:
                self.conn.esapi.flush_context(handle)
            except tss.TSS2_Exception:
                pass


def _der(sig) -> bytes:
    e = sig.signature.ecdsa
    return encode_dss_signature(int.from_bytes(bytes(e.signatureR), "big"), int.from_bytes(bytes(e.signatureS), "big"))


class TpmSigner(Signer):
    """An ECDSA P-256 key in the TPM, usable only while its PCR policy holds."""

    algorithm = P256

    def __init__(self, conn: TpmConnection, path: Path):
        blob = KeyBlob.read(path)
        if blob.use != "signing":
            raise KeyStoreError(f"{path} is an attestation key, not a signing key")
        self.path = path
        self._key = _LoadedKey(conn, blob, path)

    def public_key(self):
        return self._key.public_key

    def sign(self, data: bytes) -> bytes:
        tss = _tss()
        c, t = tss.constants, tss.types
        conn, sel = self._key.conn, self._key.blob.pcrs
        digest = t.TPM2B_DIGEST(hashlib.sha256(data).digest())
        # NULL-hierarchy ticket: the digest was computed outside the TPM (allowed for unrestricted keys).
        ticket = t.TPMT_TK_HASHCHECK(tag=c.TPM2_ST.HASHCHECK, hierarchy=c.TPM2_RH.NULL)
        with conn.lock:
            for attempt in (1, 2):
                session = conn.esapi.start_auth_session(c.ESYS_TR.NONE, c.ESYS_TR.NONE, c.TPM2_SE.POLICY,
                                                        "aes128cfb", c.TPM2_ALG.SHA256)
                try:
                    conn.esapi.policy_pcr(session, b"", str(sel))
                    with self._key.loaded() as handle:
                        return _der(conn.esapi.sign(handle, digest, t.TPMT_SIG_SCHEME(scheme=c.TPM2_ALG.NULL),
                                                    ticket, session1=session))
                except tss.TSS2_Exception as exc:
                    if exc.error == c.TPM2_RC.PCR_CHANGED and attempt == 1:
                        continue                     # a PCR moved between PolicyPCR and Sign: once more
                    if exc.error == c.TPM2_RC.POLICY_FAIL:
                        raise PcrPolicyRefused(f"the TPM refused key {self.path.name}: PCRs {sel} differ from the "
                                               "values it was bound to (the terminal booted something else; "
                                               "re-enrol it if the change was intended)") from None
                    raise _tss_error("signing", exc) from None
                finally:
                    try:
                        conn.esapi.flush_context(session)
                    except tss.TSS2_Exception:
                        pass                         # already gone
        raise TpmError("signing failed: the PCRs kept changing")

    def close(self) -> None:
        self._key.conn.release()


class TpmAttestor:
    """The attestation key: quotes of the enrolled PCRs for a challenge nonce."""

    def __init__(self, conn: TpmConnection, path: Path, ima: Path | None = None):
        blob = KeyBlob.read(path)
        if blob.use != "attestation":
            raise KeyStoreError(f"{path} is a signing key, not an attestation key")
        self.path = path
        self.pcrs = blob.pcrs
        self.ima = ima
        self._key = _LoadedKey(conn, blob, path)

    def public_key(self):
        return self._key.public_key

    def quote(self, nonce: bytes) -> pb.PlatformQuote:
        tss = _tss()
        c, t = tss.constants, tss.types
        conn = self._key.conn
        with conn.lock:
            try:
                with self._key.loaded() as handle:
                    attest, sig = conn.esapi.quote(handle, str(self.pcrs), quote_qualifier(nonce),
                                                   t.TPMT_SIG_SCHEME(scheme=c.TPM2_ALG.NULL))
                values = conn.read_pcrs(self.pcrs)
            except tss.TSS2_Exception as exc:
                raise _tss_error("quote", exc) from None
        return pb.PlatformQuote(attest=bytes(attest), signature=_der(sig), pcr_bank=self.pcrs.bank,
                                pcrs=list(self.pcrs.indices), pcr_values=values)

    def ima_list(self) -> bytes:
        """pin34: the kernel's IMA measurement list (the spec's ``ima``; b"" without), read after :meth:`quote` (the
        server replays PCR 10 to the first prefix that gives the quoted value: entries appended since are not
        attested). The probe's payload carries it."""
        return read_ima_list(self.ima) if self.ima is not None else b""

    def certify_nv(self, nonce: bytes, index: int, size: int) -> pb.NvCertification | None:
        """TPM2_NV_Certify of NV ``index``'s ``size`` bytes by this key, qualified by ``nv_certify_qualifier(nonce)``
        (sec31): the TPM's own word of the index's name (its attributes, so who created it) and contents, which the
        server checks against the names it pinned at enrolment. None while the index was never written (the TPM
        refuses to certify it then). The index is this TPM's: a counter spec pointed at another TPM is not."""
        tss = _tss()
        c, t = tss.constants, tss.types
        conn = self._key.conn
        with conn.lock:
            try:
                nv = conn.esapi.tr_from_tpmpublic(index)
                with self._key.loaded() as handle:
                    attest, sig = conn.esapi.nv_certify(handle, nv, nv_certify_qualifier(nonce),
                                                        t.TPMT_SIG_SCHEME(scheme=c.TPM2_ALG.NULL), size, 0,
                                                        auth_handle=nv, session1=c.ESYS_TR.PASSWORD,
                                                        session2=c.ESYS_TR.PASSWORD)
            except tss.TSS2_Exception as exc:
                if exc.error == c.TPM2_RC.NV_UNINITIALIZED:
                    return None
                raise TpmCounterError(f"TPM2_NV_Certify of NV index {index:#010x} failed: {exc}") from None
        return pb.NvCertification(nv_index=index, attest=bytes(attest), signature=_der(sig))

    def certify_counter(self, nonce: bytes, counter: TpmMonotonic) -> tuple[pb.NvCertification, ...]:
        """The audit counter's and chain's certifications for ``nonce`` (sec31), those written so far, in that
        order: what an anchor carries (``AuditLog.anchor``)."""
        got = (self.certify_nv(nonce, counter.index, COUNTER_SIZE), self.certify_nv(nonce, counter.chain_index,
                                                                                     CHAIN_SIZE))
        return tuple(g for g in got if g is not None)

    def close(self) -> None:
        self._key.conn.release()


MAX_IMA_LIST = 4 << 20          # bytes of the IMA list sent (hil/ingest/ima.py MAX_LIST; the sealed payload's 8 MiB)


def read_ima_list(path: Path) -> bytes:
    """The kernel's IMA measurement list, bounded (``TpmError``: unreadable or over ``MAX_IMA_LIST``)."""
    from agent.bounded import read_at_most
    return read_at_most(path, MAX_IMA_LIST, TpmError, "the IMA measurement list")


def _open(spec: str, extra: frozenset[str] = frozenset()) -> tuple[TpmConnection, Path]:
    p = parse_spec(spec, "tpm")
    unknown = set(p) - {"key", "tcti", "owner-auth-env", "owner-auth-file"} - extra
    if unknown or "key" not in p:
        raise KeyStoreError("tpm: key spec is key=PATH[;tcti=...][;owner-auth-env=VAR|owner-auth-file=PATH]"
                            + ("[;ima=PATH]" if extra else "")
                            + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""))
    path = Path(p["key"])
    if not path.exists():
        raise KeyNotFound(f"TPM key blob {path} does not exist (create it with capture-agent keys tpm-enrol)")
    auth = read_secret(p, "TPM owner authorisation", "owner-auth-env", "owner-auth-file", required=False)
    conn = TpmConnection.get(p.get("tcti") or DEFAULT_TCTI)
    try:
        conn.set_owner_auth(auth)
    except BaseException:
        conn.release()
        raise
    return conn, path


def load_tpm_signer(spec: str) -> TpmSigner:
    conn, path = _open(spec)
    try:
        return TpmSigner(conn, path)
    except BaseException:
        conn.release()
        raise


def load_attestor(spec: str) -> TpmAttestor:
    """``tpm:key=PATH[;tcti=...][;ima=PATH]``; ``ima`` (pin34): the kernel's IMA measurement list
    (``/sys/kernel/security/ima/binary_runtime_measurements``), sent with every quote."""
    if not spec.startswith("tpm:"):
        raise KeyStoreError("the attestation key must be a tpm: spec")
    conn, path = _open(spec, frozenset({"ima"}))
    try:
        ima = parse_spec(spec, "tpm").get("ima")
        return TpmAttestor(conn, path, Path(ima) if ima else None)
    except BaseException:
        conn.release()
        raise


# --- enrolment -----------------------------------------------------------------------------------

def _create(conn: TpmConnection, use: str, pcrs: PcrSelection) -> KeyBlob:
    tss = _tss()
    c, t = tss.constants, tss.types
    attrs = c.TPMA_OBJECT.SIGN_ENCRYPT | c.TPMA_OBJECT.FIXEDTPM | c.TPMA_OBJECT.FIXEDPARENT | \
        c.TPMA_OBJECT.SENSITIVEDATAORIGIN
    with conn.lock:
        if use == "signing":
            trial = conn.esapi.start_auth_session(c.ESYS_TR.NONE, c.ESYS_TR.NONE, c.TPM2_SE.TRIAL, "aes128cfb",
                                                  c.TPM2_ALG.SHA256)
            try:
                conn.esapi.policy_pcr(trial, b"", str(pcrs))          # the current values
                policy = bytes(conn.esapi.policy_get_digest(trial))
            finally:
                conn.esapi.flush_context(trial)
            # No USERWITHAUTH: the key is usable through its PCR policy only.
            template = t.TPM2B_PUBLIC(t.TPMT_PUBLIC.parse("ecc256:ecdsa-sha256", objectAttributes=attrs,
                                                          authPolicy=policy))
        else:
            template = t.TPM2B_PUBLIC(t.TPMT_PUBLIC.parse(
                "ecc256:ecdsa-sha256", objectAttributes=attrs | c.TPMA_OBJECT.RESTRICTED | c.TPMA_OBJECT.USERWITHAUTH))
            template.publicArea.parameters.eccDetail.symmetric.algorithm = c.TPM2_ALG.NULL   # a signing AK
        parent = conn.storage_primary()
        try:
            priv, pub, *_ = conn.esapi.create(parent, t.TPM2B_SENSITIVE_CREATE(), template)
        finally:
            conn.esapi.flush_context(parent)
    return KeyBlob(use, bytes(pub.marshal()), bytes(priv.marshal()), pcrs)


@dataclass(frozen=True)
class Enrolment:
    """What ``enrol`` wrote, and what the bank registers for the terminal."""

    signing: Path
    mtls: Path
    attestation: Path
    registration: dict[str, Any]     # attestation key PEM and PCR values (hil/ingest/attestation.py reads it)


IMA_PCR = 10                             # the kernel's IMA measurements (pin34)
BOOT_PCRS = tuple(range(10))             # boot_aggregate over the SHA-256 bank: PCRs 0-9 (ima_calc_boot_aggregate)


def canonical_path(path: str) -> bool:
    """An absolute path as the kernel names a file in ``n-ng``: no ``.``/``..`` component, no doubled or trailing
    slash, no NUL (``/etc//x`` or ``/etc/../etc/x`` never matches an entry; registration refuses them)."""
    return (path.startswith("/") and not path.startswith("//") and posixpath.normpath(path) == path
            and "\0" not in path and 1 < len(path.encode()) <= 4096)


def enrol(directory: str | os.PathLike[str], *, tcti: str = DEFAULT_TCTI, pcrs: str = "sha256:0,1,2,3,4,5,6,7",
          owner_auth: str | None = None, ima_reference: str | None = None,
          ima_allowlist: list[str] | None = None) -> Enrolment:
    """Create the signing key, the mTLS key (both bound to ``pcrs`` as they are now) and the
    attestation key (quoting ``pcrs``) as blobs in ``directory``; never overwrites. ``ima_reference`` (pin34): the
    dot reference file's path on this terminal, measured by the kernel's IMA: the attestation key quotes PCR 10 too
    (replayed by the server from the list, not registered: the signing keys are not bound to it, it moves with every
    measurement), and the registration names the path under ``ima``. ima34: ``pcrs`` must hold 0-9 (the list's
    ``boot_aggregate`` is their SHA-256; 8-9 hold the kernel and its command line), the path must be canonical, and
    ``ima_allowlist`` (SHA-256 hex digests of every file the agent's uid may read or execute in this release) is
    registered for the server to refuse any attested measurement not on it (``IMA_UNLISTED``)."""
    tss = _tss()
    sel = PcrSelection.parse(pcrs)
    quoted = sel
    if ima_reference is not None:
        if sel.bank != "sha256" or IMA_PCR in sel.indices or not set(BOOT_PCRS) <= set(sel.indices):
            raise KeyStoreError("IMA enrolment needs a sha256 PCR selection holding PCRs 0-9 and not 10 "
                                "(boot_aggregate covers 0-9; 8-9 hold the kernel and its command line)")
        if not canonical_path(ima_reference):
            raise KeyStoreError("IMA enrolment needs the reference's canonical absolute path (no '.', '..', '//' "
                                "or trailing '/'): the kernel names the file canonically")
        quoted = PcrSelection(sel.bank, tuple(sorted(sel.indices + (IMA_PCR,))))
    if ima_allowlist is not None and (ima_reference is None or not ima_allowlist or not all(
            len(h) == 64 and all(c in "0123456789abcdef" for c in h) for h in ima_allowlist)):
        raise KeyStoreError("an IMA allowlist needs --ima-reference and SHA-256 hex digests (lowercase)")
    d = Path(directory)
    paths = {name: d / f"{name}.tpmkey" for name in ("signing", "mtls", "attestation")}
    for p in paths.values():
        if p.exists():
            raise KeyStoreError(f"TPM key blob {p} already exists; refusing to overwrite it")
    conn = TpmConnection.get(tcti)
    try:
        conn.set_owner_auth(owner_auth)
        try:
            blobs = {name: _create(conn, "attestation", quoted) if name == "attestation" else
                     _create(conn, "signing", sel) for name in paths}
            values = conn.read_pcrs(sel)
        except tss.TSS2_Exception as exc:
            raise _tss_error("enrolment", exc) from None
        for name, blob in blobs.items():
            blob.write(paths[name])
        ak = TpmAttestor(TpmConnection.get(tcti), paths["attestation"])     # holds its own reference
        ak_pem = ak.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        ak.close()
    finally:
        conn.release()
    registration: dict[str, Any] = {"attestation_key": ak_pem, "pcr_bank": sel.bank,
                                    "pcrs": {str(i): v.hex() for i, v in zip(sel.indices, values, strict=True)}}
    if ima_reference is not None:
        registration["ima"] = {"pcr": IMA_PCR, "dot_reference": ima_reference}
        if ima_allowlist is not None:
            registration["ima"]["allowlist"] = sorted(set(ima_allowlist))
    return Enrolment(paths["signing"], paths["mtls"], paths["attestation"], registration)


# --- the audit log's monotonic counter and the lockout's clock (sec29) ---------------------------

DEFAULT_COUNTER_INDEX = 0x018C0A29       # an NV index in the owner's range (TCG handle registry: 0x01800000-0x01BFFFFF)
COUNTER_SIZE = 8
CHAIN_SIZE = 32                          # the extend index's value: a SHA-256 digest (sec30)
ZERO_CHAIN = bytes(CHAIN_SIZE)           # an extend index before its first extend reads as this (TPM 2.0 Part 1)


class TpmCounterError(TpmError):
    """The configured NV index is missing, is not a counter, or cannot be read or advanced."""

    code = "KEY_TPM_COUNTER"


@dataclass(frozen=True)
class TpmTime:
    """TPM2_ReadClock. ``time_ms`` counts from the TPM's last start (``_TPM_Init``: a power-up, a reboot) and
    nothing can set it; only its rate can be nudged (TPM2_ClockRateAdjust, owner authorisation, within the
    platform's limit). ``clock_ms`` counts the TPM's powered life and survives reboots (saved to NV now and
    then; a power cut loses up to that interval, ``safe`` False), but the owner can move it *forward*
    (TPM2_ClockSet). ``epoch`` (``resetCount.restartCount``) changes at every TPM reset or restart: ``time_ms``
    of two readings compares only within one epoch."""

    epoch: str
    time_ms: int
    clock_ms: int
    safe: bool


def _nv_attrs(kind: Any, platform: bool = False) -> Any:
    c = _tss().constants
    # Owner-authorised writes, reads by anyone with the (empty) index auth, no dictionary-attack lockout.
    # Not ORDERLY: an orderly index loses its last writes at a power cut (a counter jumps ahead), which would read
    # as a cut or forged log. The same for the counter (TPM_NT_COUNTER) and the chain (TPM_NT_EXTEND, sec30).
    # ``platform`` (sec31): defined by the platform hierarchy (PLATFORMCREATE: the owner cannot undefine it) with
    # POLICY_DELETE (only TPM2_NV_UndefineSpaceSpecial, platform authorisation and the index's policy, deletes it);
    # both are in the index's name, which the server pins.
    extra = c.TPMA_NV.PLATFORMCREATE | c.TPMA_NV.POLICY_DELETE if platform else 0
    return (c.TPMA_NV.OWNERWRITE | c.TPMA_NV.AUTHREAD | c.TPMA_NV.OWNERREAD | c.TPMA_NV.NO_DA | extra
            | (kind << c.TPMA_NV.TPM2_NT_SHIFT))


def _is_audit_nv(nt: int, size: int, attrs: int) -> bool:
    """Whether an NV index looks like ``tpm-counter``'s counter or chain (owner- or platform-defined), ignoring
    TPMA_NV_WRITTEN."""
    c = _tss().constants
    if size != {int(c.TPM2_NT.COUNTER): COUNTER_SIZE, int(c.TPM2_NT.EXTEND): CHAIN_SIZE}.get(nt):
        return False
    return attrs & ~int(c.TPMA_NV.WRITTEN) in (int(_nv_attrs(nt)), int(_nv_attrs(nt, True)))


def _nv_type(conn: TpmConnection, index: int) -> tuple[Any, int, int, int]:
    """The handle of NV ``index``, its type (``TPM2_NT``), data size and attributes (with TPMA_NV_WRITTEN: set by the
    TPM at the first write, cleared only by undefining the index); the caller holds ``conn.lock``."""
    c = _tss().constants
    handle = conn.esapi.tr_from_tpmpublic(index)
    pub, _ = conn.esapi.nv_read_public(handle)
    attrs = int(pub.nvPublic.attributes)
    nt = (attrs & int(c.TPMA_NV.TPM2_NT_MASK)) >> int(c.TPMA_NV.TPM2_NT_SHIFT)
    return handle, nt, int(pub.nvPublic.dataSize), attrs


class TpmMonotonic:
    """The TPM's NV counter at ``index`` (TPM2_NV_Increment: it only goes up, and an index undefined and
    defined again starts at the highest count any counter of this TPM ever held), the NV extend index at ``chain``
    (TPM2_NV_Extend, sec30: its value only ever becomes SHA-256(value || data), so the digests extended into it
    cannot be taken back or reordered) and the TPM's clock (TPM2_ReadClock). Both indices are checked at every
    open: an ordinary NV index, which can be written back, is refused."""

    def __init__(self, conn: TpmConnection, index: int, chain: int):
        tss = _tss()
        c = tss.constants
        self.conn, self.index, self.chain_index = conn, index, chain
        with conn.lock:
            try:
                self._handle, nt, size, _ = _nv_type(conn, index)
                self._chain, chain_nt, chain_size, _ = _nv_type(conn, chain)
            except tss.TSS2_Exception as exc:
                raise TpmCounterError(f"the TPM lacks NV index {index:#010x} or {chain:#010x} (define them with "
                                      f"capture-agent keys tpm-counter): {exc}") from None
        if nt != int(c.TPM2_NT.COUNTER) or size != COUNTER_SIZE:
            raise TpmCounterError(f"NV index {index:#010x} is not a TPM counter (type {nt}): a value that can be "
                                  "written back cannot witness the audit log")
        if chain_nt != int(c.TPM2_NT.EXTEND) or chain_size != CHAIN_SIZE:
            raise TpmCounterError(f"NV index {chain:#010x} is not a SHA-256 extend index (type {chain_nt}): a value "
                                  "that can be written back cannot bind the audit log's entries")

    def _read(self, handle: Any, size: int, what: str) -> bytes | None:
        """NV index ``handle``'s ``size`` bytes; None before its first write (the TPM refuses the read then)."""
        tss = _tss()
        with self.conn.lock:
            try:
                return bytes(self.conn.esapi.nv_read(handle, size, 0, auth_handle=handle))
            except tss.TSS2_Exception as exc:
                if exc.error == tss.constants.TPM2_RC.NV_UNINITIALIZED:
                    return None
                raise TpmCounterError(f"reading {what} failed: {exc}") from None

    def count(self) -> int | None:
        """The counter's value; None before its first increment (a counter cannot be read before)."""
        data = self._read(self._handle, COUNTER_SIZE, f"NV counter {self.index:#010x}")
        return None if data is None else int.from_bytes(data, "big")

    def increment(self) -> int:
        """Advance the counter by one; its value after."""
        tss = _tss()
        with self.conn.lock:
            try:
                self.conn.esapi.nv_increment(self._handle, tss.constants.ESYS_TR.OWNER)
            except tss.TSS2_Exception as exc:
                raise TpmCounterError(f"advancing NV counter {self.index:#010x} failed (owner "
                                      f"authorisation?): {exc}") from None
            value = self.count()
        assert value is not None
        return value

    def chain(self) -> bytes:
        """The extend index's value (``ZERO_CHAIN`` before its first extend, as the TPM defines it)."""
        data = self._read(self._chain, CHAIN_SIZE, f"NV extend index {self.chain_index:#010x}")
        return ZERO_CHAIN if data is None else data

    def extend(self, digest: bytes) -> None:
        """TPM2_NV_Extend the chain by ``digest``: its value becomes SHA-256(value || digest)."""
        tss = _tss()
        with self.conn.lock:
            try:
                self.conn.esapi.nv_extend(self._chain, digest, tss.constants.ESYS_TR.OWNER)
            except tss.TSS2_Exception as exc:
                raise TpmCounterError(f"extending NV index {self.chain_index:#010x} failed (owner "
                                      f"authorisation?): {exc}") from None

    def now(self) -> TpmTime:
        tss = _tss()
        with self.conn.lock:
            try:
                t = self.conn.esapi.read_clock()
            except tss.TSS2_Exception as exc:
                raise TpmCounterError(f"reading the TPM's clock failed: {exc}") from None
        info = t.clockInfo
        return TpmTime(f"{int(info.resetCount)}.{int(info.restartCount)}", int(t.time), int(info.clock),
                       bool(info.safe))

    def close(self) -> None:
        self.conn.release()


def _counter_spec(spec: str) -> tuple[dict[str, str], int, int]:
    if not spec.startswith("tpm:"):
        raise KeyStoreError("the audit counter must be a tpm: spec (tpm:nv=0x...[;chain=0x...][;tcti=...])")
    p = parse_spec(spec, "tpm")
    unknown = set(p) - {"nv", "chain", "tcti", "owner-auth-env", "owner-auth-file"}
    try:
        index = int(p.get("nv", hex(DEFAULT_COUNTER_INDEX)), 16)
        chain = int(p["chain"], 16) if "chain" in p else index + 1
    except ValueError:
        index = chain = -1
    if unknown or not all(0x01000000 <= i <= 0x01FFFFFF for i in (index, chain)) or index == chain:
        raise KeyStoreError("the audit counter spec is tpm:nv=0x01XXXXXX[;chain=0x01XXXXXX][;tcti=...]"
                            "[;owner-auth-env=VAR|owner-auth-file=PATH]"
                            + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""))
    return p, index, chain


def load_monotonic(spec: str) -> TpmMonotonic:
    """The counter, chain and clock a ``tpm:nv=0x...[;chain=0x...][;tcti=...][;owner-auth-env=VAR|
    owner-auth-file=PATH]`` spec names (``[audit] tpm_counter``; the chain defaults to the index after ``nv``)."""
    p, index, chain = _counter_spec(spec)
    auth = read_secret(p, "TPM owner authorisation", "owner-auth-env", "owner-auth-file", required=False)
    conn = TpmConnection.get(p.get("tcti") or DEFAULT_TCTI)
    try:
        conn.set_owner_auth(auth)
        return TpmMonotonic(conn, index, chain)
    except BaseException:
        conn.release()
        raise


def written_audit_indices(tcti: str = DEFAULT_TCTI) -> list[int]:
    """The owner-range NV indices of this TPM that look like an audit counter or chain (a counter of 8 bytes or a
    SHA-256 extend index, with ``tpm-counter``'s attributes) and were ever written (sec30): what a daemon configured
    without ``[audit] tpm_counter`` refuses to start on (``AUD_COUNTER_GONE``). Empty where no TPM answers at
    ``tcti`` (a terminal without one)."""
    if tcti.startswith("device:") and not os.path.exists(tcti.partition(":")[2]):
        return []
    try:
        tss = _tss()
        conn = TpmConnection.get(tcti)
    except (TpmError, KeyUnsupported):
        return []
    c = tss.constants
    found: list[int] = []
    try:
        with conn.lock:
            handles: list[int] = []
            more, start = True, 0x01800000
            while more and start <= 0x01BFFFFF:             # a TPM hands back a page of handles at a time: all pages
                more, data = conn.esapi.get_capability(c.TPM2_CAP.HANDLES, start, 256)
                page = [int(h) for h in data.data.handles]
                if not page:
                    break
                handles += page
                start = page[-1] + 1
            for h in handles:
                if not 0x01800000 <= h <= 0x01BFFFFF:
                    continue
                _, nt, size, attrs = _nv_type(conn, h)
                if _is_audit_nv(nt, size, attrs) and attrs & int(c.TPMA_NV.WRITTEN):
                    found.append(h)
    except tss.TSS2_Exception as exc:
        raise _tss_error("listing the NV indices", exc) from None
    finally:
        conn.release()
    return found


def _delete_policy(conn: TpmConnection) -> bytes:
    """The platform-defined indices' authPolicy (sec31): PolicyCommandCode(TPM2_NV_UndefineSpaceSpecial), so that
    only that command, which also needs the platform's authorisation, deletes them; the caller holds ``conn.lock``."""
    c = _tss().constants
    trial = conn.esapi.start_auth_session(c.ESYS_TR.NONE, c.ESYS_TR.NONE, c.TPM2_SE.TRIAL, "aes128cfb",
                                          c.TPM2_ALG.SHA256)
    try:
        conn.esapi.policy_command_code(trial, c.TPM2_CC.NV_UndefineSpaceSpecial)
        return bytes(conn.esapi.policy_get_digest(trial))
    finally:
        conn.esapi.flush_context(trial)


def written_name(conn: TpmConnection, index: int) -> bytes:
    """NV ``index``'s TPM name as it reads once written (sec31): nameAlg || H(TPMS_NV_PUBLIC with TPMA_NV_WRITTEN
    set). The name covers the index's type, attributes (PLATFORMCREATE: who defined it), policy and size, so the
    server pins it at enrolment and every NV_Certify names it; the caller holds ``conn.lock``."""
    c = _tss().constants
    pub, _ = conn.esapi.nv_read_public(conn.esapi.tr_from_tpmpublic(index))
    nv = pub.nvPublic
    nv.attributes = int(nv.attributes) | int(c.TPMA_NV.WRITTEN)
    if int(nv.nameAlg) != int(c.TPM2_ALG.SHA256):
        raise TpmCounterError(f"NV index {index:#010x} is not named with SHA-256")
    return int(c.TPM2_ALG.SHA256).to_bytes(2, "big") + hashlib.sha256(bytes(nv.marshal())).digest()


def counter_registration(*, tcti: str = DEFAULT_TCTI, index: int = DEFAULT_COUNTER_INDEX,
                         chain: int | None = None) -> dict[str, Any]:
    """What the server pins for the audit counter and chain at enrolment (sec31; ``registration.json``'s
    ``nv_counter`` and ``nv_chain``, ``hil/ingest/attestation.py``): their handles and written names."""
    tss = _tss()
    chain = index + 1 if chain is None else chain
    conn = TpmConnection.get(tcti)
    try:
        with conn.lock:
            return {key: {"index": f"{i:#010x}", "name": written_name(conn, i).hex()}
                    for key, i in (("nv_counter", index), ("nv_chain", chain))}
    except tss.TSS2_Exception as exc:
        raise TpmCounterError(f"reading NV index {index:#010x} or {chain:#010x} failed: {exc}") from None
    finally:
        conn.release()


def define_counter(*, tcti: str = DEFAULT_TCTI, index: int = DEFAULT_COUNTER_INDEX, chain: int | None = None,
                   owner_auth: str | None = None, platform: bool = False, platform_auth: str | None = None) -> None:
    """Provisioning: define ``index`` as an NV counter and ``chain`` (default ``index + 1``) as a SHA-256 NV extend
    index (sec30), neither written: the audit log's first counted entry advances the counter first
    (``agent.security.audit``), so that a written counter and a log without a counted entry read as a cut. Defines
    whichever of the two is missing (a terminal counting since sec29 gets its chain); refuses when both exist
    (undefining one is the owner's deliberate act). ``platform`` (sec31): defined by the platform hierarchy
    (``_nv_attrs``), so that the owner (root with the owner authorisation) cannot undefine and redefine them; it needs
    the platform hierarchy enabled (a provisioning station before the firmware disables it, or swtpm)."""
    tss = _tss()
    c, t = tss.constants, tss.types
    chain = index + 1 if chain is None else chain
    conn = TpmConnection.get(tcti)
    try:
        conn.set_owner_auth(owner_auth)
        if platform and platform_auth:
            with conn.lock:
                conn.esapi.tr_set_auth(c.ESYS_TR.PLATFORM, platform_auth.encode())
        with conn.lock:
            missing = []
            for i, kind, size in ((index, c.TPM2_NT.COUNTER, COUNTER_SIZE), (chain, c.TPM2_NT.EXTEND, CHAIN_SIZE)):
                try:
                    conn.esapi.tr_from_tpmpublic(i)
                except tss.TSS2_Exception:
                    missing.append((i, kind, size))
            if not missing:
                raise KeyStoreError(f"NV indices {index:#010x} and {chain:#010x} are already defined; refusing to "
                                    "redefine them")
            try:
                policy = _delete_policy(conn) if platform else b""
                for i, kind, size in missing:
                    pub = t.TPM2B_NV_PUBLIC(nvPublic=t.TPMS_NV_PUBLIC(
                        nvIndex=i, nameAlg=c.TPM2_ALG.SHA256, attributes=_nv_attrs(kind, platform),
                        authPolicy=policy, dataSize=size))
                    conn.esapi.nv_define_space(t.TPM2B_AUTH(b""), pub,
                                               c.ESYS_TR.PLATFORM if platform else c.ESYS_TR.OWNER)
            except tss.TSS2_Exception as exc:
                raise _tss_error("defining the audit counter" + (" (is the platform hierarchy enabled?)"
                                                                 if platform else ""), exc) from None
    finally:
        conn.release()
