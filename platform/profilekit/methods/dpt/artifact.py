"""DPT artifacts: U [l, k] and V [k, d] as float32 safetensors in the payload (l·k + k·d floats)."""

from __future__ import annotations

from profilekit.methods.base import Artifact, EngineContext, load_factors, save_factors
from profilekit.methods.dpt.config import DPTConfig
from profilekit.methods.dpt.layer import DPTState

FACTORS = ("u", "v")


def save(state: DPTState, ctx: EngineContext) -> Artifact:
    return save_factors(state, ctx, FACTORS)


def load(artifact: Artifact, ctx: EngineContext) -> DPTState:
    return load_factors(artifact, ctx, DPTState, DPTConfig, FACTORS)
