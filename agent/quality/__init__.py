"""Capture spec and face quality gate (T/IIFAA 3001.1 §6.1.1, §6.1.3, §7.4, §7.5)."""

from agent.quality.gate import (
                   CheckResult,
                   FaceObservation,
                   QualityGate,
                   QualityReport,
                   check_stream_spec,
                   require_stream_spec,
)
from agent.quality.prompts import PROMPTS, Prompt, PromptSelector
from agent.quality.settings import CHANNELS, QualitySettings, QualityThresholds

__all__ = ["CheckResult", "FaceObservation", "QualityGate", "QualityReport", "check_stream_spec",
           "require_stream_spec", "PROMPTS", "Prompt", "PromptSelector", "CHANNELS", "QualitySettings",
           "QualityThresholds"]
