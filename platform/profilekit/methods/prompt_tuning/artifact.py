"""Prompt tuning artifacts: the prompt [l, d] as float32 safetensors in the payload (l·d floats)."""

from __future__ import annotations

from profilekit.methods.base import Artifact, EngineContext, load_factors, save_factors
from profilekit.methods.prompt_tuning.config import PromptTuningConfig
from profilekit.methods.prompt_tuning.layer import PromptTuningState

FACTORS = ("prompt",)


def save(state: PromptTuningState, ctx: EngineContext) -> Artifact:
    return save_factors(state, ctx, FACTORS)


def load(artifact: Artifact, ctx: EngineContext) -> PromptTuningState:
    return load_factors(artifact, ctx, PromptTuningState, PromptTuningConfig, FACTORS)
