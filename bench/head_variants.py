"""Head-only variants on frozen pooled rows (issue #12): `python -m bench.head_variants --seed 0`.

A fast screen of what a profile's head can gain from other users before anything is trained through
the encoder: every text of the news authors is encoded once (mean-pooled MiniLM), and linear heads
are trained on those rows with `profilekit eval`'s protocol — the same authors, splits, folds and
cross-fitted builders (`evaluation/plan.py`, ≤ 150 rows per author) — and the same AdamW, linear
decay, 16 rows per step, 10 epochs and early stopping on the holdout as `training/loop.py`. The
shared head of a fold is trained on its builders' rows (what a warm pool's head is), never on the
fold's own authors. Printed: mean holdout accuracy per variant and its difference with head_only
(95 % bootstrap interval over authors). `--delta-ranks`/`--delta-lrs` add variants with a low-rank
delta of the shared head beside the learned prior. Only the winners were then run through `profilekit eval`
(docs/results/README.md); this screen is not a result in itself.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import Counter

import torch
import torch.nn.functional as F

from bench.common import report
from profilekit.backbone import load_backbone
from profilekit.data import NEWS_AUTHORS, ProfileData, profile_seed, read_rows, split_profile
from profilekit.engine import Engine
from profilekit.evaluation.plan import EvalConfig, make_plan
from profilekit.evaluation.report import bootstrap_interval
from profilekit.methods.base import log_prior
from profilekit.training.loop import PooledRows, lr_factor


def fit(x, y, classes, *, start=None, only_bias=False, lr=1e-2, epochs=10, batch=16, holdout=None, seed=0):
    """A softmax head on pooled rows x [n, d] → (weight [C, d], bias [C]) of its best holdout epoch."""
    g = torch.Generator().manual_seed(seed)
    if start is None:
        weight, bias = torch.randn(classes, x.shape[1], generator=g) * 0.02, torch.zeros(classes)
    else:
        weight, bias = start[0].clone(), start[1].clone()
    weight.requires_grad_(not only_bias)
    bias.requires_grad_()
    return train(lambda: (weight, bias), [bias] if only_bias else [weight, bias], x, y, g,
                 lr=lr, epochs=epochs, batch=batch, holdout=holdout)


def fit_delta(x, y, start, *, rank, lr=1e-2, epochs=10, batch=16, holdout=None, seed=0):
    """The shared head's rows `start` = (weight [C, d], bias [C]) kept frozen, plus a learned bias (the label
    prior) and a rank-`rank` delta u·v of the weight (u [C, r] from zero, v [r, d] small random, as LoRA
    starts): (weight + u·v, bias) of its best holdout epoch. Stores r·(C + d) + C floats."""
    g = torch.Generator().manual_seed(seed)
    weight, bias = start[0].clone(), start[1].clone().requires_grad_()
    u = torch.zeros(weight.shape[0], rank, requires_grad=True)
    v = (torch.randn(rank, weight.shape[1], generator=g) * 0.02).requires_grad_()
    return train(lambda: (weight + u @ v, bias), [bias, u, v], x, y, g, lr=lr, epochs=epochs, batch=batch,
                 holdout=holdout)


def train(head, params, x, y, g, *, lr, epochs, batch, holdout):
    """`training/loop.py`'s schedule (`lr_factor`) on `params`: AdamW, rows shuffled by `g`, stopping after 3
    epochs without a lower holdout loss. `head()` gives (weight, bias); returns those of the best epoch.
    Not `train_profiles` itself: these heads (a frozen shared head with a learned prior and delta) are not a
    method's state, and the screen fits thousands of them on rows encoded once."""
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    total, step, best, bad = math.ceil(len(y) / batch) * epochs, 0, (math.inf, None), 0
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g)
        for start_row in range(0, len(y), batch):
            rows = order[start_row:start_row + batch]
            weight, bias = head()
            loss = F.cross_entropy(x[rows] @ weight.T + bias, y[rows])
            optimizer.zero_grad()
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_factor(step, total)
            optimizer.step()
            step += 1
        with torch.no_grad():
            weight, bias = head()
            held = F.cross_entropy(holdout[0] @ weight.T + bias, holdout[1]).item()
        if held < best[0] - 1e-7:
            best, bad = (held, (weight.detach().clone(), bias.detach().clone())), 0
        else:
            bad += 1
            if bad >= 3:
                break
    return best[1]


def encoder(encode: PooledRows):
    """rows_of(data, row indices, classes) → (pooled rows [n, d], class indices [n])."""
    def rows_of(data: ProfileData, which: list[int], classes: tuple[str, ...]):
        return encode([data.texts[i] for i in which]), torch.tensor([classes.index(data.labels[i]) for i in which])
    return rows_of


def builder_rows(builder: ProfileData, config: EvalConfig, labels: tuple[str, ...], rows_of):
    """(train x, train y, holdout x, holdout y) of a warm-pool builder, split as the warm pool splits it."""
    split = split_profile(builder.labels, seed=profile_seed(config.pool_seed, builder.key))
    return (*rows_of(builder, split.train, labels), *rows_of(builder, split.holdout, labels))


def shared_heads(plan, config: EvalConfig, rows_of) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """fold → the head of its builders (what its warm pool's shared head is), over every label."""
    shared = {}
    for fold, builders in enumerate(plan.builders):
        parts = [builder_rows(b, config, plan.labels, rows_of) for b in builders]
        train_x, train_y, hold_x, hold_y = (torch.cat(column) for column in zip(*parts, strict=True))
        shared[fold] = fit(train_x, train_y, len(plan.labels), batch=64, holdout=(hold_x, hold_y))
    return shared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-rows", type=int, default=20, help="as docs/results' runs (eval's default is 10)")
    parser.add_argument("--max-rows", type=int, default=150)
    parser.add_argument("--pool-folds", type=int, default=5)
    parser.add_argument("--delta-ranks", type=lambda v: [int(r) for r in v.split(",") if r], default=[1, 4],
                        help="ranks of the low-rank head delta variants (empty: none)")
    parser.add_argument("--delta-lrs", type=lambda v: [float(r) for r in v.split(",") if r], default=[0.01, 0.1],
                        help="learning rates of the low-rank head delta variants (the prior learns at the same rate)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    config = EvalConfig(data=str(NEWS_AUTHORS), min_rows=args.min_rows, max_rows=args.max_rows,
                        pool_folds=args.pool_folds, seed=args.seed)
    plan = make_plan(read_rows(NEWS_AUTHORS), config)
    encode = PooledRows(Engine(load_backbone()))
    labels = plan.labels
    rows_of = encoder(encode)
    shared = shared_heads(plan, config, rows_of)
    scores: dict[str, dict[str, float]] = {}
    for p in plan.profiles:
        own = tuple(sorted(set(p.labels)))
        x, y = rows_of(p, p.split.train, own)
        hx, hy = rows_of(p, p.split.holdout, own)
        seed = profile_seed(args.seed, p.key)
        weight, bias = shared[plan.folds[p.key]]
        rows = [labels.index(label) for label in own]
        prior = log_prior(Counter(p.labels[i] for i in p.split.train), own)
        variants = {
            "head_only": fit(x, y, len(own), holdout=(hx, hy), seed=seed),
            "shared head, own labels": (weight[rows], bias[rows]),
            "shared head, own labels + log prior": (weight[rows], bias[rows] + prior),
            "shared head + learned prior (lr 0.01)": fit(x, y, len(own), start=(weight[rows], bias[rows] + prior),
                                                         only_bias=True, lr=0.01, holdout=(hx, hy), seed=seed),
            "shared head + learned prior (lr 0.1)": fit(x, y, len(own), start=(weight[rows], bias[rows] + prior),
                                                        only_bias=True, lr=0.1, holdout=(hx, hy), seed=seed),
            "own head from the shared head": fit(x, y, len(own), start=(weight[rows], bias[rows]), holdout=(hx, hy),
                                                 seed=seed),
            "own head from the shared head + log prior": fit(x, y, len(own), start=(weight[rows], bias[rows] + prior),
                                                             holdout=(hx, hy), seed=seed),
        }
        for rank in args.delta_ranks:
            for lr in args.delta_lrs:
                variants[f"shared head + learned prior + rank-{rank} delta (lr {lr:g})"] = fit_delta(
                    x, y, (weight[rows], bias[rows] + prior), rank=rank, lr=lr, holdout=(hx, hy), seed=seed)
        for name, (w, b) in variants.items():
            scores.setdefault(name, {})[p.key] = float(((hx @ w.T + b).argmax(1) == hy).float().mean())
    base = scores["head_only"]
    report("profiles", len(plan.profiles))
    print("| variant | accuracy | − head_only (95 % CI) |\n|---|---|---|")
    for name, accuracies in scores.items():
        gains = [accuracies[k] - base[k] for k in base]
        low, high = bootstrap_interval(gains)
        print(f"| {name} | {statistics.fmean(accuracies.values()):.3f} | {statistics.fmean(gains):+.3f} "
              f"({low:+.3f}…{high:+.3f}) |")


if __name__ == "__main__":
    main()
