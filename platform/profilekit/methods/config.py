"""The fields every method config has. Imports no torch: the API and the job queue validate a job's
method config without loading the model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from profilekit.errors import ConfigError


@dataclass(frozen=True)
class MethodConfig:
    """Fields every method config has. Subclasses add their own, each with a help text."""

    lr: float = field(default=1e-2, metadata={"help": "Learning rate of the method's own parameters."})
    head_lr: float = field(default=1e-2, metadata={"help": "Learning rate of a per-profile head."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    head_init: str = field(default="auto", metadata={
        "help": "How the profile's own head starts. random: N(0, 0.02). shared: from the pool's shared head (the "
                "rows of its labels: a task model trained on other profiles) with the log frequencies of its "
                "training labels added to the bias, so training learns the personal delta (docs/results/: about "
                "+5 points of accuracy on the news authors). auto: shared when the pool has a shared head (a "
                "warm pool), else random."})

    def __post_init__(self):
        if self.head_init not in ("auto", "random", "shared"):
            raise ConfigError(f"head_init must be 'auto', 'random' or 'shared', got {self.head_init!r}")
        if not (0 < self.lr <= 10 and 0 < self.head_lr <= 10):
            raise ConfigError(f"learning rates must be in (0, 10], got lr={self.lr}, head_lr={self.head_lr}")
        if not 0 <= self.weight_decay <= 1:
            raise ConfigError(f"weight_decay must be in [0, 1], got {self.weight_decay}")

    def to_dict(self) -> dict:
        return asdict(self)
