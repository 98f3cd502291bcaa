"""DePT artifacts: P_s [m, d], A [s, r] and B [r, d] as float32 safetensors in the payload
(m·d + (s + d)·r floats)."""

from __future__ import annotations

from profilekit.methods.base import Artifact, EngineContext, load_factors, save_factors
from profilekit.methods.dept.config import DePTConfig
from profilekit.methods.dept.layer import DePTState

FACTORS = ("prompt", "a", "b")


def save(state: DePTState, ctx: EngineContext) -> Artifact:
    return save_factors(state, ctx, FACTORS)


def load(artifact: Artifact, ctx: EngineContext) -> DePTState:
    return load_factors(artifact, ctx, DePTState, DePTConfig, FACTORS)
