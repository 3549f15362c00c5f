"""``capture-agent keys`` and the daemon's key wiring: key files of each algorithm, public keys of any
spec, a CSR signed by a held key, TPM enrolment on swtpm, and the [keys] profile checked against the
signing key."""

from __future__ import annotations

import json
import os

import pytest
from cryptography import x509

from agent import config
from agent.cli import main
from agent.commands.keys import IMA_LIST
from agent.daemon import check_profile, uplink_settings
from agent.errors import ConfigError
from agent.security.keys import FileSigner, KeyPermissionError, generate_pkcs11_key, load_signer
from hil import pki
from tests.helpers.swtpm import swtpm


def test_generate_and_public(tmp_path, capsys):
    assert main(["keys", "generate", str(tmp_path / "sm2.pem"), "--algorithm", "sm2-sm3"]) == 0
    out = capsys.readouterr().out
    assert "sm2-sm3" in out and "BEGIN PUBLIC KEY" in out and "PRIVATE" not in out
    assert (os.stat(tmp_path / "sm2.pem").st_mode & 0o777) == 0o600
    assert main(["keys", "public", f"file:{tmp_path / 'sm2.pem'}"]) == 0
    assert FileSigner(tmp_path / "sm2.pem").key_id in capsys.readouterr().out
    assert main(["keys", "generate", str(tmp_path / "sm2.pem")]) == 2              # never overwrites
    assert "KEY_ERROR" in capsys.readouterr().err


def test_csr_for_a_held_key(softhsm, capsys, monkeypatch):
    module, token, pin = softhsm
    generate_pkcs11_key(module, token, "csr-p256", pin)
    monkeypatch.setenv("CA_TEST_PIN", pin)
    spec = f"pkcs11:module={module};token={token};object=csr-p256;pin-env=CA_TEST_PIN"
    assert main(["keys", "csr", spec, "--cn", "kiosk-csr-0001"]) == 0
    req = x509.load_pem_x509_csr(capsys.readouterr().out.encode())
    assert req.is_signature_valid
    assert req.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "kiosk-csr-0001"
    s = load_signer(spec)
    assert req.public_key() == s.public_key()
    s.close()


def test_tpm_enrol_writes_what_the_daemon_and_the_server_need(tmp_path, capsys):
    with swtpm() as tcti:
        assert main(["keys", "tpm-enrol", str(tmp_path / "tpm"), "--tcti", tcti, "--pcrs", "sha256:0,7"]) == 0
        out = json.loads(capsys.readouterr().out)
        reg = json.loads((tmp_path / "tpm" / "registration.json").read_text())
        assert sorted(reg["pcrs"]) == ["0", "7"] and "BEGIN PUBLIC KEY" in reg["attestation_key"]
        s = load_signer(out["signing_key"])
        assert s.public_key_pem() == (tmp_path / "tpm" / "signing.pub.pem").read_bytes()
        s.close()
        assert main(["keys", "tpm-enrol", str(tmp_path / "tpm"), "--tcti", tcti]) == 2   # never overwrites
        # ima34: the release's allowlist from `sha256sum` output, registered with the reference's path
        (tmp_path / "release.sha256").write_text(f"# release\n{'AB' * 32}  /opt/a.py\n\n{'cd' * 32}\n")
        ima = ["keys", "tpm-enrol", str(tmp_path / "ima"), "--tcti", tcti, "--pcrs", "sha256:0,1,2,3,4,5,6,7,8,9",
               "--ima-reference", "/etc/capture-agent/dot-reference.json"]
        assert main([*ima, "--ima-allowlist", str(tmp_path / "missing")]) == 2
        assert main([*ima, "--ima-allowlist", str(tmp_path / "release.sha256")]) == 0
        assert json.loads(capsys.readouterr().out)["attestation"].endswith(";ima=" + IMA_LIST)
        reg = json.loads((tmp_path / "ima" / "registration.json").read_text())
        assert reg["ima"] == {"pcr": 10, "dot_reference": "/etc/capture-agent/dot-reference.json",
                              "allowlist": ["ab" * 32, "cd" * 32]}


def _settings(tmp_path, keys: str, uplink_key: str):
    ca = pki.make_ca()
    term = pki.issue(ca, "kiosk-cfg-0001", server=False)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "t.pem").write_bytes(term.cert_pem)
    pki.write_private(tmp_path / "t.key", term.key_pem)
    (tmp_path / "agent.toml").write_text(f"""terminal_id = "kiosk-cfg-0001"
[keys]
{keys}
[uplink]
endpoints = ["127.0.0.1:1"]
ca = "ca.pem"
cert = "t.pem"
key = {json.dumps(uplink_key)}
""")
    return config.load(tmp_path / "agent.toml")


def test_the_profile_names_the_suites_and_the_signing_algorithm(tmp_path):
    from agent.security.keys import generate_file_key
    ed = generate_file_key(tmp_path / "ed.pem")
    sm2 = generate_file_key(tmp_path / "sm2.pem", "sm2-sm3")
    s = _settings(tmp_path, 'signing_key = "file:ed.pem"\nprofile = "gm"', "t.key")
    assert uplink_settings(s).suites == ("sm2-sm4-gcm",)
    with pytest.raises(ConfigError, match="profile 'gm' signs with sm2-sm3"):
        check_profile(s, ed)
    check_profile(s, sm2)
    std = _settings(tmp_path, 'signing_key = "file:ed.pem"', "t.key")
    assert uplink_settings(std).suites == ("x25519", "mlkem768-x25519")
    with pytest.raises(ConfigError):
        check_profile(std, sm2)
    with pytest.raises(ConfigError, match="attestation must be a tpm:"):
        _settings(tmp_path, 'signing_key = "file:ed.pem"\nattestation = "file:x"', "t.key")


def test_uplink_key_may_be_held(tmp_path, softhsm, monkeypatch):
    module, token, pin = softhsm
    generate_pkcs11_key(module, token, "cfg-mtls", pin)
    monkeypatch.setenv("CA_TEST_PIN", pin)
    s = _settings(tmp_path, 'signing_key = "file:ed.pem"',
                  f"pkcs11:module={module};token={token};object=cfg-mtls;pin-env=CA_TEST_PIN")
    conn = uplink_settings(s)
    assert conn.key_pem == b"" and conn.client_key is not None and conn.client_key.algorithm == "ecdsa-p256-sha256"
    conn.client_key.close()
    from_file = _settings(tmp_path, 'signing_key = "file:ed.pem"', "t.key")
    assert uplink_settings(from_file).key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    os.chmod(tmp_path / "t.key", 0o644)
    with pytest.raises(KeyPermissionError):
        uplink_settings(from_file)


def test_audit_log_signed_by_an_sm2_key_verifies(tmp_path, capsys):
    from agent.security.audit import AuditLog
    from agent.security.keys import generate_file_key
    s = generate_file_key(tmp_path / "sm2.pem", "sm2-sm3")
    (tmp_path / "pub.pem").write_bytes(s.public_key_pem())
    log = AuditLog(tmp_path / "audit.jsonl", s, checkpoint_every=1)
    log.record("agent_start")
    log.close()
    assert main(["audit-verify", str(tmp_path / "audit.jsonl"), "--public-key", str(tmp_path / "pub.pem")]) == 0
    assert "unsigned" in capsys.readouterr().out
    other = generate_file_key(tmp_path / "other.pem", "sm2-sm3")
    (tmp_path / "other.pub.pem").write_bytes(other.public_key_pem())
    assert main(["audit-verify", str(tmp_path / "audit.jsonl"), "--public-key", str(tmp_path / "other.pub.pem")]) == 2
