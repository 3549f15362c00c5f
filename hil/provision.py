"""Development provisioning: a private CA, a reference server and one terminal, with configs.

``capture-agent dev-provision DIR`` writes everything the demo, the tests and a HIL rig need to run
``capture-agent server`` and ``capture-agent run`` against each other. A bank provisions terminals
from its own PKI and HSMs instead; the file layout below is what those configs point at::

    DIR/ca.pem  ca.key
    DIR/server/  server.toml server.pem server.key server-x25519.hpke server-mlkem768-x25519.hpke
                 terminals/<id>.pub.pem  (the terminal's entry pins its camera: serial, firmware and
                 calibration digest, read from the camera now, as `capture-agent camera-identity`)
    DIR/agent/   agent.toml ca.pem <id>.pem <id>.key signing.key
    DIR/run/     the local API socket          DIR/state/  audit log, probe counter

Every private key is written with mode 0600 from its first byte.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import drivers
from agent.config import check_terminal_id
from agent.devices.policy import is_development_uri
from agent.security.keys import generate_file_key
from agent.uplink.probe import camera_identity
from agent.uplink.seal import ServerKey
from drivers.sim import SIM_CHALLENGE_WINDOW_S, SIM_DEVICE_LIMITS
from hil import pki
from hil.ingest.config import write_hpke_key, write_subject_key
from hil.ingest.identity import spki_sha256

DEVELOPMENT_DEVICES = """
[devices]
# A simulated camera or a recording: development, tests and the demo only (a production config
# refuses them).
allow_development_cameras = true
"""


def devices_table(camera_uri: str) -> str:
    """The agent's ``[devices]`` table for a development camera; on ``sim://`` the camera host's limits
    the simulator's rendering needs (``drivers.sim.SIM_DEVICE_LIMITS``: a render is not a hung SDK)."""
    if not is_development_uri(camera_uri):
        return ""
    limits = SIM_DEVICE_LIMITS if camera_uri.startswith("sim:") else {}
    return DEVELOPMENT_DEVICES + "".join(f"{k} = {toml_value(v)}\n" for k, v in limits.items())


def session_table(camera_uri: str, session: Mapping[str, Any] | None) -> str:
    """The agent's ``[session]`` table: ``session``'s settings, and on ``sim://`` a challenge window
    the simulator can fill (it renders slower than a camera's 30 framesets a second on a small
    machine; a real camera keeps the agent's default 10 s)."""
    table = {**({"challenge_window_s": SIM_CHALLENGE_WINDOW_S} if camera_uri.startswith("sim:") else {}),
             **(session or {})}
    return "\n[session]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items()) if table else ""


@dataclass(frozen=True)
class Provisioned:
    root: Path
    server_config: Path
    agent_config: Path
    socket: Path
    audit: Path
    terminal_id: str
    port: int
    camera: dict[str, str] = field(default_factory=dict)   # the pinned camera: serial, firmware, calibration_sha256

    def serving_on(self, port: int) -> Provisioned:
        """A deployment provisioned with ``port=0`` (the server binds a port the kernel picks), its
        agent config pointed at the port the server got; rewritten in place, so the file keeps its
        owner and mode. A port found free and bound later can be taken in between by anything else."""
        line = f"endpoints = [{toml_value('127.0.0.1:0')}]\n"
        text = self.agent_config.read_text()
        if self.port != 0 or text.count(line) != 1 or not 0 < port < 65536:
            raise ValueError(f"{self.agent_config} was not provisioned for a port picked at start (port=0)")
        with open(self.agent_config, "r+") as fh:
            fh.write(text.replace(line, f"endpoints = [{toml_value(f'127.0.0.1:{port}')}]\n"))
            fh.truncate()
        return dataclasses.replace(self, port=port)


def toml_value(v: Any) -> str:
    # Strings and lists of strings/ints are all this writer needs; json's quoting is valid TOML.
    return json.dumps(v)


def provision_dev(root: str | os.PathLike[str], *, terminal_id: str = "kiosk-dev-0001", port: int = 8443,
                  camera_uri: str = "sim://?subject=live&lux=300&distance_mm=500", suite: str = "x25519",
                  nonce_ttl_s: float = 60.0, retry_window_s: float = 10.0, keep_sealed: int = 0,
                  allowed_uids: tuple[int, ...] | None = None, allowed_groups: tuple[str, ...] = (),
                  overwrite: bool = False, frames: int = 48, session: Mapping[str, Any] | None = None
                  ) -> Provisioned:
    # The terminal id names files below: no separators, no "..", no control characters
    # (AGT_CONFIG_INVALID before anything is written).
    check_terminal_id(terminal_id, "terminal id")
    root = Path(root).resolve()
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root} is not empty; refusing to overwrite keys")
        shutil.rmtree(root)
    (root / "server" / "terminals").mkdir(parents=True)
    (root / "agent").mkdir()
    for d in ("run", "state"):
        (root / d).mkdir(mode=0o750)
    ca = pki.make_ca("capture-agent dev CA", days=365)
    (root / "ca.pem").write_bytes(ca.cert_pem)
    pki.write_private(root / "ca.key", ca.key_pem)

    srv = root / "server"
    cert = pki.issue(ca, "ingest.localhost", server=True, days=365,
                     hosts=("ingest.localhost", "localhost", "127.0.0.1"))
    (srv / "server.pem").write_bytes(cert.cert_pem)
    pki.write_private(srv / "server.key", cert.key_pem)
    for s in ("x25519", "mlkem768-x25519"):
        write_hpke_key(srv / f"server-{s}.hpke", ServerKey.generate(s))
    write_subject_key(srv / "subject.key")

    ag = root / "agent"
    for p in (ag / f"{terminal_id}.pem", srv / "terminals" / f"{terminal_id}.pub.pem"):
        if p.resolve().parent != p.parent.resolve():           # belt and braces after the id check
            raise ValueError(f"{p} would be written outside its directory")
    (ag / "ca.pem").write_bytes(ca.cert_pem)
    client = pki.issue(ca, terminal_id, server=False, days=365)
    (ag / f"{terminal_id}.pem").write_bytes(client.cert_pem)
    pki.write_private(ag / f"{terminal_id}.key", client.key_pem)
    signer = generate_file_key(ag / "signing.key")
    (srv / "terminals" / f"{terminal_id}.pub.pem").write_bytes(signer.public_key_pem())
    cam = drivers.open(camera_uri)
    with cam:
        camera = camera_identity(cam)

    server_toml = srv / "server.toml"
    server_toml.write_text(f"""# Reference ingest server (development). capture-agent server --config {server_toml}
listen = {toml_value(f'127.0.0.1:{port}')}
cert = "server.pem"
key = "server.key"
client_ca = "../ca.pem"
current_suite = {toml_value(suite)}
nonce_ttl_s = {nonce_ttl_s}
# Framesets of the challenge window; 0: what the challenges demanded need (docs/liveness.md). A
# development terminal gets 48 (1.6 s): at the default 32 a still simulated person is still judged
# inconclusive now and then (the motion detector; issue 14, docs/liveness.md).
frames = {int(frames)}
retry_window_s = {retry_window_s}
keep_sealed = {keep_sealed}
# The key of the HMAC that names subjects in the store and in receipts (Receipt.subject_mac):
# 32 random bytes, mode 0600; every server sharing a store, and the bank's matcher, use this file.
# To rotate it: subject_key_previous_file = the old file, subject_key_file = a new one, SIGHUP on
# every server; drop the previous one failure_window_s + nonce_ttl_s later (docs/uplink.md).
subject_key_file = "subject.key"

[[hpke_keys]]
suite = "x25519"
file = "server-x25519.hpke"

[[hpke_keys]]
suite = "mlkem768-x25519"
file = "server-mlkem768-x25519.hpke"

[[terminals]]
id = {toml_value(terminal_id)}
certificate_spki_sha256 = [{toml_value(spki_sha256(client.cert_pem))}]
public_key = {toml_value(f'terminals/{terminal_id}.pub.pem')}

[terminals.camera]
# The camera provisioned with this terminal: probes from any other are refused (UNKNOWN_CAMERA).
serial = {toml_value(camera["serial"])}
firmware = {toml_value(camera["firmware"])}
calibration_sha256 = {toml_value(camera["calibration_sha256"])}
""")
    uids = list(allowed_uids) if allowed_uids is not None else [os.getuid()]
    agent_toml = ag / "agent.toml"
    agent_toml.write_text(f"""# capture-agent daemon (development). capture-agent run --config {agent_toml}
terminal_id = {toml_value(terminal_id)}
state_dir = "../state"

[camera]
uris = [{toml_value(camera_uri)}]
{devices_table(camera_uri)}
[keys]
signing_key = "file:signing.key"

[uplink]
endpoints = [{toml_value(f'127.0.0.1:{port}')}]
ca = "ca.pem"
cert = {toml_value(f'{terminal_id}.pem')}
key = {toml_value(f'{terminal_id}.key')}
server_name = "ingest.localhost"

[local_api]
socket = {toml_value(str(root / 'run' / 'agent.sock'))}
allowed_uids = {toml_value(uids)}
allowed_groups = {toml_value(list(allowed_groups))}

[audit]
path = "../state/audit.jsonl"
{session_table(camera_uri, session)}""")
    return Provisioned(root, srv / "server.toml", ag / "agent.toml", root / "run" / "agent.sock",
                       root / "state" / "audit.jsonl", terminal_id, port, camera)
