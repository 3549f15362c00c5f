"""A software TPM 2.0 (swtpm, the libtpms emulator) for tests: started in a temp dir on Unix
sockets, stopped and removed afterwards. Its PCRs 0-7 read as zeros (no firmware measured them);
PCR 16 (debug) can be extended and reset from locality 0, which is what the tests use to change
the machine's "measured state"."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def swtpm() -> Iterator[str]:
    """Run a fresh swtpm on Unix sockets in a temp dir; yields its TCTI string (``swtpm:path=...``).

    Unix sockets, not loopback ports: a port picked as free can be taken by another process before
    swtpm binds it, and the TSS would then wait forever on whatever answers there."""
    if shutil.which("swtpm") is None:
        pytest.skip("swtpm is not installed (make setup installs swtpm)")
    pytest.importorskip("tpm2_pytss", reason="tpm2-pytss is not installed (make setup installs it)")
    state = tempfile.mkdtemp(prefix="swtpm-")
    sock = os.path.join(state, "tpm")
    proc = subprocess.Popen(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
                             "--server", f"type=unixio,path={sock}",
                             "--ctrl", f"type=unixio,path={sock}.ctrl",          # the TCTI's convention
                             "--flags", "not-need-init,startup-clear"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not (os.path.exists(sock) and os.path.exists(sock + ".ctrl")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("swtpm did not start")
            time.sleep(0.01)
        yield f"swtpm:path={sock}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(state, ignore_errors=True)


def extend_pcr16(tcti: str, what: bytes = b"a change the terminal did not enrol") -> None:
    """Measure something new into PCR 16, as a changed boot component would into PCRs 0-7."""
    from tpm2_pytss.constants import ESYS_TR, TPM2_ALG
    from tpm2_pytss.types import TPML_DIGEST_VALUES, TPMT_HA

    from agent.security.tpm import TpmConnection
    ha = TPMT_HA(hashAlg=TPM2_ALG.SHA256)
    ha.digest.sha256 = hashlib.sha256(what).digest()
    conn = TpmConnection.get(tcti)
    try:
        with conn.lock:
            conn.esapi.pcr_extend(ESYS_TR.PCR16, TPML_DIGEST_VALUES([ha]))
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
