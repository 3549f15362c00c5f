"""A byte proxy in front of real redis-servers, for tests of the ingest server's store checks (sec20).

It rewrites one thing, the version ``INFO server`` says (``redis_version:``): Debian ships no Redis 6
here, so a real Redis 7 answers everything and only its version is said otherwise. It dials each new
client connection to the Redis ``upstream`` names at that moment (a failover that a DNS name or a
Sentinel follows: connections opened before still reach the old primary). And it records what went
each way on each connection, in order, so a test can tell whether a script reached Redis at all, or
on how many connections and in how many round trips a check read its Redis.

The rewrite keeps the length (``7.0.15`` -> ``6.2.14``), so the reply's framing is untouched; a
pattern split between two reads is held back until the next read completes it."""

from __future__ import annotations

import socket
import threading
from pathlib import Path


class RedisProxy:
    def __init__(self, upstream: Path, listen: Path):
        self.upstream, self.path = Path(upstream), listen
        self.said: bytes | None = None          # the version to say (same length as the real one); None: as is
        self.real = b""
        self.sent = bytearray()                 # every byte the clients sent
        self.events: list[tuple[int, str, bytes]] = []   # (connection, "sent" or "reply", bytes), in order
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(listen))
        self._server.listen(16)
        self._closing = False
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def say(self, real: str, said: str | None) -> None:
        if said is not None and len(said) != len(real):
            raise ValueError("the said version must be as long as the real one")
        self.real, self.said = real.encode(), said.encode() if said is not None else None

    def commands_sent(self) -> bytes:
        with self._lock:
            return bytes(self.sent).upper()

    def close(self) -> None:
        self._closing = True
        self._server.close()
        for s in list(self._socks):
            try:
                s.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                up.connect(str(self.upstream))
            except OSError:
                client.close()
                continue
            self._socks += [client, up]
            n = len(self._socks) // 2
            threading.Thread(target=self._pump, args=(client, up, False, n), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, True, n), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, replies: bool, n: int) -> None:
        carry = b""
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                with self._lock:
                    self.events.append((n, "reply" if replies else "sent", chunk))
                    if not replies:
                        self.sent += chunk
                if not replies:
                    dst.sendall(chunk)
                    continue
                data = carry + chunk
                carry = b""
                if self.said is not None:
                    old, new = b"redis_version:" + self.real, b"redis_version:" + self.said
                    data = data.replace(old, new)
                    for k in range(len(old) - 1, 0, -1):        # a split pattern: hold its start back
                        if data.endswith(old[:k]):
                            data, carry = data[:-k], data[-k:]
                            break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
