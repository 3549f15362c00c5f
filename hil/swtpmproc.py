"""A software TPM 2.0 (swtpm, the libtpms emulator) as a child process, for tests, benches and rigs
without a TPM: started in a temp dir on Unix sockets, stopped and removed afterwards. Its PCRs 0-7
read as zeros (no firmware measured them).

Unix sockets, not loopback ports: a port picked as free can be taken by another process before
swtpm binds it, and the TSS would then wait forever on whatever answers there."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager


class SwtpmUnavailable(RuntimeError):
    pass


def listening(path: str) -> bool:
    """Whether a Unix socket at ``path`` accepts connections. The file appears at ``bind()``, before
    swtpm calls ``listen()``: a TSS connecting in between is refused (stop 40's CI failed so)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


@contextmanager
def swtpm() -> Iterator[str]:
    """Run a fresh swtpm; yields its TCTI string (``swtpm:path=...``)."""
    if shutil.which("swtpm") is None:
        raise SwtpmUnavailable("swtpm is not installed (make setup installs swtpm)")
    state = tempfile.mkdtemp(prefix="swtpm-")
    sock = os.path.join(state, "tpm")
    proc = subprocess.Popen(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
                             "--server", f"type=unixio,path={sock}",
                             "--ctrl", f"type=unixio,path={sock}.ctrl",          # the TCTI's convention
                             "--flags", "not-need-init,startup-clear"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not (listening(sock + ".ctrl") and listening(sock)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SwtpmUnavailable("swtpm did not start")
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
