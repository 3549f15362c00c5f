"""``sim://``: the simulated RGB-IR-depth camera, the embedded default for the demo and the tests.

See ``docs/sim.md`` for the URI keys and the physics. Modules: ``config`` (URI query),
``profiles`` (camera profiles: D435, D455, D415, D405, Astra), ``optics`` (views and rays),
``identity`` (people drawn from a number), ``head`` and ``body`` (a person's head and torso),
``species`` (attack instruments), ``subject`` (materials, height fields, the face photo),
``families`` (train/held-out pools), ``scene`` (composition, motion, background, light),
``render`` (ray marching and cut-outs), ``sensor`` (color/IR/depth sensor models), ``camera``
(timing, controls, delivery).
"""

from __future__ import annotations

from ..base import DeviceInfo, ParsedUri
from .camera import SERIAL, SceneState, SimCamera
from .config import ATTACKS, SUBJECTS, SimConfig

__all__ = ["SimCamera", "SimConfig", "SceneState", "SUBJECTS", "ATTACKS", "open_camera", "list_devices",
           "SIM_CHALLENGE_WINDOW_S", "SIM_DEVICE_LIMITS"]

# The simulator renders 3-15 framesets a second on a shared 2-core machine, not a camera's 30: a
# 48-frameset challenge window takes it 4-16 s of wall time, past the agent's default 10 s
# (``[session] challenge_window_s``, sized for real cameras). Sessions on ``sim://`` (development
# terminals, the HIL sim rig, the tests) get this instead.
SIM_CHALLENGE_WINDOW_S = 30.0

# In a daemon the simulator renders inside its camera host, whose read-hang limit (``[devices]
# host_read_hang_s``, 1.5 s) and stall watchdog (``stall_timeout_s``, 2 s) are sized for an SDK that
# hands over frames a device made. A render is CPU work, 0.2 s a tick unloaded, and on a 2-core machine
# at load 13-14 one took longer than 1.5 s: the host was killed as hung (DRV_HOST_HUNG), its camera
# reconnecting (health NOT_SERVING) until a new host's first frames came (tests/observe/
# test_daemon_observability.py saw it). Development configs on ``sim://`` get these instead.
SIM_DEVICE_LIMITS = {"host_read_hang_s": 30.0, "stall_timeout_s": 30.0, "host_open_timeout_s": 60.0}


def open_camera(parsed: ParsedUri) -> SimCamera:
    if parsed.target not in ("", "/"):
        from ..errors import InvalidUri
        raise InvalidUri(f"sim:// takes no device name, only a query (got {parsed.target!r})")
    return SimCamera(SimConfig.from_query(parsed.query), uri=parsed.raw or "sim://")


def list_devices() -> list[DeviceInfo]:
    return [DeviceInfo(uri="sim://", backend="sim", name="Simulated RGB-IR-depth camera (Intel RealSense D435)",
                       serial=SERIAL, firmware="sim-1.0.0", streams=("color", "depth", "ir"),
                       note="embedded default; scene and camera profile set by URI query, "
                            "e.g. sim://?subject=print&lux=50&camera=d455")]
