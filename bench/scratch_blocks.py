"""The sandboxed liveness worker's per-thread blocks of temporaries (``agent/pipeline/align.py``,
``keep_scratch``) as ``/proc/PID/smaps`` shows them: each is an anonymous shared mapping of its own
(``mmap.mmap(-1, size)``, listed as ``/dev/zero (deleted)``), mapped (Size) and touched (Rss), MiB.
A real worker (``LivenessSupervisor``) judges a 12-frameset challenged window of ``sim://`` several
times; in each session, once every frameset is acknowledged and the blocks have stopped changing
(each frameset measured and folded), and again after the verdict (the blocks are unmapped when a
session ends). Run as the worker's user or root (the worker is not dumpable).

``python -m bench.scratch_blocks [SESSIONS]`` (default 3). Nothing is written.
"""

from __future__ import annotations

import sys
import time

from agent.liveness.supervisor import LivenessSupervisor
from bench.windows import challenged_window

SCENE = "sim://?realtime=0&seed=21&identity=3&skin=3&lux=150"
FRAMES = 12
NONCE = bytes(range(32))


def blocks(pid: int) -> list[tuple[float, float]]:
    """(mapped, touched) MiB of each anonymous shared mapping of ``pid``, largest first."""
    out, cur = [], None
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            head = line.split()
            if not head[0].endswith(":"):                  # a mapping's first line
                cur = [0, 0] if head[1] == "rw-s" and head[5:] == ["/dev/zero", "(deleted)"] else None
                if cur is not None:
                    out.append(cur)
            elif cur is not None and head[0] in ("Size:", "Rss:"):
                cur[head[0] == "Rss:"] = int(head[1])
    return sorted(((size / 1024, rss / 1024) for size, rss in out), reverse=True)


def settled(pid: int, timeout_s: float = 30.0) -> list[tuple[float, float]]:
    """The blocks once they have not changed for a second."""
    last, since, t_end = blocks(pid), time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        time.sleep(0.1)
        got = blocks(pid)
        if got != last:
            last, since = got, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            break
    return last


def listed(b: list[tuple[float, float]]) -> str:
    return f"{len(b)}" + "".join(f", {m:.2f}/{t:.2f}" for m, t in b)


def main(argv: list[str]) -> int:
    sessions = int(argv[0]) if argv else 3
    challenge, sets = challenged_window(SCENE, FRAMES, NONCE)
    kinds = tuple(sorted(k.value for k in challenge.kinds))
    sup = LivenessSupervisor()
    sup.start()
    try:
        pid = sup.pid
        assert pid is not None
        print("blocks (mapped/touched MiB each) during the window, after the verdict")
        for k in range(sessions):
            with sup.open_judge(frames=len(sets), nonce=NONCE, kinds=kinds) as s:
                for fs in sets:
                    s.add(fs)
                s._await_acks(s.sent)
                during = settled(pid)
                s.finish()
            print(f"session {k + 1}: {listed(during)}; {listed(settled(pid))}")
    finally:
        sup.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
