"""Run a command under the kernel restrictions a systemd unit file asks for, without systemd.

PID 1 on the test machine is not systemd, so ``systemctl start`` is not available. This applies,
in this process and then ``execve``, the unit's settings that are enforced by the kernel on the
process itself and could break a Python daemon:

* ``SystemCallFilter=`` (groups expanded by ``systemd-analyze syscall-filter``; an allow list
  gets ``@default`` like systemd adds it) with ``SystemCallErrorNumber=``, native architecture only;
* ``RestrictNamespaces=`` and ``RestrictAddressFamilies=`` (systemd enforces both with seccomp);
* ``NoNewPrivileges=``, ``MemoryDenyWriteExecute=`` (``PR_SET_MDWE``, kernel 6.3+), ``LimitCORE=``,
  ``UMask=``.

``User=``/``Group=``/``SupplementaryGroups=``/capabilities are the caller's (``setpriv``), and
``ProtectProc=``/``ProcSubset=`` the caller's too (a private mount of /proc). File-system views
(``ProtectSystem=``, ``PrivateTmp=``...) and cgroup settings are not emulated.

``python unit_sandbox.py UNIT -- COMMAND ...``
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import subprocess
import sys

import pyseccomp as sc

NAMESPACES = {"cgroup": 0x02000000, "ipc": 0x08000000, "net": 0x40000000, "mnt": 0x00020000, "pid": 0x20000000,
              "user": 0x10000000, "uts": 0x04000000}
FAMILIES = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17}
AF_MAX = 46
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1


def service_settings(unit: str) -> list[tuple[str, str]]:
    out, section = [], ""
    for raw in open(unit, encoding="utf-8"):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            k, v = line.split("=", 1)
            out.append((k.strip(), v.strip()))
    return out


def expand(names: list[str], seen: set[str] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    out: set[str] = set()
    for n in names:
        if not n.startswith("@"):
            out.add(n)
            continue
        if n in seen:
            continue
        seen.add(n)
        text = subprocess.run(["systemd-analyze", "syscall-filter", n, "--no-pager"], capture_output=True,
                              text=True, check=True).stdout
        members = [w for line in text.splitlines()[1:] if (w := line.strip()) and not w.startswith("#")]
        out |= expand(members, seen)
    return out


def syscall_filter(settings: list[tuple[str, str]]):
    lines = [v for k, v in settings if k == "SystemCallFilter" and v]
    if not lines:
        return None
    errno_name = dict(settings).get("SystemCallErrorNumber", "")
    action = sc.ERRNO(getattr(errno, errno_name)) if errno_name else sc.KILL_PROCESS
    allow_list = not lines[0].startswith("~")
    allowed: set[str] = expand(["@default"]) if allow_list else set()
    denied: set[str] = set()
    for v in lines:
        neg = v.startswith("~")
        names = expand(v.lstrip("~").split())
        if allow_list:
            allowed = (allowed - names) if neg else (allowed | names)
        else:
            denied = (denied | names) if neg else (denied - names)
    f = sc.SyscallFilter(defaction=action if allow_list else sc.ALLOW)
    for name in sorted(allowed if allow_list else denied):
        nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
        if nr >= 0:
            f.add_rule(sc.ALLOW if allow_list else action, nr)
    return f


def restrictions(settings: list[tuple[str, str]]):
    """RestrictNamespaces= and RestrictAddressFamilies= as a second filter (default allow)."""
    d = dict(settings)
    f = sc.SyscallFilter(defaction=sc.ALLOW)
    eperm = sc.ERRNO(errno.EPERM)
    if "RestrictNamespaces" in d:
        v = d["RestrictNamespaces"]
        allowed = set() if v == "yes" else set(NAMESPACES) if v == "no" else set(v.split())
        for name, flag in NAMESPACES.items():
            if name in allowed:
                continue
            for call, arg in (("unshare", 0), ("clone", 0), ("setns", 1)):
                f.add_rule(eperm, call, sc.Arg(arg, sc.MASKED_EQ, flag, flag))
        f.add_rule(eperm, "setns", sc.Arg(1, sc.EQ, 0))       # setns of any type
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")          # flags out of a filter's reach
    if "RestrictAddressFamilies" in d:
        keep = {FAMILIES[n] for n in d["RestrictAddressFamilies"].split()}
        for fam in range(AF_MAX + 1):
            if fam not in keep:
                f.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.EQ, fam))
        f.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.GT, AF_MAX))
    return f


def main() -> None:
    unit, sep, *cmd = sys.argv[1:]
    assert sep == "--" and cmd, __doc__
    settings = service_settings(unit)
    d = dict(settings)
    libc = ctypes.CDLL(None, use_errno=True)
    if "UMask" in d:
        os.umask(int(d["UMask"], 8))
    if d.get("LimitCORE") == "0":
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if d.get("MemoryDenyWriteExecute") == "yes" and libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0):
        raise SystemExit(f"PR_SET_MDWE: {os.strerror(ctypes.get_errno())}")
    if d.get("NoNewPrivileges") == "yes" and libc.prctl(38, 1, 0, 0, 0):
        raise SystemExit("PR_SET_NO_NEW_PRIVS failed")
    filters = [f for f in (restrictions(settings), syscall_filter(settings)) if f is not None]
    for f in filters:                        # the last one loaded must still allow loading it: order
        f.load()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
