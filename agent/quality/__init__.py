"""Capture spec and face quality gate (T/IIFAA 3001.1 §6.1.1, §6.1.3, §7.4, §7.5).

The names below are imported when first used, not with the package: the settings, prompts and
stream checks must not bring OpenCV or the face models into a process that runs no face model
(the daemon, ``docs/architecture.md``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.quality.gate import FaceObservation, QualityGate, QualityReport
    from agent.quality.prompts import PROMPTS, Prompt, PromptSelector
    from agent.quality.settings import CHANNELS, QualitySettings, QualityThresholds
    from agent.quality.spec import CheckResult, check_stream_spec, require_stream_spec

_WHERE = {"CheckResult": "spec", "FaceObservation": "gate", "QualityGate": "gate", "QualityReport": "gate",
          "check_stream_spec": "spec", "require_stream_spec": "spec", "PROMPTS": "prompts", "Prompt": "prompts",
          "PromptSelector": "prompts", "CHANNELS": "settings", "QualitySettings": "settings",
          "QualityThresholds": "settings"}

__all__ = ["CheckResult", "FaceObservation", "QualityGate", "QualityReport", "check_stream_spec",
           "require_stream_spec", "PROMPTS", "Prompt", "PromptSelector", "CHANNELS", "QualitySettings",
           "QualityThresholds"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"agent.quality.{_WHERE[name]}"), name)
