"""Why a face is captured. Shared by the local API, the session, the probe header and the server;
each protobuf enum (``capture_agent.v1.local.CapturePurpose``, ``capture_agent.v1.Purpose``) has
the same names, so conversions go by name."""

from __future__ import annotations

import enum


class Purpose(enum.Enum):
    ENROLL = "enroll"
    VERIFY = "verify"

    @classmethod
    def from_name(cls, name: str) -> Purpose | None:
        """The purpose a protobuf enum value name or a CLI word names; None for anything else."""
        try:
            return cls[name.upper()]
        except KeyError:
            return None
