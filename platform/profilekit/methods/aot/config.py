from __future__ import annotations

from dataclasses import dataclass, field

from profilekit.errors import ConfigError
from profilekit.methods.config import MethodConfig

ACTIVATIONS = ("relu", "gelu", "tanh")


@dataclass(frozen=True)
class AoTConfig(MethodConfig):
    """AoT P-Tuning (METHODS.md §3): a token-dependent bias P_i[x] added to the hidden states before
    every layer i; the sequence does not grow. Only the factors of P_i are trained and stored."""

    rank: int = field(default=16, metadata={"help": "r, the rank of the reparameterisation."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout while training (paper: 0.1, Kronecker)."})
    lr: float = field(default=1e-3, metadata={
        "help": "Learning rate of the factors (paper: Adam, constant lr from a grid; ours from a sweep on "
                "news authors)."})

    def __post_init__(self):
        super().__post_init__()
        if self.rank < 1:
            raise ConfigError(f"rank must be at least 1, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class AoTFCConfig(AoTConfig):
    """FC reparameterisation: P_i = f(E·W1 + b1)·W2 + b2 with E the frozen word embeddings,
    W1 [d, r] random, W2 [r, d], b1 [r], b2 [d] zero, dropout on the E rows before W1.
    Defaults for MiniLM (d=384): r=16, 12,688 parameters per layer, 76,128 for L=6."""

    activation: str = field(default="relu", metadata={
        "help": "f: relu, gelu or tanh (the paper leaves it open)."})

    def __post_init__(self):
        super().__post_init__()
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")


@dataclass(frozen=True)
class AoTKronConfig(AoTConfig):
    """Kronecker reparameterisation: P_i = (W_L ⊗ W_M)·W_R, row x = kron(W_L[x div b], W_M[x mod b])·W_R,
    W_L [a, r], W_M [b, r] random, W_R [r², d] zero, dropout on the bias rows P_x.
    Defaults for MiniLM (|V|=30,522, d=384): a = b = 175, r=8, 27,376 parameters per layer, 164,256
    for L=6."""

    rank: int = field(default=8, metadata={"help": "r; W_R has r² rows."})
    a: int = field(default=0, metadata={"help": "Rows of W_L; 0 = ⌈√|V|⌉ of the backbone's vocabulary."})
    b: int = field(default=0, metadata={"help": "Rows of W_M; 0 = ⌈|V| / a⌉, so that a·b ≥ |V|."})
    lr: float = field(default=1e-2, metadata={
        "help": "Learning rate of the factors; W_R starts at zero and needs a larger step than FC's "
                "(1e-2 beat 1e-3 on news authors, docs/benchmarks.md)."})

    def __post_init__(self):
        super().__post_init__()
        if self.a < 0 or self.b < 0:
            raise ConfigError(f"a and b must be positive (or 0 for automatic), got a={self.a}, b={self.b}")
