"""The contenders of `profilekit bench`'s peer comparison, each doing the same end-to-end work per row:
encoder (with the row's own adapter) → mean over the row's tokens → the row's own classification head.

- plain: the backbone without adapters (heads still per row), the reference for throughput;
- profilekit: X-PEFT hard-mask profiles in one Engine forward;
- peft: one HF PEFT LoRA per profile, mixed batch through `adapter_names=[...]`;
- adapters_batchsplit: one `adapters` SeqBn (Pfeiffer) adapter per profile, `BatchSplit` composition;
- adapters_switching: the same adapters, one sub-batch per profile after `set_active_adapters`.

Every contender scores rows with the same heads (the profilekit states' own), so logits differ only
through the adapters. Batches hold their rows sorted by profile (BatchSplit needs it; all get it).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from profilekit.engine import mean_pool, pristine_encoder


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, S]
    attention_mask: torch.Tensor  # [B, S]
    profile: list[int]  # [B] each row's profile index, ascending

    def runs(self) -> list[tuple[int, int, int]]:
        """(profile, first row, row count) per distinct profile, in row order."""
        out: list[tuple[int, int, int]] = []
        for row, p in enumerate(self.profile):
            if out and out[-1][0] == p:
                out[-1] = (p, out[-1][1], out[-1][2] + 1)
            else:
                out.append((p, row, 1))
        return out


def make_batch(tokens: dict[str, torch.Tensor], distinct: int) -> Batch:
    """The tokenized rows shared by `distinct` profiles in equal runs: row i → profile i·P // B."""
    rows = tokens["input_ids"].shape[0]
    if not 1 <= distinct <= rows:
        raise ValueError(f"{distinct} distinct profiles cannot share a batch of {rows} rows")
    return Batch(tokens["input_ids"], tokens["attention_mask"], [i * distinct // rows for i in range(rows)])


class Heads:
    """Per-profile heads [P, C, d] and biases [P, C], applied row by row as the Engine does."""

    def __init__(self, states):
        self.weight = torch.stack([s.head_weight.detach().float() for s in states])
        self.bias = torch.stack([s.head_bias.detach().float() for s in states])

    def __call__(self, pooled: torch.Tensor, profile: list[int]) -> torch.Tensor:
        index = torch.tensor(profile, device=pooled.device)
        return torch.einsum("bd,bcd->bc", pooled, self.weight[index]) + self.bias[index]  # [B, C]


class Plain:
    """The backbone alone; each row still goes through its profile's head."""

    def __init__(self, model, heads: Heads):
        self.model, self.heads = model, heads

    def forward(self, batch: Batch) -> torch.Tensor:
        hidden = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        return self.heads(mean_pool(hidden, batch.attention_mask), batch.profile)


class Profilekit:
    """X-PEFT hard-mask profiles served by the Engine (composition, adapters, pooling, heads)."""

    def __init__(self, engine, states):
        self.engine, self.states = engine, states

    def forward(self, batch: Batch) -> torch.Tensor:
        rows = [self.states[p] for p in batch.profile]
        return self.engine.forward(batch.input_ids, batch.attention_mask, rows).logits

    def single(self, input_ids, attention_mask, profile: int) -> torch.Tensor:
        rows = [self.states[profile]] * input_ids.shape[0]
        return self.engine.forward(input_ids, attention_mask, rows).logits


def lora_config(rank: int):
    """LoRA on query/value, alpha = r (scale 1); random A and B so that every adapter changes outputs."""
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=["query", "value"],
                      init_lora_weights=False)


def peft_model(backbone, names: list[str], rank: int):
    """A pristine copy of the encoder with one LoRA per name (PEFT's get_peft_model + add_adapter)."""
    from peft import get_peft_model

    config = lora_config(rank)
    model = get_peft_model(pristine_encoder(backbone), config, adapter_name=names[0])
    for name in names[1:]:
        model.add_adapter(name, config)
    return model.eval()


class Peft:
    """HF PEFT's mixed batch: `adapter_names[i]` selects row i's LoRA in every LoRA layer."""

    def __init__(self, model, names: list[str], heads: Heads):
        self.model, self.names, self.heads = model, names, heads

    def forward(self, batch: Batch) -> torch.Tensor:
        hidden = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                            adapter_names=[self.names[p] for p in batch.profile]).last_hidden_state
        return self.heads(mean_pool(hidden, batch.attention_mask), batch.profile)

    def single(self, input_ids, attention_mask, profile: int) -> torch.Tensor:
        self.model.set_adapter(self.names[profile])
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.heads(mean_pool(hidden, attention_mask), [profile] * input_ids.shape[0])


def adapters_model(backbone, names: list[str], *, init_std: float, seed: int):
    """A pristine copy of the encoder with one SeqBn (Pfeiffer) adapter per name, weights drawn with
    `init_std` (the library's near-zero init would leave every adapter close to the identity)."""
    import adapters

    model = pristine_encoder(backbone)
    adapters.init(model)
    for name in names:
        model.add_adapter(name, config="seq_bn")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if ".adapters." in parameter_name:
                noise = torch.randn(parameter.shape, generator=generator) * init_std
                parameter.copy_(noise.to(parameter.device, parameter.dtype))
    library_log = logging.getLogger("adapters.model_mixin")
    level = library_log.level
    library_log.setLevel(logging.ERROR)  # activating while none is active logs "none are activated"
    try:
        model.set_active_adapters(names[0])  # so that no later activation (each forward's own) logs it
    finally:
        library_log.setLevel(level)
    return model.to(backbone.device).eval()


class AdaptersBatchSplit:
    """The `adapters` library's mixed batch: BatchSplit gives each profile's run of rows its adapter."""

    def __init__(self, model, names: list[str], heads: Heads):
        self.model, self.names, self.heads = model, names, heads

    def forward(self, batch: Batch) -> torch.Tensor:
        from adapters.composition import BatchSplit

        runs = batch.runs()
        self.model.active_adapters = BatchSplit(*[self.names[p] for p, _, _ in runs],
                                                batch_sizes=[n for _, _, n in runs])
        hidden = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        return self.heads(mean_pool(hidden, batch.attention_mask), batch.profile)

    def single(self, input_ids, attention_mask, profile: int) -> torch.Tensor:
        self.model.set_active_adapters(self.names[profile])
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.heads(mean_pool(hidden, attention_mask), [profile] * input_ids.shape[0])


class AdaptersSwitching(AdaptersBatchSplit):
    """The same adapters, switched per profile: one forward per profile's rows, padding trimmed to the
    sub-batch's longest row (what a server batching per profile would run)."""

    def forward(self, batch: Batch) -> torch.Tensor:
        pooled = []
        for p, first, count in batch.runs():
            mask = batch.attention_mask[first:first + count]  # [R, S]
            width = int(mask.sum(1).max())  # right padding: the sub-batch's longest row
            self.model.set_active_adapters(self.names[p])
            hidden = self.model(input_ids=batch.input_ids[first:first + count, :width],
                                attention_mask=mask[:, :width]).last_hidden_state
            pooled.append(mean_pool(hidden, mask[:, :width]))
        return self.heads(torch.cat(pooled), batch.profile)


def timed_rounds(fns: dict[str, Callable[[], object]], *, repeats: int,
                 warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each function per round; all functions run once per round, in alternation, so a
    shared machine's drifting load hits every contender of a round alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            began = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - began)
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of numerator seconds / denominator seconds (each round's pair side by side)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))
