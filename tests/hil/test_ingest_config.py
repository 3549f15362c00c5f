"""The reference server's config: values checked, terminals pinned, and re-read on SIGHUP by a real
``capture-agent server`` process (key rotation and revocation without a restart)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from cryptography import x509

from agent.errors import ConfigError
from agent.purpose import Purpose
from agent.security.keys import generate_file_key, load_signer
from agent.uplink.client import UplinkClient, UplinkConnection, UplinkRefused
from hil.devproc import start_dev_server
from hil.ingest.config import build_state, build_store, load_server_config
from hil.ingest.limits import FailureLimits
from hil.ingest.redis_store import RedisStore
from hil.provision import provision_dev
from tests.helpers.probes import make_probe
from tests.helpers.terminals import CAPS


@pytest.fixture
def dev(tmp_path):
    return provision_dev(tmp_path / "dev", port=0)


def _with(config: Path, text: str, **replace: str) -> Path:
    body = config.read_text()
    for old, new in replace.items():
        assert old in body
        body = body.replace(old, new)
    config.write_text(text + body)
    return config


@pytest.mark.parametrize("line", ["nonce_ttl_s = nan", "nonce_ttl_s = inf", "retry_window_s = inf",
                                  "clock_skew_s = -1.0", "failure_window_s = nan", "nonce_ttl_s = 1.0",
                                  'store = "http://redis:6379"', 'current_suite = "rsa"', "keep_sealed = -1",
                                  "max_failures = 65", "max_failures = -1", "max_terminal_failures = 65",
                                  "max_terminal_failures = -1", "max_subject_failures = 65",
                                  "max_subject_failures = -1",
                                  "max_subject_failures = 5",    # at max_failures: one terminal locks it out everywhere
                                  # shorter than nonce_ttl_s (60): a charge would leave before its probe is judged
                                  "failure_window_s = 59.0",
                                  "store_wait_replicas = 17", "store_wait_replicas = -1", "store_wait_ms = 0",
                                  "store_wait_ms = 10001"])
def test_bad_values_are_refused(dev, line):
    key = line.split(" = ")[0]
    body = "\n".join(ln for ln in dev.server_config.read_text().splitlines() if not ln.startswith(key + " "))
    dev.server_config.write_text(line + "\n" + body)
    with pytest.raises(ConfigError):
        load_server_config(dev.server_config)


def test_the_server_says_its_failure_limits_and_says_off_loudly(dev):
    from hil.commands.server import limits_said
    cfg, _ = load_server_config(dev.server_config)
    assert limits_said(cfg) == "failure limits per 600 s: terminal 15, subject 10, subject at one terminal 5"
    assert cfg.failure_limits() == FailureLimits(5, 600.0, max_terminal_failures=15, max_subject_failures=10)
    cfg, _ = load_server_config(_with(dev.server_config, "max_failures = 0\n"))
    assert "FAILURE LIMITS OFF" in limits_said(cfg) and cfg.failure_limits().charge("t", "subject:x") is None
    body = "\n".join(ln for ln in dev.server_config.read_text().splitlines() if not ln.startswith("max_failures"))
    dev.server_config.write_text("max_terminal_failures = 0\nmax_subject_failures = 0\nmax_failures = 3\n" + body)
    cfg, _ = load_server_config(dev.server_config)
    assert limits_said(cfg) == ("failure limits per 600 s: terminal OFF (not counted), subject OFF (not counted), "
                                "subject at one terminal 3")
    charge = cfg.failure_limits().charge("t", "subject:x")                  # a 0 key is neither charged nor checked
    assert charge is not None and charge.keys == ("subject:x:terminal:t",) and charge.limits == (3,)
    assert cfg.failure_limits().charge("t", "") is None                      # nothing counted without a subject


def _limits_of(dev, lines: str) -> FailureLimits:
    body = "\n".join(ln for ln in dev.server_config.read_text().splitlines() if not ln.startswith("max_"))
    dev.server_config.write_text(lines + body)
    return load_server_config(dev.server_config)[0].failure_limits()


def test_limits_left_out_follow_max_failures(dev):
    # Review 10 (low-medium): max_terminal_failures and max_subject_failures left out were fixed at
    # 15 and 10, so a bank that had tightened max_failures to 3 got 15/10/3, and one that had raised
    # it to 10 or more no longer started. Left out, they are 3x and 2x max_failures, at most 64.
    assert _limits_of(dev, "") == FailureLimits(5, 600.0, max_terminal_failures=15, max_subject_failures=10)
    assert _limits_of(dev, "max_failures = 3\n") == FailureLimits(3, 600.0, max_terminal_failures=9,
                                                                   max_subject_failures=6)
    assert _limits_of(dev, "max_failures = 10\n") == FailureLimits(10, 600.0, max_terminal_failures=30,
                                                                    max_subject_failures=20)
    assert _limits_of(dev, "max_failures = 40\n") == FailureLimits(40, 600.0, max_terminal_failures=64,
                                                                    max_subject_failures=64)
    assert _limits_of(dev, "max_failures = 63\n").max_subject_failures == 64
    # Set, a key is taken as it is; 0 in max_failures leaves every limit off.
    assert _limits_of(dev, "max_failures = 3\nmax_terminal_failures = 20\n") == FailureLimits(
        3, 600.0, max_terminal_failures=20, max_subject_failures=6)
    assert _limits_of(dev, "max_failures = 0\n").off
    # 64 leaves no room above it for a derived subject limit: an error naming both keys.
    with pytest.raises(ConfigError, match="max_failures = 64 .*max_subject_failures"):
        _limits_of(dev, "max_failures = 64\n")
    assert _limits_of(dev, "max_failures = 64\nmax_subject_failures = 0\n") == FailureLimits(
        64, 600.0, max_terminal_failures=64, max_subject_failures=0)


def test_the_failure_window_must_cover_a_challenges_lifetime(dev):
    # Review 10 (low): a window shorter than nonce_ttl_s lets a charge leave it before its probe is
    # judged (and the stores then disagree on the count).
    body = "\n".join(ln for ln in dev.server_config.read_text().splitlines()
                     if not ln.startswith(("failure_window_s", "nonce_ttl_s")))
    dev.server_config.write_text("nonce_ttl_s = 90.0\nfailure_window_s = 89.0\n" + body)
    with pytest.raises(ConfigError, match="failure_window_s must be at least nonce_ttl_s"):
        load_server_config(dev.server_config)
    dev.server_config.write_text("nonce_ttl_s = 90.0\nfailure_window_s = 90.0\n" + body)
    assert load_server_config(dev.server_config)[0].failure_limits().window_s == 90.0


def test_a_terminal_must_be_pinned_by_its_certificate_key(dev):
    text = dev.server_config.read_text()
    pin_line = next(ln for ln in text.splitlines() if ln.startswith("certificate_spki_sha256"))
    dev.server_config.write_text(text.replace(pin_line + "\n", ""))
    cfg, base = load_server_config(dev.server_config)
    with pytest.raises(ConfigError, match="certificate_spki_sha256 is required"):
        build_state(cfg, base)


def test_a_previous_key_needs_an_end_with_a_zone(dev):
    rotation = ('previous_public_key = "terminals/kiosk-dev-0001.pub.pem"\n'
                'previous_key_until = "2030-01-01T00:00:00"\npublic_key = "terminals/')
    _with(dev.server_config, "", **{'public_key = "terminals/': rotation})
    cfg, base = load_server_config(dev.server_config)
    with pytest.raises(ConfigError, match="RFC 3339"):
        build_state(cfg, base)


def test_the_provisioned_config_builds_and_a_redis_url_builds_a_shared_store(dev, tmp_path):
    cfg, base = load_server_config(dev.server_config)
    state, _ = build_state(cfg, base)
    assert list(state.registry.terminals) == [dev.terminal_id] and cfg.nonce_ttl_s == 60.0
    cfg2, _ = load_server_config(_with(dev.server_config, f'store = "unix://{tmp_path}/r.sock"\n'))
    store = build_store(cfg2)
    assert isinstance(store, RedisStore) and store.limits.keep_used_s == 600.0
    store.close()


def _client(dev) -> UplinkClient:
    ag = dev.agent_config.parent
    return UplinkClient(UplinkConnection((f"127.0.0.1:{dev.port}",), (ag / "ca.pem").read_bytes(),
                                         (ag / f"{dev.terminal_id}.pem").read_bytes(),
                                         (ag / f"{dev.terminal_id}.key").read_bytes(), dev.terminal_id,
                                         server_name="ingest.localhost"))


def _hup(child, n_reloads: int) -> None:
    child.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60                       # generous: a loaded machine
    while sum("reloaded" in ln for ln in child.lines) < n_reloads:
        assert time.monotonic() < deadline, child.output()
        time.sleep(0.05)


@pytest.mark.slow
def test_sighup_rotates_a_terminal_key_with_overlap_and_revokes_without_a_restart(dev):
    child, dev = start_dev_server(dev, timeout_s=60)
    assert "failure limits per 600 s: terminal 15, subject 10, subject at one terminal 5" in child.ready_line
    client = _client(dev)
    try:
        old = load_signer(f"file:{dev.agent_config.parent / 'signing.key'}")
        new = generate_file_key(dev.agent_config.parent / "signing-2.key")
        srv = dev.server_config.parent
        (srv / "terminals" / "new.pub.pem").write_bytes(new.public_key_pem())

        def from_the_pinned_camera(p):
            p.device.serial, p.device.firmware = dev.camera["serial"], dev.camera["firmware"]
            p.device.calibration_sha256 = dev.camera["calibration_sha256"]

        def probe(signer):
            ch = client.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)
            made = make_probe(ch, signer, terminal_id=dev.terminal_id, session_id="sess-1",
                              payload=from_the_pinned_camera)
            return client.submit(made.message, made.probe_id)
        assert probe(old).accepted
        assert probe(new).reason == "TAMPERED"                 # not registered yet
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        text = dev.server_config.read_text().replace(
            f'public_key = "terminals/{dev.terminal_id}.pub.pem"',
            f'previous_public_key = "terminals/{dev.terminal_id}.pub.pem"\nprevious_key_until = "{until}"\n'
            'public_key = "terminals/new.pub.pem"')
        dev.server_config.write_text(text)
        _hup(child, 1)
        assert probe(new).accepted and probe(old).accepted      # both during the overlap
        serial = x509.load_pem_x509_certificate(
            (dev.agent_config.parent / f"{dev.terminal_id}.pem").read_bytes()).serial_number
        dev.server_config.write_text(f'revoked_serials = ["{serial:x}"]\n' + text)
        _hup(child, 2)
        with pytest.raises(UplinkRefused, match="REVOKED"):    # the same client, its connection still open
            client.begin("sess-1", Purpose.VERIFY, capabilities=CAPS)
        dev.server_config.write_text("nonce_ttl_s = nan\n" + text)
        child.proc.send_signal(signal.SIGHUP)                  # a broken config is refused, the server runs on
        deadline = time.monotonic() + 60                       # generous: a loaded machine
        while not any("reload refused" in ln for ln in child.lines):
            assert time.monotonic() < deadline, child.output()
            time.sleep(0.05)
        assert child.proc.poll() is None
    finally:
        client.close()
        assert child.stop() == 0


def test_the_subject_key_is_required_private_and_32_bytes_and_never_said(dev, caplog):
    # sec15: subjects are named in the store and in receipts by HMAC-SHA256 under subject_key_file;
    # dev-provision writes one, a config without one is refused (servers sharing a store and the
    # bank's matcher need the same key; a per-process key would orphan every count), and the file is
    # checked like every key file.
    import logging
    import os

    from agent.security.keys import KeyPermissionError
    cfg, base = load_server_config(dev.server_config)
    key_file = base / cfg.subject_key_file
    assert cfg.subject_key_file and (key_file.stat().st_mode & 0o777) == 0o600
    with caplog.at_level(logging.DEBUG):
        state, _ = build_state(cfg, base)
    assert state.subject_key == bytes.fromhex(key_file.read_text()) and len(state.subject_key) == 32
    assert key_file.read_text().strip() not in caplog.text and key_file.read_text().strip() not in repr(state)
    body = dev.server_config.read_text()
    dev.server_config.write_text(body.replace('subject_key_file = "subject.key"', ""))
    with pytest.raises(ConfigError, match="subject_key_file.*every server sharing a store"):
        build_state(*load_server_config(dev.server_config))
    dev.server_config.write_text(body)
    os.chmod(key_file, 0o644)
    with pytest.raises(KeyPermissionError):
        build_state(*load_server_config(dev.server_config))
    os.chmod(key_file, 0o600)
    key_file.write_text("00" * 16 + "\n")
    with pytest.raises(ConfigError, match="32 random bytes"):
        build_state(*load_server_config(dev.server_config))


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_servers_sharing_a_store_must_share_the_subject_key(dev, kind, request):
    # review11: a server started on a shared store with another subject_key_file names every subject
    # afresh (another HMAC), so each key file counts its own max_subject_failures and max_failures
    # for the same customer: a rooted terminal that can reach both servers gets twice the tries
    # against a victim, silently (main: the second server starts). The store now pins a check value
    # of the first server's key (an HMAC of a fixed label: it says nothing of the key), and a server
    # with another key is refused at start.
    import dataclasses
    import uuid

    from hil.ingest.config import write_subject_key
    cfg, base = load_server_config(dev.server_config)
    if kind == "redis":
        cfg = dataclasses.replace(cfg, store=request.getfixturevalue("redis_url"),
                                  store_prefix=f"k{uuid.uuid4().hex[:8]}:")
    store = build_store(cfg)
    try:
        first, _ = build_state(cfg, base, store=store)
        again, _ = build_state(cfg, base, store=store)                      # the same key: a second server
        assert again.subject_key == first.subject_key
        (base / "other.key").unlink(missing_ok=True)
        write_subject_key(base / "other.key")
        other = dataclasses.replace(cfg, subject_key_file="other.key")
        with pytest.raises(ConfigError, match="another subject_key_file"):
            build_state(other, base, store=store)
        assert (base / "other.key").read_text().strip() not in repr(store.__dict__)
    finally:
        store.close()


def test_a_redis_store_that_may_evict_is_refused_at_start_unless_allowed(dev, redis_url, caplog):
    # Review 13, left open: under an allkeys-*/volatile-* maxmemory-policy Redis at its maxmemory
    # evicts keys: a failure set (its failures forgotten: more tries for whoever caused them) or the
    # subject key pin (re-pinned by the next charge, perhaps to an old key). The server checked
    # nothing (main: it starts). Refused at start now, AGT_STORE_EVICTION, unless the operator sets
    # store_allow_eviction; at a reload (the server already runs on that store) it is logged with
    # the code and the reload applied. noeviction starts as before.
    import logging
    import uuid

    import redis

    from hil.ingest.config import reload
    path = _with(dev.server_config, f'store = "{redis_url}"\nstore_prefix = "ev{uuid.uuid4().hex[:8]}:"\n')
    cfg, base = load_server_config(path)
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.config_set("maxmemory-policy", "allkeys-lru")
        with pytest.raises(ConfigError) as exc:
            build_state(cfg, base)
        assert exc.value.code == "AGT_STORE_EVICTION" and "allkeys-lru" in str(exc.value)
        with caplog.at_level(logging.WARNING, logger="hil.ingest.config"):
            allowed, _ = build_state(_replace(cfg, store_allow_eviction=True), base)
        allowed.store.close()
        assert "allowed by store_allow_eviction" in caplog.text
        admin.config_set("maxmemory-policy", "noeviction")
        state, _ = build_state(cfg, base)
        admin.config_set("maxmemory-policy", "volatile-lru")                  # changed under a running server
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="hil.ingest.config"):
            reload(state, _with(path, "max_failures = 3\n"))
        assert state.limits.max_failures == 3 and "error[AGT_STORE_EVICTION]" in caplog.text
        state.store.close()
    finally:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.close()


def test_a_full_redis_under_noeviction_is_unavailable_not_a_traceback(dev, redis_url, caplog):
    # With noeviction (required above) a Redis at its maxmemory refuses plain writes: "OOM command
    # not allowed". That was a raw redis exception (main: OutOfMemoryError out of build_state, a
    # traceback at start); it is StoreUnavailable now, as an unreachable store: the start goes on
    # with a warning and the store's calls are answered UNAVAILABLE (retried), nothing forgotten.
    import logging
    import uuid

    import redis

    from hil.ingest.store import StoreUnavailable
    cfg, base = load_server_config(dev.server_config)
    cfg = _replace(cfg, store=redis_url, store_prefix=f"oom{uuid.uuid4().hex[:8]}:")
    admin = redis.Redis.from_url(redis_url)
    admin.config_set("maxmemory", 1)
    try:
        with caplog.at_level(logging.WARNING, logger="hil.ingest.config"):
            state, _ = build_state(cfg, base)
        assert "subject key not checked against the store" in caplog.text
        assert state.store.checked_run            # sec18: full is not unchecked (the epoch's script: allow-oom)
        with pytest.raises(StoreUnavailable, match="OutOfMemoryError"):
            state.store.pin_subject_keys(state.subject_keys.current.check, "", 1000)
        state.store.close()
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()


def test_a_redis_before_7_is_refused_by_its_version_before_any_script_is_loaded(dev, tmp_path, caplog):
    # sec17: the store's scripts declare Redis 7's script flags (#!lua, so that a full Redis refuses
    # them whole); Redis 6 cannot compile them. sec20 (sec19's leftover 3): the checks loaded their
    # scripts before they read the version, so on a real Redis 6 the compile error was read as INFO
    # refused (AGT_STORE_UNWATCHED), never AGT_STORE_VERSION, and a restart onto one handed the nonce's
    # script's compile error to the terminal raw. Debian has no Redis 6 here: a real Redis 7.0 behind a
    # proxy that says only its version otherwise (tests/helpers/redis_proxy.py; main: it starts, the
    # version read inside a script the proxy does not rewrite). Now the version is read first by a plain
    # INFO, and no script is loaded (no SCRIPT LOAD, no EVAL) on a Redis that says it is older than 7.0.
    import logging
    import os

    import redis

    from hil.ingest.store import NonceRecord, StoreUnavailable
    from hil.redisproc import start_redis
    from tests.helpers.redis_proxy import RedisProxy
    directory = tmp_path / "redis"
    proc = start_redis(directory)
    real = redis.Redis(unix_socket_path=str(proc.socket)).info("server")["redis_version"]
    proxy = RedisProxy(proc.socket, tmp_path / "proxy.sock")
    old = "6" + real[1:] if len(real) == 6 else "6.2.14"[:len(real)]
    cfg, base = load_server_config(dev.server_config)
    cfg = _replace(cfg, store=f"unix://{proxy.path}", store_prefix="ver:")
    state = None
    try:
        proxy.say(real, old)
        with pytest.raises(ConfigError) as exc:
            build_state(cfg, base)
        assert exc.value.code == "AGT_STORE_VERSION" and f"Redis {old}" in str(exc.value)
        assert b"SCRIPT" not in proxy.commands_sent() and b"$4\r\nEVAL\r\n" not in proxy.commands_sent()
        proxy.say(real, None)                                       # the same Redis, saying its own version
        state, _ = build_state(cfg, base)
        now = int(time.time() * 1000)

        def issue():
            record = NonceRecord("kiosk-1", f"s-{os.urandom(4).hex()}", 1, "k1", now, now + 60_000)
            return state.store.issue_nonce(os.urandom(32), record, now,
                                           state.limits.charge("kiosk-1", "", store_clock=True), os.urandom(32))
        assert issue().nonce
        # Redis restarted as "Redis 6" (a failover onto an old replica, say): its script cache is empty
        proc.stop()
        proxy.say(real, old)
        proc = start_redis(directory)
        sent = len(proxy.commands_sent())
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hil.ingest.config"):
            assert not state.store_watch.ready(now + 2_000)         # the health check: the run_id, then checks
            with pytest.raises(StoreUnavailable, match="not checked"):
                issue()                                             # main: SCRIPT LOAD, then charged on it
            assert not state.store_watch.recheck(now + 4_500)
            with pytest.raises(StoreUnavailable, match="cannot run the store's scripts"):
                state.store.failures("terminal:kiosk-1", None, 600_000)   # main: SCRIPT LOAD (Redis 6: raw error)
        assert "error[AGT_STORE_VERSION]" in caplog.text and "AGT_STORE_UNWATCHED" not in caplog.text
        assert b"SCRIPT" not in proxy.commands_sent()[sent:] and b"$4\r\nEVAL\r\n" not in proxy.commands_sent()[sent:]
        proxy.say(real, None)                                       # upgraded: checked, loaded, charged
        assert state.store_watch.recheck(now + 7_000) and issue().nonce
    finally:
        if state is not None:
            state.store.close()
        proxy.close()
        proc.stop()


def test_a_redis_store_that_persists_nothing_is_refused_at_start_unless_allowed(dev, tmp_path, caplog):
    # sec17: a Redis without appendonly or RDB save points forgets every failure count when it
    # restarts (a crash, an OOM kill, a reboot): whoever can make it restart resets every lockout.
    # main started on it (and the tests' Redis was one). Refused at start now, AGT_STORE_VOLATILE,
    # unless store_allow_volatile; RDB snapshots alone are refused too since sec18 (a crash loses
    # the writes since the last: AGT_STORE_SNAPSHOTS; main started with a warning) unless
    # store_allow_snapshots; a reload logs the code and applies the rest, as the eviction check.
    import logging
    import uuid

    import redis

    from hil.ingest.config import reload
    from hil.redisproc import start_redis
    proc = start_redis(tmp_path / "redis")      # its own: turning appendonly back on makes Redis refuse SIGTERM
    path = _with(dev.server_config, f'store = "{proc.url}"\nstore_prefix = "vol{uuid.uuid4().hex[:8]}:"\n')
    cfg, base = load_server_config(path)
    admin = redis.Redis.from_url(proc.url)
    try:
        state, _ = build_state(cfg, base)                                  # the tests' Redis: appendonly yes
        admin.config_set("appendonly", "no")
        with pytest.raises(ConfigError) as exc:
            build_state(cfg, base)
        assert exc.value.code == "AGT_STORE_VOLATILE" and "appendonly yes" in str(exc.value)
        with caplog.at_level(logging.WARNING, logger="hil.ingest.config"):
            allowed, _ = build_state(_replace(cfg, store_allow_volatile=True), base)
        allowed.store.close()
        assert "allowed by store_allow_volatile" in caplog.text
        admin.config_set("save", "900 1")
        with pytest.raises(ConfigError) as exc:
            build_state(cfg, base)
        assert exc.value.code == "AGT_STORE_SNAPSHOTS" and "900 1" in str(exc.value)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hil.ingest.config"):
            snap, _ = build_state(_replace(cfg, store_allow_snapshots=True), base)
        snap.store.close()
        assert "RDB snapshots only" in caplog.text and "allowed by store_allow_snapshots" in caplog.text
        admin.config_set("save", "")
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="hil.ingest.config"):
            reload(state, _with(path, "max_failures = 3\n"))                # changed under a running server
        assert state.limits.max_failures == 3 and "error[AGT_STORE_VOLATILE]" in caplog.text
        state.store.close()
    finally:
        admin.close()
        proc.stop()


def test_a_policy_redis_will_not_tell_is_logged_never_fatal(dev, redis_url, caplog):
    # An ACL without CONFIG (a least-privilege server user) or a managed Redis that renamed it: the
    # policy cannot be read. The server starts and says so, rather than refusing a store it cannot
    # judge; docs/uplink.md tells the operator to check the policy himself.
    import logging
    import uuid

    import redis
    user = f"ingest{uuid.uuid4().hex[:8]}"
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", user, "on", ">pw-test", "~*", "&*", "+@all", "-config")
    try:
        sock = redis_url.removeprefix("unix://")
        cfg, base = load_server_config(dev.server_config)
        cfg = _replace(cfg, store=f"unix://{user}:pw-test@{sock}", store_prefix=f"acl{uuid.uuid4().hex[:8]}:")
        with caplog.at_level(logging.WARNING, logger="hil.ingest.config"):
            state, _ = build_state(cfg, base)
        assert "refused CONFIG GET maxmemory-policy" in caplog.text and "pw-test" not in caplog.text
        assert state.store.now_ms() > 0                                        # the store itself works
        state.store.close()
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


def _replace(cfg, **changes):
    import dataclasses
    return dataclasses.replace(cfg, **changes)


def _said_after_hup(child, what: str, n: int) -> str:
    """SIGHUP, then the n-th line saying ``what`` ("reloaded" or "reload refused")."""
    child.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60                       # generous: a loaded machine
    while sum(what in ln for ln in child.lines) < n:
        assert time.monotonic() < deadline, child.output()
        time.sleep(0.05)
    return [ln for ln in child.lines if what in ln][n - 1]


@pytest.mark.slow
def test_sighup_applies_a_subject_key_change_only_as_a_rotation_that_keeps_the_old_counts(dev):
    # Issue 19 leftover (2, 3): a reload that changed subject_key_file or the key's content was
    # silently ignored (main: "reloaded", the old key kept). Now a change is applied only as a
    # rotation the store accepts, and anything else refuses the whole reload, loudly, with a stable
    # code, the old key kept. Through the real server process, its SIGHUP and real mTLS.
    import hashlib
    import hmac

    from agent.uplink.client import UplinkLockedOut
    from hil.ingest.config import new_subject_key
    from hil.ingest.subject_keys import SubjectKey
    child, dev = start_dev_server(dev, timeout_s=60)
    client = _client(dev)
    srv = dev.server_config.parent
    old_key = SubjectKey(bytes.fromhex((srv / "subject.key").read_text()))
    new_key = SubjectKey(new_subject_key())
    assert f"subject key {old_key.key_id};" in child.ready_line
    try:
        signer = load_signer(f"file:{dev.agent_config.parent / 'signing.key'}")

        def submit(ch, session):
            def from_the_pinned_camera(p):
                p.device.serial, p.device.firmware = dev.camera["serial"], dev.camera["firmware"]
                p.device.calibration_sha256 = dev.camera["calibration_sha256"]
            made = make_probe(ch, signer, terminal_id=dev.terminal_id, session_id=session,
                              payload=from_the_pinned_camera)
            return client.submit(made.message, made.probe_id)

        def begin(session):
            return client.begin(session, Purpose.VERIFY, capabilities=CAPS, subject_ref="cust-victim")
        mac = lambda key: hmac.new(key.secret, b"cust-victim", hashlib.sha256).hexdigest()  # noqa: E731
        kept = begin("s-kept")                                   # 5 charges (max_failures) under the old key
        for k in range(4):
            begin(f"s-{k}")
        body = dev.server_config.read_text()
        old_hex = (srv / "subject.key").read_text()
        (srv / "subject.key").write_text(new_key.secret.hex() + "\n")       # the content changed in place
        said = _said_after_hup(child, "reload refused", 1)
        assert "error[AGT_SUBJECT_KEY_MISMATCH]" in said and old_key.key_id in said, said
        assert new_key.secret.hex() not in child.output() and old_hex.strip() not in child.output()
        (srv / "subject.key").write_text(old_hex)
        (srv / "subject-2.key").write_text(new_key.secret.hex() + "\n")
        (srv / "subject-2.key").chmod(0o600)
        dev.server_config.write_text(body.replace('subject_key_file = "subject.key"',
                                                  'subject_key_file = "subject-2.key"'))   # another file, no rotation
        assert "error[AGT_SUBJECT_KEY_MISMATCH]" in _said_after_hup(child, "reload refused", 2)
        with pytest.raises(UplinkLockedOut):                     # the old key still in force
            begin("s-5")
        rotation = body.replace('subject_key_file = "subject.key"',
                                'subject_key_file = "subject-2.key"\nsubject_key_previous_file = "subject.key"')
        dev.server_config.write_text(rotation)
        said = _said_after_hup(child, "reloaded", 1)
        assert f"subject key {new_key.key_id} (rotating from {old_key.key_id})" in said, said
        with pytest.raises(UplinkLockedOut):                     # the 5 under the old name still count
            begin("s-6")
        rec = submit(kept, "s-kept")                             # issued before: named under the old key
        assert rec.accepted and rec.subject_key_id == old_key.key_id and rec.subject_mac == mac(old_key)
        fresh = begin("s-7")                                     # 4 old + 0 new: one more try
        rec = submit(fresh, "s-7")
        assert rec.accepted and rec.subject_key_id == new_key.key_id and rec.subject_mac == mac(new_key)
        dev.server_config.write_text(body.replace('subject_key_file = "subject.key"',
                                                  'subject_key_file = "subject-2.key"'))   # the old key dropped early
        said = _said_after_hup(child, "reload refused", 3)
        assert "error[AGT_SUBJECT_KEY_ROTATION_OPEN]" in said and "for another 6" in said, said
        assert child.proc.poll() is None
    finally:
        client.close()
        assert child.stop() == 0


def test_a_store_unreachable_at_start_is_checked_before_its_first_charge(dev, tmp_path, caplog):
    # Issues 15-19 leftover (sec18): a Redis that could not be reached at start was never checked
    # (main: a warning, then every charge went to whatever Redis answered later, here one that
    # persists nothing). The server still starts (a store outage must not keep it down), but the
    # nonce's script now refuses every charge until the checks have passed on the Redis it talks to
    # (StoreUnchecked, STORE_UNAVAILABLE to the terminal); the server runs them at the first charge.
    import logging
    import os
    import time

    from hil.ingest.store import NonceRecord, StoreUnavailable
    from hil.redisproc import start_redis
    directory = tmp_path / "late"
    directory.mkdir(mode=0o700)
    cfg, base = load_server_config(dev.server_config)
    cfg = _replace(cfg, store=f"unix://{directory / 'redis.sock'}", store_prefix="late:")
    with caplog.at_level(logging.WARNING, logger="hil.ingest.config"):
        state, _ = build_state(cfg, base)                                       # nothing listens yet
    assert "is unreachable" in caplog.text
    proc = start_redis(directory, appendonly=False)
    try:
        now = int(time.time() * 1000)

        def issue():
            record = NonceRecord("kiosk-1", "sess-1", 1, "k1", now, now + 60_000)
            return state.store.issue_nonce(os.urandom(32), record, now,
                                           state.limits.charge("kiosk-1", "", store_clock=True), b"q" * 32)
        with pytest.raises(StoreUnavailable, match="not checked"):
            issue()
        assert state.store.failures("terminal:kiosk-1", None, 600_000) == 0          # nothing charged
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="hil.ingest.config"):
            assert not state.store_watch.recheck(now + 2_000)     # (the start's try: 2 s before): persists nothing
        assert "error[AGT_STORE_VOLATILE]" in caplog.text
        with pytest.raises(StoreUnavailable, match="not checked"):
            issue()
        state.store_watch.cfg = _replace(cfg, store_allow_volatile=True)
        assert not state.store_watch.recheck(now + 3_000)                           # within STORE_RETRY_MS
        assert state.store_watch.recheck(now + 4_000)
        assert issue().nonce and state.store.failures("terminal:kiosk-1", None, 600_000) == 1
    finally:
        state.store.close()
        proc.stop()


def test_a_reload_binds_the_charges_to_its_store_checks_and_a_refused_one_changes_none(dev, tmp_path, caplog,
                                                                                       monkeypatch):
    # review18: a reload that found the store refused (here CONFIG SET appendonly no under the running
    # server) logged error[AGT_STORE_VOLATILE] and charges went on until the periodic check, up to a
    # minute (main: the charge below is issued). They are refused from the reload on. And a reload
    # refused whole for its subject key had already handed its store_allow_* to the store's checks
    # (main: the watch's cfg allows volatile after the refusal); a refused reload changes nothing.
    import logging
    import os
    import uuid

    import redis

    from hil.ingest.config import new_subject_key, reload
    from hil.ingest.store import NonceRecord, StoreUnavailable
    from hil.redisproc import start_redis
    proc = start_redis(tmp_path / "redis")
    path = _with(dev.server_config, f'store = "{proc.url}"\nstore_prefix = "rl{uuid.uuid4().hex[:8]}:"\n')
    cfg, base = load_server_config(path)
    admin = redis.Redis.from_url(proc.url)
    state, _ = build_state(cfg, base)
    try:
        def issue():
            now = int(time.time() * 1000)
            record = NonceRecord("kiosk-1", "sess-1", 1, "k1", now, now + 60_000)
            return state.store.issue_nonce(os.urandom(32), record, now,
                                           state.limits.charge("kiosk-1", "", store_clock=True), b"q" * 32)
        assert issue().nonce
        admin.config_set("appendonly", "no")
        with caplog.at_level(logging.ERROR, logger="hil.ingest.config"):
            reload(state, path)
        assert "error[AGT_STORE_VOLATILE]" in caplog.text
        with pytest.raises(StoreUnavailable):
            issue()
        body = path.read_text()
        (base / "subject-2.key").write_text(new_subject_key().hex() + "\n")
        (base / "subject-2.key").chmod(0o600)
        rotation = 'subject_key_file = "subject-2.key"\nsubject_key_previous_file = "subject.key"'
        path.write_text("store_allow_volatile = true\n" + body.replace('subject_key_file = "subject.key"', rotation))

        def down(*args, **kw):
            raise StoreUnavailable("redis: ConnectionError")
        monkeypatch.setattr(state.store, "pin_subject_keys", down)
        with pytest.raises(ConfigError):
            reload(state, path)
        assert not state.store_watch.cfg.store_allow_volatile
    finally:
        admin.close()
        state.store.close()
        proc.stop()


def test_a_host_is_named_by_its_boot_id_and_its_time_namespace_s_boottime_offset(tmp_path, redis_url):
    # sec24: each check keeps its host's reading of Redis's clock under the host's id, the elapsed clock
    # being CLOCK_BOOTTIME, one per boot and shared by every process on the host; a time namespace
    # (a container restored elsewhere) has its own, so its boottime offset is part of the id. Anything but
    # a boot id in the kernel's form is no id (no reading kept), and a host id the key cannot carry is refused.
    from hil.ingest.config import ServerConfig, StoreWatch, host_id
    boot, offsets = tmp_path / "boot_id", tmp_path / "timens_offsets"
    boot.write_text("aac0bc12-06da-49e9-b44c-55e7e24b355b\n")
    assert host_id(boot, offsets) == "aac0bc12-06da-49e9-b44c-55e7e24b355b"             # no namespace file
    offsets.write_text("monotonic           0         0\nboottime            0         0\n")
    assert host_id(boot, offsets) == "aac0bc12-06da-49e9-b44c-55e7e24b355b"
    offsets.write_text("monotonic 5 0\nboottime -3600 250\n")
    assert host_id(boot, offsets) == "aac0bc12-06da-49e9-b44c-55e7e24b355b+-3600.250"
    boot.write_text("aac0bc12-06da-49e9-b44c-55e7e24b355b:x\n")
    assert host_id(boot, offsets) is None
    assert host_id(tmp_path / "none", offsets) is None
    store = RedisStore.from_url(redis_url, prefix="hostid:")
    try:
        with pytest.raises(ValueError):
            StoreWatch(store, ServerConfig(store=redis_url), elapsed=lambda: 1.0, host="b1:*")
        watch = StoreWatch(store, ServerConfig(store=redis_url))      # the real elapsed clock: this host's id
        assert watch._host == (host_id() or "")
        assert watch.check(int(time.time() * 1000), starting=True)
        if watch._host:
            assert store.r.get(f"hostid:store-clock-host:{watch._host}") is not None
    finally:
        store.close()


def test_the_host_id_is_read_once_per_server_process(redis_url, monkeypatch):
    # sec33 (the thirty-second session's reads: "host_id reads the boot id on every call"): the function does, but the
    # server calls it once, when its StoreWatch is made at start; every check and a reload (reconfigure) keep that id.
    # As boot32's terminal: a process cannot outlive a reboot, so the id it read at start names its CLOCK_BOOTTIME for
    # as long as it runs; a boot id bind-mounted later changes nothing (read again, it would file this host's readings
    # under another host's name mid-run).
    from hil.ingest import config
    from hil.ingest.config import ServerConfig, StoreWatch
    ids = iter(["aac0bc12-06da-49e9-b44c-55e7e24b355b", "bbc0bc12-06da-49e9-b44c-55e7e24b355b"])
    calls = []
    monkeypatch.setattr(config, "host_id", lambda: calls.append(1) or next(ids))
    store = RedisStore.from_url(redis_url, prefix="hostonce:")
    try:
        cfg = ServerConfig(store=redis_url)
        watch = StoreWatch(store, cfg)
        for _ in range(3):
            assert watch.check(int(time.time() * 1000), starting=True)
        watch.reconfigure(ServerConfig(store=redis_url, failure_window_s=900.0), int(time.time() * 1000))
        assert watch.check(int(time.time() * 1000))
        assert len(calls) == 1 and watch._host == store.host == "aac0bc12-06da-49e9-b44c-55e7e24b355b"
        assert store.r.get("hostonce:store-clock-host:aac0bc12-06da-49e9-b44c-55e7e24b355b") is not None
        assert store.r.get("hostonce:store-clock-host:bbc0bc12-06da-49e9-b44c-55e7e24b355b") is None
    finally:
        store.close()
