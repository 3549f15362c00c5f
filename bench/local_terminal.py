"""One terminal and the reference ingest server in this process, for benches that run whole
sessions: a private CA, the terminal's certificate and signing key, the server on a loopback port
over mutual TLS, and the terminal's uplink client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.security.keys import FileSigner, generate_file_key
from agent.uplink.client import UplinkClient, UplinkConnection
from agent.uplink.seal import ServerKey
from hil import pki
from hil.ingest.identity import Registry, Terminal, spki_sha256
from hil.ingest.server import ServerState, ServerTLS, serve

TERMINAL_ID = "kiosk-bench"


@dataclass
class LocalTerminal:
    signer: FileSigner
    uplink: UplinkClient
    state: ServerState
    server: Any

    def close(self) -> None:
        self.uplink.close()
        self.server.stop(0)


def start(tmp: Path, **state: Any) -> LocalTerminal:
    """``state``: further ``ServerState`` settings (``limits``, ``frames``...)."""
    ca = pki.make_ca()
    server_cert = pki.issue(ca, "ingest.bench", server=True, hosts=("ingest.bench", "127.0.0.1"))
    term = pki.issue(ca, TERMINAL_ID, server=False)
    signer = generate_file_key(tmp / "terminal.pem")
    key = ServerKey.generate("x25519")
    registry = Registry([Terminal(TERMINAL_ID, signer.public_key(), frozenset({spki_sha256(term.cert_pem)}))])
    st = ServerState(registry=registry, keys={key.key_id: key}, current_key_id=key.key_id, **state)
    server, port = serve(st, ServerTLS(server_cert.cert_pem, server_cert.key_pem, ca.cert_pem))
    uplink = UplinkClient(UplinkConnection((f"127.0.0.1:{port}",), ca.cert_pem, term.cert_pem, term.key_pem,
                                           TERMINAL_ID, server_name="ingest.bench"))
    return LocalTerminal(signer, uplink, st, server)
