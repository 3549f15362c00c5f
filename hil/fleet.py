"""A fleet of simulated terminals against the reference ingest server (``python -m bench fleet``).

Each terminal is what a kiosk's uplink is, minus the camera: its own client certificate from a
private CA (``hil/pki.py``), its own signing key, registered in the server's config by its
certificate's key pin, and the agent's own uplink code for the wire (``UplinkClient``: mutual TLS,
deadlines, retries with jittered backoff, the challenge checks) and the seal (``seal_probe``).

A probe's payload is built once per terminal (noise crops of a face crop's size, 468 landmarks,
a liveness report); only its liveness report is rewritten for each challenge, because the server
checks that the report was made under the probe's own nonce. So "pre-sealed" here means everything
but the seal: the seal binds the server's fresh nonce and cannot be made before ``BeginCapture``.

The server is the real ``capture-agent server`` command in its own process (so its CPU time can be
read from ``/proc`` and it can be restarted), with its nonces, receipts and counters in a private
``redis-server`` (``hil/redisproc.py``) that outlives the restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.purpose import Purpose
from agent.security.keys import FileSigner, generate_file_key
from agent.uplink.client import UplinkClient, UplinkConnection, UplinkError
from agent.uplink.probe import seal_probe
from hil import pki
from hil.devproc import Child, served_port, start_server
from hil.fakes.evidence import for_challenge
from hil.ingest.config import write_hpke_key, write_subject_key
from hil.ingest.identity import spki_sha256
from hil.provision import toml_value
from proto.capture_agent.v1 import ingest_pb2 as pb

SERVER_NAME = "ingest.fleet"
# What each terminal offers: a RealSense-class camera with projector control and a kiosk screen.
CAPABILITIES = pb.ChallengeCapabilities(projector=True, illumination=True, exposure_lock=True, depth_fps=30,
                                        color_fps=30)
CROP = (208, 288)            # a face crop at about 500 mm in a 640x480 colour frame, 25 % margin each side


@dataclass(frozen=True)
class TerminalKeys:
    terminal_id: str
    cert: pki.Issued           # mTLS client certificate and key
    signer: FileSigner         # probe signing key


@dataclass
class FleetFiles:
    """A provisioned fleet: the CA, the server's directory and config, and every terminal's keys."""

    root: Path
    ca: pki.Issued
    server_toml: Path
    port: int                  # 0 until the server has bound one (``FleetServer.start``)
    terminals: list[TerminalKeys]

    @property
    def endpoint(self) -> str:
        if not self.port:
            raise ValueError("the fleet's server has no port yet: start it (FleetServer.start) first")
        return f"127.0.0.1:{self.port}"


def provision_fleet(root: Path, n: int, *, store_url: str, port: int | None = None, workers: int = 8,
                    max_concurrent_rpcs: int | None = None) -> FleetFiles:
    """Keys and certificates for ``n`` terminals and a server config registering all of them.
    ``port``: where the server listens; by default (0) a port the kernel picks when the server
    binds (``FleetServer.start`` then records it). ``max_concurrent_rpcs`` defaults to room for
    every terminal's call at once (a bank sizes its server for its fleet; the default 64 would
    refuse calls from a fleet larger than that)."""
    root = Path(root)
    (root / "server" / "terminals").mkdir(parents=True)
    (root / "terminals").mkdir(mode=0o700)
    ca = pki.make_ca("capture-agent fleet CA")
    (root / "ca.pem").write_bytes(ca.cert_pem)
    srv = root / "server"
    cert = pki.issue(ca, SERVER_NAME, server=True, hosts=(SERVER_NAME, "127.0.0.1"))
    (srv / "server.pem").write_bytes(cert.cert_pem)
    pki.write_private(srv / "server.key", cert.key_pem)
    from agent.uplink.seal import ServerKey
    write_hpke_key(srv / "server-x25519.hpke", ServerKey.generate("x25519"))
    write_subject_key(srv / "subject.key")
    port = port or 0
    concurrent = max_concurrent_rpcs or max(64, 2 * n)
    lines = [f"listen = {toml_value(f'127.0.0.1:{port}')}", 'cert = "server.pem"', 'key = "server.key"',
             'client_ca = "../ca.pem"', 'current_suite = "x25519"', f"store = {toml_value(store_url)}",
             'store_prefix = "fleet:"', "max_failures = 0", 'subject_key_file = "subject.key"', "",
             "[transport]", f"workers = {workers}", f"max_concurrent_rpcs = {concurrent}", "",
             "[[hpke_keys]]", 'suite = "x25519"', 'file = "server-x25519.hpke"', ""]
    terminals = []
    for i in range(n):
        tid = f"kiosk-fleet-{i:05d}"
        client = pki.issue(ca, tid, server=False)
        signer = generate_file_key(root / "terminals" / f"{tid}.signing.key")
        (srv / "terminals" / f"{tid}.pub.pem").write_bytes(signer.public_key_pem())
        lines += ["[[terminals]]", f"id = {toml_value(tid)}",
                  f"certificate_spki_sha256 = [{toml_value(spki_sha256(client.cert_pem))}]",
                  f"public_key = {toml_value(f'terminals/{tid}.pub.pem')}", ""]
        terminals.append(TerminalKeys(tid, client, signer))
    server_toml = srv / "server.toml"
    server_toml.write_text("\n".join(lines))
    return FleetFiles(root, ca, server_toml, port, terminals)


class FleetServer:
    """``capture-agent server`` for a fleet, in its own process; restartable on the same port."""

    def __init__(self, files: FleetFiles):
        self.files = files
        self.child: Child | None = None

    def start(self) -> float:
        """Start and wait for its ready line; returns the moment it was ready (``time.monotonic``).
        Provisioned with port 0, its first start binds a port the kernel picks (none is looked for
        beforehand, which something else could take before the server binds it); the files then
        name that port (``files.port``, the config's ``listen``), so the terminals made afterwards
        reach it and a restart binds it again (the terminals' endpoint does not change; between a
        stop and the restart another process could take it, as with any server restarted on its
        address)."""
        self.child = start_server(self.files.server_toml, timeout_s=120.0)
        ready = time.monotonic()
        if not self.files.port:
            try:
                port = served_port(self.child)
                text = self.files.server_toml.read_text()
                line = f"listen = {toml_value('127.0.0.1:0')}\n"
                if text.count(line) != 1:
                    raise ValueError(f"{self.files.server_toml} does not listen on port 0")
                self.files.server_toml.write_text(text.replace(line, f"listen = {toml_value(f'127.0.0.1:{port}')}\n"))
            except BaseException:
                self.stop()
                raise
            self.files.port = port
        return ready

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.proc.pid


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- one terminal ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    terminal_id: str
    started: float            # time.monotonic() when BeginCapture was sent
    ended: float              # ... when the receipt (or the final error) came back
    outcome: str              # "OK", a receipt reason (e.g. "NOT_LIVE"), or an error code ("UPL_UNAVAILABLE")

    @property
    def ok(self) -> bool:
        return self.outcome == "OK"

    @property
    def latency_ms(self) -> float:
        return (self.ended - self.started) * 1000


def _noise_crop(fmt: str, w: int, h: int) -> pb.Crop:
    px = os.urandom(w * h * {"bgr8": 3, "z16": 2, "y8": 1}[fmt])
    return pb.Crop(width=w, height=h, format=fmt, pixels=px, sha256=hashlib.sha256(px).digest(),
                   depth_scale=0.001 if fmt == "z16" else 0.0)


class FleetTerminal:
    """One simulated terminal: ``probe()`` runs BeginCapture, seals and signs a probe for the
    challenge, and submits it, through the agent's uplink client."""

    def __init__(self, keys: TerminalKeys, files: FleetFiles, *, crop: tuple[int, int] = CROP,
                 deadline_s: float = 2.0, retries: int = 3):
        self.keys = keys
        self.client = UplinkClient(UplinkConnection((files.endpoint,), files.ca.cert_pem, keys.cert.cert_pem,
                                                    keys.cert.key_pem, keys.terminal_id, deadline_s=deadline_s,
                                                    retries=retries, server_name=SERVER_NAME))
        w, h = crop
        self._frame_digest = hashlib.sha256(os.urandom(16)).hexdigest()
        self._payload = pb.ProbePayload(color=_noise_crop("bgr8", w, h), depth=_noise_crop("z16", w, h),
                                        ir=_noise_crop("y8", w, h), landmarks=[0.5] * (3 * 468),
                                        quality_json="{}", frame_digest=self._frame_digest)
        self._payload.device.backend = "fleet"
        self.counter = 0

    def payload_size(self) -> int:
        return len(self._payload_for(bytes(32)))

    def _payload_for(self, nonce: bytes, ch: pb.Challenge | None = None) -> bytearray:
        # The server checks the challenge's evidence itself (hil/ingest/evidence.py): per challenge,
        # synthetic evidence that meets it and a colour crop consistent with it (hil/fakes/evidence.py),
        # made on the generator's side like a terminal's capture would be.
        digests = [self._frame_digest]
        self._payload.ClearField("evidence")
        if ch is not None and ch.challenges:
            syn = for_challenge(ch)
            digests = syn.digests
            self._payload.evidence.CopyFrom(syn.evidence)
            self._payload.color.CopyFrom(syn.color)
            w, h = syn.color.width, syn.color.height
            if (self._payload.depth.width, self._payload.depth.height) != (w, h):   # the crops share one box
                self._payload.depth.CopyFrom(_noise_crop("z16", w, h))
                self._payload.ir.CopyFrom(_noise_crop("y8", w, h))
            self._payload.frame_digest = syn.frame_digest
        lv = {"verdict": "live", "score": 0.9, "frame_digests": digests, "challenge_used": True,
              "challenge": {"passed": True, "nonce_sha256": hashlib.sha256(nonce).hexdigest()}}
        self._payload.liveness_json = json.dumps(lv, separators=(",", ":"))
        return bytearray(self._payload.SerializeToString())

    def probe(self) -> ProbeResult:
        t0 = time.monotonic()
        self.counter += 1
        session_id = f"fleet-{uuid.uuid4().hex[:16]}"
        try:
            ch = self.client.begin(session_id, Purpose.VERIFY, capabilities=CAPABILITIES)
            sealed = seal_probe(ch, self._payload_for(ch.nonce, ch), terminal_id=self.keys.terminal_id,
                                session_id=session_id, counter=self.counter, signer=self.keys.signer,
                                purpose=Purpose.VERIFY)
            receipt = self.client.submit(sealed.message, sealed.probe_id)
            outcome = receipt.reason or ("OK" if receipt.accepted else "REFUSED")
        except UplinkError as exc:
            outcome = exc.code
        return ProbeResult(self.keys.terminal_id, t0, time.monotonic(), outcome)

    def close(self) -> None:
        self.client.close()


# -- load patterns --------------------------------------------------------------------------------------


@dataclass
class Backoff:
    """Between a terminal's failed probe and its next try: full jitter, doubling up to a cap."""

    base_s: float = 0.1
    cap_s: float = 2.0

    def delay(self, failures: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** max(failures - 1, 0)))


@dataclass
class Run:
    results: list[ProbeResult] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, r: ProbeResult) -> None:
        with self.lock:
            self.results.append(r)


def _threads(terminals: Sequence[FleetTerminal], body: Callable[[FleetTerminal], None]) -> None:
    threads = [threading.Thread(target=body, args=(t,), daemon=True, name=f"fleet-{i}")
               for i, t in enumerate(terminals)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def run_load(terminals: Sequence[FleetTerminal], seconds: float, *, think_s: float = 0.0,
             backoff: Backoff | None = None) -> list[ProbeResult]:
    """Every terminal probes until ``seconds`` have passed: back to back (``think_s=0``, the
    server saturated), or after an exponentially distributed pause of mean ``think_s`` (a paced
    load of about ``len(terminals) / think_s`` probes per second). A failed probe is retried after
    a jittered backoff. Terminals start at random moments within the first think time."""
    run, backoff = Run(), backoff or Backoff()
    end = time.monotonic() + seconds

    def body(t: FleetTerminal) -> None:
        failures = 0
        if think_s:
            time.sleep(random.uniform(0, min(think_s, seconds)))
        while time.monotonic() < end:
            r = t.probe()
            run.add(r)
            failures = 0 if r.ok else failures + 1
            pause = backoff.delay(failures) if failures else (random.expovariate(1 / think_s) if think_s else 0.0)
            time.sleep(max(0.0, min(pause, end - time.monotonic())))
    _threads(terminals, body)
    return run.results


def run_until_each_succeeds(terminals: Sequence[FleetTerminal], timeout_s: float, *,
                            backoff: Backoff | None = None) -> list[ProbeResult]:
    """Every terminal probes at once and keeps trying (jittered backoff) until one probe of its own
    succeeds or ``timeout_s`` passes."""
    run, backoff = Run(), backoff or Backoff()
    end = time.monotonic() + timeout_s

    def body(t: FleetTerminal) -> None:
        failures = 0
        while time.monotonic() < end:
            r = t.probe()
            run.add(r)
            if r.ok:
                return
            failures += 1
            time.sleep(max(0.0, min(backoff.delay(failures), end - time.monotonic())))
    _threads(terminals, body)
    return run.results


@dataclass(frozen=True)
class Recovery:
    """After a restart: when each terminal's first probe after the server was ready succeeded."""

    seconds_all: float | None          # until the last terminal's success; None if one never succeeded
    seconds_p50: float | None
    recovered: int
    failed_probes: int                  # probes that failed while the server was down or coming back


def recovery(results: Sequence[ProbeResult], terminal_ids: Sequence[str], ready_at: float) -> Recovery:
    first: dict[str, float] = {}
    for r in sorted(results, key=lambda r: r.ended):
        if r.ok and r.terminal_id not in first:
            first[r.terminal_id] = max(0.0, r.ended - ready_at)
    waits = sorted(first.values())
    every = waits[-1] if len(first) == len(terminal_ids) and waits else None
    return Recovery(every, waits[len(waits) // 2] if waits else None, len(first),
                    sum(1 for r in results if not r.ok))


# -- the fleet across processes ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Share:
    """What one load process needs to play its terminals (picklable: key files by path)."""

    files: FleetFiles                              # with ``terminals`` left empty
    terminals: list[tuple[str, pki.Issued, str]]   # id, client certificate, signing key file


def _load_process(conn, share: _Share) -> None:
    """A load process: builds its terminals, then runs each command the parent sends and answers
    with the results (``FleetProcesses``)."""
    terminals = [FleetTerminal(TerminalKeys(tid, cert, FileSigner(path)), share.files)
                 for tid, cert, path in share.terminals]
    conn.send(terminals[0].payload_size())
    try:
        while True:
            cmd = conn.recv()
            if cmd[0] == "load":
                results = run_load(terminals, cmd[1], think_s=cmd[2])
            elif cmd[0] == "until":
                results = run_until_each_succeeds(terminals, cmd[1])
            else:
                break
            conn.send([(r.terminal_id, r.started, r.ended, r.outcome) for r in results])
    finally:
        for t in terminals:
            t.close()
        conn.close()


class FleetProcesses:
    """The fleet's terminals split across ``procs`` load processes, each with its own gRPC channels
    and its own interpreter (its own GIL), so that sealing, signing and TLS for a thousand terminals
    are not one core's work. Each terminal still has its own certificate and key. Results come back
    merged; ``time.monotonic`` is the system-wide monotonic clock on Linux, so the processes' times
    compare with each other and with the parent's (``recovery`` needs that)."""

    def __init__(self, files: FleetFiles, procs: int):
        import multiprocessing as mp

        if not 1 <= procs <= len(files.terminals):
            raise ValueError("procs must be between 1 and the number of terminals")
        ctx = mp.get_context("spawn")               # a forked child would inherit gRPC's state
        bare = FleetFiles(files.root, files.ca, files.server_toml, files.port, [])
        self.terminal_ids = [k.terminal_id for k in files.terminals]
        self._conns, self._procs = [], []
        for i in range(procs):
            mine = [(k.terminal_id, k.cert, str(k.signer.path)) for k in files.terminals[i::procs]]
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_load_process, args=(child, _Share(bare, mine)), daemon=True,
                            name=f"fleet-load-{i}")
            p.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(p)
        self.payload_size = [c.recv() for c in self._conns][0]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def _send(self, *cmd) -> None:
        for c in self._conns:
            c.send(cmd)

    def collect(self) -> list[ProbeResult]:
        """The results of the command last sent, from every process."""
        out: list[ProbeResult] = []
        for c in self._conns:
            out += [ProbeResult(*r) for r in c.recv()]
        return out

    def run_load(self, seconds: float, *, think_s: float = 0.0) -> list[ProbeResult]:
        """``run_load`` in every process at once."""
        self._send("load", seconds, think_s)
        return self.collect()

    def start_until_each_succeeds(self, timeout_s: float) -> None:
        """``run_until_each_succeeds`` in every process; ``collect()`` waits for the results."""
        self._send("until", timeout_s)

    def run_until_each_succeeds(self, timeout_s: float) -> list[ProbeResult]:
        self.start_until_each_succeeds(timeout_s)
        return self.collect()

    def close(self) -> None:
        for c in self._conns:
            try:
                c.send(("close",))
            except OSError:
                pass
        for p in self._procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        for c in self._conns:
            c.close()
