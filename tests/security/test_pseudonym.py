"""Keyed pseudonyms of subject and other references (audit log, lockout): a per-terminal secret
in a 0600 file, made once; nobody without it can test a guess or link two terminals."""

from __future__ import annotations

import hashlib
import os

import pytest

from agent.security.keys import KeyPermissionError
from agent.security.pseudonym import KEY_FILE, Pseudonymizer


def test_a_key_is_made_once_0600_and_gives_stable_pseudonyms(tmp_path):
    a = Pseudonymizer.load_or_create(tmp_path)
    assert oct((tmp_path / KEY_FILE).stat().st_mode & 0o777) == "0o600"
    again = Pseudonymizer.load_or_create(tmp_path)
    assert a("subject", "CUST-42") == again("subject", "CUST-42")
    p = a("subject", "CUST-42")
    assert p.startswith("subject:") and len(p) == len("subject:") + 32
    assert hashlib.sha256(b"CUST-42").hexdigest()[:16] not in p          # not the unkeyed, linkable digest
    assert a("consent", "CUST-42") != p                                   # the kind is part of the input
    assert "key" not in repr(a).replace("key=<hidden>", "")


def test_two_terminals_do_not_link(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two = Pseudonymizer.load_or_create(tmp_path / "a"), Pseudonymizer.load_or_create(tmp_path / "b")
    assert one("subject", "CUST-42") != two("subject", "CUST-42")


def test_a_key_file_others_can_read_is_refused(tmp_path):
    Pseudonymizer.load_or_create(tmp_path)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(KeyPermissionError):
        Pseudonymizer.load_or_create(tmp_path)
