"""Capture spec and face quality gate (T/IIFAA 3001.1 §6.1.1, §6.1.3, §7.4, §7.5)."""

from .gate import (CheckResult, FaceObservation, QualityGate, QualityReport, check_stream_spec,
                   require_stream_spec)
from .prompts import PROMPTS, Prompt, PromptSelector
from .settings import CHANNELS, QualitySettings, Thresholds

__all__ = ["CheckResult", "FaceObservation", "QualityGate", "QualityReport", "check_stream_spec",
           "require_stream_spec", "PROMPTS", "Prompt", "PromptSelector", "CHANNELS", "QualitySettings",
           "Thresholds"]
