"""The simulated camera under a challenge: projector latency and jitter, metadata lag, IR
auto-exposure and exposure locks, reproducibility."""

import itertools

import numpy as np
import pytest

import drivers
from drivers.frame import StreamKind
from drivers.sim.timing import Timeline
from tests.helpers.sim import dot_energy, grab

D, C, IR = StreamKind.DEPTH, StreamKind.COLOR, StreamKind.IR
# A small scene renders fast: the wall alone still shows the dots (or not) and meters the exposure.
FAST = "sim://?realtime=0&subject=none&jitter_ms=0"


def ticks(cam, commands: dict[int, bool], n: int) -> list[dict]:
    """Read ``n`` framesets; before reading tick k, send ``set_projector(commands[k])`` if given."""
    out = []
    for k in range(n):
        if k in commands:
            cam.set_projector(commands[k])
        s = grab("", 1, cam)[0][0]
        assert s[D].frame_number == k
        out.append({"set": s, "physical": cam.scene.projector_on, "claimed": s[IR].metadata.projector_on})
    return out


@pytest.mark.parametrize("latency", [0, 1, 2, 3])
def test_latency_shifts_the_physical_projector_by_exactly_n_frames(latency):
    cam = drivers.open(f"{FAST}&seed=3&projector_latency={latency}")
    cam.start()
    commands = {2: False, 6: True, 7: False, 11: True}           # issued before ticks 2, 6, 7, 11
    got = ticks(cam, commands, 16)
    expected = []
    state = True
    for k in range(16):
        if k - latency in commands:
            state = commands[k - latency]
        expected.append(state)
    assert [g["physical"] for g in got] == expected
    # Metadata reports what the projector did (no metadata lag configured).
    assert [g["claimed"] for g in got] == expected
    # The pixels agree: the dots on the wall are there exactly when the projector is physically on.
    energy = np.array([dot_energy(g["set"][IR].pixels, np.ones((480, 640), bool)) for g in got])
    on = np.array(expected)
    assert energy[on].min() > 1.5 * energy[~on].max()
    cam.stop()


def test_jitter_lands_an_edge_one_frame_late_at_its_rate():
    # 4000 edges through the timeline the camera uses: the share landing one frame late is P within
    # four binomial standard deviations, never more than one frame late, never reordered.
    for p in (0.05, 0.2, 0.5):
        tl = Timeline(True, 1, p, np.random.default_rng(11))
        late = 0
        n = 4000
        for i in range(n):
            landing = tl.command(i % 2 == 0, issued=3 * i)           # edges 3 ticks apart: no queueing
            assert landing.effective - landing.issued in (1, 2)
            late += landing.effective - landing.issued == 2
        sd = np.sqrt(n * p * (1 - p))
        assert abs(late - n * p) < 4 * sd, (p, late)


def test_jittered_camera_lands_each_edge_at_latency_or_one_later():
    cam = drivers.open(f"{FAST}&seed=8&projector_latency=1&projector_jitter=0.5")
    cam.start()
    commands = {k: k % 6 != 0 for k in range(0, 60, 3)}           # an edge every 3 ticks
    got = ticks(cam, commands, 64)
    physical = [g["physical"] for g in got]
    delays = []
    for k, want in commands.items():
        if k == 0 or commands[k - 3] == want:
            continue
        landed = next(j for j in range(k, 64) if physical[j] == want)
        delays.append(landed - k)
    assert set(delays) == {1, 2}                                     # both happen, nothing else
    cam.stop()


def test_commands_never_overtake_each_other():
    tl = Timeline("a", 0, 1.0, np.random.default_rng(0))            # every command one frame late
    tl.command("b", issued=5)
    tl.command("c", issued=5)
    assert [tl.state_at(k) for k in (5, 6, 7)] == ["a", "c", "c"]
    with pytest.raises(ValueError):
        tl.command("d", issued=4)


@pytest.mark.parametrize("lag", [1, -1])
def test_projector_metadata_can_trail_or_lead_the_pixels(lag):
    cam = drivers.open(f"{FAST}&seed=3&projector_latency=1&projector_md_lag={lag}")
    cam.start()
    got = ticks(cam, {3: False, 8: True}, 14)
    physical = [g["physical"] for g in got]
    claimed = [g["claimed"] for g in got]
    assert physical[4:9] == [False] * 5 and physical[3] and physical[9]
    if lag == 1:        # each frame reports the state of the frame before it
        assert claimed[1:] == physical[:-1] and claimed[0] == physical[0]
    else:               # each frame reports the state the next frame will have
        assert claimed[:-1] == physical[1:]
    cam.stop()


def test_older_spellings_of_the_timing_keys_are_accepted():
    a = drivers.open("sim://?emitter_latency=2&emitter_jitter=0.25")
    assert (a.cfg.projector_latency, a.cfg.projector_jitter) == (2, 0.25)
    for bad in ("projector_latency=4", "projector_jitter=1.5", "projector_md_lag=2", "screen_latency=-1"):
        with pytest.raises(drivers.InvalidUri):
            drivers.open(f"sim://?{bad}")


def test_ir_auto_exposure_chases_a_projector_toggle_and_stops_when_locked():
    # In a 500 lux room the exposure is below its 8.5 ms ceiling, so it can follow the dots both ways.
    cam = drivers.open("sim://?realtime=0&seed=5&lux=500")
    cam.start()
    lit = grab("", 2, cam)[0]
    e_on = lit[-1][IR].metadata.exposure_us
    cam.set_projector(False)
    dark = grab("", 10, cam)[0]
    exposures = [s[IR].metadata.exposure_us for s in dark]
    # The image lost the dots: the exposure climbs frame after frame, then settles higher.
    assert exposures[0] == pytest.approx(e_on)                      # metered after the first dark frame
    assert all(b >= a for a, b in itertools.pairwise(exposures)) and exposures[-1] > 1.2 * e_on
    assert abs(dark[-1][IR].pixels.mean() - lit[-1][IR].pixels.mean()) < \
        abs(dark[0][IR].pixels.mean() - lit[-1][IR].pixels.mean())  # the level came back
    cam.set_projector(True)
    relit = grab("", 10, cam)[0]
    assert relit[-1][IR].metadata.exposure_us < 0.9 * exposures[-1]
    # Locked: the exposure holds at the value the lock returned, whatever the projector does.
    held = cam.lock_exposure(IR)
    assert held == cam.lock_exposure(StreamKind.DEPTH)            # one imager, idempotent
    assert held.exposure_us == pytest.approx(relit[-1][IR].metadata.exposure_us, rel=0.2)
    levels = []
    for on in (False, False, False, True, True, False):
        cam.set_projector(on)
        s = grab("", 1, cam)[0][0]
        assert (s[IR].metadata.exposure_us, s[IR].metadata.gain) == (held.exposure_us, held.gain)
        levels.append(s[IR].pixels.mean())
    assert levels[2] < levels[3]                                    # the image follows the projector
    cam.unlock_exposure(IR)
    cam.set_projector(False)
    after = grab("", 4, cam)[0]
    assert after[-1][IR].metadata.exposure_us > held.exposure_us    # running again
    cam.stop()


def test_exposure_lock_rejects_what_is_not_a_stream():
    cam = drivers.open("sim://?realtime=0")
    with pytest.raises(drivers.InvalidSetting):
        cam.lock_exposure("ir")


def test_same_uri_and_commands_give_identical_frames():
    def run():
        cam = drivers.open("sim://?realtime=0&seed=12&projector_latency=1&projector_jitter=0.3&drop=0.1")
        cam.start()
        frames = []
        for k in range(10):
            if k % 2:
                cam.set_projector(k % 4 == 1)
            if k == 5:
                cam.set_illumination((1.0, 0.5, 0.0))
            for _ in range(3):
                frames.append(cam.read())
        cam.stop()
        return frames
    a, b = run(), run()
    def stamps(frames):
        return [(f.stream, f.frame_number, f.timestamp_ms) for f in frames]
    assert stamps(a) == stamps(b)
    assert all(np.array_equal(x.pixels, y.pixels) and x.metadata == y.metadata for x, y in zip(a, b, strict=True))


def test_a_named_camera_brings_its_typical_timing_and_uri_keys_override():
    from drivers.sim.profiles import ASTRA, D435

    d435 = drivers.open("sim://?realtime=0&camera=d435")
    assert (d435._projector.latency, d435._projector.jitter) == \
        (D435.projector_latency_frames, D435.projector_jitter)
    astra = drivers.open("sim://?realtime=0&camera=astra")
    assert (astra._projector.latency, astra._projector.jitter) == \
        (ASTRA.projector_latency_frames, ASTRA.projector_jitter)
    with pytest.raises(drivers.InvalidUri):                          # the Astra has no 90 fps depth
        drivers.open("sim://?camera=astra&depth_mode=848x480@90")
    assert drivers.open("sim://?camera=astra&projector_latency=0&emitter_jitter=0")._projector.latency == 0
    # Without a named camera the simulator keeps no latency, as before.
    plain = drivers.open("sim://?realtime=0")
    assert (plain._projector.latency, plain._projector.jitter) == (0, 0.0)
    with pytest.raises(drivers.InvalidUri):
        drivers.open("sim://?color_fps=45")


def test_a_named_camera_lands_its_edges_a_frame_late():
    cam = drivers.open(f"{FAST}&camera=d435&projector_jitter=0&seed=2")
    cam.start()
    got = ticks(cam, {2: False, 5: True}, 9)
    assert [g["physical"] for g in got] == [True, True, True, False, False, False, True, True, True]
    cam.stop()


def test_ir_exposure_locks_at_a_setting_clamped_to_the_imager():
    # A planned lock: the IR imager at the given exposure from the next frame on (the image darker
    # for a shorter one), clamped to the profile's range within the frame period, the gain the
    # profile's; unlocked, the auto-exposure runs again. The colour imager locks where it is only.
    from drivers.base import ExposureSetting
    from drivers.errors import CapabilityUnsupported
    cam = drivers.open("sim://?realtime=0&seed=5&lux=500")
    cam.start()
    free = grab("", 2, cam)[0][-1][IR]
    half = ExposureSetting(free.metadata.exposure_us / 2, 1.0)
    assert cam.lock_exposure(IR, half) == half
    s = grab("", 2, cam)[0][-1][IR]
    assert (s.metadata.exposure_us, s.metadata.gain) == (half.exposure_us, 1.0)
    assert s.pixels.mean() < 0.7 * free.pixels.mean()
    assert cam.lock_exposure(StreamKind.DEPTH) == half                 # a lock without a setting keeps it
    top = cam.lock_exposure(IR, ExposureSetting(1e9, 7.0))
    assert (top.exposure_us, top.gain) == (pytest.approx(1e6 / 30 - 1500.0), 1.0)    # frame period less readout
    assert cam.lock_exposure(IR, ExposureSetting(0.0, 1.0)).exposure_us == pytest.approx(1.0)
    with pytest.raises(CapabilityUnsupported):
        cam.lock_exposure(StreamKind.COLOR, half)
    cam.unlock_exposure(IR)
    exposures = [s[IR].metadata.exposure_us for s in grab("", 6, cam)[0]]
    assert exposures[-1] > exposures[1] > 1.0                              # the auto-exposure climbs again
    cam.stop()


class _StalledClock:
    """The simulator's clock (``time`` in ``drivers.sim.camera``), which jumps ``stall_s`` forward
    just before the IR frame of depth tick ``at`` is delivered: the process descheduled between the
    depth and IR deliveries of one tick, as on a loaded machine."""

    def __init__(self, stall_s: float):
        import time as real
        self._real, self.offset_ns, self.stall_ns = real, 0, int(stall_s * 1e9)

    def monotonic_ns(self) -> int:
        return self._real.monotonic_ns() + self.offset_ns

    def monotonic(self) -> float:
        return self.monotonic_ns() / 1e9

    def sleep(self, s: float) -> None:
        self._real.sleep(s)


def _session(monkeypatch, stall_at: int | None) -> dict:
    """A seeded unpaced camera read as pad-eval reads it (a FramesetReader, per-frameset bound), the
    projector and screen commanded after framesets 1, 2 and 3; what came out and where commands landed."""
    import hashlib

    import drivers.sim.camera as simcam
    from agent.pipeline.frames import FramesetReader

    clock = _StalledClock(0.2)
    monkeypatch.setattr(simcam, "time", clock)
    cam = drivers.open(f"{FAST}&seed=8&projector_latency=1&projector_jitter=0.5")
    assert isinstance(cam, simcam.SimCamera)
    deliver = cam._deliver

    def stalling(kind, *a, **kw):
        if stall_at is not None and kind is IR and cam._depth_tick - 1 == stall_at:
            clock.offset_ns += clock.stall_ns
        return deliver(kind, *a, **kw)

    cam._deliver = stalling  # type: ignore[method-assign]
    cam.start()
    out = []
    commands = {1: lambda: cam.set_projector(False), 2: lambda: cam.set_illumination((1.0, 0.0, 0.0)),
                3: lambda: cam.set_projector(True)}
    try:
        reader = FramesetReader(cam)
        for k, fs in enumerate(itertools.islice(reader.stream(timeout_s=30.0, per_frameset=True), 6)):
            d, c, ir = fs.depth, fs.color, fs.ir
            assert d is not None and c is not None and ir is not None
            out.append((d.frame_number, c.frame_number, ir.metadata.projector_on,
                        hashlib.sha256(ir.pixels.tobytes() + c.pixels.tobytes()).hexdigest()))
            if k + 1 in commands:
                commands[k + 1]()
        landed = [(x.issued, x.effective) for x in cam._projector.landings]
        discarded = dict(reader.matcher.stats.discarded)
    finally:
        cam.stop()
    return {"framesets": out, "projector_landings": landed, "discarded": discarded}


def test_an_unpaced_session_is_the_same_when_the_process_stalls_between_deliveries(monkeypatch):
    """``realtime=0`` stamps arrival on the camera's timeline, not the renderer's: a 200 ms stall
    between a tick's depth and IR deliveries (past the matcher's 4-frame latency bound) used to drop
    that tick's frameset, so every later command landed a tick later in the stream."""
    calm = _session(monkeypatch, None)
    stalled = _session(monkeypatch, stall_at=2)
    assert [f[0] for f in calm["framesets"]] == [0, 1, 2, 3, 4, 5]
    assert calm["discarded"] == {}
    assert stalled == calm


def test_the_colour_sensors_phase_is_a_uri_key():
    from drivers.errors import InvalidUri
    from drivers.sim.config import SimConfig

    assert SimConfig.from_query({}).color_offset_ms == 4.1            # the default: what the sim always had
    assert SimConfig.from_query({"color_offset_ms": "5.6"}).color_offset_ms == 5.6
    for bad in ("-1", "100", "nan"):
        with pytest.raises(InvalidUri):
            SimConfig.from_query({"color_offset_ms": bad})
