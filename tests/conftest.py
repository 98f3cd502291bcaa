"""Shared fixtures: a tiny randomly initialised BERT built from a config (never downloaded), and
the packaged MiniLM for the few integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
NEWS = SHARED / "data" / "news-authors" / "news_authors.jsonl"

TINY = dict(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64)


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    from profilekit.backbone import default_backbone_path

    return AutoTokenizer.from_pretrained(str(default_backbone_path()), local_files_only=True)


def tiny_model(seed: int = 0, **overrides):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(**(TINY | overrides), attn_implementation="eager")
    return BertModel(config, add_pooling_layer=False)


class TinyTokenizer:
    """The MiniLM tokenizer with ids folded into the tiny vocabulary."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, texts, **kwargs):
        enc = self.inner(texts, **kwargs)
        enc["input_ids"] = enc["input_ids"] % TINY["vocab_size"]
        return enc


@pytest.fixture
def tiny_backbone(tokenizer):
    """A fresh tiny backbone per test (an Engine wraps its layers)."""
    from profilekit.backbone.loader import wrap_model

    device = os.environ.get("PROFILEKIT_DEVICE", "cpu")  # bench/gpu_check.sh runs the engine tests on cuda
    return wrap_model(tiny_model(), TinyTokenizer(tokenizer), backbone_id="bert:tiny:test", device=device,
                      max_length=32)


@pytest.fixture
def tiny_pool(tiny_backbone):
    from profilekit.pool import PoolSpec, random_pool

    return random_pool(PoolSpec(tiny_backbone.backbone_id, num_adapters=12, num_layers=2, hidden_size=32,
                                reduction_factor=4, seed=7, init_std=0.2))


@pytest.fixture
def tiny_engine(tiny_backbone, tiny_pool):
    from profilekit.engine import Engine

    return Engine(tiny_backbone, tiny_pool)


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2, loaded once; tests must build an Engine on `fresh_minilm`."""
    from profilekit.backbone import load_backbone

    return load_backbone()


@pytest.fixture
def fresh_minilm():
    from profilekit.backbone import load_backbone

    return load_backbone()


TEXTS = [
    "Senate passes the budget bill after a long night",
    "New superhero movie breaks box office records",
    "Stocks fall as inflation fears grow",
    "Ten easy recipes for a weeknight dinner",
    "The striker scored twice in the final",
    "A quiet village where time stands still",
    "Scientists find water on a distant moon",
    "How to talk to your kids about money",
]
