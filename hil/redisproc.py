"""A private ``redis-server`` for tests and benches: the ingest server's shared store
(``hil/ingest/redis_store.py``) needs a real Redis, and this starts one that nobody else can reach.

It listens only on a Unix socket in a directory of ours (mode 0700, no TCP port), persists to an
append-only file in that directory (``appendonly yes``, no RDB snapshots: the ingest server refuses
a Redis that persists nothing, ``AGT_STORE_VOLATILE``; the file goes with the directory), and is
stopped with SIGTERM when done. The Debian package
``redis-server`` provides the binary (``make setup`` installs it); without it, :func:`start_redis`
raises rather than letting a test pass without the store it was meant to test.

``start_redis(..., clock=True)`` gives the Redis a clock the test sets (:class:`RedisClock`): a shim
(``hil/fakes/redis_clock.c``, built with ``gcc`` into the private directory and loaded with
``LD_PRELOAD``) answers Redis's reads of the wall clock from a file in that directory, so a test can
freeze Redis's ``TIME`` (and the time Redis expires keys by) or step it, as an operator's ``date -s``
or an NTP step on the Redis host would, without waiting (sec20). Every other clock is the kernel's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from drivers.errors import CaptureAgentError


class RedisUnavailable(CaptureAgentError):
    code = "AGT_REDIS_UNAVAILABLE"


@dataclass
class RedisClock:
    """The wall clock a test's Redis reads (``start_redis(clock=True)``); the real time until set."""

    path: Path

    def freeze(self, unix_ms: int) -> None:
        """Redis's clock stands at ``unix_ms`` until set again."""
        self._write(f"={int(unix_ms)}")

    def shift(self, ms: int) -> None:
        """Redis's clock runs with the real one, ``ms`` ahead (behind when negative)."""
        self._write(f"+{int(ms)}" if ms >= 0 else f"-{-int(ms)}")

    def real(self) -> None:
        self._write("")

    def _write(self, text: str) -> None:
        # One write at offset 0 of a file Redis holds open: read again at each of its clock reads.
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, text.encode().ljust(31, b" "), 0)
        finally:
            os.close(fd)


@dataclass
class RedisProcess:
    proc: subprocess.Popen
    socket: Path
    clock: RedisClock | None = None
    port: int = 0                    # its TCP port on 127.0.0.1 (``start_redis(tcp=True)``); 0: Unix socket only

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


def _clock_shim(directory: Path) -> Path:
    """``hil/fakes/redis_clock.c`` built into ``directory`` (gcc, which ``make setup`` installs)."""
    source = Path(__file__).parent / "fakes" / "redis_clock.c"
    out = directory / "redis_clock.so"
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RedisUnavailable("a Redis with a test clock needs gcc (Debian package gcc; run make setup)")
    done = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(source)], capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise RedisUnavailable(f"the Redis clock shim did not build: {done.stderr[-1000:]}")
    return out


def free_port() -> int:
    """A loopback TCP port nothing is bound to now. Another process may take it before whoever asked
    binds it (``-n 2``: the other test process's servers bind ports the kernel picks): bind and retry."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# What redis-server logs when its TCP port is taken (it then exits with status 1).
PORT_TAKEN = "Address already in use"
TCP_ATTEMPTS = 5


def start_redis(directory: Path, timeout_s: float = 10.0, *, appendonly: bool = True, password: str = "",
                extra: tuple[str, ...] = (), clock: bool = False, tcp: bool = False) -> RedisProcess:
    """``appendonly=False``: a Redis that persists nothing (tests of the server's store checks: one
    restarted so forgets what the directory's append-only file holds). ``password``: ``requirepass``.
    ``tcp``: it also listens on 127.0.0.1, at a port found free (``RedisProcess.port``; the primary of a
    replica, which dials it over TCP): a port another process took between the pick and Redis's bind is
    picked again, up to ``TCP_ATTEMPTS`` times. ``extra``: more of redis-server's arguments (they win).
    ``clock``: a Redis whose wall clock the test sets (``RedisProcess.clock``, the real time until set)."""
    for attempt in range(1, TCP_ATTEMPTS + 1):
        port = free_port() if tcp else 0
        try:
            return _start_once(Path(directory), timeout_s, appendonly=appendonly, password=password,
                               extra=(*(("--port", str(port), "--bind", "127.0.0.1") if tcp else ()), *extra),
                               clock=clock, port=port)
        except RedisUnavailable as exc:
            if not (tcp and PORT_TAKEN in exc.message and attempt < TCP_ATTEMPTS):
                raise
    raise AssertionError("unreachable")


def _start_once(directory: Path, timeout_s: float, *, appendonly: bool, password: str, extra: tuple[str, ...],
                clock: bool, port: int) -> RedisProcess:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable("redis-server is not installed (Debian package redis-server; run make setup)")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock = directory / "redis.sock"
    logfile = directory / "redis.log"
    logfile.unlink(missing_ok=True)                  # this start's log only (a retry's reason is read from it)
    args = [binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--save", "",
            "--appendonly", "yes" if appendonly else "no", "--dir", str(directory), "--daemonize", "no",
            "--loglevel", "warning", "--logfile", str(logfile),
            *(("--requirepass", password) if password else ()), *extra]
    import redis
    env, timer = None, None
    if clock:
        timer = RedisClock(directory / "clock")
        timer.path.write_bytes(b" " * 31)
        env = {**os.environ, "LD_PRELOAD": str(_clock_shim(directory)), "REDIS_CLOCK_FILE": str(timer.path)}
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise RedisUnavailable(f"redis-server exited with status {proc.returncode}: {log}")
        if sock.exists():
            try:
                client = redis.Redis(unix_socket_path=str(sock), password=password or None)
                client.ping()
                client.close()
                return RedisProcess(proc, sock, timer, port)
            except redis.ConnectionError:
                pass
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise RedisUnavailable(f"redis-server did not answer on {sock} within {timeout_s:g} s")
