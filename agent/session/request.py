"""What the kiosk app asks for: one capture, with its purpose, channel and references."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.purpose import Purpose
from agent.quality.settings import CHANNELS
from agent.session.errors import BadRequest, ConsentRequired

CONSENT_RE = re.compile(r"^[A-Za-z0-9._:/-]{4,128}$")
REF_RE = re.compile(r"^[A-Za-z0-9._:/-]{0,128}$")


@dataclass(frozen=True)
class CaptureRequest:
    purpose: Purpose | None          # None: the caller named no valid purpose (refused by ``validate``)
    channel: str
    consent_ref: str
    subject_ref: str = ""
    business_ref: str = ""


def validate(req: CaptureRequest) -> None:
    if not isinstance(req.purpose, Purpose):
        raise BadRequest("purpose must be ENROLL or VERIFY")
    if req.channel not in CHANNELS:
        raise BadRequest(f"channel must be one of {', '.join(CHANNELS)}")
    if not req.consent_ref or not CONSENT_RE.match(req.consent_ref):
        raise ConsentRequired("a consent_ref (4-128 characters: letters, digits, . _ : / -) is required "
                              "before any capture")
    for name in ("subject_ref", "business_ref"):
        if not REF_RE.match(getattr(req, name)):
            raise BadRequest(f"{name} must be at most 128 characters of letters, digits, . _ : / -")
