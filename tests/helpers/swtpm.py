"""A software TPM 2.0 (swtpm, the libtpms emulator) for tests: started in a temp dir on loopback
ports, stopped and removed afterwards. Its PCRs 0-7 read as zeros (no firmware measured them);
PCR 16 (debug) can be extended and reset from locality 0, which is what the tests use to change
the machine's "measured state"."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _free_port_pair() -> int:
    """A port p with p+1 free too (the swtpm TCTI always finds the control channel at port + 1)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free loopback port pair for swtpm")


@contextmanager
def swtpm() -> Iterator[str]:
    """Run a fresh swtpm; yields its TCTI string (``swtpm:host=127.0.0.1,port=N``)."""
    if shutil.which("swtpm") is None:
        pytest.skip("swtpm is not installed (make setup installs swtpm)")
    pytest.importorskip("tpm2_pytss", reason="tpm2-pytss is not installed (make setup installs it)")
    state = tempfile.mkdtemp(prefix="swtpm-")
    for _attempt in range(3):
        port = _free_port_pair()
        proc = subprocess.Popen(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
                                 "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
                                 "--ctrl", f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
                                 "--flags", "not-need-init,startup-clear"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.02)
        if proc.poll() is None:
            break
    else:
        shutil.rmtree(state, ignore_errors=True)
        raise RuntimeError("swtpm did not start")
    try:
        yield f"swtpm:host=127.0.0.1,port={port}"
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
