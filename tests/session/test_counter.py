"""The probe counter: monotonic across restarts, written before use, damaged files refused."""

from __future__ import annotations

import os

import pytest

from agent.session.counter import ProbeCounter
from agent.session.errors import SessionError


def test_counts_up_and_survives_a_restart(tmp_path):
    path = tmp_path / "probe-counter"
    c = ProbeCounter(path)
    assert [c.next() for _ in range(3)] == [1, 2, 3]
    assert path.read_text() == "3"
    again = ProbeCounter(path)                                # the daemon restarted
    assert again.value == 3 and again.next() == 4


def test_the_value_is_on_disk_before_it_is_handed_out(tmp_path, monkeypatch):
    path = tmp_path / "probe-counter"
    c = ProbeCounter(path)
    c.next()
    calls = []
    real = os.replace

    def replace(src, dst):
        calls.append(dst)
        real(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    assert c.next() == 2 and calls == [path] and path.read_text() == "2"
    assert not path.with_suffix(".tmp").exists()              # written atomically through a temp file


def test_without_a_file_it_counts_in_memory():
    c = ProbeCounter(None)
    assert c.next() == 1 and c.next() == 2


def test_a_damaged_counter_file_is_a_typed_error(tmp_path):
    path = tmp_path / "probe-counter"
    path.write_text("not a number")
    with pytest.raises(SessionError, match="damaged") as exc:
        ProbeCounter(path)
    assert exc.value.code == "SES_ERROR"
