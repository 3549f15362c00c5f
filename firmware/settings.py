"""``[firmware]`` settings: where the signed manifest and the release key are, and what to do with a
camera whose firmware the manifest does not approve."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class FirmwareSettings:
    manifest: str = ""                  # the signed manifest (JSON); "" = no firmware policy (development only)
    release_key: str = ""               # the bank's release public key (Ed25519, PEM)
    on_unapproved: Literal["refuse", "alert"] = "refuse"   # at device open: refuse the camera, or alert and go on
    max_downgrades: int = 3             # per camera, over its life on this terminal (D4xx allow ~20 in all)
    max_image_bytes: int = 64 << 20
    backup_dir: str = ""                # flash backups before updates; "" = <state_dir>/firmware-backups
    audit: str = ""                     # the firmware tool's audit log; "" = <state_dir>/firmware-audit.jsonl
    reenumerate_timeout_s: float = 30.0  # how long a camera may take to come back after detach/reset/reboot
    handover_timeout_s: float = 5.0     # an update waits this long for the running daemon to release the camera

    def __post_init__(self) -> None:
        if bool(self.manifest) != bool(self.release_key):
            raise ValueError("manifest and release_key are set together (a manifest is only as good as its key)")
        if self.on_unapproved not in ("refuse", "alert"):
            raise ValueError("on_unapproved must be 'refuse' or 'alert'")
        if not 0 <= self.max_downgrades <= 20:
            raise ValueError("max_downgrades must be 0-20 (D4xx cameras accept about 20 in their life)")
        if not 1024 <= self.max_image_bytes <= 256 << 20:
            raise ValueError("max_image_bytes must be between 1 KiB and 256 MiB")
        if not 1.0 <= self.reenumerate_timeout_s <= 600.0:
            raise ValueError("reenumerate_timeout_s must be 1-600 s")
        if not 0.1 <= self.handover_timeout_s <= 120.0:
            raise ValueError("handover_timeout_s must be 0.1-120 s")

    @property
    def enabled(self) -> bool:
        return bool(self.manifest)
