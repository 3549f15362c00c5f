"""``python -m hil``: run scenario sets on a rig and write the report (see ``hil/cli.py``)."""

import sys

from hil.cli import main

sys.exit(main())
