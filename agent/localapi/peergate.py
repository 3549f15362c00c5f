"""Who may talk to the local API: Unix-socket peer credentials, checked before any byte reaches gRPC.

gRPC's Python server does not expose a Unix peer's credentials, so the agent owns the public
socket itself. For each connection it reads ``SO_PEERCRED`` (pid, uid, gid: set by the kernel, not
claimed by the caller), checks them against the allowlist, and then splices the connection to one
of two private gRPC servers whose sockets sit in a 0700 directory only the agent can enter:

* allowed peers reach the real ``CaptureService``;
* refused peers reach a server that answers every call with ``PERMISSION_DENIED`` and the stable
  code ``LAPI_PEER_NOT_ALLOWED``, so the kiosk developer sees why instead of a dropped connection.

The socket file itself is created with the configured mode and group (defence in depth: the
kernel refuses ``connect`` to users outside the group before the allowlist is even consulted).
"""

from __future__ import annotations

import grp
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_UCRED = struct.Struct("3i")          # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_of(conn: socket.socket) -> Peer:
    pid, uid, gid = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return Peer(pid, uid, gid)


def supplementary_groups(pid: int) -> set[int]:
    """The peer's supplementary groups from /proc (empty if the process is already gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Groups:"):
                return {int(g) for g in line.split()[1:]}
    except (OSError, ValueError):
        pass
    return set()


def resolve_group(name: str) -> int:
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ValueError(f"unknown group {name!r}") from None


@dataclass(frozen=True)
class PeerPolicy:
    uids: frozenset[int]
    gids: frozenset[int]

    @classmethod
    def from_settings(cls, uids, groups) -> PeerPolicy:
        return cls(frozenset(int(u) for u in uids), frozenset(resolve_group(g) for g in groups))

    def allows(self, peer: Peer) -> bool:
        if peer.uid in self.uids or peer.gid in self.gids:
            return True
        return bool(self.gids) and bool(self.gids & supplementary_groups(peer.pid))


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def bind_unix(path: str, mode: int, group: int | None) -> socket.socket:
    """Listen on ``path`` with ``mode``/``group`` applied before anyone can connect (umask at bind)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.is_socket():
        p.unlink()                                      # a stale socket from a previous run
    elif p.exists():
        raise OSError(f"{path} exists and is not a socket; refusing to replace it")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o777)                               # no window in which the socket is open to all
    try:
        s.bind(path)
    finally:
        os.umask(old)
    if group is not None:
        os.chown(path, -1, group)
    os.chmod(path, mode)
    s.listen(64)
    return s


class PeerGate:
    """Accept on the public socket; route each connection by its peer credentials."""

    def __init__(self, public_path: str, allowed_backend: str, refused_backend: str, policy: PeerPolicy, *,
                 mode: int = 0o660, group: int | None = None, max_connections: int = 16,
                 on_refused: Callable[[Peer], None] | None = None):
        self.public_path, self.allowed_backend, self.refused_backend = public_path, allowed_backend, refused_backend
        self.policy, self.max_connections, self.on_refused = policy, max_connections, on_refused
        self._listener = bind_unix(public_path, mode, group)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._accept_loop, name="local-api-gate", daemon=True)
        self.refused = 0

    def start(self) -> None:
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                break
            if not self._slots.acquire(blocking=False):
                conn.close()                            # bounded: a local flood cannot exhaust threads
                continue
            threading.Thread(target=self._serve, args=(conn,), name="local-api-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        backend = None
        try:
            peer = peer_of(conn)
            allowed = self.policy.allows(peer)
            if not allowed:
                self.refused += 1
                if self.on_refused is not None:
                    self.on_refused(peer)
            backend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            backend.connect(self.allowed_backend if allowed else self.refused_backend)
            with self._lock:
                self._conns.update((conn, backend))
            t = threading.Thread(target=_pump, args=(backend, conn), daemon=True)
            t.start()
            _pump(conn, backend)
            t.join()
        except OSError as exc:
            log.debug("local API connection ended: %s", exc)
        finally:
            with self._lock:
                self._conns.discard(conn)
                self._conns.discard(backend)
            for s in (conn, backend):
                if s is not None:
                    s.close()
            self._slots.release()

    def close_listener(self) -> None:
        """Take no new connections (the socket file goes away); connections in progress continue."""
        self._stopping = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(timeout=2)
        try:
            os.unlink(self.public_path)
        except OSError:
            pass

    def stop(self) -> None:
        if not self._stopping:
            self.close_listener()
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class RateLimitedLog:
    """At most one audit entry per uid per ``interval_s`` for refused peers (a local flood must not
    fill the audit log); the count of suppressed refusals is carried in the next entry."""

    def __init__(self, record: Callable[..., object], interval_s: float = 60.0):
        self.record, self.interval_s = record, interval_s
        self._last: dict[int, float] = {}
        self._suppressed: dict[int, int] = {}
        self._lock = threading.Lock()

    def __call__(self, peer: Peer) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(peer.uid, -1e9) < self.interval_s:
                self._suppressed[peer.uid] = self._suppressed.get(peer.uid, 0) + 1
                return
            self._last[peer.uid] = now
            suppressed = self._suppressed.pop(peer.uid, 0)
        self.record("local_api_refused", uid=peer.uid, gid=peer.gid, pid=peer.pid, suppressed=suppressed)
