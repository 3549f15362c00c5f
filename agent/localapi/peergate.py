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

A local user must not be able to lock the kiosk app out by holding connections open, so:

* credentials are read in the accept loop, before a connection takes a slot; allowed and refused
  peers draw from separate pools, so a refused uid can never hold a slot the kiosk app needs;
* a refused peer gets at most ``refused_per_uid`` connections (of ``max_refused`` in all), each
  closed after ``refused_lifetime_s`` whatever it does (long enough to read its
  ``PERMISSION_DENIED``);
* an allowed uid gets at most ``max_per_uid`` of the ``max_connections`` slots;
* the splice has deadlines: a connection with no bytes either way for ``idle_timeout_s`` is closed,
  and a peer that stops reading is cut off after ``send_timeout_s``.

Groups come from ``SO_PEERGROUPS`` (the kernel's record of the peer's supplementary groups at
``connect``), not from /proc, which a unit with ``ProtectProc=invisible`` hides and whose pid may
have been reused.
"""

from __future__ import annotations

import array
import errno
import grp
import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_UCRED = struct.Struct("3i")          # struct ucred: pid, uid, gid
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_of(conn: socket.socket) -> Peer:
    pid, uid, gid = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return Peer(pid, uid, gid)


def peer_groups(conn: socket.socket, pid: int) -> set[int]:
    """The peer's supplementary groups as the kernel recorded them at ``connect`` (SO_PEERGROUPS,
    Linux 4.13+); /proc only where the kernel lacks it."""
    for size in (4 * 256, 4 * 65536):
        try:
            raw = conn.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, size)
        except OSError as exc:
            if exc.errno == errno.ERANGE:
                continue
            if exc.errno in (errno.ENOPROTOOPT, errno.EINVAL):
                return supplementary_groups(pid)
            raise
        return set(array.array("I", raw[: len(raw) - len(raw) % 4]))
    return set()


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

    def allows(self, peer: Peer, groups: set[int] | frozenset[int] = frozenset()) -> bool:
        if peer.uid in self.uids or peer.gid in self.gids:
            return True
        return bool(self.gids & set(groups))


@dataclass(frozen=True)
class GateLimits:
    """How many connections, for how long (see the module docstring)."""

    max_connections: int = 16          # allowed peers, all uids together
    max_per_uid: int = 8               # allowed peers, one uid
    max_refused: int = 4               # refused peers, all uids together
    refused_per_uid: int = 1
    refused_lifetime_s: float = 5.0
    idle_timeout_s: float = 300.0      # no bytes either way
    send_timeout_s: float = 10.0       # a peer that does not read what it asked for


def splice(a: socket.socket, b: socket.socket, *, idle_timeout_s: float, send_timeout_s: float,
           deadline: float | None = None, ended: Callable[[socket.socket], None] | None = None) -> str:
    """Copy bytes both ways until both sides are done, nothing moved for ``idle_timeout_s``, the
    monotonic ``deadline`` passes, or a send blocks for ``send_timeout_s``. Returns why it ended.
    ``ended(src)`` is called once a side has been read to its end and all it sent passed on."""
    for s in (a, b):
        s.settimeout(send_timeout_s)                  # bounds sendall(); reads wait in select
    peer_of_ = {a: b, b: a}
    open_reads = {a, b}
    last = time.monotonic()
    with selectors.DefaultSelector() as sel:
        for s in open_reads:
            sel.register(s, selectors.EVENT_READ)
        while open_reads:
            now = time.monotonic()
            wait = last + idle_timeout_s - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if wait <= 0:
                return "deadline" if deadline is not None and now >= deadline else "idle"
            for key, _ in sel.select(timeout=min(wait, 1.0)):
                src = key.fileobj
                assert isinstance(src, socket.socket)
                try:
                    data = src.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return "error"
                dst = peer_of_[src]
                if not data:                          # half-close: pass it on, keep the other way open
                    sel.unregister(src)
                    open_reads.discard(src)
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    if ended is not None:
                        ended(src)
                    continue
                try:
                    dst.sendall(data)
                except TimeoutError:
                    return "send_timeout"
                except OSError:
                    return "error"
                last = time.monotonic()
    return "closed"


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
                 mode: int = 0o660, group: int | None = None, limits: GateLimits | None = None,
                 on_refused: Callable[[Peer], None] | None = None):
        self.public_path, self.allowed_backend, self.refused_backend = public_path, allowed_backend, refused_backend
        self.policy, self.limits, self.on_refused = policy, limits or GateLimits(), on_refused
        self._listener = bind_unix(public_path, mode, group)
        self._held: Counter[tuple[bool, int]] = Counter()     # (allowed, uid) -> open connections
        self._conns: set[socket.socket] = set()
        self._backends: dict[socket.socket, threading.Event] = {}   # set: read to its end, all passed on
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._accept_loop, name="local-api-gate", daemon=True)
        self.refused = 0
        self.dropped = 0                    # connections closed at once: over a limit

    @property
    def max_connections(self) -> int:
        return self.limits.max_connections

    def start(self) -> None:
        self._thread.start()

    def held(self, allowed: bool) -> int:
        with self._lock:
            return sum(n for (a, _), n in self._held.items() if a is allowed)

    def _take_slot(self, allowed: bool, uid: int) -> bool:
        lim = self.limits
        total, per_uid = (lim.max_connections, lim.max_per_uid) if allowed else (lim.max_refused, lim.refused_per_uid)
        with self._lock:
            pool = sum(n for (a, _), n in self._held.items() if a is allowed)
            if pool >= total or self._held[(allowed, uid)] >= per_uid:
                return False
            self._held[(allowed, uid)] += 1
            return True

    def _release_slot(self, allowed: bool, uid: int) -> None:
        with self._lock:
            self._held[(allowed, uid)] -= 1
            if self._held[(allowed, uid)] <= 0:
                del self._held[(allowed, uid)]

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                break
            try:
                # The credentials decide the pool before the connection holds anything.
                peer = peer_of(conn)
                allowed = self.policy.allows(peer, peer_groups(conn, peer.pid))
            except OSError as exc:
                log.debug("local API connection without credentials: %s", exc)
                conn.close()
                continue
            if not allowed:
                self.refused += 1
                if self.on_refused is not None:
                    self.on_refused(peer)
            if not self._take_slot(allowed, peer.uid):
                self.dropped += 1
                conn.close()                            # bounded: a local flood cannot exhaust threads
                continue
            threading.Thread(target=self._serve, args=(conn, peer, allowed), name="local-api-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket, peer: Peer, allowed: bool) -> None:
        backend = None
        lim = self.limits
        try:
            backend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            backend.connect(self.allowed_backend if allowed else self.refused_backend)
            drained = threading.Event()
            with self._lock:
                self._conns.update((conn, backend))
                self._backends[backend] = drained
            deadline = None if allowed else time.monotonic() + lim.refused_lifetime_s
            why = splice(conn, backend, idle_timeout_s=lim.idle_timeout_s, send_timeout_s=lim.send_timeout_s,
                         deadline=deadline, ended=lambda src: drained.set() if src is backend else None)
            log.debug("local API connection of uid %d ended: %s", peer.uid, why)
        except OSError as exc:
            log.debug("local API connection ended: %s", exc)
        finally:
            with self._lock:
                self._conns.discard(conn)
                self._conns.discard(backend)
                if backend is not None:
                    done = self._backends.pop(backend, None)
                    if done is not None:
                        done.set()
            for s in (conn, backend):
                if s is not None:
                    s.close()
            self._release_slot(allowed, peer.uid)

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

    def stop(self, drain_s: float = 2.0) -> None:
        """Close every connection, after at most ``drain_s`` for what the backends already sent to
        reach their peers: call it once the backend server has stopped (its last replies written,
        its connections closed), or a reply still in the gate's hands is cut off (a capture's last
        event, ``SES_CANCELLED``, was lost this way under load)."""
        if not self._stopping:
            self.close_listener()
        end = time.monotonic() + drain_s
        with self._lock:
            pending = list(self._backends.values())
        for done in pending:
            done.wait(max(0.0, end - time.monotonic()))
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
