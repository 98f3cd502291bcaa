from __future__ import annotations

import json

import torch

from profilekit.methods.base import (
    Artifact,
    EngineContext,
    base_header,
    check_header,
    head_tensors,
    read_extras,
    restore_head,
    write_extras,
)
from profilekit.methods.head_only.config import HeadOnlyConfig
from profilekit.methods.head_only.layer import HeadOnlyState


def save(state: HeadOnlyState, ctx: EngineContext) -> Artifact:
    return Artifact(state.method, b"", write_extras(head_tensors(state), base_header(state.method, state, ctx)))


def load(artifact: Artifact, ctx: EngineContext) -> HeadOnlyState:
    tensors, metadata = read_extras(artifact.extras)
    header = json.loads(metadata["header"])
    check_header(header, artifact.method, ctx)
    state = HeadOnlyState(HeadOnlyConfig(**header["config"]), ctx, tuple(header["labels"]), torch.Generator())
    restore_head(state, tensors)
    return state.to(ctx.device)
