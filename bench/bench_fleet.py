"""The server tier under a fleet of 10 and 100 terminals (``bench/fleet.py``; N = 1000 with
``python -m bench fleet --terminals 1000``)."""

from __future__ import annotations

from bench.fleet import run_fleet


def run() -> list[dict]:
    return run_fleet((10, 100))
