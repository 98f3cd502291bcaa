"""Engine benchmark (issue #2): `.venv/bin/python -m bench.engine` from the repository root.

Prints `name: value` lines measured in one run on the packaged MiniLM:
- train_time_ratio_xpeft_hard_n{100,400}: X-PEFT hard training step / single_adapter step, same batch
- train_time_ratio_naive_n100: the same for a naive X-PEFT that runs all N pool adapters on the activations
- mixed_throughput_ratio_64: 64 rows of 64 distinct hard-mask profiles vs the plain backbone, same texts
- hard_mask_bytes_n100: mask payload bytes of one N=100 profile
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from bench.common import configured_backbone, interleaved, news_texts, report, train_step
from profilekit.engine import Engine, hooks
from profilekit.methods import get_method
from profilekit.methods.xpeft import layer as xpeft_layer
from profilekit.methods.xpeft.artifact import hard_mask_bytes
from profilekit.pool import PoolSpec, random_pool


class NaiveWeights:
    """Stands in for composed weights: keeps the mask weights so every pool adapter runs on x."""

    def __init__(self, masks, pool, ln_w, ln_b):
        self.masks, self.pool, self.ln_w, self.ln_b = masks, pool, ln_w, ln_b


def naive_compose(states, ctx, *, training, generators, rows=None):
    weights = xpeft_layer.mask_weights(states, states[0].config, training=training, generators=generators)
    return NaiveWeights(weights, ctx.pool, torch.stack([s.ln_weight for s in states]),
                        torch.stack([s.ln_bias for s in states]))


def naive_apply(x, residual, w, slot, layer, layer_norm):
    """The paper's cost: all N down projections and all N up projections evaluated on the activations."""
    if not isinstance(w, NaiveWeights):
        return fast_apply(x, residual, w, slot, layer, layer_norm)
    pool = w.pool
    m = w.masks[:, layer] if slot is None else w.masks[slot, layer]  # [R, 2, N]
    ln_w = w.ln_w if slot is None else w.ln_w[slot]
    ln_b = w.ln_b if slot is None else w.ln_b[slot]
    downs = torch.einsum("rsd,ndb->rsnb", x, pool.down_w[layer]) + pool.down_b[layer]  # [R, S, N, b]
    down = torch.einsum("rsnb,rn->rsb", downs, m[:, 0])
    down = F.layer_norm(down, down.shape[-1:]) * ln_w[:, layer].unsqueeze(1) + ln_b[:, layer].unsqueeze(1)
    ups = torch.einsum("rsb,nbd->rsnd", F.relu(down), pool.up_w[layer]) + pool.up_b[layer]  # [R, S, N, d]
    return layer_norm(torch.einsum("rsnd,rn->rsd", ups, m[:, 1]) + residual)


fast_apply = hooks.apply_adapter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32, help="rows of one training step")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    texts = news_texts(64)
    backbone = configured_backbone()
    pools = {n: random_pool(PoolSpec(backbone.backbone_id, n, backbone.num_layers, backbone.hidden_size))
             for n in (100, 400)}
    engine = Engine(backbone, pools[100])
    batch = texts[: args.batch]

    # training steps, all on the same batch, measured alternately
    steps = {"single_adapter": train_step(engine, "single_adapter", batch),
             "xpeft_hard_n100": train_step(engine, "xpeft_hard", batch)}
    engine.use_pool(pools[400])
    n400 = train_step(engine, "xpeft_hard", batch)

    def with_pool(n, fn):
        def run():
            engine.use_pool(pools[n])
            fn()
        return run

    steps["xpeft_hard_n100"] = with_pool(100, steps["xpeft_hard_n100"])
    steps["xpeft_hard_n400"] = with_pool(400, n400)
    steps["single_adapter"] = with_pool(100, steps["single_adapter"])
    times = interleaved(steps, repeats=args.repeats)
    report("train_step_seconds_single_adapter", times["single_adapter"])
    report("train_time_ratio_xpeft_hard_n100", times["xpeft_hard_n100"] / times["single_adapter"])
    report("train_time_ratio_xpeft_hard_n400", times["xpeft_hard_n400"] / times["single_adapter"])

    engine.use_pool(pools[100])
    naive_step = train_step(engine, "xpeft_hard", batch)
    original = hooks.apply_adapter
    spec = get_method("xpeft_hard")
    spec.__dict__["compose"] = naive_compose  # overrides the cached lookup of layer.compose
    hooks.apply_adapter = naive_apply
    try:
        naive = interleaved({"naive": naive_step}, repeats=max(2, args.repeats // 3), warmup=1)["naive"]
    finally:
        del spec.__dict__["compose"]
        hooks.apply_adapter = original
    report("train_time_ratio_naive_n100", naive / times["single_adapter"])

    # inference: 64 rows of 64 distinct hard-mask profiles vs the plain backbone on the same texts
    profiles = [engine.new_state("xpeft_hard", ["a", "b", "c"], seed=i) for i in range(64)]
    tokens = backbone.tokenize(texts)

    @torch.inference_mode()
    def mixed():
        engine.forward(tokens["input_ids"], tokens["attention_mask"], profiles)

    @torch.inference_mode()
    def plain():
        backbone.model(**tokens)

    times = interleaved({"plain": plain, "mixed": mixed}, repeats=args.repeats)
    report("plain_backbone_rows_per_second", 64 / times["plain"])
    report("mixed_throughput_ratio_64", times["plain"] / times["mixed"])
    artifact = engine.save(profiles[0])
    report("hard_mask_bytes_n100", hard_mask_bytes(engine.pool.num_adapters, backbone.num_layers))
    report("hard_mask_stored_bytes_n100", artifact.stored_bytes)


if __name__ == "__main__":
    main()
