"""Test helpers for firmware/: a release key, signed manifests, a simulated USB bus with a
DFU camera, fake RealSense/Orbbec update APIs, and a FirmwareService wired to them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from firmware import manifest as mf
from firmware.update import FirmwareService, Limits
from hil.fakes.dfu import sim_image
from hil.fakes.orbbec_fw import ob_image
from hil.fakes.realsense_fw import d4xx_image

FAST = {"poll_s": 0.002, "reenumerate_timeout_s": 1.0}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Images:
    dfu_102 = sim_image(0x0102, bytes(range(256)) * 20)           # what dfu_module() runs
    dfu_200 = sim_image(0x0200, b"new firmware " * 400)
    dfu_210 = sim_image(0x0210, b"newer firmware " * 400)
    dfu_100 = sim_image(0x0100, b"withdrawn firmware " * 300)      # below the minimum
    dfu_150 = sim_image(0x0150, b"unapproved firmware " * 300)     # above the minimum, not approved
    rs_5160 = d4xx_image((5, 16, 0, 1))
    rs_5130 = d4xx_image((5, 13, 0, 50))
    ob_160 = ob_image("1.6.00")


def body(sequence: int = 5, **changes: Any) -> dict[str, Any]:
    i = Images
    dfu = {"id": "acme-ir", "vendor": "Acme", "model": "IR face module", "backend": "dfu",
           "usb_ids": ["2bdf:0102"], "recovery_usb_ids": ["2bdf:0f02"], "names": ["IR Face Module"],
           "minimum_version": "1.02", "allowed_versions": ["1.02", "2.00", "2.10"],
           "images": [{"version": v, "sha256": sha(d), "size": len(d)} for v, d in
                      (("1.02", i.dfu_102), ("2.00", i.dfu_200), ("2.10", i.dfu_210), ("1.00", i.dfu_100),
                       ("1.50", i.dfu_150))]}
    d435 = {"id": "intel-d435", "vendor": "Intel", "model": "D435", "backend": "realsense",
            "usb_ids": ["8086:0b07"], "recovery_usb_ids": ["8086:0adb"], "names": ["Intel RealSense D435"],
            "minimum_version": "5.13.0.50", "allowed_versions": ["5.13.0.50", "5.16.0.1"],
            "images": [{"version": "5.16.0.1", "sha256": sha(i.rs_5160), "size": len(i.rs_5160)},
                       {"version": "5.13.0.50", "sha256": sha(i.rs_5130), "size": len(i.rs_5130)}]}
    gemini = {"id": "orbbec-gemini335", "vendor": "Orbbec", "model": "Gemini 335", "backend": "orbbec",
              "usb_ids": ["2bc5:0800"], "names": ["Orbbec Gemini 335"], "minimum_version": "1.4.60",
              "allowed_versions": ["1.4.60", "1.6.00"],
              "images": [{"version": "1.6.00", "sha256": sha(i.ob_160), "size": len(i.ob_160)}]}
    out: dict[str, Any] = {"sequence": sequence, "issued": "2026-12-02T09:00:00Z", "models": [dfu, d435, gemini]}
    out.update(changes)
    return out


class Audit:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, **data: Any) -> None:
        self.events.append((event, data))

    def names(self) -> list[str]:
        return [e for e, _ in self.events]


def service(manifest: mf.Manifest, state: Path, audit: Audit, **options: Any) -> FirmwareService:
    return FirmwareService(manifest, state, audit=audit, limits=Limits(backup_dir=str(state / "backups")),
                           target_options={**FAST, **options})
