"""The reference server's check of TPM quotes (hil/ingest/attestation.py), over real mTLS, with quotes
from a real software TPM (swtpm). The probes carry synthetic crops (noise): these tests are about
the quote; tests/uplink/test_keys_e2e.py sends real captures from a TPM-keyed terminal."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import agent.daemon
from agent.purpose import Purpose
from agent.security.keys import generate_file_key
from agent.security.tpm import counter_registration, define_counter, enrol, load_attestor, load_monotonic
from agent.uplink.client import UplinkClient, UplinkConnection
from agent.uplink.seal import ProbeRejected, ServerKey, load_public_key, seal
from hil import pki
from hil.fakes.evidence import for_challenge
from hil.ingest.attestation import AttestationPolicy, check_quote, parse_quote
from hil.ingest.evidence import CameraPin
from hil.ingest.identity import Registry, Terminal, spki_sha256
from hil.ingest.ima import parse_list
from hil.ingest.limits import FailureLimits
from hil.ingest.server import ServerState, ServerTLS, serve
from proto.capture_agent.v1 import ingest_pb2 as pb
from tests.helpers.ima import FakeImaKernel
from tests.helpers.swtpm import extend_pcr16, reset_pcr16, swtpm
from tests.helpers.terminals import CAPS

TPM_TERMINAL, PLAIN_TERMINAL, COUNTED_TERMINAL = "kiosk-attest-0001", "kiosk-attest-0002", "kiosk-attest-0003"
DOT_TERMINAL = "kiosk-attest-0004"         # pin34: its camera's dot reference registered with its attestation
IMA_TERMINAL = "kiosk-attest-0005"         # pin34: and measured by the kernel's IMA, PCR 10 quoted and replayed
# What the liveness report names (agent.session.capture.liveness_report): the SHA-256 of the reference file's bytes the
# daemon gave its worker. These stand for the enrolled file and root's swapped one (the IMA terminal's files hold them).
ENROLLED_BYTES, SWAPPED_BYTES = b"this unit's enrolled dot reference", b"a reference root enrolled on another unit"
ENROLLED_REF = hashlib.sha256(ENROLLED_BYTES).hexdigest()
SWAPPED_REF = hashlib.sha256(SWAPPED_BYTES).hexdigest()
UNSET = object()


def synthetic_payload(ch: pb.Challenge, dot_reference: object = UNSET, ima_log: bytes = b"") -> bytearray:
    """A well-formed payload (a colour crop and evidence that meets the challenge, a noise depth
    crop, a live verdict bound to the nonce; ``dot_reference``: the report's ``dot_reference_sha256``, left out
    when UNSET, as before pin34)."""
    syn = for_challenge(ch)
    px = os.urandom(syn.color.width * syn.color.height * 2)
    depth = pb.Crop(width=syn.color.width, height=syn.color.height, format="z16", pixels=px,
                    sha256=hashlib.sha256(px).digest(), depth_scale=0.001)
    lv = {"verdict": "live", "frame_digests": syn.digests, "challenge_used": True,
          "challenge": {"passed": True, "nonce_sha256": hashlib.sha256(ch.nonce).hexdigest()}}
    if dot_reference is not UNSET:
        lv["dot_reference_sha256"] = dot_reference
    p = pb.ProbePayload(color=syn.color, depth=depth, landmarks=[0.5] * (3 * 468),
                        liveness_json=json.dumps(lv), frame_digest=syn.frame_digest, evidence=syn.evidence,
                        ima_log=ima_log)
    return bytearray(p.SerializeToString())


COUNTER = itertools.count(1)          # the server wants each terminal's counter to increase


def make_probe(ch: pb.Challenge, signer, terminal: str, session: str, quote: pb.PlatformQuote | None,
               anchor: pb.AuditAnchor | None = None, dot_reference: object = UNSET, ima_log: bytes = b""):
    h = pb.ProbeHeader(version=1, probe_id=str(uuid.uuid4()), terminal_id=terminal, session_id=session,
                       counter=next(COUNTER),
                       nonce=ch.nonce, server_key_id=ch.server_key_id, hpke_suite=ch.hpke_suite,
                       created_unix_ms=int(time.time() * 1000), signer_key_id=signer.key_id,
                       signature_algorithm=signer.algorithm, purpose=pb.VERIFY, platform_quote=quote,
                       audit_anchor=anchor)
    sealed = seal(h, synthetic_payload(ch, dot_reference, ima_log),
                  load_public_key(ch.hpke_suite, ch.server_public_key), signer)
    return sealed, h


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("attest")
    with swtpm() as tcti:
        (d / "tpm").mkdir()
        (d / "other").mkdir()
        (d / "ima").mkdir()
        ref = d / "etc" / "capture-agent" / "dot-reference.json"       # pin34: the IMA terminal's reference file
        ref.parent.mkdir(parents=True)
        ref.write_bytes(ENROLLED_BYTES)
        kernel = FakeImaKernel(tcti, d / "root")                         # boots: boot_aggregate into PCR 10
        ima = enrol(d / "ima", tcti=tcti, pcrs="sha256:0,1,2,3,4,5,6,7,8,9", ima_reference=str(ref),
                    ima_allowlist=[hashlib.sha256(Path(agent.daemon.__file__).read_bytes()).hexdigest()])
        e = enrol(d / "tpm", tcti=tcti, pcrs="sha256:0,7,16")
        other = enrol(d / "other", tcti=tcti, pcrs="sha256:0,7,16")       # a second attestation key
        ca = pki.make_ca()
        server_cert = pki.issue(ca, "ingest.test", server=True, hosts=("ingest.test", "127.0.0.1"))
        certs = {t: pki.issue(ca, t, server=False) for t in (TPM_TERMINAL, PLAIN_TERMINAL, COUNTED_TERMINAL,
                                                              DOT_TERMINAL, IMA_TERMINAL)}
        signer = generate_file_key(d / "signing.pem")
        key = ServerKey.generate("x25519")
        policy = AttestationPolicy.from_registration(e.registration)
        define_counter(tcti=tcti)                                            # sec31: counter and chain pinned too
        counted = AttestationPolicy.from_registration({**e.registration, **counter_registration(tcti=tcti)})
        pins = {t: frozenset({spki_sha256(c.cert_pem)}) for t, c in certs.items()}
        registry = Registry([Terminal(TPM_TERMINAL, signer.public_key(), pins[TPM_TERMINAL], attestation=policy),
                             Terminal(PLAIN_TERMINAL, signer.public_key(), pins[PLAIN_TERMINAL]),
                             Terminal(COUNTED_TERMINAL, signer.public_key(), pins[COUNTED_TERMINAL],
                                      attestation=counted),
                             Terminal(DOT_TERMINAL, signer.public_key(), pins[DOT_TERMINAL], attestation=policy,
                                      camera=CameraPin(dot_reference_sha256=ENROLLED_REF)),
                             Terminal(IMA_TERMINAL, signer.public_key(), pins[IMA_TERMINAL],
                                      attestation=AttestationPolicy.from_registration(ima.registration),
                                      camera=CameraPin(dot_reference_sha256=ENROLLED_REF))])
        # Every challenge issued is charged until a probe under it is accepted (hil/ingest/limits.py):
        # the module's refused probes on one terminal would reach the default limit of 5.
        state = ServerState(registry=registry, keys={key.key_id: key}, current_key_id=key.key_id, frames=12,
                            limits=FailureLimits(max_failures=0))
        server, port = serve(state, ServerTLS(server_cert.cert_pem, server_cert.key_pem, ca.cert_pem))
        clients = {t: UplinkClient(UplinkConnection((f"127.0.0.1:{port}",), ca.cert_pem, c.cert_pem, c.key_pem, t,
                                                    server_name="ingest.test")) for t, c in certs.items()}
        ak = load_attestor(f"tpm:key={e.attestation};tcti={tcti}")
        other_ak = load_attestor(f"tpm:key={other.attestation};tcti={tcti}")
        ima_ak = load_attestor(f"tpm:key={ima.attestation};tcti={tcti};ima={kernel.list_path}")
        counter = load_monotonic(f"tpm:nv=0x018C0A29;tcti={tcti}")
        yield {"tcti": tcti, "signer": signer, "clients": clients, "ak": ak, "other_ak": other_ak,
               "registration": e.registration, "counter": counter, "state": state, "ima_ak": ima_ak, "kernel": kernel,
               "ref": ref, "ima_registration": ima.registration}
        ima_ak.close()
        counter.close()
        ak.close()
        other_ak.close()
        for c in clients.values():
            c.close()
        server.stop(0)


def submit(env, terminal=TPM_TERMINAL, quote_for=lambda ch: None, session="s-att", anchor_for=lambda ch: None,
           dot_reference: object = UNSET, ima_list=lambda: b""):
    c = env["clients"][terminal]
    ch = c.begin(session, Purpose.VERIFY, capabilities=CAPS)
    quote = quote_for(ch)
    sealed, h = make_probe(ch, env["signer"], terminal, session, quote, anchor_for(ch), dot_reference, ima_list())
    return c.submit(sealed, h.probe_id)


def test_the_audit_counter_certified_for_this_challenge_is_checked_in_the_servers_verify_path(env, tmp_path):
    # sec31, over the wire: the anchor's TPM2_NV_Certify of the counter and chain by the registered AK.
    from agent.observe.ledger import LOCKOUT_EVENTS
    from agent.security.audit import AuditLog
    from agent.uplink.probe import anchor_to_proto
    log = AuditLog(tmp_path / "audit.jsonl", env["signer"], counter=env["counter"], counted=LOCKOUT_EVENTS)
    log.certify = lambda nonce: env["ak"].certify_counter(nonce, env["counter"])
    quote = lambda ch: env["ak"].quote(ch.nonce)        # noqa: E731
    try:
        log.record("lockout_strike", key="subject:1", failures=1)
        r = submit(env, COUNTED_TERMINAL, quote, anchor_for=lambda ch: anchor_to_proto(log.anchor(ch.nonce)))
        assert r.accepted, r.detail
        held = env["state"].witnesses.held(COUNTED_TERMINAL)
        assert held is not None and held.count == env["counter"].count() and held.chain == env["counter"].chain()
        earlier = os.urandom(32)
        r = submit(env, COUNTED_TERMINAL, quote, anchor_for=lambda ch: anchor_to_proto(log.anchor(earlier)))
        assert not r.accepted and r.reason == "ATTESTATION_FAILED" and r.detail.startswith("NV_NONCE"), r.detail
        r = submit(env, COUNTED_TERMINAL, quote)                 # no anchor, after the TPM certified a count
        assert r.reason == "ATTESTATION_FAILED" and r.detail.startswith("NV_MISSING"), r.detail
    finally:
        log.close()


def test_a_quote_of_the_registered_state_for_this_challenge_is_accepted(env):
    r = submit(env, quote_for=lambda ch: env["ak"].quote(ch.nonce))
    assert r.accepted and r.reason == "OK", r.detail


def test_a_registered_terminal_must_send_a_quote(env):
    r = submit(env)
    assert not r.accepted and r.reason == "ATTESTATION_FAILED" and "has none" in r.detail


def test_a_quote_from_an_earlier_challenge_is_refused(env):
    earlier = env["clients"][TPM_TERMINAL].begin("s-earlier", Purpose.VERIFY, capabilities=CAPS)
    old = env["ak"].quote(earlier.nonce)
    r = submit(env, quote_for=lambda ch: old)
    assert r.reason == "ATTESTATION_FAILED" and "another challenge" in r.detail


def test_a_changed_measured_state_is_refused_and_named(env):
    extend_pcr16(env["tcti"])
    try:
        r = submit(env, quote_for=lambda ch: env["ak"].quote(ch.nonce))
        assert r.reason == "ATTESTATION_FAILED" and "PCR [16]" in r.detail, r.detail

        def lie(ch):                       # the real quote, but the registered values claimed alongside
            q = env["ak"].quote(ch.nonce)
            del q.pcr_values[:]
            q.pcr_values.extend(bytes.fromhex(env["registration"]["pcrs"][str(i)]) for i in q.pcrs)
            return q
        r = submit(env, quote_for=lie)
        assert r.reason == "ATTESTATION_FAILED" and "do not match the quoted digest" in r.detail
    finally:
        reset_pcr16(env["tcti"])


def test_a_quote_by_another_attestation_key_is_refused(env):
    r = submit(env, quote_for=lambda ch: env["other_ak"].quote(ch.nonce))
    assert r.reason == "ATTESTATION_FAILED" and "not signed by this terminal's attestation key" in r.detail


def test_a_terminal_registered_without_a_policy_is_not_asked_for_one(env):
    assert submit(env, terminal=PLAIN_TERMINAL).accepted
    assert submit(env, terminal=PLAIN_TERMINAL, quote_for=lambda ch: env["ak"].quote(ch.nonce)).accepted


def test_a_probe_judged_with_the_registered_dot_reference_is_accepted(env):
    r = submit(env, DOT_TERMINAL, lambda ch: env["ak"].quote(ch.nonce), dot_reference=ENROLLED_REF)
    assert r.accepted and r.reason == "OK", r.detail


def test_root_swapping_or_emptying_the_dot_reference_is_refused(env):
    # unit33's gap (issue 14/16): root replaces [camera] dot_reference with a reference that passes another unit's
    # stream (or empties it: the check is then off). Nothing root did moved the quoted PCRs, so the quote is good,
    # the verdict live, the evidence met; before pin34 the server accepted both probes.
    quote = lambda ch: env["ak"].quote(ch.nonce)        # noqa: E731
    r = submit(env, DOT_TERMINAL, quote, dot_reference=SWAPPED_REF)
    assert not r.accepted and r.reason == "DOT_REFERENCE_MISMATCH", (r.reason, r.detail)
    for emptied in (None, UNSET):                       # judged with none; a daemon from before pin34 says nothing
        r = submit(env, DOT_TERMINAL, quote, dot_reference=emptied)
        assert not r.accepted and r.reason == "DOT_REFERENCE_MISSING", (r.reason, r.detail)
    # A terminal whose camera has no registered reference is not asked for one (registration, not probes, pins it).
    assert submit(env, PLAIN_TERMINAL, dot_reference=SWAPPED_REF).accepted


def test_a_daemon_patched_to_name_the_pinned_reference_still_passes_the_pin_alone(env):
    # The pin checks what the terminal's daemon says it judged with: root who patches the daemon to name the pinned
    # digest while its worker judges with the swapped file is accepted. Only a measurement the kernel makes (IMA
    # into PCR 10, quoted) binds the file itself (docs/keys.md, "The dot reference against root"). This test
    # documents the gap: it fails the day the server refuses such a probe.
    r = submit(env, DOT_TERMINAL, lambda ch: env["ak"].quote(ch.nonce), dot_reference=ENROLLED_REF)
    assert r.accepted, r.detail


def test_a_report_naming_a_reference_that_is_not_a_digest_is_malformed(env):
    for bad in ("", "D" * 64, 7, ["a" * 64]):
        r = submit(env, DOT_TERMINAL, lambda ch: env["ak"].quote(ch.nonce), dot_reference=bad)
        assert not r.accepted and r.reason == "MALFORMED", (bad, r.reason, r.detail)


def test_the_dot_reference_measured_by_the_kernel_binds_where_the_daemons_word_does_not(env):
    # pin34, over the wire: the IMA terminal's AK quotes PCR 10 and sends the kernel's list; the server replays it.
    code = Path(agent.daemon.__file__)
    assert env["ima_registration"]["ima"] == {"pcr": 10, "dot_reference": str(env["ref"]),
                                              "allowlist": [hashlib.sha256(code.read_bytes()).hexdigest()]}
    assert "10" not in env["ima_registration"]["pcrs"]           # replayed, never registered as a value
    kernel, ref = env["kernel"], env["ref"]
    ak = env["ima_ak"]
    probe = {"quote_for": lambda ch: ak.quote(ch.nonce), "ima_list": ak.ima_list,     # as the session: list after quote
             "dot_reference": ENROLLED_REF}
    r = submit(env, IMA_TERMINAL, **probe)
    assert r.reason == "DOT_REFERENCE_MISSING" and "measured" in r.detail, r.detail    # the daemon never read it
    kernel.open_for_read(code)                                   # the daemon's start reads its code (listed)
    kernel.open_for_read(ref)                                    # ... and the reference
    r = submit(env, IMA_TERMINAL, **probe)
    assert r.accepted, r.detail
    # ima34: the swapped reference read under another name by a daemon patched to name the pinned digest: the
    # registered path's entries are the genuine file's, but its content is not on the release's allowlist.
    alias = ref.with_name("dot-reference.d.json")
    alias.write_bytes(SWAPPED_BYTES)
    kernel.open_for_read(alias)
    r = submit(env, IMA_TERMINAL, **probe)
    assert r.reason == "ATTESTATION_FAILED" and r.detail.startswith("IMA_UNLISTED"), (r.reason, r.detail)
    r = submit(env, IMA_TERMINAL, quote_for=probe["quote_for"], dot_reference=ENROLLED_REF)     # no list sent
    assert r.reason == "ATTESTATION_FAILED" and r.detail.startswith("IMA_REPLAY"), (r.reason, r.detail)
    # Root swaps the file and restarts a daemon patched to name the pinned digest: the pin alone passes it
    # (test_a_daemon_patched_...), the kernel's measurement does not.
    swap = ref.with_name("swap.json")
    swap.write_bytes(SWAPPED_BYTES)
    swap.replace(ref)
    kernel.open_for_read(ref)
    r = submit(env, IMA_TERMINAL, **probe)
    assert r.reason == "DOT_REFERENCE_MISMATCH" and "measured" in r.detail, (r.reason, r.detail)
    # ... and cutting the kernel's entry out of the list the agent sends leaves a list the quoted PCR 10 refutes.
    whole = kernel.list_path.read_bytes()
    last = parse_list(whole)[-1]
    kernel.list_path.write_bytes(whole[:len(whole) - (38 + len(last.template_data))])   # 38: its header
    r = submit(env, IMA_TERMINAL, **probe)
    assert r.reason == "ATTESTATION_FAILED" and r.detail.startswith("IMA_REPLAY"), (r.reason, r.detail)


def test_parser_reads_what_the_tpm_marshalled(env):
    from tpm2_pytss.types import TPMS_ATTEST
    nonce = os.urandom(32)
    q = env["ak"].quote(nonce)
    ours = parse_quote(q.attest)
    theirs, _ = TPMS_ATTEST.unmarshal(q.attest)
    assert ours.extra_data == bytes(theirs.extraData)
    assert ours.pcr_digest == bytes(theirs.attested.quote.pcrDigest)
    assert ours.clock_ms == theirs.clockInfo.clock and ours.reset_count == theirs.clockInfo.resetCount
    with pytest.raises(ProbeRejected, match="trailing"):
        parse_quote(q.attest + b"\0")


@given(st.data())
def test_malformed_quotes_are_refused_never_crash(env, data):
    """Truncated, bit-flipped or random quotes: the check refuses each with ATTESTATION_FAILED, and the
    parser itself (which runs only after the signature verifies) either parses or refuses, never crashes."""
    real = env.setdefault("real_quote", env["ak"].quote(b"\x01" * 32))
    blob = data.draw(st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(real.attest) - 1).map(lambda n: real.attest[:n]),
        st.tuples(st.integers(0, len(real.attest) - 1), st.integers(1, 255)).map(
            lambda t: real.attest[:t[0]] + bytes([real.attest[t[0]] ^ t[1]]) + real.attest[t[0] + 1:])))
    header = pb.ProbeHeader(nonce=b"\x01" * 32, platform_quote=pb.PlatformQuote(
        attest=blob, signature=real.signature, pcr_bank="sha256", pcrs=real.pcrs, pcr_values=real.pcr_values))
    policy = AttestationPolicy.from_registration(env["registration"])
    with pytest.raises(ProbeRejected) as exc:
        check_quote(policy, header)
    assert exc.value.reason == "ATTESTATION_FAILED"
    try:
        parse_quote(blob)
    except ProbeRejected as refused:
        assert refused.reason == "ATTESTATION_FAILED"


@pytest.mark.parametrize("doc", [{}, {"attestation_key": "x", "pcr_bank": "sha256", "pcrs": {"0": "00" * 32}},
                                 {"attestation_key": None, "pcr_bank": "sha256", "pcrs": {}}])
def test_bad_registrations_are_refused(doc, env):
    with pytest.raises(ValueError):
        AttestationPolicy.from_registration(doc)
    good = dict(env["registration"])
    good["pcrs"] = {"0": "00" * 31}
    with pytest.raises(ValueError):
        AttestationPolicy.from_registration(good)
    for ima in ({"pcr": 9, "dot_reference": "/etc/r.json"}, {"pcr": 10, "dot_reference": "r.json"},
                {"pcr": 10, "dot_reference": "/etc/x/../r.json"}, {"pcr": 10, "dot_reference": "/etc//r.json"},
                {"pcr": 10}, {"pcr": 10, "dot_reference": "/etc/r.json", "more": 1}, "/etc/r.json"):
        with pytest.raises(ValueError, match="ima"):             # pin34
            AttestationPolicy.from_registration({**env["ima_registration"], "ima": ima})
    with pytest.raises(ValueError, match="ima"):                 # PCR 10 replayed, never a registered value too
        AttestationPolicy.from_registration({**env["ima_registration"],
                                             "pcrs": {**env["ima_registration"]["pcrs"], "10": "00" * 32}})
    with pytest.raises(ValueError, match="dot_reference_sha256"):   # the digest the measurements must show
        Terminal("k-ima", env["signer"].public_key(), frozenset({"0" * 64}),
                 attestation=AttestationPolicy.from_registration(env["ima_registration"]))


def test_server_config_registers_sm2_terminals_attestation_and_the_gm_key(env, tmp_path):
    from hil.ingest.config import build_state, load_server_config, write_hpke_key, write_subject_key
    ca = pki.make_ca()
    cert = pki.issue(ca, "ingest.test", server=True)
    (tmp_path / "server.pem").write_bytes(cert.cert_pem)
    pki.write_private(tmp_path / "server.key", cert.key_pem)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    write_hpke_key(tmp_path / "gm.hpke", ServerKey.generate("sm2-sm4-gcm"))
    write_subject_key(tmp_path / "subject.key")
    sm2 = generate_file_key(tmp_path / "t.sm2.pem", "sm2-sm3")
    (tmp_path / "t.pub.pem").write_bytes(sm2.public_key_pem())
    (tmp_path / "t.attestation.json").write_text(json.dumps(env["registration"]))
    (tmp_path / "server.toml").write_text("""cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"
current_suite = "sm2-sm4-gcm"
subject_key_file = "subject.key"
[[hpke_keys]]
suite = "sm2-sm4-gcm"
file = "gm.hpke"
[[terminals]]
id = "kiosk-gm-cfg"
certificate_spki_sha256 = ["@PIN@"]
public_key = "t.pub.pem"
attestation = "t.attestation.json"
""".replace("@PIN@", spki_sha256(cert.cert_pem)))
    state, _ = build_state(*load_server_config(tmp_path / "server.toml"))
    term = state.registry.terminals["kiosk-gm-cfg"]
    assert term.public_key == sm2.public_key() and term.attestation is not None
    assert term.attestation.pcrs == (0, 7, 16)
    assert state.keys[state.current_key_id].suite == "sm2-sm4-gcm"
