"""What operators and installers see of the agent: Prometheus metrics (``metrics.py``), gRPC health
with readiness and the camera's state (``health.py``), the last sessions' outcomes read back from the
audit log (``ledger.py``), and the installer's diagnostics page (``web.py`` serving ``live.py``'s
view of the camera, drawn by ``overlay.py``; device facts from ``device.py``). ``docs/diagnostics.md``.

Everything here observes what already flows (the session's audited events through
``SessionDeps.observer``, the liveness supervisor's restart count, the device manager's source
events); nothing here takes part in a capture, and nothing here stores a frame.
"""
