"""Fixtures for the firmware tests (helpers: tests/helpers/firmware.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware import manifest as mf
from hil.fakes.dfu import SimulatedDfuBus, dfu_module
from hil.fakes.usb import usb_keyboard
from tests.helpers.firmware import Audit, body


@pytest.fixture(scope="session")
def release_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def manifest(release_key) -> mf.Manifest:
    return mf.verify(mf.sign(body(), release_key), release_key.public_key())


@pytest.fixture
def state(tmp_path) -> Path:
    d = tmp_path / "state"
    d.mkdir(mode=0o750)
    return d


@pytest.fixture
def dfu_cam():
    return dfu_module()


@pytest.fixture
def bus(dfu_cam) -> SimulatedDfuBus:
    return SimulatedDfuBus([usb_keyboard()], [dfu_cam])


@pytest.fixture
def audit() -> Audit:
    return Audit()
