"""The liveness worker's kernel sandbox (``agent/security/sandbox.py``), one control at a time, as
root and as an unprivileged user: each control is applied alone in a child process, which then
tries what that control must stop (``tests/helpers/sandbox_probe.py``)."""

from __future__ import annotations

import json
import os
import socket

import pytest

from agent.security import sandbox
from tests.helpers.users import ROOT, WORKER_USER, ensure_user, need_root, run_as, shared_tmp

PROBE = str(ROOT / "tests" / "helpers" / "sandbox_probe.py")
AS = ["root", "unprivileged"]


@pytest.fixture
def world(request):
    """Listeners in this process's network namespace, a filesystem and an abstract Unix socket,
    and files of the user the probe runs as (its 0600 secret, a directory it may write)."""
    who = request.param
    if who == "root":
        need_root("run the probe as root")
        user, uid, gid = None, 0, 0
    else:
        user = WORKER_USER if os.geteuid() == 0 else None
        uid, gid = ensure_user(WORKER_USER) if user else (os.getuid(), os.getgid())
    d = shared_tmp("ca-sandbox-")
    own = d / "own"
    own.mkdir()
    (own / "existing").write_text("x")
    allowed = d / "allowed"
    allowed.mkdir()
    (allowed / "readable").write_text("public")
    secret = d / "secret"
    secret.write_text("the daemon's secret")
    os.chmod(secret, 0o600)
    for p in (own, own / "existing", allowed, allowed / "readable", secret):
        os.chown(p, uid, gid)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(d / "log.sock"))
    os.chmod(d / "log.sock", 0o666)
    unix.listen(8)
    abstract = f"ca-sandbox-test-{os.getpid()}"
    ab = socket.socket(socket.AF_UNIX)
    ab.bind("\0" + abstract)
    ab.listen(8)
    cfg = {"tcp_port": tcp.getsockname()[1], "unix_path": str(d / "log.sock"), "abstract": abstract,
           "secret": str(secret), "allowed_dir": str(allowed), "own_dir": str(own),
           "parent_netns": os.readlink("/proc/self/ns/net")}
    yield who, user, uid, cfg
    for s in (tcp, unix, ab):
        s.close()
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def probe(user, control: str, cfg: dict) -> dict:
    out = run_as(user, [PROBE, control, json.dumps(cfg)], timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("world", AS, indirect=True)
def test_seccomp_refuses_sockets_exec_processes_writes_and_ptrace_in_every_thread(world):
    who, user, uid, cfg = world
    r = probe(user, "seccomp", cfg)
    assert r["uid"] == uid and r["seccomp_mode"] == 2 and r["no_new_privs"] is True
    for what in ("socket_unix", "socket_inet", "socket_in_earlier_thread", "connect_unix_path", "open_write",
                 "unlink", "exec", "fork", "ptrace", "kill_parent", "unshare_user", "memfd_create", "io_uring_setup"):
        assert r[what] == "refused: EPERM", (who, what, r[what])
    # A connect() to a filesystem socket (the issue's /dev/log) is stopped here, on a socket made
    # before the filter; reading is seccomp's to allow (Landlock narrows it) and threads still work.
    assert r["read_file"] == "allowed" and r["thread"] == "allowed"


@pytest.mark.parametrize("world", AS, indirect=True)
def test_landlock_allows_reading_only_the_listed_paths(world):
    who, user, uid, cfg = world
    r = probe(user, "landlock", cfg)
    if r["abi"] == 0:
        pytest.skip("Landlock is not enabled in this kernel")
    assert r["read_allowed"] == "allowed"
    assert r["read_secret"] == "refused: EACCES", who          # its own 0600 file, outside the list
    assert r["create_file"] == "refused: EACCES", who          # in a directory it owns
    if r["abi"] >= 4:
        assert r["tcp_connect"] == "refused: EACCES"
    if r["abi"] >= 6:
        assert r["abstract_unix"] == "refused: EPERM" and r["signal_parent"] == "refused: EPERM"


@pytest.mark.parametrize("world", AS, indirect=True)
def test_namespaces_give_an_empty_network_and_no_capabilities(world):
    who, user, uid, cfg = world
    r = probe(user, "namespaces", cfg)
    assert r["netns"] is True and r["new_netns"] is True, r
    assert r["userns"] is (who == "unprivileged")        # root needs no user namespace for a netns
    assert r["tcp_connect"] == "refused: ENETUNREACH"     # loopback of its own namespace is down
    if who == "unprivileged":
        assert int(r["cap_eff"], 16) == 0                 # what the user namespace granted is dropped


@pytest.mark.parametrize("world", AS, indirect=True)
def test_rlimit_nproc_stops_new_tasks(world):
    who, user, uid, cfg = world
    r = probe(user, "nproc", cfg)
    assert r["uid_after_drop"] != 0                       # root drops to nobody, or NPROC would not bind
    if who == "unprivileged":
        assert r["own_user_namespace"] is True and r["nproc"] <= 8   # its own threads + 2: tight
    assert r["threads_within_limit"] == "allowed"
    assert r["threads_beyond_limit"] == "refused: can't start new thread"
    assert r["fork_at_limit"] == "refused: EAGAIN"


def test_the_read_list_is_never_the_whole_disk_nor_the_working_directory(monkeypatch, tmp_path):
    # ``python -m`` puts the working directory first on sys.path; the worker's is "/".
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", ["/", str(tmp_path), *__import__("sys").path])
    paths = sandbox.worker_read_paths(["/opt/models"])
    assert "/" not in paths and str(tmp_path) not in paths
    assert "/opt/models" in paths and os.path.realpath(__import__("sys").base_prefix) in paths
    assert sandbox.landlock_abi() >= 0 and sandbox.thread_count() >= 1
