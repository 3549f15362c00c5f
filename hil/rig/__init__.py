"""Rig controllers behind one interface: the runner asks a :class:`Rig` to set up a scenario and
tells the agent nothing about it, as on a physical bench.

* ``hil.rig.sim.SimRig``: the simulated camera's scene, set through its ``sim://`` URI;
* ``hil.rig.serialrig.SerialRig``: a serial lamp dimmer, a light meter and a turntable
  (``lamp.py``, ``lightmeter.py``, ``turntable.py``; line protocols in ``docs/hil.md``);
* either may have USB port power (``usbpower.py``: ``uhubctl``) for unplug cycles.
"""

from hil.rig.base import Conditions, Rig, UsbPower

__all__ = ["Conditions", "Rig", "UsbPower"]
