"""Names the shared ingest fixture registers (see ``tests/conftest.py``)."""

TERMINAL = "kiosk-test-0001"
OTHER_TERMINAL = "kiosk-test-0002"
LIVE = "sim://?seed=21&identity=3&lux=150&subject=live"
