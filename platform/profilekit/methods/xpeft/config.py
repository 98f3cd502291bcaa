from __future__ import annotations

from dataclasses import dataclass, field

from profilekit.errors import ConfigError
from profilekit.methods.config import MethodConfig


@dataclass(frozen=True)
class XPeftConfig(MethodConfig):
    """X-PEFT (METHODS.md §2): per-profile masks over the shared pool, LayerNorm after the down projection."""

    mask: str = field(default="hard", metadata={"help": "hard (k-hot, stored as bits) or soft (softmax, float32)."})
    k: int = field(default=50, metadata={"help": "Adapters selected per layer by a hard mask (paper: 50)."})
    nu: float = field(default=0.0, metadata={
        "help": "Gumbel noise level while training hard masks. The paper leaves it open; on 8 news authors "
                "(docs/benchmarks.md) nu=1 gave 0.644 mean holdout accuracy, nu=0.3/tau=0.5 0.652, nu=0 0.709 "
                "(head_only 0.674): with tens of rows the noise drowns the signal."})
    tau: float = field(default=1.0, metadata={"help": "Gumbel-softmax temperature while training hard masks."})
    layer_norm: bool = field(default=True, metadata={"help": "Per-profile LayerNorm after the down projection."})
    head: str = field(default="profile", metadata={"help": "profile: own head; shared: the warm pool's head."})
    prior: bool = field(default=True, metadata={
        "help": "With head='shared': score only the profile's own labels, plus a learned per-profile bias over "
                "them (a label prior, started at the log frequencies of its training labels): C floats. Without "
                "it the shared head loses about 3 points to head_only on the news authors; with it the byte-sized "
                "profile beats head_only (docs/results/). Ignored with the profile's own head."})
    prior_lr: float = field(default=0.1, metadata={"help": "Learning rate of the label prior (and of the head delta)."})
    head_delta_rank: int = field(default=0, metadata={
        "help": "With head='shared' and prior: a learned rank-r delta of the shared head's rows, W + u·v (u [C, r] "
                "from zeros, v [r, d] from N(0, 0.02) as LoRA starts), trained with the prior at prior_lr. On "
                "frozen features (bench/head_variants.py, docs/results/ Run 3) rank 1 gave +0.056 / +0.053 over "
                "head_only on seeds 0 / 1, against +0.038 / +0.030 for the prior alone. Costs r·(C + d) floats; "
                "0 (the default) stores none. At most 16."})
    stored_dtype: str = field(default="float32", metadata={
        "help": "float32, float16 or int8: how the artifact stores the floats after the masks (prior, head "
                "delta, LayerNorm). float16 halves them; int8 is float16 with the head delta's v [r, d] in 8 "
                "bits and a float16 scale per row, which keeps a shared-head profile with a rank-1 delta under "
                "700 bytes. They load back as float32. Soft masks and an own head stay float32."})
    mask_init_std: float = field(default=0.01, metadata={"help": "Std of the initial mask logits."})
    lr: float = field(default=1e-2, metadata={"help": "Learning rate of masks and LayerNorm (paper 1e-5 is for "
                                              "GLUE-sized data and learns nothing on tens of rows)."})

    def __post_init__(self):
        super().__post_init__()
        if self.mask not in ("hard", "soft"):
            raise ConfigError(f"mask must be 'hard' or 'soft', got {self.mask!r}")
        if self.k < 1:
            raise ConfigError(f"k must be at least 1, got {self.k}")
        if self.tau <= 0 or self.nu < 0:
            raise ConfigError("tau must be positive and nu non-negative")
        if self.head not in ("profile", "shared"):
            raise ConfigError(f"head must be 'profile' or 'shared', got {self.head!r}")
        if not 0 < self.prior_lr <= 10:
            raise ConfigError(f"prior_lr must be in (0, 10], got {self.prior_lr}")
        if not 0 <= self.head_delta_rank <= 16:
            raise ConfigError(f"head_delta_rank must be in [0, 16], got {self.head_delta_rank}")
        if self.head_delta_rank and (self.head != "shared" or not self.prior):
            raise ConfigError(f"head_delta_rank={self.head_delta_rank} needs head='shared' and prior=True "
                             f"(got head={self.head!r}, prior={self.prior})")
        if self.stored_dtype not in ("float32", "float16", "int8"):
            raise ConfigError(f"stored_dtype must be 'float32', 'float16' or 'int8', got {self.stored_dtype!r}")
