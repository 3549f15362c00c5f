"""The simulated rig: each scenario becomes a ``sim://`` scene behind the ``rigsim://`` camera.

The agent keeps one camera URI for the whole run (``rigsim://?dir=DIR``); :meth:`SimRig.prepare`
writes the scene's ``sim://`` URI and the USB identity the camera presents into ``DIR``, as a
physical rig changes the light and the instrument in front of a camera. The simulator validates
every URI (:meth:`check` opens none, it parses them), so keys added to the simulator later work in
a scenario's ``sim`` table without a change here.

Red-team injections are realised on the camera link as an attacker would: a virtual camera
claims the genuine ids with no USB parent, a USB gadget clones the genuine VID:PID:serial, an HDMI
grabber presents its own ids and colour only, and a spliced replay or hooked SDK streams pixels
that ignore the agent's commands while the metadata claims to obey (``inject=replay``; a scenario's
``sim`` table can ask for the simulator's other injection modes where it has them).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from drivers.base import parse_uri
from drivers.errors import InvalidUri
from drivers.sim import SIM_CHALLENGE_WINDOW_S, SimConfig
from drivers.sim.camera import SERIAL, serial_for
from hil.errors import RigUnsupported, ScenarioInvalid
from hil.rig import simcam
from hil.rig.base import Conditions, Rig, UsbPower
from hil.rig.simcam import SCHEME, Plug, write_atomic
from hil.scenario import Scenario

# The genuine camera as the rig presents it: a D435 on a physical port.
GENUINE: dict[str, Any] = {"name": "Intel(R) RealSense(TM) Depth Camera 435 (simulated)", "vendor_id": 0x8086,
                           "product_id": 0x0B07, "serial": SERIAL, "bcd_device": 0x5010, "bus_path": "2-1.3",
                           "streams": ["color", "depth", "ir"]}
_REPLAY = {"inject": "replay"}
# injection -> (device presented, sim keys): how the sim rig attacks the camera link.
INJECTION_SCENES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "virtual_camera": ({**GENUINE, "name": "Dummy video device (v4l2loopback)", "bus_path": ""}, _REPLAY),
    "usb_gadget": ({**GENUINE, "bus_path": "1-4"}, _REPLAY),
    "hdmi_grabber": ({"name": "USB3. 0 capture (MACROSILICON)", "vendor_id": 0x534D, "product_id": 0x2109,
                      "serial": "", "bcd_device": 0x2100, "bus_path": "1-2", "streams": ["color"]}, _REPLAY),
    "spliced_replay": (GENUINE, _REPLAY),
    "hooked_sdk": (GENUINE, _REPLAY),
}


class SimPlugPower:
    """The sim rig's own USB port power when no ``uhubctl`` hub is wired to it."""

    def __init__(self, plug: Plug):
        self.plug = plug

    def power(self, on: bool) -> None:
        (self.plug.plug if on else self.plug.unplug)()

    def powered(self) -> bool:
        return self.plug.plugged


class SimRig(Rig):
    name = "sim"

    def __init__(self, directory: str | Path | None = None, *, defaults: dict[str, Any] | None = None,
                 usb: UsbPower | None = None):
        """``defaults``: sim keys every scene gets unless the scenario sets them (``realtime``,
        ``prerender``...). ``usb``: the port power to cycle (default: the rig's own plug)."""
        self.dir = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="hil-simrig-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.defaults = {k: str(v) for k, v in (defaults or {}).items()}
        self.plug = Plug(self.dir)
        self.plug.plug()
        self.usb = usb if usb is not None else SimPlugPower(self.plug)
        # The runner opens the rig's camera too (provisioning pins its identity with the server):
        # until the first scenario, the genuine camera shows an empty bench.
        simcam.register()
        if not (self.dir / "scene.json").exists():
            idle = "sim://?" + urlencode({**self.defaults, "subject": "none"})
            write_atomic(self.dir / "scene.json", json.dumps({"uri": idle, "device": GENUINE}))

    @property
    def camera_uri(self) -> str:
        return f"{SCHEME}://?dir={quote(str(self.dir), safe='/')}"

    def device_policy(self) -> dict[str, Any]:
        g = GENUINE
        # The camera's SDK in the daemon itself: ``rigsim://`` is registered only in the HIL daemon's
        # own process (hil.rig.agentproc), a camera host process would not know the scheme.
        return {"usb_allow": [f"{g['vendor_id']:04x}:{g['product_id']:04x}:{g['serial']}"],
                "refuse_virtual": True, "allow_development_cameras": False, "camera_host": False}

    def session_settings(self) -> dict[str, Any]:
        # The simulator renders slower than a camera: the challenge window gets the time it needs.
        return {"challenge_window_s": SIM_CHALLENGE_WINDOW_S}

    def server_settings(self) -> dict[str, Any]:
        # For the same reason a session can outlast the server's 30 s nonce (seen: EXPIRED at 30 lux
        # on a loaded machine); the rig gives the nonce the session's whole worst case.
        return {"nonce_ttl_s": 120.0}

    def scene(self, s: Scenario, repetition: int) -> tuple[str, dict[str, Any]]:
        """The ``sim://`` URI and the device presented for one session of ``s``."""
        device, inject = INJECTION_SCENES.get(s.injection, (GENUINE, {}))
        rep = s.repetition(repetition)
        q: dict[str, str] = {**self.defaults,
                             "subject": s.subject, "lux": _num(s.lux), "cct": _num(s.cct),
                             "distance_mm": _num(s.distance_mm), "yaw": _num(s.yaw), "pitch": _num(s.pitch),
                             "roll": _num(s.roll), "seed": str(rep["seed"]), "identity": str(rep["identity"]),
                             **inject}
        if s.camera:
            q["camera"] = s.camera
        q.update({k: _sim_value(v) for k, v in s.sim.items()})
        if not s.injection and q.get("unit", "0") != "0":
            # Another unit of the model in the genuine camera's place (``unit=N``): its own serial, which the
            # rig's allowlist (the genuine one's) refuses, as a swapped camera is (fix34). An injection's device
            # claims the genuine ids whatever stream it sends.
            device = {**GENUINE, "serial": serial_for(SimConfig.from_query(q).unit)}
        return "sim://?" + urlencode(q), device

    def check(self, scenario: Scenario) -> None:
        if scenario.unplug is not None and self.usb is None:
            raise RigUnsupported(f"scenario {scenario.name!r} cycles USB power, and this rig has none")
        try:
            uri, _ = self.scene(scenario, 0)
            SimConfig.from_query(parse_uri(uri).query)
        except InvalidUri as exc:
            raise ScenarioInvalid(f"scenario {scenario.name!r}: the simulator refuses its scene: "
                                  f"{exc.message}") from None

    def prepare(self, scenario: Scenario, repetition: int) -> Conditions:
        uri, device = self.scene(scenario, repetition)
        write_atomic(self.dir / "scene.json", json.dumps({"uri": uri, "device": device}))
        cfg = SimConfig.from_query(parse_uri(uri).query)
        return Conditions(lux_set=scenario.lux, lux_measured=None, cct=cfg.cct, distance_mm=cfg.distance_mm,
                          yaw=cfg.yaw, scene={"uri": uri, "device": device["name"]})

    def close(self) -> None:
        self.plug.plug()


def _num(v: float) -> str:
    return f"{v:g}"


def _sim_value(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return _num(v) if isinstance(v, float) else str(v)
