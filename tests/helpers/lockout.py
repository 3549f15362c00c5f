"""``locked_out``: a call the ingest server must refuse ``LOCKED_OUT`` with its one reply (the same
for every key at its limit), and what the server's own log says of the key."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from agent.uplink.client import UplinkLockedOut
from hil.ingest.limits import LOCKED_OUT_REPLY


def locked_out(caplog: pytest.LogCaptureFixture, call: Callable[[], object]) -> str:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hil.ingest.server"), pytest.raises(UplinkLockedOut) as exc:
        call()
    assert exc.value.code == "UPL_LOCKED_OUT" and exc.value.message == f"BeginCapture: {LOCKED_OUT_REPLY}"
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("LOCKED_OUT")]
    assert len(said) == 1, said
    return said[0]
