"""The agent under test: a freshly provisioned terminal, the reference ingest server (in this
process, mutual TLS on a loopback port) and the agent's daemon (a child process), configured for the
rig's camera with the production device policy (the genuine camera on the allowlist, virtual cameras
refused). The runner talks to it only through its local API socket.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization

from agent.security import audit
from hil.devproc import Child
from hil.ingest.config import build_state, load_server_config
from hil.ingest.server import serve
from hil.provision import Provisioned, provision_dev, toml_value
from hil.rig.base import Rig


@dataclass(frozen=True)
class AgentOptions:
    frames: int = 32                        # framesets the server's challenge asks for
    challenge_window_s: float | None = None  # [session] overrides; None keeps the agent's default
    quality_timeout_s: float | None = None
    # A rig presents hundreds of attacks in a row: the terminal's lockout and the server's (§8.2.5 d,
    # each tested on its own) would end the run after five; the server charges every challenge it
    # issues, so an attack the terminal judges and never submits counts there too: its limits are
    # off (max_failures = 0). The run counts failures itself.
    max_failures: int = 1_000_000           # the terminal's
    record_dir: Path | None = None          # lab-only raw session recording ([record], lab = true)
    record_format: str = "db3"


class AgentUnderTest:
    def __init__(self, rig: Rig, options: AgentOptions | None = None, workdir: str | Path | None = None):
        self.rig, self.options = rig, options or AgentOptions()
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="hil-agent-"))
        self.p: Provisioned | None = None
        self.daemon: Child | None = None
        self._server: grpc.Server | None = None

    def start(self) -> None:
        o = self.options
        session: dict[str, Any] = {**self.rig.session_settings(), "max_failures": o.max_failures}
        if o.challenge_window_s is not None:
            session["challenge_window_s"] = o.challenge_window_s
        if o.quality_timeout_s is not None:
            session["quality_timeout_s"] = o.quality_timeout_s
        p = provision_dev(self.workdir / "terminal", port=0, camera_uri=self.rig.camera_uri,
                          retry_window_s=1.0, session=session, **self.rig.server_settings())
        self.p = p
        server_toml = p.server_config.read_text()
        server_toml = re.sub(r"^frames = \d+$", f"frames = {int(o.frames)}\nmax_failures = 0",
                             server_toml, flags=re.M)
        p.server_config.write_text(server_toml)
        text = p.agent_config.read_text()
        head, sep, rest = text.partition("\n[")
        top = ""
        if o.record_dir is not None:
            top = "lab = true    # a lab rig: raw sessions are recorded ([record]); refused without it\n"
        text = head + "\n" + top + sep.lstrip("\n") + rest
        policy = self.rig.device_policy()
        text += "\n[devices]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in policy.items())
        if o.record_dir is not None:
            Path(o.record_dir).mkdir(parents=True, exist_ok=True)
            text += (f"\n[record]\ndir = {toml_value(str(Path(o.record_dir).resolve()))}\n"
                     f"format = {toml_value(o.record_format)}\n")
        p.agent_config.write_text(text)
        cfg, base = load_server_config(p.server_config)
        state, tls = build_state(cfg, base)
        server, port = serve(state, tls, cfg.listen)
        self.p = p = p.serving_on(port)
        self._server = server
        try:
            self.daemon = Child(["run", "--config", str(p.agent_config)], "capture-agent: ready",
                                module="hil.rig.agentproc")
        except BaseException:
            server.stop(0)
            self._server = None
            raise

    @property
    def socket(self) -> Path:
        assert self.p is not None
        return self.p.socket

    @property
    def audit_path(self) -> Path:
        assert self.p is not None
        return self.p.audit

    def stop(self) -> int | None:
        rc = None
        if self.daemon is not None:
            rc = self.daemon.stop()
            self.daemon = None
        if self._server is not None:
            self._server.stop(1)
            self._server = None
        return rc

    def verify_audit(self) -> dict[str, Any]:
        """The audit log's chain and signed checkpoints (after :meth:`stop`, which signs its tail)."""
        assert self.p is not None
        pub = serialization.load_pem_public_key(
            (self.p.root / "server" / "terminals" / f"{self.p.terminal_id}.pub.pem").read_bytes())
        try:
            rep = audit.verify(self.p.audit, pub)
        except audit.AuditCorrupt as exc:
            return {"ok": False, "detail": exc.message}
        return {"ok": rep.unsigned_tail == 0, "entries": rep.entries, "checkpoints": rep.checkpoints,
                "unsigned_tail": rep.unsigned_tail}

    def __enter__(self) -> AgentUnderTest:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
