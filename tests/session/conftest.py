"""A real reference ingest server on a loopback port with mutual TLS, a real liveness worker, and a
helper that builds the daemon's ``Agent`` around a camera URI: everything a capture session needs."""

from __future__ import annotations

import dataclasses

import pytest

from agent.capture import Agent
from agent.config import SessionSettings
from agent.keys import generate_file_key
from agent.liveness.supervisor import LivenessSupervisor
from agent.uplink import pki
from agent.uplink.client import UplinkClient, UplinkSettings
from agent.uplink.seal import ServerKey
from agent.uplink.server import ServerState, ServerTLS, Terminal, serve

TERMINAL = "kiosk-test-0001"
LIVE = "sim://?seed=21&identity=3&lux=150&subject=live"


@pytest.fixture(scope="session")
def ingest(tmp_path_factory):
    d = tmp_path_factory.mktemp("ingest")
    ca = pki.make_ca()
    server_cert = pki.issue(ca, "ingest.test", server=True, hosts=("ingest.test", "127.0.0.1"))
    term = pki.issue(ca, TERMINAL, server=False)
    signer = generate_file_key(d / "terminal.pem")
    key = ServerKey.generate("x25519")
    state = ServerState(terminals={TERMINAL: Terminal(TERMINAL, signer.public_key())}, keys={key.key_id: key},
                        current_key_id=key.key_id, frames=12, keep_sealed=4)
    server, port = serve(state, ServerTLS(server_cert.cert_pem, server_cert.key_pem, ca.cert_pem))

    def uplink(endpoints=None, **kw):
        return UplinkClient(UplinkSettings(endpoints or (f"127.0.0.1:{port}",), ca.cert_pem, term.cert_pem,
                                           term.key_pem, TERMINAL, server_name="ingest.test", **kw))
    yield {"state": state, "port": port, "signer": signer, "uplink": uplink, "ca": ca, "term": term}
    server.stop(0)


@pytest.fixture(scope="session")
def supervisor():
    with LivenessSupervisor() as sup:
        yield sup


@pytest.fixture
def make_agent(ingest, supervisor):
    made = []

    def make(camera_uri: str = LIVE, uplink=None, **session) -> Agent:
        a = Agent(terminal_id=TERMINAL, camera_uri=camera_uri, uplink=uplink or ingest["uplink"](),
                  signer=ingest["signer"], supervisor=supervisor,
                  settings=dataclasses.replace(SessionSettings(), **session))
        made.append(a)
        return a
    yield make
    for a in made:
        a.uplink.close()
