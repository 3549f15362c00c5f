"""A private ``redis-server`` for tests and benches: the ingest server's shared store
(``hil/ingest/redis_store.py``) needs a real Redis, and this starts one that nobody else can reach.

It listens only on a Unix socket in a directory of ours (mode 0700, no TCP port), persists to an
append-only file in that directory (``appendonly yes``, no RDB snapshots: the ingest server refuses
a Redis that persists nothing, ``AGT_STORE_VOLATILE``; the file goes with the directory), and is
stopped with SIGTERM when done. The Debian package
``redis-server`` provides the binary (``make setup`` installs it); without it, :func:`start_redis`
raises rather than letting a test pass without the store it was meant to test.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from drivers.errors import CaptureAgentError


class RedisUnavailable(CaptureAgentError):
    code = "AGT_REDIS_UNAVAILABLE"


@dataclass
class RedisProcess:
    proc: subprocess.Popen
    socket: Path

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_redis(directory: Path, timeout_s: float = 10.0, *, appendonly: bool = True, password: str = "",
                extra: tuple[str, ...] = ()) -> RedisProcess:
    """``appendonly=False``: a Redis that persists nothing (tests of the server's store checks: one
    restarted so forgets what the directory's append-only file holds). ``password``: ``requirepass``
    (a Redis that also listens on TCP, ``extra`` ``("--port", N, "--bind", "127.0.0.1")``, the primary
    of a replica, which dials it over TCP); ``extra``: more of redis-server's arguments (they win)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable("redis-server is not installed (Debian package redis-server; run make setup)")
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock = directory / "redis.sock"
    args = [binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--save", "",
            "--appendonly", "yes" if appendonly else "no", "--dir", str(directory), "--daemonize", "no",
            "--loglevel", "warning", "--logfile", str(directory / "redis.log"),
            *(("--requirepass", password) if password else ()), *extra]
    import redis
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            logfile = directory / "redis.log"
            log = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise RedisUnavailable(f"redis-server exited with status {proc.returncode}: {log}")
        if sock.exists():
            try:
                client = redis.Redis(unix_socket_path=str(sock), password=password or None)
                client.ping()
                client.close()
                return RedisProcess(proc, sock)
            except redis.ConnectionError:
                pass
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise RedisUnavailable(f"redis-server did not answer on {sock} within {timeout_s:g} s")
