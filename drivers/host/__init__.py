"""Camera host processes: each camera's vendor SDK runs in a process of its own.

librealsense's ``pipeline.stop()`` can hang on unplug and crash after it; OpenNI2's ``stop()`` can
block behind a blocked read; a stuck V4L2 reader keeps its fd. Inside the daemon any of these would
take the daemon down or leave it stuck. Here the SDK lives in a host process (``process.py``) that
the daemon talks to over a control channel (``channel.py``), with frames in a shared-memory ring
(``ring.py``) and heartbeats; the daemon's side (``client.py``) kills a host that misses a deadline
and the device manager opens the camera again in a fresh one.

``CameraHostPool().open(uri)`` returns a :class:`drivers.Camera` like ``drivers.open(uri)``
does; only the process boundary differs.
"""

from .client import CameraHost, CameraHostPool, HostedCamera, HostSettings

__all__ = ["CameraHost", "CameraHostPool", "HostedCamera", "HostSettings"]
