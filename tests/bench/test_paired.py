"""bench.paired: A − B per profile, only over profiles both methods have, per seed and over the seeds."""

import pytest

from bench.paired import main, paired
from profilekit.evaluation.results import append_results


def record(profile: str, method: str, accuracy: float) -> dict:
    return {"profile": profile, "method": method, "accuracy": accuracy, "macro_f1": 0, "train_seconds": 1,
            "trainable_params": 1, "stored_bytes": 1, "n_train": 10, "n_holdout": 4}


def test_pairs_only_profiles_both_methods_have_and_averages_seeds_first(tmp_path, capsys):
    seeds = {0: {"ann": (0.75, 0.5), "bo": (0.5, 0.5), "cy": (0.25, 0.5)},
             1: {"ann": (0.5, 0.5), "bo": (1.0, 0.5), "cy": (0.25, 0.5)}}
    for seed, scores in seeds.items():
        (tmp_path / f"seed-{seed}").mkdir()
        append_results(tmp_path / f"seed-{seed}" / "results.csv",
                       [record(p, m, a) for p, pair in scores.items() for m, a in zip(("A", "B"), pair)] +
                       [record("dee", "A", 1.0)])  # no B: not paired
    figure = paired([record(p, m, a) for p, pair in seeds[0].items() for m, a in zip(("A", "B"), pair)], "A", "B")
    assert figure["profiles"] == 3 and (figure["wins"], figure["ties"], figure["losses"]) == (1, 1, 1)
    assert abs(figure["mean"]) < 1e-12 and figure["low"] <= 0 <= figure["high"]
    assert main([str(tmp_path), "A", "B", "--seeds", "0,1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("seed 1: A − B: +0.083") and "1 / 1 / 1 over 3 profiles" in out[1]
    # ann +0.125, bo +0.25, cy −0.25 averaged over the seeds: mean +0.042, 2 wins, 1 loss
    assert out[2].startswith("mean over seeds 0,1: A − B: +0.042") and "2 / 0 / 1 over 3 profiles" in out[2]
    assert paired([record("ann", "A", 1.0)], "A", "B") is None


def test_a_missing_seed_or_an_unknown_method_is_named(tmp_path, capsys):
    (tmp_path / "seed-0").mkdir()
    append_results(tmp_path / "seed-0" / "results.csv", [record("ann", "A", 1.0), record("ann", "B", 0.5)])
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path), "A", "B", "--seeds", "0,7"])
    assert exit_.value.code == 2 and "seed-7" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path), "A", "Bee", "--seeds", "0"])
    assert "no results for Bee; the folder has A, B" in capsys.readouterr().err


def test_b_from_another_folder_pairs_the_same_method_run_two_ways(tmp_path, capsys):
    for folder, scores in (("k10", {"ann": 0.75, "bo": 0.5}), ("k50", {"ann": 0.5, "bo": 0.5, "cy": 1.0})):
        (tmp_path / folder / "seed-0").mkdir(parents=True)
        append_results(tmp_path / folder / "seed-0" / "results.csv",
                       [record(p, "M", a) for p, a in scores.items()] + [record("ann", "other", 0.0)])
    assert main([str(tmp_path / "k10"), "M", "M", "--b-folder", str(tmp_path / "k50"), "--seeds", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"seed 0: M − M ({tmp_path / 'k50'}): +0.125") and "1 / 1 / 0 over 2 profiles" in out[0]
    with pytest.raises(SystemExit):
        main([str(tmp_path / "k10"), "M", "Q", "--b-folder", str(tmp_path / "k50"), "--seeds", "0"])
    assert f"no results for Q; {tmp_path / 'k50'} has M, other" in capsys.readouterr().err


def test_by_size_splits_the_pair_into_the_summaries_author_sizes(tmp_path, capsys):
    rows = []
    for profile, n, a in (("small", 20, 1.0), ("mid", 60, 0.25), ("big1", 120, 0.75), ("big2", 150, 0.5)):
        rows += [{**record(profile, "A", a), "n_train": n - 6, "n_holdout": 6}, {**record(profile, "B", 0.5),
                                                                                    "n_train": n - 6, "n_holdout": 6}]
    append_results(tmp_path / "results.csv", rows)
    assert main([str(tmp_path), "A", "B", "--by-size"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("A − B: +0.125") and "2 / 1 / 1 over 4 profiles" in out[0]
    assert out[1].startswith("  authors with 20–39 rows: +0.500") and "1 / 0 / 0 over 1 profiles" in out[1]
    assert out[2].startswith("  authors with 40–99 rows: -0.250") and "0 / 0 / 1 over 1 profiles" in out[2]
    assert out[3].startswith("  authors with 100+ rows: +0.125") and "1 / 1 / 0 over 2 profiles" in out[3]
