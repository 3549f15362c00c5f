"""``capture-agent`` in a process of its own, with the fake USB camera's backend and update path
registered (``hil/fakes/usbcam_fw.py``): the firmware tool as an operator runs it beside the daemon.

    python -m tests.helpers.fw_update_proc firmware update --device URI --image FILE --config FILE
"""

from __future__ import annotations

import sys

from agent import cli
from hil.fakes import usbcam_fw

if __name__ == "__main__":
    usbcam_fw.register()
    sys.exit(cli.main(sys.argv[1:]))
