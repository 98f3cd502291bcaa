"""Helpers for benchmarks: timing on one machine in one run, and printing `name: value` lines."""

from __future__ import annotations

import json
import math
import statistics
import time

from profilekit.data import NEWS_AUTHORS


def news_texts(n: int) -> list[str]:
    texts = []
    with NEWS_AUTHORS.open() as handle:
        for line in handle:
            texts.append(json.loads(line)["text"])
            if len(texts) == n:
                break
    return texts


def train_step(engine, method: str, texts: list[str], **overrides):
    """One training step of one fresh profile on `texts` (forward, backward, AdamW), as a function to time."""
    import torch

    from profilekit.training.loop import profiles_loss

    labels = ("a", "b", "c", "d")
    state = engine.new_state(method, labels, **overrides)
    state.train()
    optimizer = torch.optim.AdamW(state.parameters(), lr=1e-3)
    targets = [i % len(labels) for i in range(len(texts))]
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        loss = profiles_loss(engine, [state] * len(texts), texts, targets, training=True, generators=[generator])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def median_seconds(fn, *, repeats: int = 7, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def interleaved(fns: dict, *, repeats: int = 7, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each function, measured in alternation so machine noise hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            began = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(ts) for name, ts in times.items()}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def report(name: str, value) -> None:
    print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}", flush=True)


def paired_ratios(baseline, fns: dict, *, repeats: int = 7,
                  warmup: int = 1) -> tuple[dict[str, float], float]:
    """Median over repeats of (baseline seconds / fn seconds), each fn timed between two baseline runs
    so that a shared machine's drifting load cancels out of each ratio; also the baseline's median."""

    def timed(fn) -> float:
        began = time.perf_counter()
        fn()
        return time.perf_counter() - began

    for _ in range(warmup):
        baseline()
        for fn in fns.values():
            fn()
    ratios: dict[str, list[float]] = {name: [] for name in fns}
    base = [timed(baseline)]
    for _ in range(repeats):
        for name, fn in fns.items():
            seconds = timed(fn)
            base.append(timed(baseline))
            ratios[name].append((base[-2] + base[-1]) / 2 / seconds)
    return {name: statistics.median(rs) for name, rs in ratios.items()}, statistics.median(base)


def plain_forward(backbone, texts: list[str], split_overhead: int | None = None) -> None:
    """The plain backbone on `texts` (call under inference mode): tokenize and run one forward padded to
    the longest row, or with `split_overhead` one forward per sub-batch of similar length, cut as serving
    cuts a batch (engine/inputs.split_by_length)."""
    import torch

    from profilekit.engine.inputs import split_by_length

    tokens = backbone.tokenize(texts)
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    lengths = mask.sum(1).tolist()
    parts = split_by_length(lengths, split_overhead)
    if len(parts) == 1:
        backbone.model(**tokens)
        return
    for part in parts:
        index = torch.tensor(part, device=ids.device)
        width = max(lengths[r] for r in part)  # right-padded: the sub-batch's longest row
        backbone.model(input_ids=ids[index, :width], attention_mask=mask[index, :width])


def configured_backbone():
    """The encoder as the product loads it: PROFILEKIT_BACKBONE_PATH, _DEVICE, _DTYPE and _MAX_LENGTH (default:
    the packaged MiniLM on the CPU in float32), so bench/gpu_check.sh measures the GPU in each dtype."""
    from profilekit.backbone import load_backbone
    from profilekit.settings import get_settings

    settings = get_settings()
    return load_backbone(settings.backbone_path, device=settings.device, dtype=settings.dtype,
                         max_length=settings.max_length)
