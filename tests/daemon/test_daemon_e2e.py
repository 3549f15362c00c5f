"""``capture-agent server`` and ``capture-agent run`` as real processes, configured by
``capture-agent dev-provision``: readiness (stdout and systemd's NOTIFY_SOCKET), a verification
through ``capture-agent capture`` (the local API's own flow is the demo's test), a graceful SIGTERM,
the audit log's chain and signatures, and a scan of everything the agent wrote that finds no face data."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.security import audit
from hil.devproc import ChildFailed, start_daemon, start_dev_server
from hil.provision import provision_dev
from tests.helpers.live import cli_events, until_accepted

pytestmark = pytest.mark.slow                 # real processes: server, daemon and its worker


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"\x93NUMPY", b"BM", b"II*\x00", b"MM\x00*", b"RIFF", b"P5\n", b"P6\n")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    tmp = tmp_path_factory.mktemp("daemon-tmp")           # the daemon's TMPDIR and HOME: scanned too
    p = provision_dev(root / "dev", port=0, camera_uri="sim://?seed=21&identity=3&lux=150")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = str(tmp / "notify.sock")
    notify.bind(notify_path)
    notify.settimeout(30)
    env = {"TMPDIR": str(tmp), "HOME": str(tmp), "NOTIFY_SOCKET": notify_path}
    server, p = start_dev_server(p)                      # writes the server's port into the agent's config
    before = snapshot(root)
    with notify, server, start_daemon(p.agent_config, env=env) as daemon:
        yield {"p": p, "root": root, "tmp": tmp, "before": before, "daemon": daemon, "notify": notify,
               "server": server}


def test_ready_on_stdout_and_to_systemd(deployment):
    assert "capture-agent: ready" in deployment["daemon"].ready_line
    assert deployment["notify"].recv(256) == b"READY=1"


def test_the_capture_cli_talks_to_the_daemon(deployment):
    p = deployment["p"]
    out = subprocess.run([sys.executable, "-m", "agent.cli", "capture", "--socket", str(p.socket), "--purpose",
                          "verify"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "error[SES_CONSENT_REQUIRED]" in out.stderr

    def attempt(k: int) -> list[dict]:
        # (A live face judged inconclusive is asked again, as the kiosk app does: tests/helpers/live.py.)
        out = subprocess.run([sys.executable, "-m", "agent.cli", "capture", "--socket", str(p.socket), "--purpose",
                              "verify", "--consent", f"CONSENT-D-CLI-{k}", "--subject", "cust-77", "--json"],
                             capture_output=True, text=True, timeout=120)
        return cli_events(out)
    events = until_accepted(attempt)[-1]
    assert events[-1]["result"]["accepted"] and events[-1]["result"]["reason"] == "OK"
    assert any("progress" in e for e in events)


def test_sigterm_stops_gracefully_and_nothing_biometric_was_written(deployment):
    p, root, tmp = deployment["p"], deployment["root"], deployment["tmp"]
    rc = deployment["daemon"].stop()
    assert rc == 0 and "capture-agent: stopped (SIGTERM)" in deployment["daemon"].output()
    assert deployment["notify"].recv(256) == b"STOPPING=1"
    assert not p.socket.exists()
    # The audit log: chained, every entry covered by a signed checkpoint, key operations present.
    pub = serialization.load_pem_public_key(
        (p.root / "server" / "terminals" / f"{p.terminal_id}.pub.pem").read_bytes())
    rep = audit.verify(p.audit, pub)
    assert rep.unsigned_tail == 0 and rep.checkpoints >= 1
    entries = [json.loads(x) for x in p.audit.read_text().splitlines()]
    events = [e["event"] for e in entries]
    for needed in ("agent_start", "config_changed", "session_start", "consent", "result", "session_end",
                   "request_refused", "agent_stop", "checkpoint"):
        assert needed in events, needed
    # Everything the agent wrote, anywhere it could: new or changed files under the deployment and
    # its TMPDIR/HOME are exactly the audit log, the probe counter, the config digest and the
    # lockout state (every challenge window is charged there while it runs: keyed pseudonyms and
    # times, nothing biometric).
    after = snapshot(root)
    changed = sorted(k for k in after if before_differs(deployment["before"], after, k))
    assert changed == ["dev/state/audit-hmac.key", "dev/state/audit.jsonl", "dev/state/camera-holder.lock",
                       "dev/state/camera-maintenance.lock", "dev/state/config-sha256", "dev/state/lockout.json",
                       "dev/state/probe-counter"], changed
    assert (root / "dev/state/lockout.json").stat().st_mode & 0o777 == 0o600
    assert json.loads(after["dev/state/lockout.json"])["pending"] == {}             # every window settled
    for lock in ("camera-maintenance.lock", "camera-holder.lock"):             # locks, never data, 0600
        st = (root / "dev/state" / lock).stat()
        assert st.st_size == 0 and st.st_mode & 0o777 == 0o600, lock
    assert re.fullmatch(rb"[0-9a-f]{64}\n", after["dev/state/audit-hmac.key"])   # the pseudonym key, 0600
    leftovers = sorted(str(x.relative_to(tmp)) for x in tmp.rglob("*") if x.name != "notify.sock")
    assert leftovers == [], leftovers
    assert re.fullmatch(rb"\d+", after["dev/state/probe-counter"]) and after["dev/state/probe-counter"] == b"1"
    assert re.fullmatch(rb"[0-9a-f]{64}\n", after["dev/state/config-sha256"])
    log = after["dev/state/audit.jsonl"]
    # No image in the log, raw or base64-encoded: every line is JSON, and no string in it is long
    # enough to hold a face crop or starts (decoded or not) with an image format's magic bytes.
    # (Matching the magic anywhere in the bytes would trip on base64 signatures: "BM" is in many.)
    def strings(x):
        if isinstance(x, str):
            yield x
        elif isinstance(x, dict):
            for v in x.values():
                yield from strings(v)
        elif isinstance(x, list):
            for v in x:
                yield from strings(v)
    for line in log.splitlines():
        for text in strings(json.loads(line)):
            assert len(text) <= 256, text[:40]
            forms = [text.encode()]
            try:
                forms.append(base64.b64decode(text, validate=True))
            except (binascii.Error, ValueError):
                pass
            assert not any(f.startswith(m) for f in forms for m in IMAGE_MAGIC), text[:40]
    for e in entries:
        for k, v in e["data"].items():
            assert not isinstance(v, (list, dict)), (e["event"], k)
            if isinstance(v, str) and len(v) > 100:
                assert e["event"] == "checkpoint" and k == "signature", (e["event"], k)
    assert b"cust-77" not in log and b"CONSENT-D-CLI" not in log          # keyed pseudonyms only


def before_differs(before: dict[str, bytes], after: dict[str, bytes], k: str) -> bool:
    return before.get(k) != after[k]


def test_bad_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text('terminal_id = "t"\n[uplink]\nendpoint = ["x"]\n')
    out = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "error[AGT_CONFIG_INVALID]" in out.stderr and "endpoint" in out.stderr
    with pytest.raises(ChildFailed, match="AGT_CONFIG_INVALID"):
        start_daemon(cfg, timeout_s=60)


def test_a_world_readable_key_is_refused(tmp_path):
    p = provision_dev(tmp_path / "dev")
    os.chmod(p.root / "agent" / "signing.key", 0o644)
    out = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(p.agent_config)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "error[KEY_PERMISSIONS]" in out.stderr
    assert "PRIVATE KEY" not in out.stderr + out.stdout
