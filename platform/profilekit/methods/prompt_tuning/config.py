from __future__ import annotations

from dataclasses import dataclass, field

from profilekit.errors import ConfigError
from profilekit.methods.config import MethodConfig


@dataclass(frozen=True)
class PromptTuningConfig(MethodConfig):
    """Vanilla prompt tuning (Lester et al.; the baseline of METHODS.md §4–5): a soft prompt P [l, d]
    inserted right after [CLS], initialised from sampled vocabulary embeddings.
    Default for MiniLM (d=384): l=20, 7,680 parameters (texts of news authors average ~44 tokens)."""

    length: int = field(default=20, metadata={"help": "l, virtual tokens of the prompt (papers: 100 on T5)."})
    init_first_id: int = field(default=1996, metadata={
        "help": "First token id of the range whose embeddings initialise the prompt; BERT uncased "
                "vocabularies (MiniLM) hold whole words in frequency order from id 1996 ('the'). Clipped to "
                "the vocabulary."})
    init_vocab: int = field(default=5000, metadata={
        "help": "Size of that range (Lester et al. sample the 5,000 most common tokens)."})
    lr: float = field(default=3e-1, metadata={
        "help": "Learning rate of the prompt (papers: 0.3 with T5; with 10 epochs also best on news authors "
                "with MiniLM, AdamW; docs/benchmarks.md)."})

    def __post_init__(self):
        super().__post_init__()
        if self.length < 1:
            raise ConfigError(f"length must be at least 1, got {self.length}")
        if self.init_first_id < 0 or self.init_vocab < 1:
            raise ConfigError("init_first_id must be ≥ 0 and init_vocab ≥ 1")
