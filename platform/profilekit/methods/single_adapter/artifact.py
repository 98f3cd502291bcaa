from __future__ import annotations

import json

import torch
from torch import nn

from profilekit.errors import ArtifactError
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
from profilekit.methods.single_adapter.config import SingleAdapterConfig
from profilekit.methods.single_adapter.layer import SingleAdapterState

ADAPTER_TENSORS = ("down_w", "down_b", "up_w", "up_b")


def save(state: SingleAdapterState, ctx: EngineContext) -> Artifact:
    tensors = head_tensors(state) | {name: getattr(state, name) for name in ADAPTER_TENSORS}
    return Artifact(state.method, b"", write_extras(tensors, base_header(state.method, state, ctx)))


def load(artifact: Artifact, ctx: EngineContext) -> SingleAdapterState:
    tensors, metadata = read_extras(artifact.extras)
    header = json.loads(metadata["header"])
    check_header(header, artifact.method, ctx)
    state = SingleAdapterState(SingleAdapterConfig(**header["config"]), ctx, tuple(header["labels"]),
                               torch.Generator())
    for name in ADAPTER_TENSORS:
        if tensors.get(name) is None or tensors[name].shape != getattr(state, name).shape:
            raise ArtifactError(f"single_adapter artifact tensor {name} is missing or has the wrong shape")
        setattr(state, name, nn.Parameter(tensors[name]))
    restore_head(state, tensors)
    return state.to(ctx.device)
