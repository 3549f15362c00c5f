"""A software TPM 2.0 for tests (``hil/swtpmproc.py``). Its PCRs 0-7 read as zeros (no firmware
measured them); PCR 16 (debug) can be extended and reset from locality 0, which is what the tests use to change
the machine's "measured state"."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest

from hil import swtpmproc

T = TypeVar("T")


@contextmanager
def swtpm() -> Iterator[str]:
    """A fresh swtpm (``hil/swtpmproc.py``); the test is skipped where swtpm or tpm2-pytss is missing."""
    pytest.importorskip("tpm2_pytss", reason="tpm2-pytss is not installed (make setup installs it)")
    try:
        with swtpmproc.swtpm() as tcti:
            yield tcti
    except swtpmproc.SwtpmUnavailable as exc:
        pytest.skip(str(exc))


@contextmanager
def on_swtpm(make: Callable[[str], T]) -> Iterator[T]:
    """``make(tcti)`` on a fresh swtpm (a test's terminal), closed after."""
    with swtpm() as tcti:
        made = make(tcti)
        try:
            yield made
        finally:
            made.close()       # type: ignore[attr-defined]


def extend_pcr16(tcti: str, what: bytes = b"a change the terminal did not enrol") -> None:
    """Measure something new into PCR 16, as a changed boot component would into PCRs 0-7."""
    extend_pcr(tcti, 16, hashlib.sha256(what).digest())


def extend_pcr(tcti: str, index: int, sha256: bytes) -> None:
    """TPM2_PCR_Extend of PCR ``index``'s SHA-256 bank from locality 0, as root on the terminal can (pin34: PCR 10)."""
    from tpm2_pytss.constants import ESYS_TR, TPM2_ALG
    from tpm2_pytss.types import TPML_DIGEST_VALUES, TPMT_HA

    from agent.security.tpm import TpmConnection
    ha = TPMT_HA(hashAlg=TPM2_ALG.SHA256)
    ha.digest.sha256 = sha256
    conn = TpmConnection.get(tcti)
    try:
        with conn.lock:
            conn.esapi.pcr_extend(getattr(ESYS_TR, f"PCR{index}"), TPML_DIGEST_VALUES([ha]))
    finally:
        conn.release()


def reset_pcr16(tcti: str) -> None:
    from tpm2_pytss.constants import ESYS_TR

    from agent.security.tpm import TpmConnection
    conn = TpmConnection.get(tcti)
    try:
        with conn.lock:
            conn.esapi.pcr_reset(ESYS_TR.PCR16)
    finally:
        conn.release()
