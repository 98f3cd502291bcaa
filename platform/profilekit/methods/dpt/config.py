from __future__ import annotations

from dataclasses import dataclass, field

from profilekit.errors import ConfigError
from profilekit.methods.config import MethodConfig


@dataclass(frozen=True)
class DPTConfig(MethodConfig):
    """DPT (METHODS.md §5): a soft prompt written as P = U·V, U [l, k], V [k, d], both Gaussian; stored
    as U and V. Inserted after [CLS] like every prompt. Default for MiniLM (d=384): l=20, k=10,
    l·k + k·d = 4,040 parameters (vanilla prompt tuning of the same length: 7,680)."""

    length: int = field(default=20, metadata={"help": "l, virtual tokens of the prompt (paper: 100)."})
    bottleneck: int = field(default=10, metadata={"help": "k, the inner dimension of U·V (paper: 10)."})
    init_std: float = field(default=0.0, metadata={
        "help": "Std of the entries of the initial P; 0 = the std of the backbone's word embeddings."})
    lr: float = field(default=3e-1, metadata={
        "help": "Learning rate of U and V (paper: 0.3 with T5; also best on news authors, docs/benchmarks.md)."})

    def __post_init__(self):
        super().__post_init__()
        if self.length < 1 or self.bottleneck < 1:
            raise ConfigError(f"length and bottleneck must be at least 1, got {self.length} and "
                              f"{self.bottleneck}")
        if self.init_std < 0:
            raise ConfigError(f"init_std must be ≥ 0, got {self.init_std}")
