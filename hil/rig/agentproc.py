"""``python -m hil.rig.agentproc run --config FILE``: the agent's own command line, with the simulated
rig's camera backend (``rigsim://``) registered first. Only the HIL runner starts a daemon this way;
the production daemon (``capture-agent run``) never knows the scheme."""

from __future__ import annotations

import sys

from agent.cli import main
from hil.rig import simcam

if __name__ == "__main__":
    simcam.register()
    sys.exit(main())
