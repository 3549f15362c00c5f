"""A lost frameset in a window (agent/pipeline/gaps.py): a stream's counter stepping by more than the
window's step, or its timestamp by more than the counted frames plus half the window's own period;
never the order of frames (a counter that does not advance is the judge's injection signal)."""

from __future__ import annotations

import numpy as np

from agent.pipeline.gaps import WindowGaps, first_gap
from drivers.frame import ClockDomain, Frame, FrameSet, Intrinsics, PixelFormat, StreamKind

P = 1000 / 30


def stamps(counters, period=P, t0=5000.0):
    return [t0 + c * period for c in counters]


def test_a_whole_window_has_no_gap_at_any_step():
    c = list(range(100, 132))
    assert first_gap("ir", c, stamps(c)) is None
    c3 = list(range(300, 396, 3))                     # 90 fps depth matched at 30: 3 counted frames a step
    assert first_gap("depth", c3, stamps(c3, 1000 / 90)) is None
    rng = np.random.default_rng(1)                    # hardware timestamps with jitter
    assert first_gap("color", c, np.array(stamps(c)) + rng.normal(0, 1.0, len(c))) is None
    assert first_gap("ir", [7], [1.0]) is None and first_gap("ir", [], []) is None


def test_a_counter_jump_is_a_gap_wherever_it_falls():
    for k in (1, 2, 17, 31):                          # the first step, the middle, the last
        c = list(range(32))
        c[k:] = [x + 1 for x in c[k:]]                # frame k lost
        g = first_gap("color", c, stamps(c))
        assert g is not None and (g.stream, g.index, g.counter_step, g.expected_step) == ("color", k, 2, 1), (k, g)
        assert np.isclose(g.ms, 2 * P) and np.isclose(g.period_ms, P)
        assert f"advanced by 2 between framesets {k - 1} and {k}" in g.describe()
    c3 = list(range(0, 96, 3))
    c3[10:] = [x + 3 for x in c3[10:]]
    assert first_gap("depth", c3, stamps(c3, 1000 / 90)).counter_step == 6


def test_a_timestamp_jump_with_even_counters_is_a_gap_and_a_slow_camera_is_not():
    c = list(range(32))
    t = stamps(c)
    t[20:] = [x + P for x in t[20:]]                  # a counter rewritten, its time not
    g = first_gap("ir", c, t)
    assert g is not None and g.index == 20 and g.counter_step == g.expected_step == 1
    assert "ms apart between framesets 19 and 20" in g.describe()
    # A colour imager at half its profile's rate (auto-exposure priority in dim light): even steps.
    assert first_gap("color", c, stamps(c, 2 * P)) is None
    # Untimed (host arrival times, or the server): the counters alone.
    assert first_gap("ir", c, t, timed=False) is None


def test_the_window_times_only_streams_on_the_cameras_clock():
    def fs(k, domain):
        px = np.zeros((4, 4), np.uint8)
        intr = Intrinsics(4, 4, 2.0, 2.0, 2.0, 2.0)
        t = 5000.0 + k * P + (P if k >= 5 else 0.0)           # one step twice as long, counters even
        return FrameSet({s: Frame(s, px, PixelFormat.Y8, t, domain, 0, k, intr) for s in (StreamKind.IR,
                                                                                          StreamKind.COLOR)})
    for domain, want in ((ClockDomain.HARDWARE, 5), (ClockDomain.SYSTEM, None)):
        g = WindowGaps()
        found = [gap for k in range(12) if (gap := g.check(fs(k, domain))) is not None]
        assert (found[0].index if found else None) == want, domain


def test_what_does_not_advance_is_not_a_gap():
    c = list(range(31))
    c.insert(5, 4)                                    # a repeated frame: the judge's injection signal
    assert first_gap("ir", c, stamps(c)) is None
    assert first_gap("ir", c[::-1], stamps(c)[::-1]) is None
