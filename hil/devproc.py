"""Start ``capture-agent`` child processes and wait until they say they are ready (demo, tests, HIL).

The daemon and the reference server each print one ``... ready ...`` line on stdout once they
serve; this waits for that line with a deadline instead of sleeping and hoping.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.errors import CaptureAgentError

if TYPE_CHECKING:
    from hil.provision import Provisioned


class ChildFailed(CaptureAgentError):
    code = "AGT_CHILD_FAILED"


class Child:
    """A ``capture-agent`` sub-command in its own process; its output is kept for diagnostics."""

    def __init__(self, args: list[str], ready: str, *, timeout_s: float = 120.0, env: dict | None = None,
                 cwd: str | os.PathLike[str] | None = None, module: str = "agent.cli",
                 command: list[str] | None = None, clean_env: bool = False):
        # ``module``: the command line to run (HIL rigs use one that registers their camera first);
        # ``command``: what runs it (default: this interpreter), e.g. wrapped in setpriv;
        # ``clean_env``: ``env`` is the whole environment rather than additions to ours.
        cmd = [*(command or [sys.executable]), "-m", module, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     env=dict(env or {}) if clean_env else {**os.environ, **(env or {})}, cwd=cwd)
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise ChildFailed(f"{' '.join(args[:1])} did not become ready within {timeout_s:g} s:\n"
                                  + "".join(self.lines[-20:])) from None
            if line is None:
                raise ChildFailed(f"{' '.join(args[:1])} exited with status {self.proc.wait()} before it was ready:\n"
                                  + "".join(self.lines[-20:]))
            if ready in line:
                self.ready_line = line.strip()
                return

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            self._q.put(line)
        self._q.put(None)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, then wait; SIGKILL only if it does not stop in time. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def output(self) -> str:
        return "".join(self.lines)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()                       # also when what follows its start fails: no orphan left running


def start_server(config: Path, **kw) -> Child:
    return Child(["server", "--config", str(config)], "ingest server: ready", **kw)


def served_port(server: Child) -> int:
    """The port a started ``capture-agent server`` listens on, from its ready line (a config's
    ``listen = "127.0.0.1:0"``: the port the kernel picked when it bound)."""
    m = re.search(r"ready on [^ ]+:(\d+);", server.ready_line)
    if not m:
        raise ChildFailed(f"the server's ready line names no port: {server.ready_line}")
    return int(m.group(1))


def start_dev_server(p: Provisioned, **kw) -> tuple[Child, Provisioned]:
    """The provisioned development server (``provision_dev(..., port=0)``) on a port the kernel
    picks, and ``p`` with the agent's config pointed at it (:meth:`Provisioned.serving_on`)."""
    server = start_server(p.server_config, **kw)
    try:
        return server, p.serving_on(served_port(server))
    except BaseException:
        server.stop()
        raise


def start_daemon(config: Path, **kw) -> Child:
    return Child(["run", "--config", str(config)], "capture-agent: ready", **kw)
