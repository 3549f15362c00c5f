"""pin34: the dot reference measured by the kernel, not reported by the daemon (``hil/ingest/ima.py``). Only the
kernel's part is faked (``tests/helpers/ima.py``: the ``ima-ng`` list in the kernel's binary format and its extends of
a real swtpm's PCR 10); the quote is the real attestation key's, checked by the server's ``check_quote`` against the
list's replay."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

import agent.daemon
from agent.security.tpm import enrol, load_attestor
from agent.uplink.seal import ProbeRejected
from hil.ingest.attestation import AttestationPolicy, check_quote
from hil.ingest.ima import ImaFailed, check_reference, parse_list, replay
from proto.capture_agent.v1 import ingest_pb2 as pb
from tests.helpers.ima import FakeImaKernel
from tests.helpers.swtpm import extend_pcr, swtpm

ENROLLED = b'{"a reference": "enrolled on this unit"}'
SWAPPED = b'{"a reference": "enrolled on another unit"}'


@pytest.fixture
def terminal(tmp_path):
    """A fresh TPM (PCR 10 cannot be reset), its attestation key quoting PCR 10, the fake kernel, the reference."""
    with swtpm() as tcti:
        (tmp_path / "keys").mkdir()
        e = enrol(tmp_path / "keys", tcti=tcti, pcrs="sha256:10")
        ak = load_attestor(f"tpm:key={e.attestation};tcti={tcti}")
        ref = tmp_path / "etc" / "capture-agent" / "dot-reference.json"
        ref.parent.mkdir(parents=True)
        ref.write_bytes(ENROLLED)
        try:
            yield {"tcti": tcti, "ak": ak, "policy": AttestationPolicy.from_registration(e.registration),
                   "kernel": FakeImaKernel(tcti, tmp_path), "ref": ref}
        finally:
            ak.close()


PINNED = hashlib.sha256(ENROLLED).hexdigest()


def quoted(t) -> tuple[bytes, bytes]:
    """The probe's quote for a fresh nonce, checked by the server against the list's replay (PCR 10 is replayed, not
    registered); the list and the quoted PCR 10."""
    raw = t["kernel"].list_path.read_bytes()
    nonce = os.urandom(32)
    header = pb.ProbeHeader(nonce=nonce, platform_quote=t["ak"].quote(nonce))
    check_quote(replace(t["policy"], expected={10: replay(parse_list(raw))}), header)
    return raw, header.platform_quote.pcr_values[0]


def test_the_enrolled_reference_as_the_kernel_measured_it_replays_to_the_quoted_pcr10(terminal):
    k = terminal["kernel"]
    k.open_for_read(Path(agent.daemon.__file__))          # the agent's code, measured as it is loaded
    k.open_for_read(terminal["ref"])                      # the daemon reads the reference at its start
    k.open_for_read(terminal["ref"])                      # read again, unchanged: not measured again
    raw, pcr10 = quoted(terminal)
    got = check_reference(raw, pcr10, str(terminal["ref"]), PINNED)
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
    assert check_reference(later, pcr10, str(terminal["ref"]), PINNED) == got


def test_root_swapping_the_reference_is_caught_by_the_kernels_entry_whatever_the_daemon_reports(terminal):
    k, ref = terminal["kernel"], terminal["ref"]
    k.open_for_read(ref)
    swap = ref.with_name("swap.json")                     # root's swap: a new file renamed over the reference ...
    swap.write_bytes(SWAPPED)
    swap.replace(ref)
    k.open_for_read(ref)                                  # ... read by the restarted (patched) daemon
    raw, pcr10 = quoted(terminal)
    with pytest.raises(ProbeRejected) as got:
        check_reference(raw, pcr10, str(ref), PINNED)
    assert got.value.reason == "DOT_REFERENCE_MISMATCH"
    # Root edits the swapped file's entry out of the list: it no longer replays to the quoted PCR 10, and root's own
    # extends of PCR 10 add to it, never take the kernel's extend away.
    entries = parse_list(raw)
    cut = raw[:len(raw) - len(_entry_bytes(entries[-1]))]
    assert len(parse_list(cut)) == len(entries) - 1
    extend_pcr(terminal["tcti"], 10, hashlib.sha256(entries[-2].template_data).digest())   # root's own extend
    pcr10 = terminal["ak"].quote(os.urandom(32)).pcr_values[0]
    for edited in (raw, cut, cut + _entry_bytes(entries[-2])):     # nor does the kernel's own list any more
        with pytest.raises(ImaFailed) as bad:
            check_reference(edited, pcr10, str(ref), PINNED)
        assert bad.value.reason == "ATTESTATION_FAILED" and bad.value.check == "IMA_REPLAY"
        with pytest.raises(ProbeRejected, match="PCR \\[10\\]"):       # the server's quote check says so too
            nonce = os.urandom(32)
            check_quote(replace(terminal["policy"], expected={10: replay(parse_list(edited))}),
                        pb.ProbeHeader(nonce=nonce, platform_quote=terminal["ak"].quote(nonce)))


def test_a_reference_never_read_or_read_while_written_is_refused(terminal):
    k, ref = terminal["kernel"], terminal["ref"]
    k.open_for_read(Path(agent.daemon.__file__))
    raw, pcr10 = quoted(terminal)
    with pytest.raises(ProbeRejected) as got:
        check_reference(raw, pcr10, str(ref), PINNED)
    assert got.value.reason == "DOT_REFERENCE_MISSING"
    k.open_for_read(ref)
    k.violation(ref)                                      # root wrote it while the daemon had it open
    raw, pcr10 = quoted(terminal)
    with pytest.raises(ProbeRejected) as got:
        check_reference(raw, pcr10, str(ref), PINNED)
    assert got.value.reason == "DOT_REFERENCE_MISMATCH" and "violation" in str(got.value)


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
    import struct
    return (struct.pack("<I", e.pcr) + e.template_digest + struct.pack("<I", 6) + b"ima-ng"
            + struct.pack("<I", len(e.template_data)) + e.template_data)


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
