"""Paired differences between any two methods of an evaluation folder (`profilekit eval` pairs each method
with head_only; this pairs A with B: the best method with `global`, warm adapters with random ones).

    python -m bench.paired docs/results/news-authors-crossfit xpeft_hard_warm_delta global --seeds 0,1,2
    python -m bench.paired docs/results/news-authors-crossfit-k10 xpeft_hard_warm_delta xpeft_hard_warm_delta \
        --b-folder docs/results/news-authors-crossfit --seeds 0      # the same method at k=10 − at k=50

For each seed alone and for the mean over the seeds (each profile's accuracy averaged over them first, as
`profilekit eval --seeds` does): mean of A − B over the profiles both have, 95 % bootstrap interval, and
wins / ties / losses of A; with --by-size, the mean over seeds also per author size (20–39, 40–99, 100+ rows,
as the summaries group them)."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from profilekit.evaluation.report import bootstrap_interval, mean_over_runs, size_groups
from profilekit.evaluation.results import read_results


def paired(rows: list[dict], a: str, b: str) -> dict | None:
    """A − B over the profiles with results for both, or None when there are none."""
    accuracy = {(r["method"], r["profile"]): float(r["accuracy"]) for r in rows}
    profiles = sorted({p for m, p in accuracy if m == a} & {p for m, p in accuracy if m == b})
    if not profiles:
        return None
    diffs = [accuracy[a, p] - accuracy[b, p] for p in profiles]
    low, high = bootstrap_interval(diffs)
    return {"profiles": len(profiles), "mean": sum(diffs) / len(diffs), "low": low, "high": high,
            "wins": sum(d > 0 for d in diffs), "ties": sum(d == 0 for d in diffs), "losses": sum(d < 0 for d in diffs)}


def text(figure: dict | None) -> str:
    if figure is None:
        return "no profile has both"
    return (f"{figure['mean']:+.3f} ({figure['low']:+.3f}…{figure['high']:+.3f}), "
            f"{figure['wins']} / {figure['ties']} / {figure['losses']} over {figure['profiles']} profiles")


def by_size(rows: list[dict]) -> list[tuple[str, dict | None]]:
    """(author size, A − B over the profiles of that size) for each size that has profiles."""
    out = []
    for label, members in size_groups(rows):
        chosen = set(members)
        out.append((label, paired([r for r in rows if r["profile"] in chosen], "A", "B")))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="an evaluation's --out")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--seeds", help="comma-separated: the folder's seed-N runs (default: the folder itself)")
    p.add_argument("--b-folder", type=Path, default=None,
                   help="B's results from this evaluation folder instead (the same seeds, profiles and splits: "
                        "one method with other --set values, from a run with --pools-dir)")
    p.add_argument("--by-size", action="store_true", help="also A − B per author size, over the seeds' mean")
    args = p.parse_args(argv)
    seeds = [s.strip() for s in args.seeds.split(",")] if args.seeds else [None]

    def runs_of(folder: Path, method: str) -> list[list[dict]]:
        files = [folder / (f"seed-{s}" if s is not None else "") / "results.csv" for s in seeds]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            p.error(f"no results at {', '.join(missing)}")
        runs = [read_results(f) for f in files]
        if not any(r["method"] == method for rows in runs for r in rows):
            where = "the folder" if folder == args.folder else str(folder)
            present = sorted({r["method"] for rows in runs for r in rows})
            p.error(f"no results for {method}; {where} has {', '.join(present)}")
        return [[r for r in rows if r["method"] == method] for rows in runs]

    a_runs = runs_of(args.folder, args.a)
    b_runs = runs_of(args.b_folder or args.folder, args.b)
    a, b = args.a, args.b if args.b_folder is None else f"{args.b} ({args.b_folder})"
    runs = [[{**r, "method": "A"} for r in a_rows] + [{**r, "method": "B"} for r in b_rows]
            for a_rows, b_rows in zip(a_runs, b_runs, strict=True)]
    if not args.seeds:
        print(f"{a} − {b}: {text(paired(runs[0], 'A', 'B'))}")
        mean = runs[0]
    else:
        for seed, rows in zip(seeds, runs, strict=True):
            print(f"seed {seed}: {a} − {b}: {text(paired(rows, 'A', 'B'))}")
        mean = mean_over_runs(runs)
        print(f"mean over seeds {args.seeds}: {a} − {b}: {text(paired(mean, 'A', 'B'))}")
    if args.by_size:
        for label, figure in by_size(mean):
            print(f"  authors with {label}: {text(figure)}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `… | head` ends it quietly, as it ends any shell tool
    raise SystemExit(main())
