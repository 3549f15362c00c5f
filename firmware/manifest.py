"""The bank's signed manifest of approved camera firmware.

A camera on unapproved firmware can lie about its frames, so which firmware may run, and which
images may be flashed, is decided by the bank's release process, not by the terminal: the manifest
lists per camera model the allowed versions, the minimum version, and the SHA-256 of each approved
image, and it is signed with the bank's release key (Ed25519). It is verified every time it is
loaded; a manifest that fails verification approves nothing.

File format (JSON)::

    {"format": "capture-agent-firmware-manifest/1",
     "payload": "<base64 of the body's UTF-8 JSON>",
     "signature": {"algorithm": "ed25519", "key_id": "<16 hex>", "value": "<base64>"}}

The signature covers ``DOMAIN || payload bytes``: the exact bytes signed are the bytes parsed, so no
JSON canonicalisation can be played against it. The body::

    {"sequence": 7, "issued": "2026-12-02T10:00:00Z",
     "models": [{"id": "intel-d435", "vendor": "Intel", "model": "D435", "backend": "realsense",
                 "usb_ids": ["8086:0b07"], "recovery_usb_ids": ["8086:0adb"],
                 "names": ["Intel RealSense D435"],
                 "minimum_version": "5.13.0.50", "allowed_versions": ["5.13.0.50", "5.16.0.1"],
                 "images": [{"version": "5.16.0.1", "sha256": "<64 hex>", "size": 1573660}]}]}

``images`` is the catalogue of images the bank knows, withdrawn ones included: an image's hash
tells its version, and the policy (``allowed_versions``, ``minimum_version``) decides whether it may
be flashed, so an old image is refused as a downgrade below the minimum, not as an unknown file.

``sequence`` only grows: a terminal remembers the highest it accepted and refuses an older manifest
(``FW_MANIFEST_ROLLBACK``), so a replayed old manifest cannot re-approve firmware the bank withdrew.
The schema is strict (unknown keys, wrong types, contradictions such as an allowed version below the
minimum are ``FW_MANIFEST_INVALID``).

SM2 signatures (the GM profile) are named in the format but not verifiable in this build: such a
manifest is refused with ``FW_MANIFEST_SIGNATURE`` rather than accepted unchecked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware.errors import ManifestInvalid, ManifestRollback, ManifestSignature, VersionUnapproved
from firmware.version import Version

FORMAT = "capture-agent-firmware-manifest/1"
DOMAIN = b"capture-agent/firmware-manifest/v1\x00"
MAX_FILE = 1 << 20
MAX_MODELS, MAX_IMAGES, MAX_LIST, MAX_TEXT = 256, 64, 64, 128
BACKENDS = ("realsense", "orbbec", "dfu", "openni", "uvc")
_USB_ID = re.compile(r"[0-9a-f]{4}:[0-9a-f]{4}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:16]


@dataclass(frozen=True)
class ImageEntry:
    version: Version
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelEntry:
    id: str
    vendor: str
    model: str
    backend: str
    usb_ids: tuple[str, ...]
    recovery_usb_ids: tuple[str, ...]
    names: tuple[str, ...]
    minimum_version: Version
    allowed_versions: tuple[Version, ...]
    images: tuple[ImageEntry, ...]

    def approves(self, version: Version) -> bool:
        return version >= self.minimum_version and version in self.allowed_versions

    def require_approved(self, version_text: str, what: str) -> Version:
        """``version_text`` parsed, or ``FW_VERSION_UNAPPROVED`` naming ``what`` it belongs to."""
        try:
            v = Version.parse(version_text)
        except ValueError:
            raise VersionUnapproved(f"{what} reports firmware {version_text!r}, which is not a version the "
                                    f"manifest can approve ({self.id})") from None
        if not self.approves(v):
            allowed = ", ".join(str(a) for a in self.allowed_versions)
            raise VersionUnapproved(f"{what} runs firmware {v} which the manifest does not approve for "
                                    f"{self.vendor} {self.model} (allowed: {allowed}; minimum {self.minimum_version})")
        return v

    def image_by_hash(self, sha256: str) -> ImageEntry | None:
        return next((i for i in self.images if i.sha256 == sha256), None)


@dataclass(frozen=True)
class Manifest:
    sequence: int
    issued: str
    models: tuple[ModelEntry, ...]
    sha256: str                           # of the signed payload: which manifest a decision used
    key_id: str

    def model_for(self, *, backend: str = "", name: str = "", vendor_id: int = 0,
                  product_id: int = 0) -> ModelEntry | None:
        """The model a device belongs to: by USB ID (in service or recovery mode) where known, else by
        backend and the exact name the SDK reports."""
        if vendor_id:
            usb = f"{vendor_id:04x}:{product_id:04x}"
            for m in self.models:
                if usb in m.usb_ids or usb in m.recovery_usb_ids:
                    return m
        if backend and name:
            for m in self.models:
                if m.backend == backend and name in m.names:
                    return m
        return None


# -- parsing -----------------------------------------------------------------------------------
def _text(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v or len(v) > MAX_TEXT or not v.isprintable():
        raise ManifestInvalid(f"{where}.{key} must be a printable string of 1-{MAX_TEXT} characters")
    return v


def _list(d: dict[str, Any], key: str, where: str, pattern: re.Pattern[str] | None = None,
          required: bool = True) -> tuple[str, ...]:
    v = d.get(key, [] if not required else None)
    if not isinstance(v, list) or len(v) > MAX_LIST or (required and not v):
        raise ManifestInvalid(f"{where}.{key} must be a list of 1-{MAX_LIST} strings")
    out = []
    for i, item in enumerate(v):
        if not isinstance(item, str) or not item or len(item) > MAX_TEXT or not item.isprintable():
            raise ManifestInvalid(f"{where}.{key}[{i}] must be a printable string")
        if pattern is not None and not pattern.fullmatch(item):
            raise ManifestInvalid(f"{where}.{key}[{i}] = {item!r} has the wrong form")
        out.append(item)
    if len(set(out)) != len(out):
        raise ManifestInvalid(f"{where}.{key} lists an entry twice")
    return tuple(out)


def _version(text: str, where: str) -> Version:
    try:
        return Version.parse(text)
    except ValueError as exc:
        raise ManifestInvalid(f"{where}: {exc}") from None


def _keys(d: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ManifestInvalid(f"{where} must be an object")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ManifestInvalid(f"{where} has unknown field(s) {', '.join(unknown)}")
    return d


def _image(d: Any, where: str) -> ImageEntry:
    d = _keys(d, {"version", "sha256", "size"}, where)
    sha = d.get("sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise ManifestInvalid(f"{where}.sha256 must be 64 lower-case hex digits")
    size = d.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= 256 << 20:
        raise ManifestInvalid(f"{where}.size must be a byte count between 1 and 256 MiB")
    return ImageEntry(_version(_text(d, "version", where), f"{where}.version"), sha, size)


def _model(d: Any, where: str) -> ModelEntry:
    d = _keys(d, {"id", "vendor", "model", "backend", "usb_ids", "recovery_usb_ids", "names", "minimum_version",
                  "allowed_versions", "images"}, where)
    mid = _text(d, "id", where)
    if not _ID.fullmatch(mid):
        raise ManifestInvalid(f"{where}.id {mid!r} must be lower-case letters, digits, '.', '_' or '-'")
    backend = _text(d, "backend", where)
    if backend not in BACKENDS:
        raise ManifestInvalid(f"{where}.backend must be one of {', '.join(BACKENDS)}")
    minimum = _version(_text(d, "minimum_version", where), f"{where}.minimum_version")
    allowed = tuple(_version(v, f"{where}.allowed_versions") for v in _list(d, "allowed_versions", where))
    below = [str(v) for v in allowed if v < minimum]
    if below:
        raise ManifestInvalid(f"{where}: allowed version(s) {', '.join(below)} below the minimum {minimum}")
    images_raw = d.get("images", [])
    if not isinstance(images_raw, list) or len(images_raw) > MAX_IMAGES:
        raise ManifestInvalid(f"{where}.images must be a list of at most {MAX_IMAGES} images")
    images = tuple(_image(x, f"{where}.images[{i}]") for i, x in enumerate(images_raw))
    if len({i.sha256 for i in images}) != len(images):
        raise ManifestInvalid(f"{where}.images lists an image twice")
    return ModelEntry(mid, _text(d, "vendor", where), _text(d, "model", where), backend,
                      _list(d, "usb_ids", where, _USB_ID, required=False),
                      _list(d, "recovery_usb_ids", where, _USB_ID, required=False),
                      _list(d, "names", where, required=False), minimum, allowed, images)


def parse_body(payload: bytes, sha256: str, kid: str) -> Manifest:
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestInvalid(f"the signed manifest body is not JSON: {exc}") from None
    body = _keys(body, {"sequence", "issued", "models"}, "manifest")
    seq = body.get("sequence")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise ManifestInvalid("manifest.sequence must be a non-negative integer")
    models_raw = body.get("models")
    if not isinstance(models_raw, list) or not 0 < len(models_raw) <= MAX_MODELS:
        raise ManifestInvalid(f"manifest.models must list 1-{MAX_MODELS} camera models")
    models = tuple(_model(m, f"models[{i}]") for i, m in enumerate(models_raw))
    seen: dict[str, str] = {}
    ids: set[str] = set()
    for m in models:
        if m.id in ids:
            raise ManifestInvalid(f"model id {m.id!r} appears twice")
        ids.add(m.id)
        for u in m.usb_ids + m.recovery_usb_ids:
            if u in seen:
                raise ManifestInvalid(f"USB id {u} belongs to both {seen[u]} and {m.id}")
            seen[u] = m.id
        if not m.usb_ids and not m.names:
            raise ManifestInvalid(f"model {m.id} has neither usb_ids nor names: no device could match it")
    return Manifest(seq, _text(body, "issued", "manifest"), models, sha256, kid)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ManifestSignature(f"the release key is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ManifestSignature(f"the release key is a {type(key).__name__}, not an Ed25519 key")
    return key


def verify(raw: bytes, public_key: Ed25519PublicKey) -> Manifest:
    """Check the envelope and the signature, then parse the body. Nothing of the body is looked at
    before its signature has been verified."""
    if len(raw) > MAX_FILE:
        raise ManifestInvalid(f"the manifest is larger than {MAX_FILE} bytes")
    try:
        env = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestInvalid(f"the manifest is not JSON: {exc}") from None
    env = _keys(env, {"format", "payload", "signature"}, "envelope")
    if env.get("format") != FORMAT:
        raise ManifestInvalid(f"the manifest's format is {env.get('format')!r}, not {FORMAT!r}")
    sig = _keys(env.get("signature"), {"algorithm", "key_id", "value"}, "signature")
    try:
        payload = base64.b64decode(env.get("payload", ""), validate=True)
        value = base64.b64decode(sig.get("value", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ManifestInvalid("the manifest's payload or signature is not base64") from None
    algorithm = sig.get("algorithm")
    if algorithm == "sm2":
        raise ManifestSignature("the manifest is signed with SM2 (GM profile), which this build cannot verify; "
                                "it is refused rather than accepted unchecked")
    if algorithm != "ed25519":
        raise ManifestSignature(f"unknown manifest signature algorithm {algorithm!r}")
    kid = key_id(public_key)
    if sig.get("key_id") != kid:
        raise ManifestSignature(f"the manifest is signed by key {sig.get('key_id')!r}, not the configured release "
                                f"key {kid}")
    try:
        public_key.verify(value, DOMAIN + payload)
    except InvalidSignature:
        raise ManifestSignature("the manifest's signature does not verify: it was altered or not signed by "
                                "the release key") from None
    return parse_body(payload, hashlib.sha256(payload).hexdigest(), kid)


def sign(body: dict[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    """A signed manifest file for ``body`` (the bank's release tooling; tests)."""
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps({
        "format": FORMAT, "payload": base64.b64encode(payload).decode(),
        "signature": {"algorithm": "ed25519", "key_id": key_id(private_key.public_key()),
                      "value": base64.b64encode(private_key.sign(DOMAIN + payload)).decode()},
    }, indent=1).encode()


class SequenceFloor:
    """The highest manifest sequence this terminal accepted (a file in the state directory)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def read(self) -> int:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return -1
        except OSError as exc:
            raise ManifestInvalid(f"cannot read {self.path}: {exc.strerror}") from None
        if not text.isdigit():
            raise ManifestInvalid(f"{self.path} is damaged ({text[:20]!r}); restore it or remove it knowingly")
        return int(text)

    def admit(self, manifest: Manifest) -> None:
        floor = self.read()
        if manifest.sequence < floor:
            raise ManifestRollback(f"manifest sequence {manifest.sequence} is older than {floor}, already accepted "
                                   "on this terminal (a replayed manifest)")
        if manifest.sequence > floor:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{manifest.sequence}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)


def load(path: str | os.PathLike[str], public_key: Ed25519PublicKey, floor: SequenceFloor | None = None) -> Manifest:
    """Read, verify and parse the manifest at ``path``; with ``floor``, refuse an older sequence and
    remember a newer one."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE + 1)
    except OSError as exc:
        raise ManifestInvalid(f"cannot read the firmware manifest {path}: {exc.strerror}") from None
    manifest = verify(raw, public_key)
    if floor is not None:
        floor.admit(manifest)
    return manifest
