"""A lost frameset in a window (agent/pipeline/gaps.py): a stream's counter advancing over a run of
framesets by a frameset's worth more than its rate explains, or its timestamp by more than the
counted frames plus half its own period; never the order of frames (a counter that does not advance
is the judge's injection signal). Matched streams come from the real matcher (pipeline/sync.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from agent.pipeline.gaps import WindowGaps, first_gap, period_streams, window_gap
from agent.pipeline.sync import FrameSetMatcher
from drivers.frame import ClockDomain, Frame, FrameSet, Intrinsics, PixelFormat, StreamKind

P = 1000 / 30


def stamps(counters, period=P, t0=5000.0):
    return [t0 + c * period for c in counters]


def test_a_whole_window_has_no_gap_at_any_step():
    c = list(range(100, 132))
    assert first_gap("ir", c, stamps(c)) is None
    c3 = list(range(300, 396, 3))                     # 90 fps depth matched at 30: 3 counted frames a step
    assert first_gap("depth", c3, stamps(c3, 1000 / 90), frameset_ms=P) is None
    rng = np.random.default_rng(1)                    # hardware timestamps with jitter
    assert first_gap("color", c, np.array(stamps(c)) + rng.normal(0, 1.0, len(c))) is None
    assert first_gap("ir", [7], [1.0]) is None and first_gap("ir", [], []) is None


def test_a_counter_jump_is_a_gap_wherever_it_falls():
    for k in (1, 2, 17, 31):                          # the first step, the middle, the last
        c = list(range(32))
        c[k:] = [x + 1 for x in c[k:]]                # frame k lost
        g = first_gap("color", c, stamps(c))
        assert g is not None and (g.stream, g.start, g.index, g.advance, g.expected) == ("color", k - 1, k, 2, 1), \
            (k, g)
        assert g.counter and np.isclose(g.ms, 2 * P) and np.isclose(g.period_ms, P)
        assert f"advanced by 2 between framesets {k - 1} and {k} of the window (1 at 1 a frameset)" in g.describe()
    c3 = list(range(0, 96, 3))
    c3[10:] = [x + 3 for x in c3[10:]]
    g = first_gap("depth", c3, stamps(c3, 1000 / 90), frameset_ms=P)
    assert g is not None and (g.start, g.index, g.advance, g.per_frameset) == (9, 10, 6, 3.0)


def test_a_timestamp_jump_with_even_counters_is_a_gap_and_a_slow_camera_is_not():
    c = list(range(32))
    t = stamps(c)
    t[20:] = [x + P for x in t[20:]]                  # a counter rewritten, its time not
    g = first_gap("ir", c, t)
    assert g is not None and g.index == 20 and g.advance == 1 and not g.counter
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


# -- 90 fps depth/IR matched at 30 fps colour, through the real matcher --------------------------

PX = np.zeros((2, 2), np.uint8)
INTR = Intrinsics(2, 2, 1.0, 1.0, 1.0, 1.0)


def matched(phase_ms, n_colour, seed, *, depth_fps=90.0, lost_colour=(), lost_ticks=(), long_colour=None,
            jitter_ms=0.3):
    """Framesets the matcher forms of a D4xx-like camera: depth and IR ticks at ``depth_fps``, colour at
    30 fps ``phase_ms`` after a tick, every timestamp on the hardware clock with ``jitter_ms`` of
    jitter. ``lost_colour``/``lost_ticks``: frames the camera never delivers; ``long_colour``: the
    colour frame whose exposure lasts two periods (every later colour frame a period later)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(int(n_colour * depth_fps / 30) + 8):
        t = 1000.0 + k * 1000.0 / depth_fps + rng.normal(0, jitter_ms)
        if k not in lost_ticks:
            frames += [(t, s, k) for s in (StreamKind.DEPTH, StreamKind.IR)]
    for k in range(n_colour):
        late = P if long_colour is not None and k >= long_colour else 0.0
        if k not in lost_colour:
            frames.append((1000.0 + phase_ms + late + k * P + rng.normal(0, jitter_ms), StreamKind.COLOR, k))
    m = FrameSetMatcher([StreamKind.DEPTH, StreamKind.COLOR, StreamKind.IR], 30.0)
    out = []
    for t, s, k in sorted(frames, key=lambda f: f[0]):
        out += m.push(Frame(s, PX, PixelFormat.Y8, t, ClockDomain.HARDWARE, int((t + 3) * 1e6), k, INTR))
    return out + m.flush()


def first_window_gap(sets):
    g = WindowGaps()
    return next((gap for fs in sets if (gap := g.check(fs)) is not None), None)


def test_a_matchers_alternating_pick_at_90_fps_is_not_a_gap_and_a_lost_frameset_is():
    # At a colour phase ~5.6 ms after a depth tick (mod 11.1 ms) the matcher's pick (the first tick
    # within half a 30 fps period before the colour frame) flips between two ticks: steps 2/3/4.
    flips = 0
    for seed, phase in enumerate((5.0, 5.4, 5.6, 6.0, 16.7, 27.8)):
        sets = matched(phase, 40, seed)
        steps = np.diff([fs.depth.frame_number for fs in sets])
        flips += int((steps != 3).sum())
        assert first_window_gap(sets) is None, (phase, steps)
        # a colour frame lost: one frameset lost, whatever the pick did around it
        for lost in (7, 20, 33):
            g = first_window_gap(matched(phase, 40, seed, lost_colour=(lost,)))
            assert g is not None and g.counter, (phase, lost)
            assert g.index == lost, (phase, lost, g)   # colour frame k is frameset k's
    assert flips >= 30                            # the picks did alternate
    # Depth ticks lost, one at a time, every colour frame matched: nothing lost on the framesets'
    # clock (the pick moves to the next tick). Two in a row at the flip phase can move a pick by a
    # whole frameset (the tolerance then holds a fourth tick): read as a gap, its IR a frameset off.
    assert first_window_gap(matched(5.6, 40, 9, lost_ticks=(30, 61, 95))) is None


def test_a_double_length_colour_frame_loses_the_reference_streams_tick():
    # Colour's own counter steps by 1, its time by two periods: the matcher gives up the depth tick
    # in between (depth's counter jumps), so the window has lost a frameset on the projector's clock
    # whichever rule reads it: counters overriding colour's time rule would not keep this window.
    for fps, jump in ((30.0, 2), (90.0, 6)):
        sets = matched(4.1, 24, 3, depth_fps=fps, long_colour=12)
        g = first_window_gap(sets)
        assert g is not None and g.index == 12, g
        depth = [fs.depth for fs in sets]
        g = first_gap("depth", [f.frame_number for f in depth], [f.timestamp_ms for f in depth], timed=False,
                      frameset_ms=P)
        assert g is not None and (g.index, g.counter, g.advance) == (12, True, jump), g
        colour = [fs.color for fs in sets]
        assert [c.frame_number for c in colour[11:13]] == [11, 12]
        assert colour[12].timestamp_ms - colour[11].timestamp_ms > 1.9 * P


def test_a_faster_streams_run_tolerates_the_pick_but_not_a_frameset_more():
    d = 1000 / 90
    for steps in ([3, 3, 2, 4, 3] * 6, [2, 4] * 15, [4, 2] * 15, [3, 4, 3, 3, 2] * 6, [2, 3, 3, 4] * 8):
        c = np.concatenate([[600], 600 + np.cumsum(steps)])
        assert first_gap("depth", c, 9000 + c * d, frameset_ms=P) is None, steps
        # one frameset lost anywhere: where it is seen, the run holds it; seen at once when the
        # step is two framesets' worth, else once the pick flips back (or not, if it never does)
        seen = 0
        for k in range(1, len(c)):
            lost = c.copy()
            lost[k:] += 3
            g = first_gap("depth", lost, 9000 + lost * d, frameset_ms=P)
            if g is not None:
                seen += 1
                assert g.counter and g.start < k <= g.index, (steps, k, g)
            if lost[k] - lost[k - 1] >= 6:
                assert g is not None and g.index == k, (steps, k, g)
        assert seen >= len(c) - 3, (steps, seen)
    # the colour stream at the framesets' rate sees every lost frameset, exactly where it was lost
    c = np.arange(31)
    for k in range(1, 31):
        lost = c.copy()
        lost[k:] += 1
        g = window_gap([("depth", np.arange(31) * 3, 9000 + np.arange(31) * 3 * d, True),
                        ("color", lost, 9004 + lost * P, True)])
        assert g is not None and (g.stream, g.index) == ("color", k)


# -- WindowGaps is window_gap, incrementally -------------------------------------------------------

def _stream(rng, n, rate):
    """One stream's counters and timestamps: steps around ``rate`` a frameset (the pick's flips, lost
    framesets, repeats and reversals), timestamps at its period with jitter and the odd long or
    short step."""
    steps = rng.choice([rate] * 6 + [rate - 1, rate + 1, 2 * rate, 0, -1, 3 * rate], n - 1)
    c = float(rng.integers(0, 5000)) + np.concatenate([[0], np.cumsum(steps)]).astype(np.float64)
    period = 1000.0 / (30 * rate)
    extra = rng.choice([0.0] * 8 + [period, -period / 2, 2 * period], n)
    return c, 1e5 + c * period + rng.uniform(-0.4, 0.4, n) + np.cumsum(extra)


@st.composite
def windows(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(2, 40))
    rates = {StreamKind.DEPTH: draw(st.sampled_from([1, 2, 3])), StreamKind.COLOR: 1}
    rates[StreamKind.IR] = rates[StreamKind.DEPTH]
    kinds = draw(st.sampled_from([(StreamKind.DEPTH, StreamKind.IR, StreamKind.COLOR),
                                  (StreamKind.IR, StreamKind.COLOR), (StreamKind.DEPTH, StreamKind.COLOR)]))
    clock = {k: draw(st.sampled_from([ClockDomain.HARDWARE] * 3 + [ClockDomain.SYSTEM])) for k in kinds}
    return n, {k: (*_stream(rng, n, rates[k]), clock[k]) for k in kinds}


@given(windows())
def test_window_gaps_answers_what_window_gap_answers_over_the_framesets_so_far(w):
    n, streams = w
    g = WindowGaps()
    for k in range(n):
        fs = FrameSet({kind: Frame(kind, PX, PixelFormat.Y8, float(s[k]), clock, 0, int(c[k]), INTR)
                       for kind, (c, s, clock) in streams.items()})
        got = g.check(fs)
        names = sorted(kind.value for kind in streams)
        want = window_gap([(kind.value, c[:k + 1], s[:k + 1], clock is ClockDomain.HARDWARE)
                           for kind, (c, s, clock) in sorted(streams.items(), key=lambda kv: kv[0].value)],
                          period_from=period_streams(names))
        assert got == want, (k, got, want)
        if got is not None:
            break


def test_ir_beside_depth_is_timed_not_counted():
    # The window of bench.lost_frames --fast90 --drop 0.003 at phase 5.5 ms that counting IR read as
    # a gap: IR's frame of depth tick 4390 lost, the matcher paired tick 4391's IR with it (IR is
    # matched to the depth tick, not the colour frame), at a flip (depth 4382, 4386, 4390).
    depth = [4374, 4376, 4380, 4382, 4386, 4390, 4392, 4395, 4397, 4400]
    ir = [4374, 4376, 4380, 4382, 4386, 4391, 4392, 4395, 4397, 4400]
    colour = list(range(1460, 1470))
    d, c = 1000 / 90, 5.5

    def fs(k):
        return FrameSet({StreamKind.DEPTH: Frame(StreamKind.DEPTH, PX, PixelFormat.Y8,
                                                 depth[k] * d, ClockDomain.HARDWARE, 0, depth[k], INTR),
                         StreamKind.IR: Frame(StreamKind.IR, PX, PixelFormat.Y8, ir[k] * d, ClockDomain.HARDWARE, 0,
                                              ir[k], INTR),
                         StreamKind.COLOR: Frame(StreamKind.COLOR, PX, PixelFormat.Y8, colour[k] * P + c,
                                                 ClockDomain.HARDWARE, 0, colour[k], INTR)})
    streams = [("color", colour, [x * P + c for x in colour], True), ("depth", depth, [x * d for x in depth], True),
               ("ir", ir, [x * d for x in ir], True)]
    assert window_gap(streams, period_from=period_streams(["color", "depth", "ir"])) is None
    assert first_window_gap([fs(k) for k in range(10)]) is None
    counted = window_gap(streams)                          # every stream counted, as the first version did
    assert counted is not None and (counted.stream, counted.start, counted.index) == ("ir", 3, 5)
    # without depth, IR sets the period and is counted: a lost frameset in it is a gap
    lost = ir[:5] + [x + 3 for x in ir[5:]]
    g = window_gap([("color", [x + (k >= 5) for k, x in enumerate(colour)], [(x + (k >= 5)) * P + c
                                                                          for k, x in enumerate(colour)], True),
                    ("ir", lost, [x * d for x in lost], True)], period_from=period_streams(["color", "ir"]))
    assert g is not None and g.index == 5
