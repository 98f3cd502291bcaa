"""single_adapter artifacts: the adapter's four tensors as float32 safetensors in the payload."""

from __future__ import annotations

from profilekit.methods.base import Artifact, EngineContext, load_factors, save_factors
from profilekit.methods.single_adapter.config import SingleAdapterConfig
from profilekit.methods.single_adapter.layer import SingleAdapterState

ADAPTER_TENSORS = ("down_w", "down_b", "up_w", "up_b")


def save(state: SingleAdapterState, ctx: EngineContext) -> Artifact:
    return save_factors(state, ctx, ADAPTER_TENSORS)


def load(artifact: Artifact, ctx: EngineContext) -> SingleAdapterState:
    return load_factors(artifact, ctx, SingleAdapterState, SingleAdapterConfig, ADAPTER_TENSORS)
