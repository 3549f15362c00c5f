"""Names the shared ingest fixture registers (see ``tests/conftest.py``), and the settings of sessions on them."""

from agent.config import SessionSettings
from drivers.sim import SIM_CHALLENGE_WINDOW_S

TERMINAL = "kiosk-test-0001"
OTHER_TERMINAL = "kiosk-test-0002"
LIVE = "sim://?seed=21&identity=3&lux=150&subject=live"
# The same face unpaced (``realtime=0``: each frame rendered when it is read, and a session opened on it counts
# its stage bounds in the camera's own time, docs/sim.md "Slower than a camera"): the camera of every session
# test that does not test wall-clock pacing (``make_deps``' default). On the paced face a machine at load 13-14
# ended sessions SES_STAGE_TIMEOUT (the renderer slower than the 30 s window); tests of timing name ``LIVE``.
LIVE_UNPACED = LIVE + "&realtime=0"

# What the test terminals declare they can be challenged with (a sim camera: projector and screen).
CAPS = __import__("proto.capture_agent.v1.ingest_pb2", fromlist=["ChallengeCapabilities"]).ChallengeCapabilities(
    projector=True, illumination=True, exposure_lock=True, depth_fps=30, color_fps=30)

# Sessions on sim:// cameras: the agent's settings, with the challenge window the simulator's slow
# rendering needs (drivers.sim.SIM_CHALLENGE_WINDOW_S; dev-provision writes the same).
SIM_SESSION = SessionSettings(challenge_window_s=SIM_CHALLENGE_WINDOW_S)
