"""``bench.bench_sim`` measures every camera profile the simulator has (its rows, not its timings:
the renders are replaced by stand-ins that return at once)."""

from __future__ import annotations

import bench.bench_sim as bench_sim
from drivers.sim.profiles import PROFILES


def test_every_simulated_camera_profile_gets_its_row(monkeypatch):
    per_profile: list[str] = []

    def cpu(uri: str, **_: object) -> float:
        per_profile.append(uri)
        return 1.0
    monkeypatch.setattr(bench_sim, "_ms_per_tick", lambda uri, **_: 1.0)
    monkeypatch.setattr(bench_sim, "_cpu_ms_per_tick", cpu)
    names = {row["name"] for row in bench_sim.run()}
    assert {"gemini2", "gemini336l"} <= set(PROFILES)
    for profile in PROFILES:
        assert f"sim frameset CPU ({profile}, live)" in names
        assert sum(uri.endswith(f"&camera={profile}") for uri in per_profile) == 3      # best of three
