"""Running test code as other, unprivileged users.

``ensure_user(name)`` creates a system account (no home, no login shell) the first time a test
needs one; it needs root, and a test that needs another user is skipped with that reason when the
suite does not run as root. Children run through ``setpriv`` with no capabilities.

The interpreter: the project's ``.venv/bin/python`` may link into a directory other users cannot
enter (here ``/root/.pyenv``, mode 0700), so children of other users run the system ``python3``
of the same minor version with the project and the venv's site-packages on ``PYTHONPATH``.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER_USER = "ca-test-worker"         # runs the liveness worker's sandbox unprivileged
DAEMON_USER = "ca-test-daemon"         # the service user of the unprivileged daemon test
KIOSK_USER = "ca-test-kiosk"           # the kiosk app: a member of the daemon's group
OUTSIDER_USER = "ca-test-outsider"     # a local user who is not

# Held while a test user is looked up and made: the suite's two processes (-n 2) may make the same
# user at once (useradd then fails "already exists") or two users at once (one of them fails to lock
# /etc/passwd), on a machine that has none of them yet, as a fresh CI machine has not.
USERS_LOCK = Path(tempfile.gettempdir()) / "capture-agent-test-users.lock"


def need_root(why: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"needs root to {why}")


def ensure_user(name: str, groups: tuple[str, ...] = ()) -> tuple[int, int]:
    """``(uid, gid)`` of system user ``name`` (own group of the same name), created if missing,
    with ``groups`` as supplementary groups."""
    need_root(f"create the test user {name}")
    with open(USERS_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)                # released when the file closes
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell",
                            "/usr/sbin/nologin", name], check=True, capture_output=True)
            pw = pwd.getpwnam(name)
        for g in groups:
            if name not in grp.getgrnam(g).gr_mem:
                subprocess.run(["usermod", "--append", "--groups", g, name], check=True, capture_output=True)
    return pw.pw_uid, pw.pw_gid


def interpreter_for_others() -> tuple[str, dict[str, str]]:
    """An interpreter other users can execute, and the environment that finds this project."""
    exe = os.path.realpath(sys.executable)
    if all(os.stat(p).st_mode & 0o001 for p in [exe, *_parents(exe)]):
        return sys.executable, {}
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system is None:
        pytest.skip("no interpreter that other users can execute")
    version = subprocess.run([system, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    if version != str(tuple(sys.version_info[:2])):
        pytest.skip(f"{system} is Python {version}, the venv's packages are for {tuple(sys.version_info[:2])}")
    return system, {"PYTHONPATH": os.pathsep.join([str(ROOT), *site.getsitepackages()])}


def _parents(path: str) -> list[str]:
    p = Path(path).parent
    out = []
    while p != p.parent:
        out.append(str(p))
        p = p.parent
    return out


def run_as(user: str | None, argv: list[str], *, env: dict[str, str] | None = None, groups: tuple[str, ...] = (),
           **kw) -> subprocess.CompletedProcess:
    """Run ``[python, *argv]`` as ``user`` (None: this process's user) with its supplementary
    groups, no capabilities, and ``env`` added to a minimal environment."""
    python, base_env = interpreter_for_others()
    full_env = {"PATH": "/usr/bin:/bin", "LANG": os.environ.get("LANG", "C.UTF-8"), **base_env, **(env or {})}
    cmd = [python, *argv]
    if user is not None:
        uid, gid = ensure_user(user, groups)
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--inh-caps=-all",
               "--bounding-set=-all", *cmd]
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(cmd, env=full_env, cwd=kw.pop("cwd", "/"), **kw)


def popen_as(user: str, argv: list[str], *, env: dict[str, str] | None = None, groups: tuple[str, ...] = (),
             **kw) -> subprocess.Popen:
    """Like :func:`run_as`, started in the background."""
    python, base_env = interpreter_for_others()
    uid, gid = ensure_user(user, groups)
    full_env = {"PATH": "/usr/bin:/bin", "LANG": os.environ.get("LANG", "C.UTF-8"), **base_env, **(env or {})}
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--inh-caps=-all", "--bounding-set=-all",
           python, *argv]
    return subprocess.Popen(cmd, env=full_env, cwd=kw.pop("cwd", "/"), **kw)


def shared_tmp(prefix: str, owner: str | None = None, mode: int = 0o755) -> Path:
    """A temporary directory other users can use (pytest's own tmp is 0700 root's)."""
    import tempfile
    d = Path(tempfile.mkdtemp(prefix=prefix))
    if owner is not None:
        uid, gid = ensure_user(owner)
        os.chown(d, uid, gid)
    os.chmod(d, mode)
    return d
