"""`profilekit eval`: every chosen method on every author of a LaMP-style file; results.csv, a summary
with 95 % intervals and plots in --out. Rerun the same command to resume a stopped run."""

from __future__ import annotations

import argparse

from profilekit.cli.common import progress_bar, table

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
    p.add_argument("--min-rows", type=int, default=20, help="authors with at least this many rows are evaluated")
    p.add_argument("--max-rows", type=int, default=None,
                   help="use a seeded random sample of at most this many rows per author (default: all)")
    p.add_argument("--pool-size", type=int, default=100, help="N of the random and the warm pool")
    p.add_argument("--warm-min-rows", type=int, default=3,
                   help="authors below --min-rows with at least this many rows may build the warm pool")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16, help="rows of one profile per step")
    p.add_argument("--profiles-per-step", type=int, default=16, help="profiles trained together")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="METHOD.FIELD=VALUE",
                   help="override a method's config field, e.g. xpeft_hard.k=20 (repeatable)")
    p.add_argument("--backbone", default=None, help="encoder folder (default: settings, else the packaged MiniLM)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_eval)


def run_eval(args) -> int:
    from profilekit.backbone import load_backbone
    from profilekit.evaluation.plan import EvalConfig
    from profilekit.evaluation.report import write_report
    from profilekit.evaluation.run import Evaluation
    from profilekit.settings import get_settings

    config = EvalConfig(
        data=str(args.data), methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        min_rows=args.min_rows, max_rows=args.max_rows, pool_size=args.pool_size,
        warm_min_rows=args.warm_min_rows, epochs=args.epochs, batch_size=args.batch_size,
        profiles_per_step=args.profiles_per_step, seed=args.seed, overrides=_overrides(args.set))
    settings = get_settings()
    backbone = load_backbone(args.backbone or settings.backbone_path, device=settings.device, dtype=settings.dtype,
                             max_length=settings.max_length)
    bar = None

    def progress(method: str, finished: int, step) -> None:
        if bar is None:
            return
        if finished:
            bar.update(finished)
        postfix = {"method": method}
        if step is not None:
            postfix |= {"epoch": step.epoch, "step": f"{step.step}/{step.total_steps}", "loss": f"{step.loss:.3f}"}
        bar.set_postfix(postfix, refresh=False)

    evaluation = Evaluation(config, args.out, backbone, progress=progress)
    todo = sum(len(profiles) for _, profiles in evaluation.pending())
    total = len(config.methods) * len(evaluation.plan.profiles)
    print(f"{len(evaluation.plan.profiles)} profiles × {len(config.methods)} methods: {total - todo} done, "
          f"{todo} to train; results in {evaluation.results}", flush=True)
    if not args.no_progress:
        bar = progress_bar(todo, "eval", unit="profile")
    try:
        evaluation.run()
    finally:
        if bar is not None:
            bar.close()
    summary = write_report(args.out, list(config.methods))
    print(table([[s["method"], s["profiles"], interval_text(s, "accuracy"), interval_text(s, "macro_f1"),
                  f"{s['train_seconds']:.1f}", f"{s['stored_bytes']:,}"] for s in summary],
                ["method", "profiles", "accuracy [95% CI]", "macro-F1 [95% CI]", "train s", "stored bytes"]))
    return 0


def interval_text(summary: dict, name: str) -> str:
    return f"{summary[name]:.3f} [{summary[name + '_low']:.3f}, {summary[name + '_high']:.3f}]"
