from __future__ import annotations

from dataclasses import dataclass, field

from profilekit.errors import ConfigError
from profilekit.methods.config import MethodConfig


@dataclass(frozen=True)
class SingleAdapterConfig(MethodConfig):
    """Baseline: one Pfeiffer adapter per profile (the `adapters` library's SeqBnConfig) and a head."""

    reduction_factor: int = field(default=16, metadata={"help": "b = d / reduction_factor."})
    lr: float = field(default=1e-3, metadata={"help": "Learning rate of the adapter."})
    shared_down_seed: int | None = field(default=None, metadata={
        "help": "Draw the down projection from this seed, the same for every profile, and keep it fixed; the up "
                "projection starts at zero and learns. Adapters built so differ only in their up projections, so "
                "a warm pool of them composes exactly: the adapter of a k-hot X-PEFT mask (without LayerNorm) "
                "is the mean of its k adapters' functions, where independently drawn down projections average "
                "into one that none of them was trained with."})

    def __post_init__(self):
        super().__post_init__()
        if self.shared_down_seed is not None and self.shared_down_seed < 0:
            raise ConfigError(f"shared_down_seed must be a non-negative seed, got {self.shared_down_seed}")
