"""Terminal keys: what holding a key in a token or a TPM, and the GM profile, cost.

Every figure is a median over repeats, with the in-process reference named in each row:

* sign: a file key (P-256) vs the same operation through PKCS#11 (SoftHSM2), a TPM (swtpm, a
  policy session with PolicyPCR per signature) and SM2-with-SM3 from a file;
* seal + sign and open of a 300 KiB payload: the GM envelope (SM2 key wrap + SM4-GCM, SM2 signature)
  vs HPKE x25519 with an Ed25519 signature;
* a TPM quote (swtpm) and the server's check of it;
* a fresh mTLS connection plus BeginCapture against the reference server: key file vs a key held by
  SoftHSM2 or the TPM (gRPC's custom signer).

swtpm is a software TPM on this machine's CPU: a discrete TPM is 10-100x slower per operation, so
the TPM rows bound our overhead, not a real chip's.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from agent.purpose import Purpose
from agent.security.keys import SM2, Pkcs11Signer, generate_file_key, generate_pkcs11_key
from agent.uplink.client import UplinkClient, UplinkConnection
from agent.uplink.seal import INFO_PREFIX, ServerKey, load_public_key, seal
from hil import pki
from hil.ingest.attestation import AttestationPolicy, check_quote
from hil.ingest.identity import Registry, Terminal, spki_sha256
from hil.ingest.limits import FailureLimits
from hil.ingest.server import ServerState, ServerTLS, serve
from hil.swtpmproc import swtpm
from proto.capture_agent.v1 import ingest_pb2 as pb

CAPS = pb.ChallengeCapabilities(projector=True, illumination=True)    # a sim camera's

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _row(name: str, value: float, reference: float | None = None, ref_name: str = "") -> dict:
    row: dict = {"name": name, "value": value, "unit": "ms"}
    if reference:
        row.update(reference=reference, ratio=value / reference, reference_name=ref_name)
    return row


def _softhsm(tmp: Path) -> Pkcs11Signer | None:
    if not (os.path.exists(SOFTHSM) and shutil.which("softhsm2-util")):
        return None
    (tmp / "tokens").mkdir()
    (tmp / "softhsm2.conf").write_text(f"directories.tokendir = {tmp / 'tokens'}\nobjectstore.backend = file\n"
                                       "log.level = ERROR\n")
    os.environ.setdefault("SOFTHSM2_CONF", str(tmp / "softhsm2.conf"))
    label = f"bench-{os.getpid()}"
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", "1234",
                    "--so-pin", "5678"], check=True, capture_output=True)
    generate_pkcs11_key(SOFTHSM, label, "bench-p256", "1234")
    return Pkcs11Signer(SOFTHSM, label, "bench-p256", "1234")


def run() -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as d, swtpm() as tcti:
        tmp = Path(d)
        from agent.security.tpm import enrol, load_attestor, load_tpm_signer
        e = enrol(tmp, tcti=tcti, pcrs="sha256:0,1,2,3,4,5,6,7")
        tpm_signer = load_tpm_signer(f"tpm:key={e.signing};tcti={tcti}")
        tpm_mtls = load_tpm_signer(f"tpm:key={e.mtls};tcti={tcti}")
        attestor = load_attestor(f"tpm:key={e.attestation};tcti={tcti}")
        (tmp / "hsm").mkdir()
        hsm = _softhsm(tmp / "hsm")
        p256 = generate_file_key(tmp / "p256.pem", "ecdsa-p256-sha256")
        ed = generate_file_key(tmp / "ed.pem")
        sm2 = generate_file_key(tmp / "sm2.pem", SM2)
        msg = os.urandom(4096)

        ref = _median_ms(lambda: p256.sign(msg), 200)
        rows.append(_row("sign: P-256 file key (reference)", ref))
        if hsm is not None:
            rows.append(_row("sign: P-256 on SoftHSM2 (PKCS#11)", _median_ms(lambda: hsm.sign(msg), 200), ref,
                             "P-256 file key"))
        rows.append(_row("sign: P-256 in swtpm, PolicyPCR session", _median_ms(lambda: tpm_signer.sign(msg), 100),
                         ref, "P-256 file key"))
        rows.append(_row("sign: SM2-with-SM3 file key", _median_ms(lambda: sm2.sign(msg), 200), ref, "P-256 file key"))
        sig = sm2.sign(msg)
        p_sig = p256.sign(msg)
        from agent.security.keys import verify_signature
        vref = _median_ms(lambda: verify_signature(p256.public_key(), p256.algorithm, msg, p_sig), 200)
        rows.append(_row("verify: P-256 (reference)", vref))
        rows.append(_row("verify: SM2-with-SM3", _median_ms(lambda: verify_signature(sm2.public_key(), SM2, msg, sig),
                                                             200), vref, "P-256 verify"))

        payload = os.urandom(300 << 10)
        sealed_by: dict[str, tuple[ServerKey, pb.SealedProbe]] = {}
        for suite, signer in (("x25519", ed), ("sm2-sm4-gcm", sm2)):
            key = ServerKey.generate(suite)
            h = pb.ProbeHeader(version=1, probe_id="p", terminal_id="t", session_id="s", nonce=b"n" * 32,
                               server_key_id=key.key_id, hpke_suite=suite, signer_key_id=signer.key_id,
                               signature_algorithm=signer.algorithm)
            pub = load_public_key(suite, key.public_bytes)
            sealed_by[suite] = (key, seal(h, bytearray(payload), pub, signer))
            t = _median_ms(lambda h=h, pub=pub, signer=signer: seal(h, bytearray(payload), pub, signer), 50)
            base = rows[-1]["value"] if suite != "x25519" and rows[-1]["name"].startswith("seal") else None
            rows.append(_row(f"seal + sign 300 KiB ({suite}, {signer.algorithm})", t, base,
                             "x25519 + Ed25519" if base else ""))
        opened = {}
        for suite, (key, sp) in sealed_by.items():
            opened[suite] = _median_ms(lambda key=key, sp=sp: key.decrypt(sp.ciphertext, INFO_PREFIX + sp.header), 50)
        rows.append(_row("open 300 KiB (x25519 HPKE, reference)", opened["x25519"]))
        rows.append(_row("open 300 KiB (sm2-sm4-gcm envelope)", opened["sm2-sm4-gcm"], opened["x25519"],
                         "x25519 open"))

        nonce = os.urandom(32)
        rows.append(_row("TPM quote of 8 PCRs (swtpm) + PCR read", _median_ms(lambda: attestor.quote(nonce), 50)))
        q = attestor.quote(nonce)
        policy = AttestationPolicy.from_registration(e.registration)
        header = pb.ProbeHeader(nonce=nonce, platform_quote=q)
        rows.append(_row("server: check one quote", _median_ms(lambda: check_quote(policy, header), 200)))

        rows += _handshake_rows(tmp, p256, hsm, tpm_mtls)
        for k in (tpm_signer, tpm_mtls, attestor, hsm):
            if k is not None:
                k.close()
    return rows


def _handshake_rows(tmp: Path, p256, hsm, tpm_mtls) -> list[dict]:
    ca = pki.make_ca()
    server_cert = pki.issue(ca, "ingest.bench", server=True, hosts=("ingest.bench", "127.0.0.1"))
    key = ServerKey.generate("x25519")
    certs = {"file": pki.issue(ca, "kiosk-file", server=False)}
    keys: dict = {"file": None}
    if hsm is not None:
        certs["softhsm2"], keys["softhsm2"] = pki.issue(ca, "kiosk-hsm", server=False, public_key=hsm.public_key()), hsm
    certs["swtpm"], keys["swtpm"] = pki.issue(ca, "kiosk-tpm", server=False, public_key=tpm_mtls.public_key()), tpm_mtls
    names = {"file": "kiosk-file", "softhsm2": "kiosk-hsm", "swtpm": "kiosk-tpm"}
    registry = Registry([Terminal(names[k], p256.public_key(), frozenset({spki_sha256(cert.cert_pem)}))
                         for k, cert in certs.items()])
    # 31 challenges per terminal, none used: each would be a try against the failure limit (5 by default).
    state = ServerState(registry=registry, keys={key.key_id: key}, current_key_id=key.key_id,
                        limits=FailureLimits(max_failures=0))
    server, port = serve(state, ServerTLS(server_cert.cert_pem, server_cert.key_pem, ca.cert_pem))
    rows = []
    try:
        ref = None
        for kind, cert in certs.items():
            def connect(kind=kind, cert=cert) -> None:
                held = keys[kind]
                c = UplinkClient(UplinkConnection((f"127.0.0.1:{port}",), ca.cert_pem, cert.cert_pem,
                                                  cert.key_pem if held is None else b"", names[kind],
                                                  server_name="ingest.bench", client_key=held, retries=0))
                try:                       # a session each: the same one again would be a repeat, not an issue
                    c.begin(f"s-{os.urandom(6).hex()}", Purpose.VERIFY, capabilities=CAPS)
                finally:
                    c.close()
            connect()
            t = _median_ms(connect, 30)
            if ref is None:
                ref = t
                rows.append(_row("new mTLS connection + BeginCapture: key file (reference)", t))
            else:
                rows.append(_row(f"new mTLS connection + BeginCapture: key in {kind}", t, ref, "key file"))
    finally:
        server.stop(0)
    return rows
