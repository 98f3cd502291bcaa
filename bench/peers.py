"""`profilekit bench` against its peers: profilekit's mixed batch of X-PEFT hard-mask profiles vs HF PEFT
(one LoRA per profile, `adapter_names` mixed batch) and the `adapters` library (one SeqBn adapter per
profile, BatchSplit or switched per profile), and the plain backbone, on the same news texts.

Every contender does the same end-to-end work per row: encoder with the row's adapter, mean pooling
over its tokens, the row's own head (contenders.py). For each number P of distinct profiles among the
batch's rows (--peers-sweep), all five contenders run once per round, alternately, and each ratio is
the median over rounds of the two sides' seconds in that round. Printed `name: value` lines:

- {case}_rows_per_second_{P}: rows / median seconds, case in plain, profilekit, peft,
  adapters_batchsplit, adapters_switching;
- mixed_vs_{peer}_ratio_{P}: profilekit rows/s ÷ the peer's (above 1: profilekit is faster);
- {case}_vs_backbone_ratio_{P}: the case's rows/s ÷ the plain backbone's;
- peft_load_adapter_ms_p50/p99: PEFT `load_adapter` of a saved LoRA folder into the served model;
  profilekit_load_ms_p50/p99: `Engine.load` of a saved profile's bytes;
- max_profiles_peft and peft_register_*: `add_adapter` called until --peers-register-seconds or
  --peers-register-max, per-profile milliseconds over the first and last chunks, process RSS, LoRA
  weight KiB per profile.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from bench import contenders as c
from bench.common import percentile
from profilekit.data import NEWS_AUTHORS

LABELS = ("a", "b", "c", "d", "e")
PEERS = ("peft", "adapters_batchsplit", "adapters_switching")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The peer comparison's flags, every one with a default."""
    group = parser.add_argument_group("peers", "profilekit against HF PEFT and the adapters library")
    group.add_argument("--peers-data", default=str(NEWS_AUTHORS), help="JSONL rows with a `text` field")
    group.add_argument("--peers-rows", type=int, default=64, help="rows per batch")
    group.add_argument("--peers-sweep", default="1,8,32,64", help="distinct profiles per batch, comma-separated")
    group.add_argument("--peers-repeats", type=int, default=5, help="timed rounds per sweep point")
    group.add_argument("--peers-pool-size", type=int, default=100, help="N, adapters of the random pool")
    group.add_argument("--peers-k", type=int, default=50, help="k of the X-PEFT hard masks")
    group.add_argument("--peers-lora-rank", type=int, default=8, help="r of the PEFT LoRA adapters")
    group.add_argument("--peers-adapter-std", type=float, default=0.05,
                       help="std of the `adapters` SeqBn weights (random, so each adapter changes outputs)")
    group.add_argument("--peers-loads", type=int, default=100, help="cold adapter loads timed")
    group.add_argument("--peers-register-seconds", type=float, default=120.0,
                       help="time budget of the PEFT registration scaling run")
    group.add_argument("--peers-register-max", type=int, default=20000, help="count cap of that run")
    group.add_argument("--peers-register-chunk", type=int, default=100,
                       help="registrations per chunk for the first/last chunk figures")
    group.add_argument("--peers-seed", type=int, default=0)
    group.add_argument("--peers-threads", type=int, default=0, help="torch CPU threads; 0: torch's default")


def read_texts(path: str | Path, rows: int) -> list[str]:
    """The first `rows` texts of a JSONL file of {"text": …} rows."""
    from profilekit.data import read_rows

    texts = [row.text for row in read_rows(path)[:rows]]
    if len(texts) < rows:
        raise ValueError(f"{path} holds {len(texts)} rows, fewer than --peers-rows {rows}")
    return texts


def rss_mb() -> float:
    """Resident set size of this process in MiB (VmRSS; peak RSS where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def profile_states(engine, count: int, *, k: int, seed: int):
    """`count` X-PEFT hard-mask profiles with random mask logits (so their masks differ), in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    states = []
    for i in range(count):
        state = engine.new_state("xpeft_hard", LABELS, seed=seed + i, k=k)
        with torch.no_grad():
            logits = torch.randn(state.mask_logits.shape, generator=generator)
            state.mask_logits.copy_(logits.to(state.mask_logits.device, state.mask_logits.dtype))
        states.append(state.eval())
    return states


def build(backbone, args: argparse.Namespace, profiles: int) -> dict[str, object]:
    """Every contender with `profiles` profiles (the peers' models are built before the Engine wraps
    the backbone's layers, from pristine copies of its encoder)."""
    from profilekit.engine import Engine
    from profilekit.pool import PoolSpec, random_pool

    torch.manual_seed(args.peers_seed)
    names = [f"p{i}" for i in range(profiles)]
    peft = c.peft_model(backbone, names, args.peers_lora_rank)
    library = c.adapters_model(backbone, names, init_std=args.peers_adapter_std, seed=args.peers_seed)
    pool = random_pool(PoolSpec(backbone.backbone_id, args.peers_pool_size, backbone.num_layers,
                                backbone.hidden_size, seed=args.peers_seed))
    engine = Engine(backbone, pool)
    states = profile_states(engine, profiles, k=args.peers_k, seed=args.peers_seed)
    heads = c.Heads(states)
    return {"plain": c.Plain(backbone.model, heads), "profilekit": c.Profilekit(engine, states),
            "peft": c.Peft(peft, names, heads), "adapters_batchsplit": c.AdaptersBatchSplit(library, names, heads),
            "adapters_switching": c.AdaptersSwitching(library, names, heads)}


def forward_of(case, batch: c.Batch) -> Callable[[], None]:
    """One timed call: the case's forward on the batch, without autograd."""

    def forward() -> None:
        with torch.no_grad():
            case.forward(batch)

    return forward


def measure_sweep(cases: dict[str, object], tokens, sweep: list[int], repeats: int,
                  emit: Callable[[str, float], None]) -> None:
    """Throughput of every case per sweep point, and the ratios, all from interleaved rounds."""
    rows = tokens["input_ids"].shape[0]
    for distinct in sweep:
        batch = c.make_batch(tokens, distinct)

        times = c.timed_rounds({name: forward_of(case, batch) for name, case in cases.items()}, repeats=repeats)
        for name, seconds in times.items():
            emit(f"{name}_rows_per_second_{distinct}", rows / statistics.median(seconds))
        for peer in PEERS:  # profilekit rows/s ÷ peer rows/s = peer seconds / profilekit seconds
            emit(f"mixed_vs_{peer}_ratio_{distinct}", c.median_ratio(times[peer], times["profilekit"]))
        for name in ("profilekit", *PEERS):
            emit(f"{name}_vs_backbone_ratio_{distinct}", c.median_ratio(times["plain"], times[name]))


def measure_loads(cases: dict[str, object], loads: int, emit: Callable[[str, float], None]) -> None:
    """Cold profile loads: PEFT `load_adapter` from saved LoRA folders into the served model (each under a
    new name), and `Engine.load` of saved profile bytes."""
    peft, kit = cases["peft"], cases["profilekit"]
    seconds = []
    with tempfile.TemporaryDirectory() as folder:
        kept = peft.names[: min(loads, len(peft.names))]
        with warnings.catch_warnings():  # a model built from a config has no name to look a vocabulary up by
            warnings.simplefilter("ignore", UserWarning)
            peft.model.save_pretrained(folder, selected_adapters=kept)
        for i in range(loads):
            source = Path(folder) / kept[i % len(kept)]
            began = time.perf_counter()
            peft.model.load_adapter(str(source), adapter_name=f"cold{i}")
            seconds.append(time.perf_counter() - began)
        for i in range(loads):  # leave the served model as it was
            peft.model.delete_adapter(f"cold{i}")
    emit("peft_load_adapter_ms_p50", 1000 * statistics.median(seconds))
    emit("peft_load_adapter_ms_p99", 1000 * percentile(seconds, 99))
    blobs = [kit.engine.save(state).to_bytes() for state in kit.states]
    seconds = []
    for i in range(loads):
        began = time.perf_counter()
        kit.engine.load(blobs[i % len(blobs)])
        seconds.append(time.perf_counter() - began)
    emit("profilekit_load_ms_p50", 1000 * statistics.median(seconds))
    emit("profilekit_load_ms_p99", 1000 * percentile(seconds, 99))


def measure_registration(backbone, args: argparse.Namespace, emit: Callable[[str, float], None]) -> None:
    """PEFT registration scaling: one new LoRA per profile with `add_adapter`, until the time budget or
    the count cap; where the peer's per-profile cost and memory go as profiles accumulate."""
    from peft import get_peft_model

    config = c.lora_config(args.peers_lora_rank)
    model = get_peft_model(c.pristine_encoder(backbone), config, adapter_name="r0").eval()
    seconds: list[float] = []
    began = time.perf_counter()
    while len(seconds) + 1 < args.peers_register_max and time.perf_counter() - began < args.peers_register_seconds:
        start = time.perf_counter()
        model.add_adapter(f"r{len(seconds) + 1}", config)
        seconds.append(time.perf_counter() - start)
    elapsed = time.perf_counter() - began
    chunk = max(1, min(args.peers_register_chunk, len(seconds)))
    lora_bytes = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if ".lora_" in n)
    emit("max_profiles_peft", len(seconds) + 1)
    emit("peft_register_seconds", elapsed)
    emit("peft_register_chunk", chunk)
    emit("peft_register_ms_first_chunk", 1000 * statistics.mean(seconds[:chunk]) if seconds else 0.0)
    emit("peft_register_ms_last_chunk", 1000 * statistics.mean(seconds[-chunk:]) if seconds else 0.0)
    emit("peft_register_rss_mb", rss_mb())  # the whole process, the earlier contenders' freed heap included
    emit("peft_lora_kb_per_profile", lora_bytes / 1024 / (len(seconds) + 1))  # LoRA weights, exact
    del model
    gc.collect()


def run(args: argparse.Namespace, report: Callable[[str, object], None], *, backbone=None) -> dict[str, float]:
    """Measure everything above, print each figure through `report` and return them by name."""
    figures: dict[str, float] = {}

    def emit(name: str, value: float) -> None:
        figures[name] = float(value)
        report(name, value)

    if backbone is None:
        from bench.common import configured_backbone

        backbone = configured_backbone()
    if args.peers_threads > 0:
        torch.set_num_threads(args.peers_threads)
    sweep = [int(p) for p in str(args.peers_sweep).split(",") if p.strip()]
    tokens = backbone.tokenize(read_texts(args.peers_data, args.peers_rows))
    report("peers_setup", f"{args.peers_rows} rows, sweep {sweep}; profilekit xpeft_hard k={args.peers_k} "
           f"N={args.peers_pool_size}; peft LoRA r={args.peers_lora_rank} on query/value; adapters seq_bn; "
           f"every case: encoder, mean pooling, the row's head; device {backbone.device}, {backbone.dtype}, "
           f"{torch.get_num_threads()} torch threads")
    emit("rows", args.peers_rows)
    emit("mean_text_tokens", tokens["attention_mask"].sum(1).float().mean().item())
    emit("padded_tokens", tokens["input_ids"].shape[1])
    cases = build(backbone, args, max(sweep))
    measure_sweep(cases, tokens, sweep, args.peers_repeats, emit)
    measure_loads(cases, args.peers_loads, emit)
    del cases
    gc.collect()
    measure_registration(backbone, args, emit)
    return figures
