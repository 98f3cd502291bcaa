"""The summary of an evaluation folder: per method the mean over profiles with a 95 % bootstrap
interval (summary.csv, summary.md) and three PNG plots."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import numpy as np

from profilekit.evaluation.results import read_predictions, read_results
from profilekit.training.metrics import accuracy, macro_f1

SUMMARY_COLUMNS = ["method", "profiles", "accuracy", "accuracy_low", "accuracy_high", "macro_f1", "macro_f1_low",
                   "macro_f1_high", "train_seconds", "trainable_params", "stored_bytes", "accuracy_vs_head_only",
                   "accuracy_vs_head_only_low", "accuracy_vs_head_only_high", "wins", "ties", "losses"]
BASELINE = "head_only"  # paired differences are against it: the number personalising the encoder must beat


def bootstrap_interval(values: list[float], *, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean (seeded, so the same results give the same interval)."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) < 2:
        return float(data.mean()), float(data.mean())
    means = data[np.random.default_rng(seed).integers(0, len(data), (resamples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def interval(name: str, values: list[float]) -> dict[str, float]:
    """{name_low, name_high}: the bootstrap interval of the mean of `values`."""
    low, high = bootstrap_interval(values)
    return {f"{name}_low": low, f"{name}_high": high}


def summarize(rows: list[dict], methods: list[str]) -> list[dict]:
    """One line per method with results, in the given order; only profiles every listed method has
    results for are counted, so the means compare the same profiles."""
    have = {m: {r["profile"] for r in rows if r["method"] == m} for m in methods}
    methods = [m for m in methods if have[m]]
    common = set.intersection(*(have[m] for m in methods)) if methods else set()
    summary = []
    for method in methods:
        mine = [r for r in rows if r["method"] == method and r["profile"] in common]
        acc = [float(r["accuracy"]) for r in mine]
        f1 = [float(r["macro_f1"]) for r in mine]
        summary.append({
            "method": method, "profiles": len(mine),
            "accuracy": statistics.fmean(acc), **interval("accuracy", acc),
            "macro_f1": statistics.fmean(f1), **interval("macro_f1", f1),
            "train_seconds": statistics.fmean(float(r["train_seconds"]) for r in mine),
            "trainable_params": int(statistics.median(int(r["trainable_params"]) for r in mine)),
            "stored_bytes": int(statistics.median(int(r["stored_bytes"]) for r in mine)),
        })
    if BASELINE in methods:
        base = {r["profile"]: float(r["accuracy"]) for r in rows if r["method"] == BASELINE}
        for line in summary:
            mine = [(float(r["accuracy"]), base[r["profile"]]) for r in rows
                    if r["method"] == line["method"] and r["profile"] in common]
            gains = [a - b for a, b in mine]
            line |= {"accuracy_vs_head_only": statistics.fmean(gains), **interval("accuracy_vs_head_only", gains),
                     "wins": sum(g > 0 for g in gains), "ties": sum(g == 0 for g in gains),
                     "losses": sum(g < 0 for g in gains)}
    return summary


SIZES = ((20, 39), (40, 99), (100, None))  # authors by the rows they have (train + holdout)


def size_groups(rows: list[dict]) -> list[tuple[str, list[str]]]:
    """(label such as "40–99 rows", its profiles sorted) for each author size that has profiles in `rows`."""
    size = {r["profile"]: int(r["n_train"]) + int(r["n_holdout"]) for r in rows}
    groups = []
    for low, high in SIZES:
        members = sorted(p for p, n in size.items() if n >= low and (high is None or n <= high))
        if members:
            groups.append((f"{low}–{high} rows" if high else f"{low}+ rows", members))
    return groups


def by_size(rows: list[dict], methods: list[str]) -> str:
    """Accuracy − head_only per author size, mean and wins / ties / losses: where personalising pays."""
    if BASELINE not in methods:
        return ""
    base = {r["profile"]: float(r["accuracy"]) for r in rows if r["method"] == BASELINE}
    others = [m for m in methods if m != BASELINE]
    lines = ["| authors with | profiles | head_only accuracy | " + " | ".join(others) + " |",
             "|---|---|---|" + "---|" * len(others)]
    for label, members in size_groups([r for r in rows if r["method"] == BASELINE]):
        cells = []
        for method in others:
            mine = {r["profile"]: float(r["accuracy"]) for r in rows if r["method"] == method}
            gains = [mine[p] - base[p] for p in members if p in mine]
            cells.append(f"{statistics.fmean(gains):+.3f} ({sum(g > 0 for g in gains)} / "
                         f"{sum(g == 0 for g in gains)} / {sum(g < 0 for g in gains)})" if gains else "—")
        lines.append(f"| {label} | {len(members)} | {statistics.fmean(base[p] for p in members):.3f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def lamp_scores(predictions: list[dict], methods: list[str]) -> str:
    """LaMP's own figures over all questions, per method: accuracy and macro-F1, and for ratings MAE and
    RMSE, as its evaluator computes them (one answer per question)."""
    answers: dict[tuple[str, str], tuple[str, str]] = {}
    for row in predictions:  # a group retrained after a kill answers again: the last answer counts
        if row["gold"]:
            answers[row["method"], row["question"]] = (row["predicted"], row["gold"])
    if not answers:
        return ""
    golds = {gold for _, gold in answers.values()}
    rating = golds <= {"1", "2", "3", "4", "5"}
    lines = ["| method | questions | accuracy | macro-F1 |" + (" MAE | RMSE |" if rating else ""),
             "|---|---|---|---|" + ("---|---|" if rating else "")]
    for method in methods:
        pairs = [pair for (m, _), pair in answers.items() if m == method]
        if not pairs:
            continue
        truth, predicted = [g for _, g in pairs], [p for p, _ in pairs]
        line = f"| {method} | {len(pairs)} | {accuracy(truth, predicted):.3f} | {macro_f1(truth, predicted):.3f} |"
        if rating:
            errors = [abs(int(p) - int(g)) for p, g in pairs]
            line += f" {statistics.fmean(errors):.3f} | {statistics.fmean(e * e for e in errors) ** 0.5:.3f} |"
        lines.append(line)
    return "\n".join(lines)


def mean_over_runs(runs: list[list[dict]]) -> list[dict]:
    """One row per (profile, method) present in every run: accuracy, macro-F1 and seconds averaged
    over the runs (several seeds of the same evaluation); the other columns from the first run."""
    keyed = [{(r["profile"], r["method"]): r for r in rows} for rows in runs]
    common = set.intersection(*(set(k) for k in keyed)) if keyed else set()
    rows = []
    for key in sorted(common, key=lambda k: (k[1], k[0])):
        first = dict(keyed[0][key])
        for column in ("accuracy", "macro_f1", "train_seconds"):
            first[column] = statistics.fmean(float(run[key][column]) for run in keyed)
        rows.append(first)
    return rows


def markdown(summary: list[dict], folder: Path, rows: list[dict] | None = None, plan_folder: Path | None = None) -> str:
    lines = ["| method | profiles | accuracy (95 % CI) | macro-F1 (95 % CI) | train s / profile | "
             "trainable params | stored bytes / profile |", "|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['method']} | {s['profiles']} | {s['accuracy']:.3f} ({s['accuracy_low']:.3f}–"
                     f"{s['accuracy_high']:.3f}) | {s['macro_f1']:.3f} ({s['macro_f1_low']:.3f}–"
                     f"{s['macro_f1_high']:.3f}) | {s['train_seconds']:.1f} | {s['trainable_params']:,} | "
                     f"{s['stored_bytes']:,} |")
    if "wins" in summary[0]:
        lines += ["", f"Paired with {BASELINE} on the same profiles and holdouts (accuracy difference per profile):",
                  "", f"| method | accuracy − {BASELINE} (95 % CI) | wins / ties / losses |", "|---|---|---|"]
        lines += [f"| {s['method']} | {s['accuracy_vs_head_only']:+.3f} ({s['accuracy_vs_head_only_low']:+.3f}–"
                  f"{s['accuracy_vs_head_only_high']:+.3f}) | {s['wins']} / {s['ties']} / {s['losses']} |"
                  for s in summary if s["method"] != BASELINE]
    table = by_size(rows or [], [s["method"] for s in summary])
    if table:
        lines += ["", f"By author size (accuracy − {BASELINE}, mean; wins / ties / losses):", "", table]
    lamp = lamp_scores(read_predictions((plan_folder or folder) / "predictions.csv"), [s["method"] for s in summary])
    if lamp:
        lines += ["", "LaMP's figures over all questions (each profile answers its own):", "", lamp]
    notes = []
    plan = (plan_folder or folder) / "plan.json"
    if plan.is_file():
        data = json.loads(plan.read_text())
        notes.append(f"Profiles: {len(data['profiles'])} authors; skipped (one category only): "
                     f"{'; '.join(data['skipped']) or 'none'}.")
    for warm in sorted(folder.glob("pools/pool-*.json")):
        data = json.loads(warm.read_text())
        fold, *derived = warm.stem.split("-")[1:]  # pool-N, or pool-N-KIND-kK[-ln] (FIT_KINDS)
        if derived:
            kind, form = derived[0], f"k={derived[1].removeprefix('k')}{', LayerNorm' if len(derived) > 2 else ''}"
            what = (f"Warm pool {fold} tuned as masked profiles use it ({form})" if kind == "tuned" else
                    f"Head of warm pool {fold} refit on rows through the {kind.removesuffix('_fit')} adapters ({form})")
            notes.append(f"{what} in {data['seconds']} s.")
            continue
        notes.append(f"Warm pool {fold}: N={data['num_adapters']} adapters, one per author, "
                     f"built in {data['build_seconds']} s from: {'; '.join(data['built_from'])}.")
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + ("\n" if notes else "")


def plot(summary: list[dict], rows: list[dict], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = [s["method"] for s in summary]
    x = np.arange(len(names))
    width = max(7.5, 1.1 * len(names))  # of the per-method bar charts
    paths = []

    fig, ax = plt.subplots(figsize=(width, 4))
    for offset, metric, label in ((-0.2, "accuracy", "accuracy"), (0.2, "macro_f1", "macro-F1")):
        means = [s[metric] for s in summary]
        errors = [[s[metric] - s[f"{metric}_low"] for s in summary], [s[f"{metric}_high"] - s[metric] for s in summary]]
        ax.bar(x + offset, means, 0.4, yerr=errors, capsize=3, label=label)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("mean over profiles (95 % CI)")
    ax.set_title(f"Holdout accuracy and macro-F1 per method ({summary[0]['profiles']} profiles)")
    ax.legend()
    paths.append(_save(fig, folder / "accuracy_f1.png"))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in summary:
        xs = [int(r["stored_bytes"]) for r in rows if r["method"] == s["method"]]
        ys = [float(r["accuracy"]) for r in rows if r["method"] == s["method"]]
        points = ax.scatter(xs, ys, s=8, alpha=0.25)
        ax.scatter([s["stored_bytes"]], [s["accuracy"]], s=70, color=points.get_facecolor()[0][:3],
                   edgecolor="black", label=s["method"])
    ax.set_xscale("log")
    ax.set_xlabel("stored bytes per profile (log scale)")
    ax.set_ylabel("holdout accuracy")
    ax.set_title("What a profile costs to store against what it scores (large dot: mean)")
    ax.legend(fontsize=7)
    paths.append(_save(fig, folder / "bytes_vs_accuracy.png"))

    fig, ax = plt.subplots(figsize=(width, 4))
    ax.bar(x, [s["train_seconds"] for s in summary])
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("seconds per profile")
    ax.set_title("Training time per profile (profiles trained together; each pays its share)")
    paths.append(_save(fig, folder / "train_time.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def write_report(folder: str | Path, methods: list[str], runs: list[Path] | None = None) -> list[dict]:
    """summary.csv, summary.md and the plots of the results found in `folder`, or of the mean over the
    `runs` folders (one per seed) of each profile's results, written to `folder`."""
    folder = Path(folder)
    rows = mean_over_runs([read_results(Path(r) / "results.csv") for r in runs]) if runs \
        else read_results(folder / "results.csv")
    summary = summarize(rows, methods)
    if not summary:
        return summary
    with (folder / "summary.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_COLUMNS, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in s.items()} for s in summary)
    text = markdown(summary, folder, rows, Path(runs[0]) if runs else None)
    if runs:
        text = (f"Mean over {len(runs)} runs ({', '.join(Path(r).name for r in runs)}): each profile's accuracy "
                "is averaged over the runs before the intervals are drawn over profiles.\n\n" + text)
    (folder / "summary.md").write_text(text, encoding="utf-8")
    plot(summary, rows, folder)
    return summary
