from __future__ import annotations

from dataclasses import dataclass, field, replace

from profilekit.errors import ConfigError
from profilekit.methods.config import MethodConfig


@dataclass(frozen=True)
class XPeftConfig(MethodConfig):
    """X-PEFT (METHODS.md §2): per-profile masks over the shared pool, LayerNorm after the down projection."""

    mask: str = field(default="hard", metadata={"help": "hard (k-hot, stored as bits) or soft (softmax, float32)."})
    k: int | None = field(default=None, metadata={
        "help": "Adapters selected per layer by a hard mask. Unset: half the pool's N, at most 50 (the paper's 50 "
                "of N=100; a warm pool built from five profiles gets 2). At most N."})
    nu: float = field(default=0.0, metadata={
        "help": "Gumbel noise level while training hard masks. The paper leaves it open; on 8 news authors "
                "(docs/benchmarks.md) nu=1 gave 0.644 mean holdout accuracy, nu=0.3/tau=0.5 0.652, nu=0 0.709 "
                "(head_only 0.674): with tens of rows the noise drowns the signal."})
    tau: float = field(default=1.0, metadata={"help": "Gumbel-softmax temperature while training hard masks."})
    layer_norm: bool | None = field(default=None, metadata={
        "help": "Per-profile LayerNorm after the down projection. Unset: on, except in the byte-sized profile "
                "that head='auto' picks on a warm pool."})
    head: str = field(default="auto", metadata={
        "help": "profile: own head; shared: the warm pool's head. auto (the default): on a pool with a shared "
                "head (a warm pool), the byte-sized profile — the shared head with the label prior and a rank-1 "
                "delta, no LayerNorm, stored int8 (about 600 B; on the news authors it ties an own head started "
                "from the shared head, at 1/22 of the bytes: docs/results/); on a random pool, the own head. "
                "Fields set explicitly are kept."})
    prior: bool = field(default=True, metadata={
        "help": "With head='shared': score only the profile's own labels, plus a learned per-profile bias over "
                "them (a label prior, started at the log frequencies of its training labels): C floats. Without "
                "it the shared head loses about 3 points to head_only on the news authors; with it the byte-sized "
                "profile beats head_only (docs/results/). Ignored with the profile's own head."})
    prior_lr: float = field(default=0.1, metadata={"help": "Learning rate of the label prior (and of the head delta)."})
    head_delta_rank: int | None = field(default=None, metadata={
        "help": "With head='shared' and prior: a learned rank-r delta of the shared head's rows, W + u·v (u [C, r] "
                "from zeros, v [r, d] from N(0, 0.02) as LoRA starts), trained with the prior at prior_lr. Over "
                "three seeds on the news authors it adds +0.024 to the prior alone (docs/results/ Run 3). Costs "
                "r·(C + d) floats; 0 stores none. At most 16. Unset: 1 in the profile head='auto' picks on a warm "
                "pool, else 0."})
    stored_dtype: str | None = field(default=None, metadata={
        "help": "float32, float16 or int8: how the artifact stores the floats after the masks (prior, head "
                "delta, LayerNorm). float16 halves them; int8 is float16 with the head delta's v [r, d] in 8 "
                "bits and a float16 scale per row, which keeps a shared-head profile with a rank-1 delta under "
                "700 bytes. They load back as float32. Soft masks and an own head stay float32. Unset: int8 in "
                "the profile head='auto' picks on a warm pool, else float32."})
    mask_init_std: float = field(default=0.01, metadata={"help": "Std of the initial mask logits."})
    mask_init: str = field(default="random", metadata={
        "help": "random: masks start at N(0, mask_init_std), a random selection. nearest (warm pools, which record "
                "what each adapter's profile wrote about): each adapter's logit starts higher by the cosine "
                "similarity of its profile's training label counts to this profile's, so a hard mask starts on "
                "the adapters of the k most similar profiles. On the news authors it lost 1.7 points to the random "
                "start (k=10, docs/results/): those adapters repeat what the profile's label prior says."})
    lr: float = field(default=1e-2, metadata={"help": "Learning rate of masks and LayerNorm (paper 1e-5 is for "
                                              "GLUE-sized data and learns nothing on tens of rows)."})

    def __post_init__(self):
        super().__post_init__()
        if self.mask not in ("hard", "soft"):
            raise ConfigError(f"mask must be 'hard' or 'soft', got {self.mask!r}")
        if self.k is not None and self.k < 1:
            raise ConfigError(f"k must be at least 1, got {self.k}")
        if self.tau <= 0 or self.nu < 0:
            raise ConfigError("tau must be positive and nu non-negative")
        if self.head not in ("auto", "profile", "shared"):
            raise ConfigError(f"head must be 'auto', 'profile' or 'shared', got {self.head!r}")
        if not 0 < self.prior_lr <= 10:
            raise ConfigError(f"prior_lr must be in (0, 10], got {self.prior_lr}")
        if self.head_delta_rank is not None and not 0 <= self.head_delta_rank <= 16:
            raise ConfigError(f"head_delta_rank must be in [0, 16], got {self.head_delta_rank}")
        if self.head_delta_rank and (self.head == "profile" or not self.prior):
            raise ConfigError(f"head_delta_rank={self.head_delta_rank} needs head='shared' and prior=True "
                              f"(got head={self.head!r}, prior={self.prior})")
        if self.mask_init not in ("random", "nearest"):
            raise ConfigError(f"mask_init must be 'random' or 'nearest', got {self.mask_init!r}")
        if self.stored_dtype not in (None, "float32", "float16", "int8"):
            raise ConfigError(f"stored_dtype must be 'float32', 'float16' or 'int8', got {self.stored_dtype!r}")

    def resolved(self, pool_has_head: bool, num_adapters: int) -> XPeftConfig:
        """Every field decided for a pool of `num_adapters` adapters per layer: k unset becomes half of them (at
        most 50); head='auto' becomes the byte-sized profile on a pool with a shared head and the own head on
        any other; unset fields take that profile's values. Raises ConfigError when an explicit field does not
        fit the pool or what auto chose."""
        k = self.k if self.k is not None else default_k(num_adapters)
        if self.mask == "hard" and k > num_adapters:
            raise ConfigError(f"k={k} exceeds the pool's N={num_adapters} adapters per layer")
        byte_sized = self.head == "auto" and pool_has_head
        head = self.head if self.head != "auto" else "shared" if pool_has_head else "profile"
        if head == "shared" and not pool_has_head:
            raise ConfigError("head='shared' needs a pool with a shared head (a warm pool); this pool has none")
        if self.mask_init == "nearest" and not pool_has_head:
            raise ConfigError("mask_init='nearest' needs a warm pool, which records what each adapter's profile "
                              "wrote about; this pool has none")
        if self.head_delta_rank and head == "profile":
            raise ConfigError(f"head_delta_rank={self.head_delta_rank} needs the shared head of a warm pool; "
                              "this pool has none")
        return replace(
            self, k=k, head=head,
            layer_norm=not byte_sized if self.layer_norm is None else self.layer_norm,
            head_delta_rank=int(byte_sized and self.prior) if self.head_delta_rank is None else self.head_delta_rank,
            stored_dtype=("int8" if byte_sized else "float32") if self.stored_dtype is None else self.stored_dtype)


def default_k(num_adapters: int) -> int:
    """A hard mask's k when none is given: half the pool, at most the paper's 50."""
    return max(1, min(50, num_adapters // 2))
