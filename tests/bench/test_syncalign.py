"""``bench syncalign``'s matcher throughput is a ratio against librealsense's own syncer, run on the
same frames in the same process (the project's rule for speed figures)."""

import pytest

from bench.bench_syncalign import sync_throughput
from drivers.frame import StreamKind
from hil.sync_scenarios import generate

pytest.importorskip("pyrealsense2")
D, IR, C = StreamKind.DEPTH, StreamKind.IR, StreamKind.COLOR


def test_sync_throughput_has_a_same_process_reference_that_matched_the_same_frames():
    rows = {r["name"]: r for r in sync_throughput(ticks=200, repeats=1)}
    speed = next(r for name, r in rows.items() if name.startswith("sync throughput"))
    assert speed["unit"] == "frames/s" and speed["reference"] > 0
    assert speed["ratio"] == pytest.approx(speed["value"] / speed["reference"])
    # The reference did the job on the same frames: every frame pushed came out of rs.syncer in a
    # frameset (the queue never overflowed), and it emitted framesets of all three streams; the
    # matcher emitted one for each tick where no stream's frame was dropped.
    handed = next(r for name, r in rows.items() if name.startswith("rs.syncer frames handed out"))
    frames, captured = generate(30.0, 200, 3.0, {D: 0.0, IR: 0.0, C: 4.0}, 0.02, 0.01, 20.0, 7)
    assert handed["value"] == handed["reference"] == len(frames)
    sets = next(r for name, r in rows.items() if name.startswith("sync framesets of all 3"))
    assert sets["reference"] > 0
    assert sets["value"] == sum(all((s, k) in captured for s in (D, IR, C)) for k in range(200))
