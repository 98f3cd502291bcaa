"""Do other authors' personal parts transfer? A screen on frozen pooled rows (issue #12):
`python -m bench.head_pool --seeds 0,1,2`.

Warm adapters never beat random ones under a warm pool's shared head (docs/results/README.md). This screen asks
the question where it is cheapest to answer, at the head: the pool's N builders each get the personal part the
byte-sized profile learns (a learned label prior and a rank-1 delta u·v of the shared head, lr 0.1, over every
label; the prior stays with the builder), and a new author combines them — a softmax mixture over the N deltas
(N floats, the soft analogue of a mask) or the mean of the k deltas that fit its training rows best (a hard
selection, k-hot) — beside its own prior and rank-1 delta. The control gives the same author random deltas of the
same sizes (rank 1, each builder's norm): if other authors' deltas hold nothing a new author can use, the two tie.
The same protocol as `bench.head_variants` (the authors, splits, folds, cross-fitted builders and shared heads of
`profilekit eval`, 10 epochs with early stopping). Printed: each variant's mean holdout accuracy and its
difference with the profile alone (prior and rank-1 delta) and warm − random, 95 % bootstrap intervals over authors.
A screen, not a result: what wins here is then run through `profilekit eval`.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter

import torch
import torch.nn.functional as F

from bench.common import report
from bench.head_variants import builder_rows, encoder, fit_delta, shared_heads, train
from profilekit.backbone import load_backbone
from profilekit.data import NEWS_AUTHORS, profile_seed, read_rows
from profilekit.engine import Engine
from profilekit.evaluation.plan import EvalConfig, make_plan
from profilekit.evaluation.report import bootstrap_interval
from profilekit.methods.base import log_prior
from profilekit.training.loop import PooledRows

ALONE = "prior + rank-1 delta (the profile alone)"
LR = 0.1  # the byte-sized profile's prior_lr: its prior, delta and mixture learn at it


def builder_deltas(builders, config: EvalConfig, labels, rows_of, head) -> torch.Tensor:
    """[N, C, d] each builder's rank-1 delta of the shared head (its prior learned beside it, then dropped)."""
    weight, bias = head
    deltas = []
    for builder in builders:
        train_x, train_y, hold_x, hold_y = builder_rows(builder, config, labels, rows_of)
        prior = log_prior(Counter(labels[i] for i in train_y.tolist()), labels)
        fitted, _ = fit_delta(train_x, train_y, (weight, bias + prior), rank=1, lr=LR, holdout=(hold_x, hold_y),
                              seed=profile_seed(config.pool_seed, builder.key))
        deltas.append(fitted - weight)
    return torch.stack(deltas)


def random_like(deltas: torch.Tensor, seed: int) -> torch.Tensor:
    """Rank-1 matrices in random directions with the norms of `deltas` [N, C, d]."""
    g = torch.Generator().manual_seed(seed)
    n, c, d = deltas.shape
    made = torch.randn(n, c, 1, generator=g) * torch.randn(n, 1, d, generator=g)
    return made * (deltas.flatten(1).norm(dim=1) / made.flatten(1).norm(dim=1))[:, None, None]


def with_mixture(x, y, start, deltas, *, holdout, seed):
    """Prior, rank-1 delta and a softmax mixture α [N] (from zero: the mean) over `deltas` [N, C, d]."""
    g = torch.Generator().manual_seed(seed)
    weight, bias = start[0].clone(), start[1].clone().requires_grad_()
    alpha = torch.zeros(deltas.shape[0], requires_grad=True)
    u = torch.zeros(weight.shape[0], 1, requires_grad=True)
    v = (torch.randn(1, weight.shape[1], generator=g) * 0.02).requires_grad_()
    return train(lambda: (weight + torch.einsum("n,ncd->cd", alpha.softmax(0), deltas) + u @ v, bias),
                 [bias, alpha, u, v], x, y, g, lr=LR, epochs=10, batch=16, holdout=holdout)


def best_k(x, y, start, deltas, k: int) -> torch.Tensor:
    """[C, d] the mean of the k deltas under which the start head has the lowest loss on the training rows."""
    weight, bias = start
    losses = torch.stack([F.cross_entropy(x @ (weight + delta).T + bias, y) for delta in deltas])
    return deltas[losses.topk(k, largest=False).indices].mean(0)


def screen(seed: int, args, encode: PooledRows) -> dict[str, dict[str, float]]:
    """variant → profile → holdout accuracy, for one seed's splits."""
    config = EvalConfig(data=str(NEWS_AUTHORS), min_rows=args.min_rows, max_rows=args.max_rows,
                        pool_size=args.pool_size, seed=seed)
    plan = make_plan(read_rows(NEWS_AUTHORS), config)
    labels = plan.labels
    rows_of = encoder(encode)
    shared = shared_heads(plan, config, rows_of)
    warm = {fold: builder_deltas(builders, config, labels, rows_of, shared[fold])
            for fold, builders in enumerate(plan.builders)}
    pools = {"warm": warm, "random": {fold: random_like(d, 1000 + fold) for fold, d in warm.items()}}
    scores: dict[str, dict[str, float]] = {}
    for p in plan.profiles:
        own = tuple(sorted(set(p.labels)))
        x, y = rows_of(p, p.split.train, own)
        hx, hy = rows_of(p, p.split.holdout, own)
        pseed = profile_seed(seed, p.key)
        fold = plan.folds[p.key]
        weight, bias = shared[fold]
        rows = [labels.index(label) for label in own]
        start = (weight[rows], bias[rows] + log_prior(Counter(p.labels[i] for i in p.split.train), own))
        variants = {ALONE: fit_delta(x, y, start, rank=1, lr=LR, holdout=(hx, hy), seed=pseed)}
        for kind, deltas in pools.items():
            mine = deltas[fold][:, rows]
            variants[f"{kind}: mixture of N deltas + prior + rank-1"] = with_mixture(
                x, y, start, mine, holdout=(hx, hy), seed=pseed)
            for k in args.k:
                chosen = best_k(x, y, start, mine, k)
                variants[f"{kind}: best {k} deltas + prior + rank-1"] = fit_delta(
                    x, y, (start[0] + chosen, start[1]), rank=1, lr=LR, holdout=(hx, hy), seed=pseed)
        for name, (w, b) in variants.items():
            scores.setdefault(name, {})[p.key] = float(((hx @ w.T + b).argmax(1) == hy).float().mean())
    return scores


def tables(scores: dict[str, dict[str, float]]) -> str:
    base = scores[ALONE]

    def row(name: str, accuracies: dict[str, float], against: dict[str, float]) -> str:
        gains = [accuracies[k] - against[k] for k in base]
        low, high = bootstrap_interval(gains)
        won, lost = sum(g > 0 for g in gains), sum(g < 0 for g in gains)
        return (f"| {name} | {statistics.fmean(accuracies.values()):.3f} | {statistics.fmean(gains):+.3f} "
                f"({low:+.3f}…{high:+.3f}) | {won} / {len(gains) - won - lost} / {lost} |")

    lines = ["| variant | accuracy | − the profile alone (95 % CI) | wins / ties / losses |", "|---|---|---|---|"]
    lines += [row(name, accuracies, base) for name, accuracies in scores.items()]
    lines += ["", "| warm − random | warm accuracy | (95 % CI) | wins / ties / losses |", "|---|---|---|---|"]
    lines += [row(name[len("warm: "):], scores[name], scores["random: " + name[len("warm: "):]])
              for name in scores if name.startswith("warm: ")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=lambda v: [int(r) for r in v.split(",")], default=[0],
                        help="each seed alone, then each profile's mean over them (as `profilekit eval --seeds`)")
    parser.add_argument("--min-rows", type=int, default=20)
    parser.add_argument("--max-rows", type=int, default=150)
    parser.add_argument("--pool-size", type=int, default=100)
    parser.add_argument("--k", type=lambda v: [int(r) for r in v.split(",")], default=[1, 5, 25],
                        help="hard selections: the mean of the k best-fitting deltas")
    args = parser.parse_args()
    encode = PooledRows(Engine(load_backbone()))  # rows encoded once, for every seed
    runs = []
    for seed in args.seeds:
        runs.append(screen(seed, args, encode))
        report(f"seed {seed}: profiles", len(runs[-1][ALONE]))
        print(tables(runs[-1]), flush=True)
    if len(runs) > 1:
        mean = {name: {p: statistics.fmean(run[name][p] for run in runs) for p in runs[0][name]} for name in runs[0]}
        print(f"\nmean over seeds {','.join(map(str, args.seeds))}:")
        print(tables(mean))


if __name__ == "__main__":
    main()
