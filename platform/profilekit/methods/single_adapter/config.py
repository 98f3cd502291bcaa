from __future__ import annotations

from dataclasses import dataclass, field

from profilekit.methods.config import MethodConfig


@dataclass(frozen=True)
class SingleAdapterConfig(MethodConfig):
    """Baseline: one Pfeiffer adapter per profile (the `adapters` library's SeqBnConfig) and a head."""

    reduction_factor: int = field(default=16, metadata={"help": "b = d / reduction_factor."})
    lr: float = field(default=1e-3, metadata={"help": "Learning rate of the adapter."})
