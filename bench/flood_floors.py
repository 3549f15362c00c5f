"""The foreign flood's floors (issue 20, perf33): ``judge.flood_frames`` (every frame's floor at once,
``_flood_floors``) against ``flood_frames_before33`` (perf32's frame by frame in Python) on random 32-frame windows
(``tests/liveness/test_flood_ramp.py``'s ``ramped_windows``: a projector schedule, a ramp of the room's light,
bursts on a quarter of the frames, 5 % without a level), the two timed in the same process in alternating order,
``ROUNDS`` times over every window, thread CPU (``time.thread_time``); the flags must be the same, or this fails.

    python -m bench.flood_floors 200        # 200 windows
"""

from __future__ import annotations

import statistics
import sys
import time

ROUNDS = 7


def main(argv: list[str]) -> None:
    from agent.liveness.judge import flood_frames
    from tests.helpers.liveness_reference import flood_frames_before33
    from tests.liveness.test_flood_ramp import ramped_windows
    windows = list(ramped_windows(20, n=int(argv[0]) if argv else 200))
    times: dict[str, list[float]] = {"perf33": [], "before33": []}
    for r in range(ROUNDS):
        for name in (("perf33", "before33") if r % 2 == 0 else ("before33", "perf33")):
            fn = flood_frames if name == "perf33" else flood_frames_before33
            c = time.thread_time()
            flags = [fn(levels, lit) for lit, levels in windows]
            times[name].append((time.thread_time() - c) * 1000 / len(windows))
            if name == "perf33":
                mine = flags
            else:
                theirs = flags
        if mine != theirs:
            raise RuntimeError("the flood flags differ from perf32's")
    now, then = statistics.median(times["perf33"]), statistics.median(times["before33"])
    print(f"flood_frames per 32-frame window, median of {ROUNDS} rounds over {len(windows)} windows: "
          f"{now:.3f} ms vs before33 {then:.3f} ms ({now / then:.2f}); flags identical")


if __name__ == "__main__":
    main(sys.argv[1:])
