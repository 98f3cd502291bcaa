"""Stack adapter folders saved by the `adapters` library (`model.save_adapter(dir, name)`) into a pool."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from profilekit.errors import PoolError
from profilekit.pool.pool import AdapterPool, PoolSpec

_KEY = re.compile(r"layer\.(\d+)\.output\.adapters\.[^.]+\.(adapter_down\.0|adapter_up)\.(weight|bias)$")


def read_adapter_state(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """An `adapters` SeqBn state dict → down_w [L, d, b], down_b [L, b], up_w [L, b, d], up_b [L, d]."""
    found: dict[tuple[int, str, str], torch.Tensor] = {}
    for key, value in state.items():
        match = _KEY.search(key)
        if match:
            found[(int(match[1]), match[2], match[3])] = value.float()
    layers = sorted({layer for layer, _, _ in found})
    if layers != list(range(num_layers)):
        raise PoolError(f"expected an output adapter in each of {num_layers} layers, found layers {layers}")
    down_w = torch.stack([found[(i, "adapter_down.0", "weight")].T for i in layers])  # nn.Linear is [out, in]
    down_b = torch.stack([found[(i, "adapter_down.0", "bias")] for i in layers])
    up_w = torch.stack([found[(i, "adapter_up", "weight")].T for i in layers])
    up_b = torch.stack([found[(i, "adapter_up", "bias")] for i in layers])
    return {"down_w": down_w, "down_b": down_b, "up_w": up_w, "up_b": up_b}


def _load_folder(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        raise PoolError(f"{folder} is not an adapter folder saved by the adapters library (no adapter_config.json)")
    config = json.loads(config_file.read_text())
    if (folder / "pytorch_adapter.bin").is_file():
        state = torch.load(folder / "pytorch_adapter.bin", map_location="cpu", weights_only=True)
    elif (folder / "adapter.safetensors").is_file():
        from safetensors.torch import load_file

        state = load_file(str(folder / "adapter.safetensors"))
    else:
        raise PoolError(f"{folder} holds no adapter weights (pytorch_adapter.bin or adapter.safetensors)")
    return config, state


def import_adapter_folders(folders: list[str | Path], *, backbone_id: str, num_layers: int) -> AdapterPool:
    """Stack N saved Pfeiffer (SeqBn) adapters, in the given order, into an imported pool."""
    if not folders:
        raise PoolError("no adapter folders given to import")
    stacks: dict[str, list[torch.Tensor]] = {"down_w": [], "down_b": [], "up_w": [], "up_b": []}
    reduction = None
    for folder in map(Path, folders):
        config, state = _load_folder(folder)
        inner = config.get("config", {})
        if not inner.get("output_adapter", False) or inner.get("mh_adapter", False):
            raise PoolError(f"{folder}: only Pfeiffer/SeqBn output adapters can join a pool")
        if reduction is not None and inner.get("reduction_factor") != reduction:
            raise PoolError(f"{folder}: reduction factor {inner.get('reduction_factor')} differs from {reduction}")
        reduction = inner.get("reduction_factor")
        for name, tensor in read_adapter_state(state, num_layers).items():
            stacks[name].append(tensor)
    tensors = {name: torch.stack(parts, dim=1) for name, parts in stacks.items()}  # N after L
    hidden_size = tensors["down_w"].shape[2]
    spec = PoolSpec(backbone_id=backbone_id, num_adapters=len(folders), num_layers=num_layers,
                    hidden_size=hidden_size, reduction_factor=int(reduction), seed=0, init_std=0.0,
                    source="imported")
    return AdapterPool(spec, **tensors)
