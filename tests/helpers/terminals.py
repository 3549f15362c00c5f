"""Names the shared ingest fixture registers (see ``tests/conftest.py``)."""

TERMINAL = "kiosk-test-0001"
OTHER_TERMINAL = "kiosk-test-0002"
LIVE = "sim://?seed=21&identity=3&lux=150&subject=live"

# What the test terminals declare they can be challenged with (a sim camera: projector and screen).
CAPS = __import__("proto.capture_agent.v1.ingest_pb2", fromlist=["ChallengeCapabilities"]).ChallengeCapabilities(
    projector=True, illumination=True, exposure_lock=True, depth_fps=30, color_fps=30)
