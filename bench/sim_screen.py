"""CPU time per frameset with the kiosk screen lit: a previous version of the screen's light
(``drivers/sim/screen.py`` under REF_DIR, e.g. ``git archive REF | tar -x -C REF_DIR``) against the
current one, alternately in one process on the same camera, best of several rounds.

    python -m bench.sim_screen REF_DIR [--uri URI] [--rounds 3] [--framesets 8]

Not a benchmark: ``python -m bench`` runs only the ``bench_*`` modules."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from typing import Any

import numpy as np


class _Reference:
    """The previous code's ``screen_irradiance`` behind the interface the camera calls."""

    def __init__(self, module: Any, light: Any):
        self.module, self.light = module, light

    def irradiance(self, z: np.ndarray, rgb: tuple[float, float, float],
                   region: tuple[int, int, int, int] | None = None) -> np.ndarray | None:
        lt = self.light
        return self.module.screen_irradiance(z, lt.view, rgb, lt.nits, lt.geometry, lt.device_to_view, region)


def _load_reference(ref_dir: str) -> Any:
    spec = importlib.util.spec_from_file_location("drivers.sim._screen_reference",
                                                  f"{ref_dir}/drivers/sim/screen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                     # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _cpu_ms(cam: Any, framesets: int) -> float:
    t0 = time.process_time()
    for _ in range(framesets):
        for _ in range(3):                              # depth, IR, colour
            cam.read()
    return (time.process_time() - t0) * 1e3 / framesets


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sim_screen")
    ap.add_argument("ref_dir")
    ap.add_argument("--uri", default="sim://?subject=live&lux=300&seed=21&identity=0")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--framesets", type=int, default=8)
    args = ap.parse_args(argv)
    import drivers

    reference = _load_reference(args.ref_dir)
    cam: Any = drivers.open(args.uri + "&realtime=0")
    current = cam._screen_light
    lights = {"reference": _Reference(reference, current), "current": current}
    runs: dict[str, list[float]] = {"dark": [], "reference": [], "current": []}
    with cam:
        _cpu_ms(cam, 3)                                 # textures, noise bank, caches
        for _ in range(args.rounds):
            cam.set_illumination((0.0, 0.0, 0.0))
            _cpu_ms(cam, 2)
            runs["dark"].append(_cpu_ms(cam, args.framesets))
            cam.set_illumination((1.0, 0.2, 0.2))
            _cpu_ms(cam, 2)
            for name, light in lights.items():
                cam._screen_light = light
                runs[name].append(_cpu_ms(cam, args.framesets))
    for name, ms in runs.items():
        print(f"{name:>9}: {min(ms):6.1f} ms per frameset (best of {args.rounds} rounds of {args.framesets}; "
              f"all {', '.join(f'{m:.0f}' for m in ms)})")
    print(f"lit frameset, reference / current: {min(runs['reference']) / min(runs['current']):.2f}x; "
          f"screen's share, (lit - dark): {min(runs['reference']) - min(runs['dark']):.0f} -> "
          f"{min(runs['current']) - min(runs['dark']):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
