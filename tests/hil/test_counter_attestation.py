"""The audit counter and chain bound to the attestation key (sec31), against root on the terminal with the TPM's owner
authorisation, on a real software TPM (swtpm): every anchor carries TPM2_NV_Certify of the counter and of the chain by
the attestation key for the probe's nonce, and the server (``hil/ingest/attestation.py``, the check its ``_open``
runs) refuses a certification replayed from another nonce, a count the AK's TPM does not hold (the counter spec pointed
at a software TPM), a chain redefined and extended anew, a count moved with the chain unmoved, and an index other than
the one pinned at enrolment. ``audit-verify --tpm-witness`` proves what the server cannot see: a rewritten log."""

from __future__ import annotations

import json
import os

import pytest

from agent.observe.ledger import LOCKOUT_EVENTS
from agent.purpose import Purpose
from agent.security.audit import AuditCounterForged, AuditLog, parse_witness, verify
from agent.security.keys import generate_file_key
from agent.uplink.probe import build_header
from hil.ingest.attestation import AttestationPolicy, CounterAttestationFailed, WitnessStore
from proto.capture_agent.v1 import ingest_pb2 as pb
from tests.helpers.audit_rewrite import rewrite_log
from tests.helpers.swtpm import on_swtpm, swtpm

SUBJECT = "subject:3f9a"
INDEX, CHAIN = 0x018C0A29, 0x018C0A2A


class Kiosk:
    """A terminal (its attestation key, audit log and counter) and the server's witness store for it."""

    def __init__(self, tmp_path, tcti: str, *, platform: bool = False, counter_tcti: str | None = None):
        from agent.security.tpm import counter_registration, define_counter, enrol, load_attestor, load_monotonic
        define_counter(tcti=tcti, platform=platform)
        (tmp_path / "keys").mkdir(parents=True)
        e = enrol(tmp_path / "keys", tcti=tcti, pcrs="sha256:0,7")
        self.registration = {**e.registration, **counter_registration(tcti=tcti)}
        self.policy = AttestationPolicy.from_registration(self.registration)
        self.tcti = tcti
        self.attestor = load_attestor(f"tpm:key={e.attestation};tcti={tcti}")
        if counter_tcti is not None:                # root's software TPM: counter and chain defined there afresh
            define_counter(tcti=counter_tcti)
        self.counter = load_monotonic(f"tpm:nv={INDEX:#010x};tcti={counter_tcti or tcti}")
        self.key = generate_file_key(tmp_path / "k.pem")
        self.log_path = tmp_path / "audit.jsonl"
        self.server = WitnessStore()
        self.log: AuditLog | None = None
        self.start()

    def start(self) -> None:
        if self.log is not None:
            self.log.close()
        self.log = AuditLog(self.log_path, self.key, checkpoint_every=5, counter=self.counter, counted=LOCKOUT_EVENTS)
        attestor, counter = self.attestor, self.counter
        self.log.certify = lambda nonce: attestor.certify_counter(nonce, counter)

    def entries(self) -> list[dict]:
        return [json.loads(x) for x in self.log_path.read_text().splitlines()]

    def strike(self, n: int = 1) -> None:
        assert self.log is not None
        for _ in range(n):
            self.log.record("lockout_strike", key=SUBJECT, failures=1)

    def probe(self, nonce: bytes | None = None, anchor_nonce: bytes | None = None) -> pb.ProbeHeader:
        """A probe header under ``nonce`` whose anchor was certified for ``anchor_nonce`` (default: the same)."""
        assert self.log is not None
        nonce = os.urandom(32) if nonce is None else nonce
        anchor = self.log.anchor(anchor_nonce or nonce)
        return build_header(terminal_id="kiosk-1", session_id="s", counter=1, nonce=nonce, server_key_id="k",
                            suite="x25519", signer=self.key, purpose=Purpose.VERIFY, audit_anchor=anchor)

    def submit(self, header: pb.ProbeHeader | None = None):
        return self.server.check("kiosk-1", self.policy, header or self.probe())

    def refused(self, header: pb.ProbeHeader | None = None) -> str:
        with pytest.raises(CounterAttestationFailed) as exc:
            self.submit(header)
        assert exc.value.reason == "ATTESTATION_FAILED" and str(exc.value).startswith(exc.value.check)
        return exc.value.check

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        self.attestor.close()
        self.counter.close()


@pytest.fixture
def kiosk(tmp_path):
    with on_swtpm(lambda tcti: Kiosk(tmp_path, tcti)) as k:
        yield k


def _undefine(tcti: str, index: int) -> None:
    """Root's ``tpm2_nvundefine`` with the owner authorisation."""
    from tpm2_pytss.constants import ESYS_TR

    from agent.security.tpm import TpmConnection
    conn = TpmConnection.get(tcti)
    try:
        with conn.lock:
            conn.esapi.nv_undefine_space(conn.esapi.tr_from_tpmpublic(index), ESYS_TR.OWNER)
    finally:
        conn.release()


def test_an_honest_terminal_s_certified_counts_and_chains_are_accepted_and_prove_its_log(kiosk):
    assert kiosk.submit() is None                       # nothing counted yet: nothing the TPM can certify
    kiosk.strike(2)
    w = kiosk.submit()
    assert w is not None and w.count == kiosk.counter.count() and w.chain == kiosk.counter.chain()
    kiosk.strike()
    w2 = kiosk.submit()
    assert w2 is not None and w2.count == w.count + 1 and w2.chain != w.chain
    assert kiosk.submit().count == w2.count                  # a probe with no strike between: the same witness
    kiosk.log.close()
    kiosk.log = None
    held = kiosk.server.cli_witness("kiosk-1")                # every count certified, oldest first (hist31)
    assert held == [w.cli(), w2.cli()]
    rep = verify(kiosk.log_path, kiosk.key.public_key(), max_unsigned_tail=0, witnesses=map(parse_witness, held))
    assert rep.last_count == w2.count


def test_a_certification_replayed_from_an_earlier_challenge_is_refused(kiosk):
    kiosk.strike()
    earlier = os.urandom(32)
    assert kiosk.refused(kiosk.probe(anchor_nonce=earlier)) == "NV_NONCE"
    assert kiosk.submit() is not None                        # the same terminal, certified for this nonce


def test_the_counter_spec_pointed_at_root_s_software_tpm_is_refused(tmp_path):
    # Root defines counter and chain on a software TPM he controls, points [audit] tpm_counter's tcti at it and starts
    # a log counted there, advanced at will past the real count (COUNT_BACK fires only for a lower count). The AK lives
    # in the real TPM, which certifies its own indices: the anchor's count is not the certified one.
    from agent.security.tpm import define_counter, load_monotonic
    with swtpm() as real, swtpm() as fake:
        k = Kiosk(tmp_path, real)
        try:
            k.strike(2)
            assert k.submit() is not None
            k.log.close()
            k.log = None
            k.counter.close()
            define_counter(tcti=fake)
            k.counter = load_monotonic(f"tpm:nv={INDEX:#010x};tcti={fake}")
            for _ in range(5):
                k.counter.increment()
            k.log_path = tmp_path / "fresh.jsonl"
            k.start()
            k.strike()
            assert k.log.count == 6                        # 5 of root's advances, then this strike
            assert k.refused() == "NV_COUNT"
        finally:
            k.close()


def test_the_chain_redefined_and_extended_anew_is_refused_and_the_rewrite_proven(kiosk):
    # Owner-defined indices (keys tpm-counter without --platform): root rewrites the strikes into harmless entries,
    # undefines the chain, defines it again (the same attributes: the same name) and extends it with his entries'
    # hashes, the counter unmoved. Before sec31 nothing but the TPM's word could tell, and the TPM agreed with him.
    from agent.security.audit import ZERO_CHAIN, chain_after, entry_hash
    from agent.security.tpm import define_counter, load_monotonic
    kiosk.strike(3)
    w = kiosk.submit()
    assert w is not None
    kiosk.log.close()
    kiosk.log = None

    def harmless(e: dict) -> None:
        if e["event"] in LOCKOUT_EVENTS:
            e["data"].update(key="subject:0000")
    rewrite_log(kiosk, harmless, rechain=True)
    _undefine(kiosk.tcti, CHAIN)
    define_counter(tcti=kiosk.tcti)                          # defines the missing chain again
    kiosk.counter.close()
    kiosk.counter = load_monotonic(f"tpm:nv={INDEX:#010x};tcti={kiosk.tcti}")
    chain = ZERO_CHAIN
    for e in (json.loads(x) for x in kiosk.log_path.read_text().splitlines()):
        if "tpm_chain" in e["data"]:
            kiosk.counter.extend(bytes.fromhex(entry_hash(e)))
            chain = chain_after(chain, entry_hash(e))
    assert kiosk.counter.chain().hex() == chain               # the TPM now vouches for root's entries
    verify(kiosk.log_path, kiosk.key.public_key(), max_unsigned_tail=0, tpm_count=kiosk.counter.count(),
           tpm_chain=kiosk.counter.chain().hex())             # sec30's check passes: the hole
    kiosk.start()
    assert kiosk.log.counter_check.problem is None            # and so does the daemon's start
    assert kiosk.refused() == "NV_CHAIN"                      # the server held the chain at this count
    with pytest.raises(AuditCounterForged, match="certified"):
        verify(kiosk.log_path, kiosk.key.public_key(), witnesses=[(w.count, w.chain.hex())])
    # Root then counts one more entry so that the count moves on: the server cannot tell (it has no entries), the
    # witness it held proves the rewrite all the same.
    kiosk.strike()
    with pytest.raises(AuditCounterForged, match="certified"):
        verify(kiosk.log_path, kiosk.key.public_key(), witnesses=[(w.count, w.chain.hex())])
    # review31: and sends a probe. Neither NV_CHAIN nor NV_STALLED fires (both moved), the probe passes and the server's
    # latest witness is root's, which the forged log reaches. What the bank fetches (hist31) is every witness held.
    w2 = kiosk.submit()
    assert w2 is not None and w2.count == w.count + 1
    kiosk.log.close()
    kiosk.log = None
    assert verify(kiosk.log_path, kiosk.key.public_key(), max_unsigned_tail=0,
                  witnesses=[parse_witness(w2.cli())]).last_count == w2.count    # the latest alone: the hole
    held = kiosk.server.cli_witness("kiosk-1")
    assert held == [w.cli(), w2.cli()]                       # the first witness at the count root rewrote is kept
    with pytest.raises(AuditCounterForged, match="certified"):
        verify(kiosk.log_path, kiosk.key.public_key(), max_unsigned_tail=0, witnesses=map(parse_witness, held))


def test_a_count_moved_with_the_chain_unmoved_is_refused(kiosk):
    # Root strips tpm_chain: his daemon advances the counter and never extends the chain.
    kiosk.strike()
    assert kiosk.submit() is not None
    kiosk.counter.extend = lambda digest: None
    kiosk.strike()
    assert kiosk.refused() == "NV_STALLED"


def _undefine_special(tcti: str, index: int) -> None:
    """TPM2_NV_UndefineSpaceSpecial of a platform-defined index: its policy (the command code) and the platform's
    authorisation, which swtpm leaves enabled and a real machine's firmware disables before the OS runs."""
    from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_CC, TPM2_SE

    from agent.security.tpm import TpmConnection
    conn = TpmConnection.get(tcti)
    try:
        with conn.lock:
            session = conn.esapi.start_auth_session(ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.POLICY, "aes128cfb",
                                                    TPM2_ALG.SHA256)
            try:
                conn.esapi.policy_command_code(session, TPM2_CC.NV_UndefineSpaceSpecial)
                conn.esapi.nv_undefine_space_special(conn.esapi.tr_from_tpmpublic(index), session,
                                                     session2=ESYS_TR.PASSWORD)
            finally:
                try:
                    conn.esapi.flush_context(session)
                except Exception:                   # flushed by the command when it succeeded
                    pass
    finally:
        conn.release()


def test_platform_defined_indices_resist_the_owner_and_a_redefined_one_is_refused_by_name(tmp_path):
    from tpm2_pytss import TSS2_Exception

    from agent.security.tpm import define_counter, load_monotonic
    with swtpm() as tcti:
        k = Kiosk(tmp_path, tcti, platform=True)
        try:
            k.strike(2)
            assert k.submit() is not None
            for index in (INDEX, CHAIN):                    # the owner's authorisation cannot undefine them
                with pytest.raises(TSS2_Exception):
                    _undefine(tcti, index)
            # With the platform's authorisation (swtpm's is enabled and empty; a real machine's firmware disables
            # it) root deletes the chain and defines it again as the owner: another name than the one pinned.
            k.log.close()
            k.log = None
            k.counter.close()
            _undefine_special(tcti, CHAIN)
            define_counter(tcti=tcti)
            k.counter = load_monotonic(f"tpm:nv={INDEX:#010x};tcti={tcti}")
            k.start()
            k.strike()
            assert k.refused() == "NV_NAME"
        finally:
            k.close()


def test_bad_nv_pins_in_a_registration_are_refused(kiosk):
    doc = dict(kiosk.registration)
    for bad in ({"nv_counter": doc["nv_counter"]}, {"nv_counter": {"index": "x", "name": "00"}, "nv_chain": {}},
                {"nv_counter": doc["nv_counter"], "nv_chain": doc["nv_counter"]}):
        reg = {k: v for k, v in doc.items() if not k.startswith("nv_")} | bad
        with pytest.raises(ValueError, match="nv_counter|NV names"):
            AttestationPolicy.from_registration(reg)
    plain = {k: v for k, v in doc.items() if not k.startswith("nv_")}
    assert AttestationPolicy.from_registration(plain).nv is None


def test_keys_tpm_counter_platform_prints_the_names_to_pin_and_audit_verify_takes_a_witness(tmp_path, capsys):
    from agent.cli import main
    from agent.security.tpm import load_monotonic
    with swtpm() as tcti:
        assert main(["keys", "tpm-counter", "--tcti", tcti, "--platform"]) == 0
        out = json.loads(capsys.readouterr().out)
        reg = out["registration"]
        assert set(reg) == {"nv_counter", "nv_chain"} and reg["nv_chain"]["index"] == "0x018c0a2a"
        assert main(["keys", "tpm-counter", "--tcti", tcti, "--names"]) == 0        # defined already: the names only
        assert json.loads(capsys.readouterr().out) == {"registration": reg}
        counter = load_monotonic(out["tpm_counter"])
        key = generate_file_key(tmp_path / "k.pem")
        (tmp_path / "pub.pem").write_bytes(key.public_key_pem())
        log = AuditLog(tmp_path / "audit.jsonl", key, counter=counter, counted=LOCKOUT_EVENTS)
        log.record("lockout_strike", key=SUBJECT, failures=1)
        log.close()
        args = ["audit-verify", str(tmp_path / "audit.jsonl"), "--public-key", str(tmp_path / "pub.pem"),
                "--tpm-witness"]
        assert main(args + [f"1:{counter.chain().hex()}"]) == 0
        capsys.readouterr()
        assert main(args + [f"1:{'22' * 32}"]) == 2
        assert "AUD_COUNTER_FORGED" in capsys.readouterr().err
        assert main(args + [f"2:{counter.chain().hex()}"]) == 2                 # a count the log never reached
        assert "AUD_COUNTER_CUT" in capsys.readouterr().err
        assert main(args + ["1:zz"]) == 2                                     # not COUNT:CHAIN: a usage error's code
        assert "AUD_ERROR" in capsys.readouterr().err
        counter.close()
