"""The liveness worker's kernel sandbox, built from mechanisms that work without root.

The worker judges pixels from a camera an attacker may control, so it is treated as the part most
likely to be taken over. What stops a taken-over worker is the kernel, not Python:

* **namespaces** (:func:`enter_namespaces`): a new, empty network namespace. Unprivileged it comes
  with a new user namespace (``unshare(CLONE_NEWUSER|CLONE_NEWNET)``, the uid mapped to itself and
  every capability that brings dropped at once); as root only the network namespace. Needs a
  single-threaded process, so it runs first.
* **Landlock** (:func:`restrict_filesystem`): read-only access beneath an explicit list of paths
  (the interpreter, the packages, the face models, a few system files), nothing else readable and
  nothing writable anywhere; with ABI 4+ no TCP bind/connect, with ABI 6+ no abstract Unix sockets
  and no signals outside the worker. Landlock at ABI < 8 restricts the calling thread and the
  threads it creates later, so it too runs while the process has one thread.
* **seccomp** (:func:`load_seccomp`, libseccomp through ``pyseccomp``, with ``TSYNC`` so every
  thread gets the filter): no sockets, no ``connect``/``bind``, no ``execve``, no new processes
  (threads only), no ``ptrace``/``process_vm_*``, no namespace or mount calls, no ``io_uring``,
  ``bpf``, ``userfaultfd``, ``perf_event_open`` or key-ring calls, no signals to other processes,
  and no system call that writes a path or opens a file for writing. This is what blocks
  ``connect()`` to a filesystem Unix socket such as ``/dev/log``, which neither a network
  namespace nor Landlock (before ABI 9) stops. The ``serve`` stage adds a second filter once the
  worker has loaded everything: no ``set*id``/``capset`` either.
* **resource limits** (:func:`limit_resources`): no core files, no file growth, a bounded number
  of descriptors and of tasks (``RLIMIT_NPROC``: in the worker's own user namespace it counts the
  worker's own threads only, and is set to exactly what it needs; otherwise it counts every task
  of the uid and can only be a loose bound).

* **dies with the daemon** (:func:`die_with_parent`): ``PR_SET_PDEATHSIG`` with SIGKILL, set first
  thing and again after each change of credentials (which clears it), so a daemon killed even by
  SIGKILL leaves no worker holding face data; the daemon forks it from one long-lived thread
  (``drivers.spawner``), since Linux ties the signal to the forking thread. The worker also ends
  at once when its control channel reaches EOF.

The old Python-level socket refusal (patching ``socket.socket``) is gone: it was never a barrier,
since any C extension or ``ctypes`` call reaches the kernel directly.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_THREAD = 0x10000000, 0x20000000, 0x40000000, 0x00010000
NAMESPACE_FLAGS = (CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET)
PR_SET_DUMPABLE, PR_GET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 4, 3, 38, 39
NOBODY = 65534
O_TMPFILE = 0o20000000
WRITE_FLAGS = (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND, O_TMPFILE)
TIOCSTI, TIOCLINUX = 0x5412, 0x541C

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(Exception):
    """A sandbox step the worker needs could not be applied; the worker does not serve without it.

    Not a ``CaptureAgentError``: this module is imported before anything else in the worker, and
    ``drivers.errors`` would import numpy, whose thread pool would make the process multi-threaded
    before the namespace and Landlock steps. The worker reports it to the supervisor, which raises
    ``LivenessWorkerError`` with this code."""

    code = "LIV_SANDBOX_FAILED"

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


def _check(result: int, what: str) -> int:
    if result < 0:
        e = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(e)} (errno {e})")
    return result


def thread_count() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/task"))


def require_single_thread(step: str) -> None:
    n = thread_count()
    if n != 1:
        raise SandboxError(f"{step} needs a single-threaded process; this one has {n} threads")


# --- namespaces -------------------------------------------------------------------------------------

def _capset_zero(nr: int) -> None:
    """Drop every capability (effective, permitted, inheritable) of this thread (``nr``: capset)."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    header = Header(0x20080522, 0)                     # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    _check(_libc.syscall(nr, ctypes.byref(header), ctypes.byref(data)), "capset")


def enter_namespaces() -> dict[str, Any]:
    """A new network namespace (and, unprivileged, a user namespace to make one). Returns what was
    achieved; a kernel or container that forbids both leaves the worker in the daemon's network
    namespace, which seccomp's socket rules still cover (the report says so)."""
    require_single_thread("unshare")
    capset = _seccomp().resolve_syscall(_seccomp().Arch.NATIVE, "capset")   # libseccomp loaded before unshare
    if os.geteuid() == 0 and _libc.unshare(CLONE_NEWNET) == 0:
        return {"userns": False, "netns": True}
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return {"userns": False, "netns": False,
                "namespaces_error": f"unshare(CLONE_NEWUSER|CLONE_NEWNET): {os.strerror(ctypes.get_errno())}"}
    # The same ids inside as outside: files keep their owners, and nothing maps to root.
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)
    _capset_zero(capset)                                 # the new namespace granted all; keep none
    return {"userns": True, "netns": True}


# --- Landlock -----------------------------------------------------------------------------------------

_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446   # the same on x86_64 and aarch64
_LL_VERSION = 1
_LL_RULE_PATH_BENEATH = 1
# Filesystem rights by the ABI that introduced them.
LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_LL_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_LL_NET_BIND_TCP, _LL_NET_CONNECT_TCP = 1, 2                       # ABI 4
_LL_SCOPE_ABSTRACT_UNIX, _LL_SCOPE_SIGNAL = 1, 2                   # ABI 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is not built in or not enabled."""
    r = _libc.syscall(_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_LL_VERSION))
    return r if r > 0 else 0


def restrict_filesystem(read_only: Iterable[str | os.PathLike[str]]) -> int:
    """Allow reading beneath ``read_only`` and nothing else, for this process from now on.
    Returns the ABI enforced (0: Landlock unavailable, nothing done)."""
    abi = landlock_abi()
    if abi == 0:
        return 0
    require_single_thread("Landlock")
    fs = _LL_FS_BY_ABI[max(k for k in _LL_FS_BY_ABI if k <= abi)]
    attr = _RulesetAttr(fs, (_LL_NET_BIND_TCP | _LL_NET_CONNECT_TCP) if abi >= 4 else 0,
                        (_LL_SCOPE_ABSTRACT_UNIX | _LL_SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24                  # the struct as this ABI knows it
    ruleset = _check(_libc.syscall(_LL_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)),
                     "landlock_create_ruleset")
    try:
        for path in dict.fromkeys(str(p) for p in read_only):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue                                   # not on this machine: nothing to allow
            try:
                is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
                rule = _PathBeneath(LL_READ_FILE | (LL_READ_DIR if is_dir else 0), fd)
                _check(_libc.syscall(_LL_ADD_RULE, ruleset, _LL_RULE_PATH_BENEATH, ctypes.byref(rule),
                                     ctypes.c_uint32(0)), f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        set_no_new_privs()
        _check(_libc.syscall(_LL_RESTRICT, ruleset, ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def worker_read_paths(extra: Iterable[str | os.PathLike[str]] = ()) -> list[str]:
    """What the worker reads: the interpreter and its libraries, the import path, the face models,
    shared libraries, the few system files glibc and the model runtime consult, and its own /proc."""
    paths: list[str] = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                        os.path.dirname(os.path.realpath(sys.executable))]
    # Not the working directory: ``python -m`` puts it first on sys.path, and the worker's is "/".
    cwd = os.getcwd()
    paths += [p for p in sys.path if p and os.path.isabs(p) and os.path.realpath(p) not in ("/", cwd)]
    paths += ["/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib", "/lib64", "/usr/share/locale",
              "/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
              "/sys/devices/system/cpu", "/sys/fs/cgroup", "/proc/cpuinfo", "/proc/meminfo",
              f"/proc/{os.getpid()}", "/dev/null", "/dev/urandom"]
    paths += [str(p) for p in extra]
    out: list[str] = []
    for p in paths:
        for q in (p, os.path.realpath(p)):
            if q not in out and q != "/":
                out.append(q)
    return out


# --- seccomp ------------------------------------------------------------------------------------------

def _seccomp():
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:
        raise SandboxError(f"seccomp is unavailable (pyseccomp / libseccomp2): {exc}") from None
    return pyseccomp


# Always refused: ways out of the worker and kernel attack surface a judge never needs.
DENIED = (
    "socket socketpair connect bind listen accept accept4 "                              # network, IPC
    "execve execveat fork vfork "                                                       # new programs
    "ptrace process_vm_readv process_vm_writev process_madvise pidfd_open pidfd_getfd pidfd_send_signal "
    "kcmp tkill "                                                                        # other processes
    "unshare setns mount umount2 pivot_root chroot move_mount open_tree fsopen fsconfig fsmount fspick "
    "mount_setattr "                                                                     # namespaces
    "io_uring_setup io_uring_enter io_uring_register bpf perf_event_open userfaultfd "
    "keyctl add_key request_key modify_ldt personality uselib "                          # attack surface
    "creat mknod mknodat unlink unlinkat rename renameat renameat2 link linkat symlink symlinkat mkdir "
    "mkdirat rmdir truncate ftruncate fallocate chmod fchmod fchmodat chown fchown lchown fchownat utime "
    "utimes utimensat futimesat setxattr lsetxattr fsetxattr removexattr lremovexattr fremovexattr "
    "memfd_create memfd_secret name_to_handle_at open_by_handle_at fanotify_init quotactl "  # files
    "reboot kexec_load kexec_file_load init_module finit_module delete_module swapon swapoff acct "
    "settimeofday clock_settime clock_adjtime adjtimex sethostname setdomainname iopl ioperm syslog "
    "vhangup lookup_dcookie"                                                             # privileged
).split()
# Refused once the worker has loaded everything and (as root) dropped to nobody.
DENIED_SERVING = ("setuid setgid setreuid setregid setresuid setresgid setgroups setfsuid setfsgid capset").split()


def _add(sc, f, action: int, name: str, *args) -> bool:
    nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
    if nr < 0:
        return False                                   # not a system call on this architecture
    f.add_rule(action, nr, *args)
    return True


def load_seccomp(stage: str) -> None:
    """Load the ``start`` filter (see the module docstring) or stack the ``serve`` filter on it.
    Applies to every thread (TSYNC); sets no_new_privs (required unprivileged)."""
    sc = _seccomp()
    deny = sc.ERRNO(errno.EPERM)
    f = sc.SyscallFilter(defaction=sc.ALLOW)
    f.set_attr(sc.Attr.CTL_TSYNC, 1)
    f.set_attr(sc.Attr.CTL_NNP, 1)
    me = os.getpid()
    if stage == "start":
        for name in DENIED:
            _add(sc, f, deny, name)
        # openat2 and clone3 carry their flags in a struct a filter cannot read: make them look
        # absent, so glibc falls back to openat/clone, whose flags are checked below.
        _add(sc, f, sc.ERRNO(errno.ENOSYS), "openat2")
        _add(sc, f, sc.ERRNO(errno.ENOSYS), "clone3")
        for bit in WRITE_FLAGS:                          # reading files only
            _add(sc, f, deny, "open", sc.Arg(1, sc.MASKED_EQ, bit, bit))
            _add(sc, f, deny, "openat", sc.Arg(2, sc.MASKED_EQ, bit, bit))
        # Threads only: clone without CLONE_THREAD (a process), or with any namespace flag.
        _add(sc, f, deny, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        for ns in NAMESPACE_FLAGS:
            _add(sc, f, deny, "clone", sc.Arg(0, sc.MASKED_EQ, ns, ns))
        # Signals only to itself (glibc's set*id broadcast and Python's own signal use tgkill).
        _add(sc, f, deny, "kill", sc.Arg(0, sc.NE, me))
        _add(sc, f, deny, "tgkill", sc.Arg(0, sc.NE, me))
        _add(sc, f, deny, "rt_sigqueueinfo", sc.Arg(0, sc.NE, me))
        _add(sc, f, deny, "rt_tgsigqueueinfo", sc.Arg(0, sc.NE, me))
        for request in (TIOCSTI, TIOCLINUX):            # typing into a terminal the worker inherited
            _add(sc, f, deny, "ioctl", sc.Arg(1, sc.EQ, request))
    elif stage == "serve":
        for name in DENIED_SERVING:
            _add(sc, f, deny, name)
    else:
        raise ValueError(f"unknown seccomp stage {stage!r}")
    try:
        f.load()
    except OSError as exc:
        raise SandboxError(f"seccomp filter ({stage}) did not load: {exc}") from None


def seccomp_mode() -> int:
    """``Seccomp:`` of /proc/self/status: 0 none, 1 strict, 2 filter."""
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("Seccomp:"):
            return int(line.split()[1])
    return 0


# --- process attributes and limits ---------------------------------------------------------------------

def set_no_new_privs() -> None:
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def no_new_privs() -> bool:
    return _libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1


def set_nondumpable() -> None:
    """No core dump, no ptrace attach and no /proc/PID/{mem,environ,maps} for other processes of the
    same uid. execve resets it, so every process sets it for itself."""
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


def dumpable() -> bool:
    return _libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1


PR_SET_PDEATHSIG, PR_GET_PDEATHSIG = 1, 2


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL when the daemon that started this process dies (``PR_SET_PDEATHSIG``), even by SIGKILL:
    a worker holding face data never outlives it. Linux clears the setting when the credentials
    change (:func:`drop_to_nobody`): set again after that. The parent may have died before it took
    effect: then this process ends at once (its parent is no longer ``parent_pid``)."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent_pid:
        os._exit(0)


def parent_death_signal() -> int:
    """The signal this process gets when its parent dies (0: none)."""
    sig = ctypes.c_int(0)
    _check(_libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(sig), 0, 0, 0), "prctl(PR_GET_PDEATHSIG)")
    return sig.value


def drop_to_nobody() -> None:
    """Root only: become nobody (glibc applies set*id to every thread)."""
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


WORKER_LIMITS = {
    "RLIMIT_CORE": 0,                 # a core file would hold face pixels
    "RLIMIT_FSIZE": 0,                # no file growth at all (seccomp already refuses write opens)
    "RLIMIT_NOFILE": 64,
    "RLIMIT_AS": 8 << 30,             # the model runtime and numpy reserve generously; bounded anyway
}


SHARED_UID_HEADROOM = 256          # RLIMIT_NPROC above the worker's threads when its uid's count is shared


def limit_resources(*, own_user_namespace: bool, spare_tasks: int = 2) -> dict[str, int]:
    """Apply WORKER_LIMITS and RLIMIT_NPROC. In the worker's own user namespace the kernel counts
    only the worker's tasks, so the limit is its threads now + ``spare_tasks``: not one process or
    thread more. Without one (root, or namespaces forbidden) the count is every task of the uid,
    system-wide (the daemon's, and as nobody every other nobody process): a tight limit would race
    them and kill the worker, so it is ``SHARED_UID_HEADROOM`` above; seccomp still refuses new
    processes. Root (CAP_SYS_RESOURCE) is exempt from NPROC altogether, so root drops to nobody first."""
    import signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # a write past FSIZE fails instead of killing
    limits = dict(WORKER_LIMITS)
    limits["RLIMIT_NPROC"] = thread_count() + (spare_tasks if own_user_namespace else SHARED_UID_HEADROOM)
    for name, value in limits.items():
        res = getattr(resource, name)
        _, hard = resource.getrlimit(res)
        new = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(res, (new, new))
    return {n: resource.getrlimit(getattr(resource, n))[0] for n in limits}
