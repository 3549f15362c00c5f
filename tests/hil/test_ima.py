"""pin34: the dot reference measured by the kernel, not reported by the daemon (``hil/ingest/ima.py``). Only the
kernel's part is faked (``tests/helpers/ima.py``: the ``ima-ng`` list in the kernel's binary format and its extends of
a real swtpm's PCR 10); the quote is the real attestation key's, checked by the server's ``check_quote`` against the
list's replay."""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import agent.daemon
from agent.security.tpm import enrol, load_attestor
from agent.uplink.seal import ProbeRejected
from hil.ingest.attestation import AttestationPolicy, check_quote
from hil.ingest.ima import ImaFailed, check_reference, parse_list, replay
from proto.capture_agent.v1 import ingest_pb2 as pb
from tests.helpers.ima import FakeImaKernel, field, template_data
from tests.helpers.swtpm import extend_pcr, swtpm

ENROLLED = b'{"a reference": "enrolled on this unit"}'
SWAPPED = b'{"a reference": "enrolled on another unit"}'


BOOT = "sha256:0,1,2,3,4,5,6,7,8,9"


@pytest.fixture
def terminal(tmp_path):
    """A fresh TPM (PCR 10 cannot be reset), the fake kernel booted on it (boot_aggregate of PCRs 0-9), the attestation
    key quoting PCRs 0-10 (enrolled with --ima-reference), the reference."""
    with swtpm() as tcti:
        (tmp_path / "keys").mkdir()
        ref = tmp_path / "etc" / "capture-agent" / "dot-reference.json"
        ref.parent.mkdir(parents=True)
        ref.write_bytes(ENROLLED)
        kernel = FakeImaKernel(tcti, tmp_path)
        e = enrol(tmp_path / "keys", tcti=tcti, pcrs=BOOT, ima_reference=str(ref))
        ak = load_attestor(f"tpm:key={e.attestation};tcti={tcti}")
        try:
            yield {"tcti": tcti, "ak": ak, "policy": AttestationPolicy.from_registration(e.registration),
                   "kernel": kernel, "ref": ref}
        finally:
            ak.close()


PINNED = hashlib.sha256(ENROLLED).hexdigest()


def quoted(t) -> tuple[bytes, dict[int, bytes]]:
    """The probe's quote for a fresh nonce, checked by the server (PCRs 0-9 registered, PCR 10 replayed); the list
    and the quoted PCR values."""
    raw = t["kernel"].list_path.read_bytes()
    nonce = os.urandom(32)
    header = pb.ProbeHeader(nonce=nonce, platform_quote=t["ak"].quote(nonce))
    check_quote(t["policy"], header)
    q = header.platform_quote
    return raw, dict(zip(q.pcrs, q.pcr_values, strict=True))


def test_the_enrolled_reference_as_the_kernel_measured_it_replays_to_the_quoted_pcr10(terminal):
    k = terminal["kernel"]
    k.open_for_read(Path(agent.daemon.__file__))          # the agent's code, measured as it is loaded
    k.open_for_read(terminal["ref"])                      # the daemon reads the reference at its start
    k.open_for_read(terminal["ref"])                      # read again, unchanged: not measured again
    raw, q = quoted(terminal)
    got = check_reference(raw, q, str(terminal["ref"]), PINNED)
    assert len(got) == 1 and got[0].digest.hex() == PINNED
    assert [e.path for e in parse_list(raw)][0] == b"boot_aggregate"
    # Read after the quote, the list may hold entries the quote does not cover: they are not attested. A swap the kernel
    # measured after the quote is not this probe's (the worker judges with the reference it was started with).
    swap = terminal["ref"].with_name("swap.json")
    swap.write_bytes(SWAPPED)
    swap.replace(terminal["ref"])
    k.open_for_read(terminal["ref"])
    later = k.list_path.read_bytes()
    assert len(parse_list(later)) == len(parse_list(raw)) + 1
    assert check_reference(later, q, str(terminal["ref"]), PINNED) == got


def test_root_swapping_the_reference_is_caught_by_the_kernels_entry_whatever_the_daemon_reports(terminal):
    k, ref = terminal["kernel"], terminal["ref"]
    k.open_for_read(ref)
    swap = ref.with_name("swap.json")                     # root's swap: a new file renamed over the reference ...
    swap.write_bytes(SWAPPED)
    swap.replace(ref)
    k.open_for_read(ref)                                  # ... read by the restarted (patched) daemon
    raw, q = quoted(terminal)
    with pytest.raises(ProbeRejected) as got:
        check_reference(raw, q, str(ref), PINNED)
    assert got.value.reason == "DOT_REFERENCE_MISMATCH"
    # Root edits the swapped file's entry out of the list: it no longer replays to the quoted PCR 10, and root's own
    # extends of PCR 10 add to it, never take the kernel's extend away.
    entries = parse_list(raw)
    cut = raw[:len(raw) - len(_entry_bytes(entries[-1]))]
    assert len(parse_list(cut)) == len(entries) - 1
    extend_pcr(terminal["tcti"], 10, hashlib.sha256(entries[-2].template_data).digest())   # root's own extend
    _, q = quoted(terminal)
    for edited in (raw, cut, cut + _entry_bytes(entries[-2])):     # nor does the kernel's own list any more
        with pytest.raises(ImaFailed) as bad:
            check_reference(edited, q, str(ref), PINNED)
        assert bad.value.reason == "ATTESTATION_FAILED" and bad.value.check == "IMA_REPLAY"
        with pytest.raises(ProbeRejected, match="PCR \\[10\\]"):       # the server's quote check says so too
            nonce = os.urandom(32)
            check_quote(replace(terminal["policy"], ima_reference=None,
                                expected={**terminal["policy"].expected, 10: replay(parse_list(edited))}),
                        pb.ProbeHeader(nonce=nonce, platform_quote=terminal["ak"].quote(nonce)))


def test_a_reference_never_read_or_read_while_written_is_refused(terminal):
    k, ref = terminal["kernel"], terminal["ref"]
    k.open_for_read(Path(agent.daemon.__file__))
    raw, q = quoted(terminal)
    with pytest.raises(ProbeRejected) as got:
        check_reference(raw, q, str(ref), PINNED)
    assert got.value.reason == "DOT_REFERENCE_MISSING"
    k.open_for_read(ref)
    k.violation(ref)                                      # root wrote it while the daemon had it open
    raw, q = quoted(terminal)
    with pytest.raises(ImaFailed) as bad:
        check_reference(raw, q, str(ref), PINNED)
    assert bad.value.reason == "ATTESTATION_FAILED" and bad.value.check == "IMA_VIOLATION"


def test_the_list_parser_refuses_every_cut_and_flip_with_its_code(terminal):
    k = terminal["kernel"]
    k.open_for_read(terminal["ref"])
    raw = k.list_path.read_bytes()
    entries = parse_list(raw)
    bounds = {0}
    for e in entries:
        bounds.add(max(bounds) + len(_entry_bytes(e)))
    assert max(bounds) == len(raw)
    for n in range(len(raw)):                             # a cut between entries is a shorter list; others refused
        if n in bounds:
            assert len(parse_list(raw[:n])) == sorted(bounds).index(n)
        else:
            with pytest.raises(ImaFailed, match="IMA_MALFORMED"):
                parse_list(raw[:n])
    for i in range(len(raw)):                             # any byte changed: refused, or a list of other content
        flipped = raw[:i] + bytes([raw[i] ^ 0x41]) + raw[i + 1:]
        try:
            got = parse_list(flipped)
        except ImaFailed as exc:
            assert exc.check == "IMA_MALFORMED"
        else:
            assert replay(got) != replay(entries) or [e.pcr for e in got] != [e.pcr for e in entries]


def _entry_bytes(e) -> bytes:
    return entry(e.template_data, e.pcr, e.template_digest, e.template)


def entry(data: bytes, pcr: int = 10, tdigest: bytes | None = None, template: bytes = b"ima-ng") -> bytes:
    """One entry of the binary list, as the kernel (or root) writes it."""
    td = hashlib.sha1(data).digest() if tdigest is None else tdigest
    return struct.pack("<I", pcr) + td + field(template) + field(data)


def test_the_attestor_sends_the_kernels_list_read_after_its_quote_bounded(terminal, tmp_path, monkeypatch):
    import agent.security.tpm as tpm
    k = terminal["kernel"]
    k.open_for_read(terminal["ref"])
    spec = f"tpm:key={tmp_path / 'keys' / 'attestation.tpmkey'};tcti={terminal['tcti']}"
    ak = load_attestor(f"{spec};ima={k.list_path}")
    try:
        assert ak.ima_list() == k.list_path.read_bytes()
        monkeypatch.setattr(tpm, "MAX_IMA_LIST", len(k.list_path.read_bytes()) - 1)
        with pytest.raises(tpm.TpmError, match="larger than"):
            ak.ima_list()
    finally:
        ak.close()
    assert terminal["ak"].ima_list() == b""                   # no ima= in its spec: no list
    with pytest.raises(tpm.KeyStoreError, match="unknown: ima"):    # only the attestation key takes one
        tpm.load_tpm_signer(f"tpm:key={tmp_path / 'keys' / 'signing.tpmkey'};tcti={terminal['tcti']};ima=/x")


# ima34: review34b's findings (its proofs of concept in /tmp/review34b/test_poc.py), each now refused or documented.

def test_a_swap_read_under_another_name_passes_the_path_check_and_is_unlisted_under_an_allowlist(terminal):
    k, ref = terminal["kernel"], terminal["ref"]
    code = Path(agent.daemon.__file__)
    k.open_for_read(code)
    k.open_for_read(ref)                                  # the genuine file, read once at its registered path
    allow = frozenset({hashlib.sha256(code.read_bytes()).digest()})     # the release's files (the pinned one added)
    raw, q = quoted(terminal)
    assert check_reference(raw, q, str(ref), PINNED, allow)
    alias = ref.with_name("dot-reference.d.json")         # root: the swap under another name, a patched daemon
    alias.write_bytes(SWAPPED)                            # judging with it and reporting the pinned digest
    k.open_for_read(alias)
    raw, q = quoted(terminal)
    assert check_reference(raw, q, str(ref), PINNED)      # the path alone cannot know which file was judged with
    with pytest.raises(ImaFailed) as bad:
        check_reference(raw, q, str(ref), PINNED, allow)
    assert bad.value.reason == "ATTESTATION_FAILED" and bad.value.check == "IMA_UNLISTED"
    os.link(ref, ref.with_name("hardlink.json"))          # the genuine content under any name is the listed digest
    k.open_for_read(ref.with_name("hardlink.json"))
    with pytest.raises(ImaFailed, match="IMA_UNLISTED: 1 "):
        check_reference(k.list_path.read_bytes(), quoted(terminal)[1], str(ref), PINNED, allow)


def test_a_list_root_wrote_and_extended_himself_without_the_kernels_boot_aggregate_is_refused(tmp_path):
    with swtpm() as tcti:                                 # booted without IMA: PCR 10 zero, no kernel entry
        (tmp_path / "keys").mkdir()
        e = enrol(tmp_path / "keys", tcti=tcti, pcrs=BOOT, ima_reference="/etc/capture-agent/dot-reference.json")
        ak = load_attestor(f"tpm:key={e.attestation};tcti={tcti}")
        t = {"ak": ak, "policy": AttestationPolicy.from_registration(e.registration),
             "kernel": type("K", (), {"list_path": tmp_path / "list"})()}
        try:
            good = template_data(bytes.fromhex(PINNED), "/etc/capture-agent/dot-reference.json")
            extend_pcr(tcti, 10, hashlib.sha256(good).digest())        # root's extend of his made-up entry
            t["kernel"].list_path.write_bytes(entry(good))
            raw, q = quoted(t)                            # the quote itself is genuine
            with pytest.raises(ImaFailed) as bad:
                check_reference(raw, q, "/etc/capture-agent/dot-reference.json", PINNED)
            assert bad.value.check == "IMA_BOOT_AGGREGATE"
            # A boot_aggregate of his own needs the registered PCRs 0-9; a boot without the IMA policy (another
            # kernel command line or initramfs, which GRUB measures into PCRs 8-9) moves them: the quote is refused.
            extend_pcr(tcti, 8, hashlib.sha256(b"linux /vmlinuz root=/dev/sda1").digest())
            nonce = os.urandom(32)
            with pytest.raises(ProbeRejected, match="PCR \\[8\\]"):
                check_quote(t["policy"], pb.ProbeHeader(nonce=nonce, platform_quote=ak.quote(nonce)))
        finally:
            ak.close()


@pytest.mark.parametrize("zeros", [20, 32])
def test_any_violation_is_refused_whatever_path_it_names_in_either_kernels_form(terminal, zeros):
    k, ref = terminal["kernel"], terminal["ref"]
    k.open_for_read(ref)
    k.violation(ref, zeros)                               # root rewrote it in place under the daemon's open file
    raw, q = quoted(terminal)
    last = parse_list(raw)[-1]
    assert last.violation and last.digest == bytes(zeros) and last.algo == "sha256"
    renamed = raw[:-len(_entry_bytes(last))] + entry(field(b"sha256:\0" + bytes(zeros)) + field(b"/var/log/syslog\0"),
                                                     tdigest=bytes(20))
    for sent in (raw, renamed):                           # a violation's path is in neither digest: root renames it
        assert replay(parse_list(sent)) == q[10]
        with pytest.raises(ImaFailed) as bad:
            check_reference(sent, q, str(ref), PINNED)
        assert bad.value.check == "IMA_VIOLATION"


def test_a_violations_digest_is_zeros_of_20_bytes_or_its_size_and_nothing_else():
    for d in (b"sha256:\0" + bytes(20), b"sha256:\0" + bytes(32), b"sha1:\0" + bytes(20)):
        assert parse_list(entry(field(d) + field(b"/x\0"), tdigest=bytes(20)))[0].violation
    for d in (b"sha256:\0" + bytes(21), b"sha256:\0" + b"\1" + bytes(31)):
        with pytest.raises(ImaFailed, match="IMA_MALFORMED"):
            parse_list(entry(field(d) + field(b"/x\0"), tdigest=bytes(20)))
    with pytest.raises(ImaFailed, match="IMA_MALFORMED"):   # 20 bytes under sha256 only for a violation
        parse_list(entry(field(b"sha256:\0" + bytes(20)) + field(b"/x\0")))


def test_ima_buf_entries_are_parsed_and_must_be_on_the_allowlist(terminal):
    k, ref = terminal["kernel"], terminal["ref"]
    k.open_for_read(ref)
    k.measure_buffer("kexec-cmdline", b"root=/dev/sda1 ima_policy=tcb")
    raw, q = quoted(terminal)
    buf = parse_list(raw)[-1]
    assert buf.template == b"ima-buf" and buf.path == b"kexec-cmdline"
    assert check_reference(raw, q, str(ref), PINNED)
    with pytest.raises(ImaFailed, match="IMA_UNLISTED"):
        check_reference(raw, q, str(ref), PINNED, frozenset({bytes(32)}))
    assert check_reference(raw, q, str(ref), PINNED, frozenset({buf.digest}))
    forged = buf.template_data[:-1] + b"x"                # a buffer its digest does not match
    with pytest.raises(ImaFailed, match="IMA_MALFORMED: an ima-buf"):
        parse_list(entry(forged, template=b"ima-buf"))
    with pytest.raises(ImaFailed, match="IMA_MALFORMED: an entry is of neither"):
        parse_list(entry(buf.template_data, template=b"ima-sig"))


def test_registration_needs_pcrs_0_to_9_and_a_canonical_path(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec

    from agent.security.tpm import KeyStoreError
    reg = {"attestation_key": ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(), "pcr_bank": "sha256",
        "pcrs": {str(i): "00" * 32 for i in range(10)}, "ima": {"pcr": 10, "dot_reference": "/etc/r.json"}}
    assert AttestationPolicy.from_registration(reg).ima_reference == "/etc/r.json"
    without = {**reg, "pcrs": {str(i): "00" * 32 for i in range(8)}}           # the review's 0-7
    with pytest.raises(ValueError, match="PCRs 0-9"):
        AttestationPolicy.from_registration(without)
    for path in ("/etc//r.json", "/etc/../etc/r.json", "/etc/./r.json", "/etc/r/", "//etc/r.json"):
        with pytest.raises(ValueError, match="canonical"):
            AttestationPolicy.from_registration({**reg, "ima": {"pcr": 10, "dot_reference": path}})
        with pytest.raises(KeyStoreError, match="canonical"):
            enrol(tmp_path / "x", tcti="none", pcrs=BOOT, ima_reference=path)
    with pytest.raises(KeyStoreError, match="PCRs 0-9"):
        enrol(tmp_path / "x", tcti="none", pcrs="sha256:0,1,2,3,4,5,6,7", ima_reference="/etc/r.json")
    for bad in ([], ["AB" * 32], ["ab" * 31], "ab" * 32):
        with pytest.raises(ValueError, match="allowlist"):
            AttestationPolicy.from_registration({**reg, "ima": {**reg["ima"], "allowlist": bad}})
    got = AttestationPolicy.from_registration({**reg, "ima": {**reg["ima"], "allowlist": ["ab" * 32]}})
    assert got.ima_allowlist == frozenset({bytes.fromhex("ab" * 32)})
    with pytest.raises(KeyStoreError, match="allowlist"):   # refused before the TPM is touched
        enrol(tmp_path / "x", tcti="none", pcrs=BOOT, ima_reference="/etc/r.json", ima_allowlist=["AB" * 32])
