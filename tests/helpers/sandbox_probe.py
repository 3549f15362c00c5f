"""Apply ONE control of ``agent.security.sandbox`` in this process, then try what it must stop.

``python sandbox_probe.py CONTROL JSON`` prints one JSON object: ``{"attempt": "allowed" | "refused:
ERRNO" | ...}``. Run by ``tests/security/test_sandbox.py`` as root and as an unprivileged user, one
control at a time, so that each control is shown to be a barrier on its own (with all of them on,
seccomp's refusals would hide whether Landlock or the namespace did anything).

JSON keys: ``tcp_port`` (a listener on 127.0.0.1 in the parent's network namespace),
``unix_path`` (a filesystem Unix socket anyone may connect to), ``abstract`` (an abstract Unix
socket name), ``secret`` (a 0600 file of this uid outside every allowed path), ``allowed_dir``
(a directory Landlock allows reading, holding ``readable``), ``own_dir`` (a directory this uid
may write), ``parent_netns``.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import sys
import threading

from agent.security import sandbox


def attempt(fn) -> str:
    try:
        fn()
        return "allowed"
    except OSError as exc:
        return f"refused: {errno.errorcode.get(exc.errno or 0, exc.errno)}"
    except RuntimeError as exc:
        return f"refused: {exc}"


def libc_call(name: str, *args) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) < 0:
        raise OSError(ctypes.get_errno(), name)


def connect_unix(address: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(address)


def connect_with(sock: socket.socket, address) -> None:
    sock.connect(address)


def tcp(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(("127.0.0.1", port))


def main() -> None:
    control, cfg = sys.argv[1], json.loads(sys.argv[2])
    out: dict[str, object] = {"uid": os.getuid()}
    if control == "seccomp":
        pre_unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)      # made before the filter
        go, result = threading.Event(), {}

        def earlier_thread() -> None:              # started before the filter: TSYNC must reach it
            go.wait(10)
            result["socket"] = attempt(lambda: socket.socket(socket.AF_INET).close())
        t = threading.Thread(target=earlier_thread)
        t.start()
        sandbox.load_seccomp("start")
        go.set()
        t.join()
        out["seccomp_mode"] = sandbox.seccomp_mode()
        out["no_new_privs"] = sandbox.no_new_privs()
        out["socket_unix"] = attempt(lambda: socket.socket(socket.AF_UNIX).close())
        out["socket_inet"] = attempt(lambda: socket.socket(socket.AF_INET).close())
        out["socket_in_earlier_thread"] = result["socket"]
        out["connect_unix_path"] = attempt(lambda: connect_with(pre_unix, cfg["unix_path"]))
        out["open_write"] = attempt(lambda: open(os.path.join(cfg["own_dir"], "new"), "w").close())
        out["unlink"] = attempt(lambda: os.unlink(os.path.join(cfg["own_dir"], "existing")))
        out["read_file"] = attempt(lambda: open(cfg["secret"], "rb").close())
        out["exec"] = attempt(lambda: os.execv("/bin/true", ["true"]))
        out["fork"] = attempt(lambda: os._exit(0) if os.fork() == 0 else None)
        out["ptrace"] = attempt(lambda: libc_call("ptrace", 0, 0, None, None))
        out["kill_parent"] = attempt(lambda: os.kill(os.getppid(), 0))
        out["unshare_user"] = attempt(lambda: libc_call("unshare", sandbox.CLONE_NEWUSER))
        out["memfd_create"] = attempt(lambda: os.close(os.memfd_create("x")))
        out["io_uring_setup"] = attempt(lambda: libc_call("syscall", 425, 1, ctypes.create_string_buffer(120)))
        def one_thread() -> None:
            th = threading.Thread(target=lambda: None)
            th.start()
            th.join()
        out["thread"] = attempt(one_thread)
    elif control == "landlock":
        paths = sandbox.worker_read_paths([cfg["allowed_dir"]])
        out["abi"] = sandbox.restrict_filesystem(paths)
        out["read_allowed"] = attempt(lambda: open(os.path.join(cfg["allowed_dir"], "readable"), "rb").close())
        out["read_secret"] = attempt(lambda: open(cfg["secret"], "rb").close())
        out["create_file"] = attempt(lambda: open(os.path.join(cfg["own_dir"], "new"), "w").close())
        out["tcp_connect"] = attempt(lambda: tcp(cfg["tcp_port"]))
        out["abstract_unix"] = attempt(lambda: connect_unix("\0" + cfg["abstract"]))
        out["signal_parent"] = attempt(lambda: os.kill(os.getppid(), 0))
    elif control == "namespaces":
        out.update(sandbox.enter_namespaces())
        out["netns_inode"] = os.readlink("/proc/self/ns/net")
        out["new_netns"] = out["netns_inode"] != cfg["parent_netns"]
        out["cap_eff"] = [line.split()[1] for line in open("/proc/self/status") if line.startswith("CapEff")][0]
        out["tcp_connect"] = attempt(lambda: tcp(cfg["tcp_port"]))
    elif control == "nproc":
        # As the worker does: unprivileged in its own user namespace (the kernel counts only its
        # tasks: a tight limit); root drops to nobody (root is exempt), whose count is shared.
        own = os.geteuid() != 0 and sandbox.enter_namespaces()["userns"]
        sandbox.drop_to_nobody()
        out["uid_after_drop"], out["own_user_namespace"] = os.getuid(), own
        limits = sandbox.limit_resources(own_user_namespace=own)
        out["nproc"] = limits["RLIMIT_NPROC"]
        started: list[threading.Thread] = []
        stop = threading.Event()

        def many() -> None:
            for _ in range(limits["RLIMIT_NPROC"] + 1):
                th = threading.Thread(target=stop.wait, args=(5,))
                th.start()
                started.append(th)
        out["threads_within_limit"] = attempt(threading.Thread(target=stop.wait, args=(0,)).start)
        out["threads_beyond_limit"] = attempt(many)
        out["fork_at_limit"] = attempt(lambda: os._exit(0) if os.fork() == 0 else None)
        stop.set()
        for th in started:
            th.join()
    else:
        raise SystemExit(f"unknown control {control}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
