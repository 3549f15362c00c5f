"""Capture requests and events in the short forms tests use."""

from __future__ import annotations

from agent.purpose import Purpose
from agent.session.events import as_dict
from agent.session.request import CaptureRequest


def request(purpose: str = "verify", consent: str = "CONSENT-T-0001", *, channel: str = "kiosk",
            subject_ref: str = "", business_ref: str = "") -> CaptureRequest:
    """``purpose`` by name; a name that is no purpose gives a request the agent must refuse."""
    return CaptureRequest(Purpose.from_name(purpose), channel, consent, subject_ref, business_ref)


def dicts(events) -> list[dict]:
    """Typed events as the JSON dicts ``capture --json`` prints: ``{"result": {...}}`` and so on."""
    return [as_dict(e) for e in events]
