"""head_only artifacts: no payload; the head and the header live in the extras."""

from __future__ import annotations

from profilekit.methods.base import Artifact, EngineContext, load_factors, save_factors
from profilekit.methods.head_only.config import HeadOnlyConfig
from profilekit.methods.head_only.layer import HeadOnlyState


def save(state: HeadOnlyState, ctx: EngineContext) -> Artifact:
    return save_factors(state, ctx, ())


def load(artifact: Artifact, ctx: EngineContext) -> HeadOnlyState:
    return load_factors(artifact, ctx, HeadOnlyState, HeadOnlyConfig, ())
