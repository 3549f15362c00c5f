"""The daemon's own process: nothing of it may end up in a core file or another process's view.

``harden_daemon()`` runs first in ``capture-agent run``: ``RLIMIT_CORE`` 0 (and the unit's
``LimitCORE=0``) and ``PR_SET_DUMPABLE`` 0. Non-dumpable also means that other processes of the
same uid cannot ``ptrace`` the daemon or read its ``/proc/PID/{mem,environ,maps}`` (the environment
may hold an HSM PIN); RLIMIT_CORE alone would not be enough where cores are piped to a helper
(systemd-coredump), which ignores it. Root is not stopped by either.
"""

from __future__ import annotations

import resource

from agent.security.sandbox import dumpable, set_nondumpable


def harden_daemon() -> dict[str, object]:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    set_nondumpable()
    return {"core_limit": resource.getrlimit(resource.RLIMIT_CORE)[0], "dumpable": dumpable()}
