from __future__ import annotations

from dataclasses import dataclass, field

from profilekit.errors import ConfigError
from profilekit.methods.config import MethodConfig


@dataclass(frozen=True)
class DePTConfig(MethodConfig):
    """DePT (METHODS.md §4): a short prompt P_s [m, d] inserted after [CLS], and a position-wise low-rank
    update A·B (A [s, r] Gaussian, B [r, d] zero) of the text's input word embeddings, trained with two
    learning rates. Budget rule l·d = m·d + (s + d)·r: for MiniLM (d=384, s=128) against prompt tuning's
    l=20 (7,680), m=10 and r=8 give 3,840 + 4,096 = 7,936 parameters, with half the extra tokens."""

    prompt_length: int = field(default=10, metadata={"help": "m, virtual tokens of the short prompt."})
    rank: int = field(default=8, metadata={"help": "r, rank of the word-embedding update A·B."})
    max_length: int = field(default=128, metadata={
        "help": "s, text positions covered by A (the backbone's max_length; longer inputs are refused)."})
    lr: float = field(default=3e-1, metadata={
        "help": "α1, learning rate of the prompt P_s (paper: 3e-1…5e-1 on T5; 0.3 also beat 3e-2 on news "
                "authors with 10 epochs, docs/benchmarks.md)."})
    low_rank_lr: float = field(default=1e-3, metadata={
        "help": "α2, learning rate of A and B (paper: 1e-4…1e-3)."})
    init_first_id: int = field(default=1996, metadata={
        "help": "As prompt_tuning: first id of the sampled range."})
    init_vocab: int = field(default=5000, metadata={"help": "As prompt_tuning: size of the sampled range."})

    def __post_init__(self):
        super().__post_init__()
        if min(self.prompt_length, self.rank, self.max_length) < 1:
            raise ConfigError("prompt_length, rank and max_length must be at least 1")
        if self.low_rank_lr <= 0:
            raise ConfigError(f"low_rank_lr must be positive, got {self.low_rank_lr}")
