"""The terminal's keys: the signing key (every sealed probe, the audit log's checkpoints) and, when it
is not a file, the mTLS client key (``agent/uplink/tls.py`` signs the TLS handshake through it).

Three sources, one interface (:class:`Signer`):

* a PEM file (unencrypted PKCS#8: Ed25519, ECDSA P-256, or SM2 for the GM profile). The file must
  be mode 0600 or stricter and owned by the agent's user; that is checked *before* it is read, so a
  key that others could read is refused rather than used (``KEY_PERMISSIONS``);
* a PKCS#11 token (an HSM, or SoftHSM2 in tests), where the private key is generated on the token
  and never leaves it;
* a TPM 2.0 (``agent/security/tpm.py``): a key wrapped by the TPM, usable only while the machine's
  measured state (PCRs) is the one it was bound to.

``load_signer(spec)`` takes ``file:/path/key.pem`` (or a bare path),
``pkcs11:module=/usr/lib/softhsm/libsofthsm2.so;token=LABEL;object=KEYLABEL;pin-env=VAR``
(or ``pin-file=/path``, itself 0600), or ``tpm:key=/path/signing.tpmkey[;tcti=device:/dev/tpmrm0]``.
Key material and PINs never appear in messages or reprs.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from agent.security.gm import GmError, Sm2PrivateKey, Sm2PublicKey, is_sm2_pem
from drivers.errors import CaptureAgentError

ED25519, P256, SM2 = "ed25519", "ecdsa-p256-sha256", "sm2-sm3"
ALGORITHMS = (ED25519, P256, SM2)
PROFILE_ALGORITHMS = {"standard": (ED25519, P256), "gm": (SM2,)}    # [keys] profile -> signing algorithms


class KeyStoreError(CaptureAgentError):
    code = "KEY_ERROR"


class KeyPermissionError(KeyStoreError):
    code = "KEY_PERMISSIONS"


class KeyNotFound(KeyStoreError):
    code = "KEY_NOT_FOUND"


class KeyUnsupported(KeyStoreError):
    code = "KEY_UNSUPPORTED"


class KeyMismatch(KeyStoreError):
    """A certificate names another public key than the private key it is paired with."""

    code = "KEY_MISMATCH"


def public_key_id(public_key) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def algorithm_of(public_key) -> str:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return ED25519
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        return P256
    if isinstance(public_key, Sm2PublicKey):
        return SM2
    raise KeyUnsupported("only Ed25519, ECDSA P-256 and SM2 keys are supported")


def load_public_key_pem(data: bytes):
    """A PEM SubjectPublicKeyInfo of a supported kind (Ed25519, P-256, SM2) as a public key object."""
    if is_sm2_pem(data):
        try:
            return Sm2PublicKey.from_pem(data)
        except GmError as exc:
            raise KeyUnsupported(exc.message) from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyUnsupported("not a PEM public key") from None
    algorithm_of(key)
    return key


def verify_signature(public_key, algorithm: str, data: bytes, signature: bytes) -> bool:
    """True only if ``signature`` is ``algorithm``'s signature of ``data`` by ``public_key``."""
    if algorithm not in ALGORITHMS:
        raise KeyUnsupported(f"unknown signature algorithm {algorithm[:40]!r}")
    try:
        if algorithm == ED25519 and isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
            return True
        if algorithm == P256 and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            return True
        if algorithm == SM2 and isinstance(public_key, Sm2PublicKey):
            return public_key.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return False


class Signer:
    algorithm: str

    def public_key(self):
        raise NotImplementedError

    def sign(self, data: bytes) -> bytes:
        raise NotImplementedError

    @property
    def key_id(self) -> str:
        return public_key_id(self.public_key())

    def public_key_pem(self) -> bytes:
        return self.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(algorithm={self.algorithm!r}, key_id={self.key_id!r})"


def _open_private(path: str | os.PathLike[str]) -> int:
    """Open a private file and check, on the open descriptor itself, that it is a regular file of
    ours with mode 0600 or stricter. The last path component must not be a symbolic link
    (``O_NOFOLLOW``), and what is checked is what is read: no window between check and read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KeyNotFound(f"key file {path} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeyStoreError(f"key file {path} is a symbolic link; name the file itself") from None
        raise KeyStoreError(f"cannot open key file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyStoreError(f"key file {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise KeyPermissionError(f"key file {path} has mode {mode:04o}; it must be 0600 or stricter "
                                     f"(chmod 600 {path})")
        if st.st_uid != os.geteuid():
            raise KeyPermissionError(f"key file {path} is owned by uid {st.st_uid}, not by the agent "
                                     f"(uid {os.geteuid()})")
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_private_file(path: str | os.PathLike[str]) -> None:
    """0600 or stricter, owned by us, a regular file and not a symbolic link."""
    os.close(_open_private(path))


def read_private_file(path: str | os.PathLike[str]) -> bytes:
    """The contents of a private file, read from the descriptor its checks ran on."""
    with os.fdopen(_open_private(path), "rb") as fh:
        return fh.read()


class FileSigner(Signer):
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        data = read_private_file(self.path)
        key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | Sm2PrivateKey
        if is_sm2_pem(data):                        # cryptography has no SM2 curve: the GM module reads it
            try:
                key = Sm2PrivateKey.from_pkcs8_pem(data)
            except GmError as exc:
                raise KeyUnsupported(f"key file {self.path}: {exc.message}") from None
        else:
            try:
                loaded = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError):
                raise KeyUnsupported(f"key file {self.path} is not an unencrypted PEM private key") from None
            if not isinstance(loaded, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
                raise KeyUnsupported(f"key file {self.path} holds a {type(loaded).__name__}; "
                                     "use Ed25519, ECDSA P-256 or SM2")
            key = loaded
        self.algorithm = algorithm_of(key.public_key())
        self._key = key

    def public_key(self):
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):        # self.algorithm is ED25519
            return self._key.sign(data)
        if isinstance(self._key, Sm2PrivateKey):                    # SM2 with SM3 and the default ID
            return self._key.sign(data)
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


def generate_file_key(path: str | os.PathLike[str], algorithm: str = ED25519) -> FileSigner:
    """Create a new key file with mode 0600 from the first byte; never overwrites."""
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == SM2:
        pem = Sm2PrivateKey.generate().pkcs8_pem()
    else:
        if algorithm == ED25519:
            key = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == P256:
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise KeyUnsupported(f"unknown algorithm {algorithm!r}")
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"key file {path} already exists; refusing to overwrite it") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return FileSigner(path)


class Pkcs11Signer(Signer):
    """A private key on a PKCS#11 token (EC P-256 or Ed25519); one session, serialised by a lock."""

    def __init__(self, module: str, token_label: str, key_label: str, pin: str):
        import pkcs11
        from pkcs11 import KeyType, ObjectClass
        from pkcs11.util.ec import encode_ec_public_key
        try:
            lib = pkcs11.lib(module)
        except Exception as exc:
            raise KeyNotFound(f"cannot load PKCS#11 module {module}: {type(exc).__name__}") from None
        try:
            token = lib.get_token(token_label=token_label)
        except Exception:
            raise KeyNotFound(f"PKCS#11 token {token_label!r} not found") from None
        try:
            self._session = _open_session(token, pin)
        except pkcs11.exceptions.PinIncorrect:
            raise KeyStoreError(f"PKCS#11 login to token {token_label!r} failed: wrong PIN") from None
        except pkcs11.PKCS11Error as exc:
            raise KeyStoreError(f"PKCS#11 login to token {token_label!r} failed: {type(exc).__name__}") from None
        self._lock = threading.Lock()
        self._label = key_label
        try:
            self._priv = self._session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key_label)
            pub = self._session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=key_label)
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned):
            self._session.close()
            raise KeyNotFound(f"no unique key {key_label!r} on token {token_label!r}") from None
        if self._priv.key_type == KeyType.EC:
            self.algorithm = P256
            self._public = serialization.load_der_public_key(encode_ec_public_key(pub))
            algorithm_of(self._public)               # P-256 only
        elif self._priv.key_type == getattr(KeyType, "EC_EDWARDS", object()):
            self.algorithm = ED25519
            from pkcs11 import Attribute
            point = bytes(pub[Attribute.EC_POINT])
            raw = point[2:] if len(point) == 34 and point[0] == 0x04 else point   # DER OCTET STRING
            self._public = ed25519.Ed25519PublicKey.from_public_bytes(raw)
        else:
            raise KeyUnsupported(f"key {key_label!r} is neither EC P-256 nor Ed25519")

    def public_key(self):
        return self._public

    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.util.ec import encode_ecdsa_signature
        with self._lock:
            if self.algorithm == P256:
                digest = hashlib.sha256(data).digest()
                return encode_ecdsa_signature(self._priv.sign(digest, mechanism=Mechanism.ECDSA))
            return self._priv.sign(data, mechanism=Mechanism.EDDSA)

    def close(self) -> None:
        with self._lock:
            self._session.close()


def _open_session(token, pin: str, rw: bool = False):
    """Open a session logged in as the user. PKCS#11 login is per application: when another session
    of this process is already logged in, the new one shares that login (the PIN was checked then)."""
    import pkcs11
    try:
        return token.open(user_pin=pin, rw=rw)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        return token.open(rw=rw)


def generate_pkcs11_key(module: str, token_label: str, key_label: str, pin: str, algorithm: str = P256) -> None:
    """Generate a non-extractable key pair on the token (provisioning, tests)."""
    import pkcs11
    from pkcs11 import Attribute, KeyType
    from pkcs11.util.ec import encode_named_curve_parameters
    token = pkcs11.lib(module).get_token(token_label=token_label)
    with _open_session(token, pin, rw=True) as session:
        if algorithm == P256:
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
        elif algorithm == ED25519:
            params = session.create_domain_parameters(
                KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: encode_named_curve_parameters("1.3.101.112")}, local=True)
        else:
            raise KeyUnsupported(f"unknown algorithm {algorithm!r}")
        params.generate_keypair(store=True, label=key_label,
                                private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})


def parse_spec(spec: str, scheme: str) -> dict[str, str]:
    """``scheme:k=v;k=v`` as a dict (values may contain ``=`` and ``:``, as TCTI strings do)."""
    out = {}
    for part in spec[len(scheme) + 1:].split(";"):
        if "=" not in part:
            raise KeyStoreError(f"malformed {scheme}: key spec (expected key=value pairs separated by ';')")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _parse_pkcs11(spec: str) -> dict[str, str]:
    return parse_spec(spec, "pkcs11")


def read_secret(p: dict[str, str], what: str, env_key: str = "pin-env", file_key: str = "pin-file",
                required: bool = True) -> str | None:
    """A PIN or authorisation value from the environment variable or the 0600 file a spec names;
    never from the spec itself (it sits in a config file others may read)."""
    if env_key in p:
        value = os.environ.get(p[env_key])
        if value is None:
            raise KeyStoreError(f"{what} environment variable {p[env_key]} is not set")
        return value
    if file_key in p:
        return read_private_file(Path(p[file_key])).decode("utf-8", "replace").strip()
    if required:
        raise KeyStoreError(f"the key spec needs {env_key}=VAR or {file_key}=PATH for the {what}")
    return None


def load_signer(spec: str) -> Signer:
    if spec.startswith("pkcs11:"):
        p = _parse_pkcs11(spec)
        missing = {"module", "token", "object"} - set(p)
        if missing:
            raise KeyStoreError(f"pkcs11: key spec lacks {', '.join(sorted(missing))}")
        pin = read_secret(p, "PIN")
        assert pin is not None
        return Pkcs11Signer(p["module"], p["token"], p["object"], pin)
    if spec.startswith("tpm:"):
        from agent.security.tpm import load_tpm_signer
        return load_tpm_signer(spec)
    path = spec[len("file:"):] if spec.startswith("file:") else spec
    if not path:
        raise KeyStoreError("empty key spec")
    return FileSigner(path)
