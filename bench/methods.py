"""Serving throughput of every method (issue #3): `.venv/bin/python -m bench.methods` from the repo root.

Prints `name: value` lines measured in one run on the packaged MiniLM with each method's defaults.
Every measurement is timed between two runs of the plain backbone on the same 64 texts, and each
ratio is the median over the repeats (the machine may be shared; see bench/common.py):
- throughput_ratio_<method>: 64 rows of 64 distinct profiles of that method / the plain backbone
  (1.0 = as fast as the plain backbone; prompt methods also process their prompt's extra tokens);
- prompt_cost_ratio_<method>: for prompt methods, the plain backbone on the same texts lengthened by
  as many ordinary tokens as the prompt has vectors, over the method: what the method costs beyond
  its extra tokens (1.0 = nothing);
- throughput_ratio_aot_*: the AoT profiles are served as the API serves them, from an ArtifactCache
  made from the settings (`serving.artifact_cache`: the byte budget, default 1 GiB) in which they
  keep their composed bias rows (hot profiles, the rows of the first forward kept);
  throughput_ratio_aot_*_cold: copies of the same profiles outside any cache, composed from their
  factors every forward;
- throughput_ratio_mixed_all: 64 rows, 7 distinct profiles of each of the 9 methods and one row
  without a profile, over the plain backbone, as serving runs them (`Engine.forward_grouped`: one
  forward per prompt length, each cut into rows of similar text length, issue #15);
  throughput_ratio_mixed_all_prompt_groups: the same without the cut by text length (one forward per
  prompt length); throughput_ratio_mixed_all_one_forward: the same rows in one forward, every row
  padded to the longest prompt;
- payload_bytes_<method>: the stored factors of one profile (head and header not included);
- kept_row_bytes_aot_*: the composed rows a hot AoT profile keeps in the cache, mean over the profiles
  (the tokens of its rows of the 64 texts), on top of its factors.
"""

from __future__ import annotations

import argparse
import copy

import torch

from bench.common import configured_backbone, news_texts, paired_ratios, report
from profilekit.engine import Engine
from profilekit.methods import method_names
from profilekit.pool import PoolSpec, random_pool
from profilekit.serving import artifact_cache
from profilekit.settings import get_settings

ALL = method_names()  # every registered method, so a new one is measured too
METHODS = [m for m in ALL if m not in ("head_only", "single_adapter")]  # the two baselines: no ratio
AOT = [m for m in METHODS if m.startswith("aot_")]


def trained_looking(state, seed: int):
    """Perturb every parameter so that zero-initialised factors (AoT's W2, W_R; DePT's B) do real work."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in state.parameters():
            p.add_(torch.randn(p.shape, generator=g).to(p.device) * 0.01)
    return state


def lengthened(tokens: dict, extra: int, filler: int) -> dict:
    """The same rows with `extra` ordinary tokens inserted after [CLS] (the plain cost of a prompt)."""
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    fill = torch.full((ids.shape[0], extra), filler, dtype=ids.dtype, device=ids.device)
    return {"input_ids": torch.cat([ids[:, :1], fill, ids[:, 1:]], 1),
            "attention_mask": torch.cat([mask[:, :1], torch.ones_like(fill), mask[:, 1:]], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    texts = news_texts(args.rows)
    backbone = configured_backbone()
    pool = random_pool(PoolSpec(backbone.backbone_id, 100, backbone.num_layers, backbone.hidden_size))
    engine = Engine(backbone, pool)
    tokens = backbone.tokenize(texts)
    labels = ["a", "b", "c"]
    profiles = {m: [trained_looking(engine.new_state(m, labels, seed=i), i) for i in range(args.rows)]
                for m in ALL}
    cold = {f"{m}_cold": [copy.deepcopy(s) for s in profiles[m]] for m in AOT}
    cache = artifact_cache(get_settings())
    for m in AOT:  # served hot: each keeps the rows it composes
        profiles[m] = [cache.get(f"{m}-{i}", lambda s=s: s) for i, s in enumerate(profiles[m])]
    per_method = len(texts) // len(ALL)  # 7 of each for 64 rows; the rest without a profile
    mixed = [profiles[m][i] for i in range(per_method) for m in ALL]
    mixed += [None] * (len(texts) - len(mixed))

    def serve(states, grouped=False, split_overhead=engine.split_overhead):
        forward = engine.forward_grouped if grouped else engine.forward

        @torch.inference_mode()
        def run():
            engine.split_overhead = split_overhead
            forward(tokens["input_ids"], tokens["attention_mask"], states)
        return run

    def plain_of(batch):
        @torch.inference_mode()
        def run():
            backbone.model(**batch)
        return run

    fns = {m: serve(profiles[m]) for m in METHODS} | {m: serve(states) for m, states in cold.items()}
    fns |= {"mixed_all": serve(mixed, grouped=True), "mixed_all_one_forward": serve(mixed),
            "mixed_all_prompt_groups": serve(mixed, grouped=True, split_overhead=None)}
    filler = backbone.tokenizer.convert_tokens_to_ids("the")  # an ordinary token for each prompt vector
    lengths = {m: profiles[m][0].prompt_tokens for m in METHODS if profiles[m][0].prompt_tokens}  # prompt methods
    for extra in sorted(set(lengths.values())):
        fns[f"plain_plus_{extra}"] = plain_of(lengthened(tokens, extra, filler))
    ratios, plain_seconds = paired_ratios(plain_of(tokens), fns, repeats=args.repeats)
    report("rows", len(texts))
    report("mean_text_tokens", float(tokens["attention_mask"].sum(1).float().mean()))
    report("plain_backbone_rows_per_second", len(texts) / plain_seconds)
    for method in METHODS:
        report(f"throughput_ratio_{method}", ratios[method])
    for name in cold:
        report(f"throughput_ratio_{name}", ratios[name])
    for method, extra in lengths.items():  # (plain / method) / (plain / plain with m more tokens)
        report(f"prompt_cost_ratio_{method}", ratios[method] / ratios[f"plain_plus_{extra}"])
    report("throughput_ratio_mixed_all", ratios["mixed_all"])
    report("throughput_ratio_mixed_all_one_forward", ratios["mixed_all_one_forward"])
    report("throughput_ratio_mixed_all_prompt_groups", ratios["mixed_all_prompt_groups"])
    for method in ALL:
        report(f"payload_bytes_{method}", engine.save(profiles[method][0]).payload_bytes)
    for method in AOT:
        report(f"kept_row_bytes_{method}", sum(s.composed_bytes() for s in profiles[method]) / args.rows)


if __name__ == "__main__":
    main()
