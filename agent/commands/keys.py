"""``capture-agent keys``: create and inspect the terminal's keys.

* ``keys generate PATH [--algorithm ed25519|ecdsa-p256-sha256|sm2-sm3]``: a new 0600 key file
  (``sm2-sm3`` for the GM profile); prints its public key (PEM) for the server's registration.
* ``keys public SPEC``: the public key and key id of any key spec (``file:``, ``pkcs11:``, ``tpm:``).
* ``keys csr SPEC --cn TERMINAL_ID``: a certificate request for a held mTLS key (P-256), signed by it.
* ``keys tpm-enrol DIR [--tcti T] [--pcrs sha256:0,...,7] [--owner-auth-env VAR] [--ima-reference PATH
  [--ima-allowlist FILE]]``: create the TPM's signing, mTLS and attestation keys bound to the PCRs as they are now;
  writes the blobs, their public keys, and ``registration.json`` (attestation key and PCR values) for the server.
  ``--ima-reference`` (pin34): the attestation key quotes PCR 10 too, the registration's ``ima`` names the dot
  reference's path, and the printed attestation spec sends the kernel's IMA list with every quote; ``--pcrs`` must
  then hold 0-9 (ima34). ``--ima-allowlist FILE`` (ima34): the release's digests (``sha256sum`` output), registered.
* ``keys tpm-counter [--tcti T] [--nv 0x018C0A29] [--owner-auth-env VAR] [--platform [--platform-auth-env VAR]]
  [--names]``: define the TPM NV counter the audit log's lockout entries advance (sec29; ``[audit] tpm_counter``)
  and, at the next index, the NV extend index their hashes are extended into (sec30; whichever of the two is
  missing); prints the spec to configure and, under ``registration``, the indices' names for the server to pin
  (``nv_counter``, ``nv_chain`` in the terminal's ``registration.json``, sec31). ``--platform``: defined by the
  platform hierarchy, which the owner cannot undefine; ``--names``: define nothing, print the names of indices
  already defined (a terminal counting before sec31).

Nothing secret is printed: public keys, key ids, paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent.errors import UsageError
from agent.security.keys import ALGORITHMS, ED25519, KeyStoreError, generate_file_key, load_signer


def register(sub) -> None:
    p = sub.add_parser("keys", help="create and inspect the terminal's keys (file, PKCS#11, TPM 2.0, SM2)")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION")
    g = ks.add_parser("generate", help="a new 0600 key file; prints its public key")
    g.add_argument("path")
    g.add_argument("--algorithm", default=ED25519, choices=ALGORITHMS)
    g.set_defaults(func=generate)
    pub = ks.add_parser("public", help="the public key and key id of a key spec")
    pub.add_argument("spec", help="file:PATH, pkcs11:..., or tpm:key=PATH[;tcti=...]")
    pub.set_defaults(func=public)
    c = ks.add_parser("csr", help="a certificate request for a held mTLS key (P-256), signed by it")
    c.add_argument("spec")
    c.add_argument("--cn", required=True, help="the terminal id (the certificate's common name)")
    c.set_defaults(func=csr)
    t = ks.add_parser("tpm-enrol", help="create the TPM keys bound to the current PCR values")
    t.add_argument("directory")
    t.add_argument("--tcti", default="device:/dev/tpmrm0")
    t.add_argument("--pcrs", default="sha256:0,1,2,3,4,5,6,7", help="PCR bank and indices to bind and quote")
    t.add_argument("--owner-auth-env", default=None, help="environment variable holding the owner hierarchy's auth")
    t.add_argument("--ima-reference", default=None, metavar="PATH",
                   help="pin34: the dot reference file's absolute path, which the kernel's IMA measures: the "
                        "attestation key quotes PCR 10 too and the registration names the path (docs/keys.md)")
    t.add_argument("--ima-allowlist", default=None, metavar="FILE",
                   help="ima34: `sha256sum` output (or one digest a line) of every file the agent's uid may read or "
                        "execute in this release: the server refuses any attested measurement not on it")
    t.set_defaults(func=tpm_enrol)
    n = ks.add_parser("tpm-counter", help="define the TPM NV counter the audit log's lockout entries advance")
    n.add_argument("--tcti", default="device:/dev/tpmrm0")
    n.add_argument("--nv", default="0x018C0A29",
                   help="the NV index (the owner's range, 0x01800000-0x01BFFFFE: the chain takes the index after it)")
    n.add_argument("--owner-auth-env", default=None, help="environment variable holding the owner hierarchy's auth")
    n.add_argument("--platform", action="store_true",
                   help="define them with the platform hierarchy, so that the owner cannot undefine them (sec31; needs "
                        "the platform hierarchy enabled: a provisioning step before the firmware disables it)")
    n.add_argument("--platform-auth-env", default=None, help="environment variable holding the platform's auth")
    n.add_argument("--names", action="store_true",
                   help="define nothing: print the indices' names for the server to pin (a terminal counting already)")
    n.set_defaults(func=tpm_counter)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _close(signer) -> None:
    close = getattr(signer, "close", None)
    if close is not None:
        close()


def generate(args) -> int:
    s = generate_file_key(args.path, args.algorithm)
    print(f"# key id {s.key_id} ({s.algorithm}); private key in {args.path} (mode 0600)")
    print(s.public_key_pem().decode(), end="")
    return 0


def public(args) -> int:
    s = load_signer(args.spec)
    try:
        print(f"# key id {s.key_id} ({s.algorithm})")
        print(s.public_key_pem().decode(), end="")
    finally:
        _close(s)
    return 0


def csr(args) -> int:
    from agent.uplink.tls import certificate_request
    s = load_signer(args.spec)
    try:
        print(certificate_request(s, args.cn).decode(), end="")
    finally:
        _close(s)
    return 0


def _env(name: str) -> str:
    auth = os.environ.get(name)
    if auth is None:
        raise UsageError(f"environment variable {name} is not set")
    return auth


def _owner_auth(args) -> str | None:
    return _env(args.owner_auth_env) if args.owner_auth_env else None


def tpm_counter(args) -> int:
    from agent.security.tpm import counter_registration, define_counter
    try:
        index = int(args.nv, 16)
    except ValueError:
        raise UsageError(f"--nv must be a hexadecimal NV index, not {args.nv[:20]!r}") from None
    if not 0x01800000 <= index < 0x01BFFFFF:               # (and the chain, at the index after it)
        raise UsageError("--nv must be in the owner's NV range, 0x01800000-0x01BFFFFE")
    if args.names:
        print(json.dumps({"registration": counter_registration(tcti=args.tcti, index=index)}, indent=1))
        return 0
    platform_auth = _env(args.platform_auth_env) if args.platform_auth_env else None
    define_counter(tcti=args.tcti, index=index, owner_auth=_owner_auth(args), platform=args.platform,
                   platform_auth=platform_auth)
    spec = f"tpm:nv={index:#010x};chain={index + 1:#010x};tcti={args.tcti}" + (
        f";owner-auth-env={args.owner_auth_env}" if args.owner_auth_env else "")
    print(json.dumps({"tpm_counter": spec, "registration": counter_registration(tcti=args.tcti, index=index)},
                     indent=1))
    return 0


IMA_LIST = "/sys/kernel/security/ima/binary_runtime_measurements"


def _allowlist(path: str) -> list[str]:
    """An IMA allowlist file: ``sha256sum`` lines (``<hex>  <path>``) or bare digests; blank and ``#`` lines skipped."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyStoreError(f"cannot read the IMA allowlist {path}: {exc}") from None
    out = [line.split()[0].lower() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not out:
        raise KeyStoreError(f"the IMA allowlist {path} holds no digest")
    return out


def tpm_enrol(args) -> int:
    from agent.security.tpm import enrol
    auth = _owner_auth(args)
    d = Path(args.directory)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    reg = d / "registration.json"
    if reg.exists():
        raise KeyStoreError(f"{reg} already exists; refusing to overwrite it")
    allow = _allowlist(args.ima_allowlist) if args.ima_allowlist else None
    e = enrol(d, tcti=args.tcti, pcrs=args.pcrs, owner_auth=auth, ima_reference=args.ima_reference,
              ima_allowlist=allow)
    spec = f"tpm:key={{}};tcti={args.tcti}"
    for name, path in (("signing", e.signing), ("mtls", e.mtls)):
        s = load_signer(spec.format(path))
        try:
            (d / f"{name}.pub.pem").write_bytes(s.public_key_pem())
        finally:
            _close(s)
    reg.write_text(json.dumps(e.registration, indent=1) + "\n")
    print(json.dumps({"signing_key": spec.format(e.signing), "mtls_key": spec.format(e.mtls),
                      "attestation": spec.format(e.attestation) + (f";ima={IMA_LIST}" if args.ima_reference else ""),
                      "signing_public_key": str(d / "signing.pub.pem"),
                      "mtls_public_key": str(d / "mtls.pub.pem"), "registration": str(reg),
                      "pcrs": args.pcrs}, indent=1))
    return 0
