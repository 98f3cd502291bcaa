"""`profilekit eval`: every chosen method on every author of a LaMP-style file; results.csv, a summary
with 95 % intervals and plots in --out. Rerun the same command to resume a stopped run."""

from __future__ import annotations

import argparse

from profilekit.cli.common import progress_bar, table
from profilekit.data import MIN_ROWS

EXAMPLE = "profilekit eval --data ../shared/data/news-authors/news_authors.jsonl --out eval-out"


def _overrides(settings: list[str]) -> dict[str, dict]:
    """["xpeft_hard.k=20", …] → {"xpeft_hard": {"k": 20}}, each value as its config field's type."""
    from profilekit.evaluation.plan import METHODS, EvalError
    from profilekit.methods import get_method, parse_overrides

    def config_of(name: str):
        if name not in METHODS:
            raise EvalError(f"--set names unknown method {name!r}; known: {', '.join(METHODS)}")
        return get_method(METHODS[name].method or "head_only").config_class

    return parse_overrides(settings, config_of)


def add_commands(commands) -> None:
    from profilekit.evaluation.plan import DEFAULT_METHODS, METHODS

    p = commands.add_parser("eval", help="evaluate methods per author on a LaMP-style dataset",
                            description=__doc__ + f"\n\nExample: {EXAMPLE}",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="LaMP-style JSONL/CSV file or LaMP-2 *_questions.json")
    p.add_argument("--out", required=True, help="output folder (results.csv, summary, plots); reused to resume")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated subset of: {', '.join(METHODS)}")
    p.add_argument("--min-rows", type=int, default=MIN_ROWS,
                   help=f"authors with at least this many rows are evaluated (default {MIN_ROWS})")
    p.add_argument("--max-rows", type=int, default=None,
                   help="use a seeded random sample of at most this many rows per author (default: all)")
    p.add_argument("--pool-size", type=int, default=100, help="N of the random and the warm pools")
    p.add_argument("--warm-min-rows", type=int, default=3,
                   help="authors with at least this many rows in two categories may build a warm pool")
    p.add_argument("--pool-folds", type=int, default=5,
                   help="cross-fitting: the evaluated authors fall into this many folds, and each fold's warm "
                        "pool is built from the largest other authors, never its own")
    p.add_argument("--pool-data", default=None,
                   help="build one warm pool from this file's authors (existing users) instead, and evaluate "
                        "every author of --data on it")
    p.add_argument("--pool-seed", type=int, default=0, help="seeds the folds and the warm pools")
    p.add_argument("--pool-adapter-prior", action="store_true",
                   help="train each warm adapter beside a label prior of its author, so it learns what a prior "
                        "cannot (the pools differ: give them their own --pools-dir)")
    p.add_argument("--pool-shared-down", action="store_true",
                   help="build warm adapters that share one fixed down projection and learn only their up projections, "
                        "so that a mask's composed adapter is the mean of the adapters it selects (the pools differ: "
                        "give them their own --pools-dir)")
    p.add_argument("--pools-dir", default=None,
                   help="where the warm pools are kept (default OUT/pools): another folder's pools, so that a "
                        "run with other method settings (--set) is scored on the same pools")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16, help="rows of one profile per step")
    p.add_argument("--profiles-per-step", type=int, default=16, help="profiles trained together")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds: one run each in OUT/seed-N (sharing OUT/pools), and a summary "
                        "over them in OUT")
    p.add_argument("--set", action="append", default=[], metavar="METHOD.FIELD=VALUE",
                   help="override a method's config field, e.g. xpeft_hard.k=20 (repeatable)")
    p.add_argument("--lamp-out", default=None, metavar="FILE",
                   help="LaMP data: write one method's answers as LaMP's evaluator reads them "
                        '({"task": …, "golds": [{"id", "output"}]})')
    p.add_argument("--lamp-method", default=None, help="the method --lamp-out writes (default: the first of --methods)")
    p.add_argument("--backbone", default=None, help="encoder folder (default: settings, else the packaged MiniLM)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_eval)


def run_eval(args) -> int:
    from dataclasses import replace
    from pathlib import Path

    from profilekit.backbone import load_backbone
    from profilekit.evaluation.plan import EvalConfig, EvalError
    from profilekit.evaluation.report import write_report
    from profilekit.evaluation.run import Evaluation
    from profilekit.settings import get_settings

    config = EvalConfig(
        data=str(args.data), methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        min_rows=args.min_rows, max_rows=args.max_rows, pool_size=args.pool_size,
        warm_min_rows=args.warm_min_rows, pool_folds=args.pool_folds, pool_data=args.pool_data,
        pool_seed=args.pool_seed, pool_adapter_prior=args.pool_adapter_prior,
        pool_shared_down=args.pool_shared_down, epochs=args.epochs,
        batch_size=args.batch_size, profiles_per_step=args.profiles_per_step, seed=args.seed,
        overrides=_overrides(args.set))
    if args.lamp_out and not config.data.endswith("_questions.json"):  # checked before hours of training
        raise EvalError("--lamp-out needs LaMP data (a *_questions.json file)")
    if args.lamp_method and args.lamp_method not in config.methods:
        raise EvalError(f"--lamp-method {args.lamp_method} is not one of --methods ({', '.join(config.methods)})")
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    except ValueError as exc:
        raise EvalError(f"--seeds takes comma-separated integers, got {args.seeds!r}") from exc
    out = Path(args.out)
    pools_dir = Path(args.pools_dir) if args.pools_dir else out / "pools"
    runs = [(replace(config, seed=s), out / f"seed-{s}") for s in seeds] if seeds else [(config, out)]
    settings = get_settings()
    backbone = load_backbone(args.backbone or settings.backbone_path, device=settings.device, dtype=settings.dtype,
                             max_length=settings.max_length)
    for run_config, folder in runs:
        run_one(Evaluation(run_config, folder, backbone, pools_dir=pools_dir), not args.no_progress)
        if seeds:
            write_report(folder, list(config.methods))
    summary = write_report(out, list(config.methods), runs=[f for _, f in runs] if seeds else None)
    if args.lamp_out:
        write_lamp_out(args.lamp_out, runs[0][1], args.data, args.lamp_method or config.methods[0])
    print(table([[s["method"], s["profiles"], interval_text(s, "accuracy"), interval_text(s, "macro_f1"),
                  f"{s['train_seconds']:.1f}", f"{s['stored_bytes']:,}"] for s in summary],
                ["method", "profiles", "accuracy [95% CI]", "macro-F1 [95% CI]", "train s", "stored bytes"]))
    return 0


def run_one(evaluation, show_progress: bool) -> None:
    """Train what the folder still lacks, with a progress bar over its (profile, method) pairs."""
    todo = sum(len(profiles) for _, profiles in evaluation.pending())
    total = len(evaluation.config.methods) * len(evaluation.plan.profiles)
    print(f"{len(evaluation.plan.profiles)} profiles × {len(evaluation.config.methods)} methods: {total - todo} "
          f"done, {todo} to train; results in {evaluation.results}", flush=True)
    if evaluation.plan.left_out:
        left_out = evaluation.plan.left_out
        print(f"--pool-data: {len(left_out)} of its authors are evaluated too and were left out of the pool "
              f"({', '.join(left_out[:3])}{' …' if len(left_out) > 3 else ''})", flush=True)
    bar = progress_bar(todo, f"eval seed {evaluation.config.seed}", unit="profile") if show_progress else None

    def progress(method: str, finished: int, step) -> None:
        if bar is None:
            return
        if finished:
            bar.update(finished)
        postfix = {"method": method}
        if step is not None:
            postfix |= {"epoch": step.epoch, "step": f"{step.step}/{step.total_steps}", "loss": f"{step.loss:.3f}"}
        bar.set_postfix(postfix, refresh=False)

    evaluation.progress = progress
    try:
        evaluation.run()
    finally:
        if bar is not None:
            bar.close()


def write_lamp_out(path: str, folder, data: str, method: str) -> None:
    """The answers of `method` in the run folder, as LaMP's evaluator reads them."""
    import json
    from pathlib import Path

    from profilekit.data.lamp import detect_task, lamp_output
    from profilekit.evaluation.plan import EvalError
    from profilekit.evaluation.results import read_predictions

    if not data.endswith("_questions.json"):
        raise EvalError("--lamp-out needs LaMP data (a *_questions.json file)")
    answers = {r["question"]: r["predicted"] for r in read_predictions(Path(folder) / "predictions.csv")
               if r["method"] == method}
    if not answers:
        raise EvalError(f"--lamp-method {method}: no answers in {folder}")
    task = detect_task(json.loads(Path(data).read_text(encoding="utf-8"))[0]["input"])
    Path(path).write_text(json.dumps(lamp_output(task, answers), indent=1), encoding="utf-8")
    print(f"{len(answers)} answers of {method} written to {path} (LaMP's format)")


def interval_text(summary: dict, name: str) -> str:
    return f"{summary[name]:.3f} [{summary[name + '_low']:.3f}, {summary[name + '_high']:.3f}]"
