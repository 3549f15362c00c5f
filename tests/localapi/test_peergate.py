"""The local API's peer gate: what a backend has sent reaches the peer before the gate closes."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time

from agent.localapi.peergate import PeerGate, PeerPolicy

PAYLOAD = 8 * 1024 * 1024          # far more than the sockets' buffers hold: the gate is mid-copy


def _backend(path: str, sent: threading.Event) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.sendall(b"x" * PAYLOAD)       # a server's last reply, then it goes away
            sent.set()
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def test_stop_lets_what_the_backend_sent_reach_the_peer():
    # The daemon stops the gRPC server (its last replies written, connections closed) and then the
    # gate: a reply still being copied through the gate must not be cut off (it was, under load: a
    # capture's last event, SES_CANCELLED, lost as "Stream removed").
    d = tempfile.mkdtemp(prefix="gate", dir="/tmp")
    try:
        sent = threading.Event()
        _backend(f"{d}/backend", sent)
        gate = PeerGate(f"{d}/public", f"{d}/backend", f"{d}/refused",
                        PeerPolicy(uids=frozenset({os.getuid()}), gids=frozenset()))
        gate.start()
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(f"{d}/public")
        client.settimeout(20)
        stopping = threading.Event()
        stopper = threading.Thread(target=lambda: (stopping.set(), gate.stop()))
        got = bytearray()
        # The client reads only a moment after the gate began to stop: the gate is blocked passing
        # the reply on, and what it has not passed on yet it must still pass on (the old gate shut
        # every connection at once and the client got what the socket buffers held).
        stopper.start()
        assert stopping.wait(20)
        time.sleep(0.2)
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
        stopper.join(20)
        client.close()
        assert len(got) == PAYLOAD
    finally:
        shutil.rmtree(d, ignore_errors=True)
