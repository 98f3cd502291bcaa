"""`profilekit eval` on real news authors with a tiny BERT: the results file a user reads, the
warm-pool protocol, reproducibility, resuming a stopped run, and the summary and plots."""

import csv
import json
import re

import pytest
import torch

from profilekit.evaluation.plan import METHODS as EVAL_METHODS
from profilekit.evaluation.plan import EvalConfig, EvalError
from profilekit.evaluation.report import write_report
from profilekit.evaluation.results import COLUMNS, read_results
from profilekit.evaluation.run import Evaluation
from profilekit.methods import get_method, method_names
from tests.conftest import NEWS, REPO
from tests.workers.conftest import tiny_backbone_dir  # noqa: F401  (fixture)

# Authors with ≥ 160 rows: 10, one of them (164 rows) writes only ENTERTAINMENT.
SMALL = dict(data=str(NEWS), min_rows=160, max_rows=10, pool_size=8, epochs=1, batch_size=4, profiles_per_step=4,
             overrides={"xpeft_hard": {"k": 3}, "xpeft_hard_warm": {"k": 3}})
METHODS = ("head_only", "xpeft_hard", "xpeft_hard_warm", "global")


def run(backbone, out, **changes):
    config = EvalConfig(**(SMALL | {"methods": METHODS} | changes))
    evaluation = Evaluation(config, out, backbone)
    evaluation.run()
    return evaluation


def without_seconds(rows):
    return sorted(tuple(v for k, v in row.items() if k != "train_seconds") for row in rows)


def test_results_have_one_row_per_profile_and_method(tiny_backbone, tmp_path):
    evaluation = run(tiny_backbone, tmp_path)
    with (tmp_path / "results.csv").open() as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        rows = list(reader)
    authors = [p.key for p in evaluation.plan.profiles]
    assert len(authors) == 9 and len(rows) == 9 * len(METHODS)
    assert {(r["profile"], r["method"]) for r in rows} == {(a, m) for a in authors for m in METHODS}
    for row in rows:
        assert 0 <= float(row["accuracy"]) <= 1 and 0 <= float(row["macro_f1"]) <= 1
        assert int(row["n_train"]) + int(row["n_holdout"]) == 10 and int(row["n_holdout"]) >= 1
        assert int(row["trainable_params"]) > 0 and int(row["stored_bytes"]) > 0
    by = {(r["profile"], r["method"]): r for r in rows}
    for author in authors:  # the same holdout rows for every method of an author
        assert len({by[author, m]["n_holdout"] for m in METHODS}) == 1
        # a warm-pool profile stores masks and LayerNorm only: less than one with its own head
        assert int(by[author, "xpeft_hard_warm"]["stored_bytes"]) < int(by[author, "xpeft_hard"]["stored_bytes"])
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert list(plan["skipped"]) == ["Cole Delbyck"]  # one category: nothing to classify

    summary = write_report(tmp_path, list(METHODS))
    for line in summary:
        accs = [float(r["accuracy"]) for r in rows if r["method"] == line["method"]]
        assert line["profiles"] == 9
        assert line["accuracy"] == pytest.approx(sum(accs) / len(accs))
        assert min(accs) <= line["accuracy_low"] <= line["accuracy"] <= line["accuracy_high"] <= max(accs)
        gains = [float(r["accuracy"]) - float(by[r["profile"], "head_only"]["accuracy"]) for r in rows
                 if r["method"] == line["method"]]  # paired with head_only on the same holdouts
        assert line["accuracy_vs_head_only"] == pytest.approx(sum(gains) / len(gains))
        assert (line["wins"], line["losses"]) == (sum(g > 0 for g in gains), sum(g < 0 for g in gains))
    table = (tmp_path / "summary.md").read_text()
    assert all(f"| {m} | 9 |" in table for m in METHODS)
    for name in ("accuracy_f1.png", "bytes_vs_accuracy.png", "train_time.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_fold_is_evaluated_on_a_pool_built_without_its_authors(tiny_backbone, tmp_path):
    evaluation = run(tiny_backbone, tmp_path, methods=("xpeft_hard_warm",), pool_folds=3)
    folds = evaluation.plan.folds
    assert sorted(folds) == sorted(p.key for p in evaluation.plan.profiles) and set(folds.values()) == {0, 1, 2}
    for fold in range(3):
        warm = json.loads((tmp_path / "pools" / f"pool-{fold}.json").read_text())
        assert warm["num_adapters"] == 8 == len(warm["built_from"])
        own = {a for a, f in folds.items() if f == fold}
        assert own and not set(warm["built_from"]) & own  # cross-fitted: never its own authors' rows
        # the largest authors build it: every evaluated author (≥ 160 rows) of the other folds
        assert {a for a, f in folds.items() if f != fold} <= set(warm["built_from"])
    write_report(tmp_path, ["xpeft_hard_warm"])
    assert "Warm pool 2: N=8" in (tmp_path / "summary.md").read_text()


def test_a_pool_from_another_file_serves_every_author(tiny_backbone, tmp_path):
    """--pool-data: the deployment case, a pool from existing users evaluated on new ones."""
    rows = [json.loads(line) for line in NEWS.read_text().splitlines()]
    counts = {}
    for row in rows:
        counts[row["author"]] = counts.get(row["author"], 0) + 1
    existing = [r for r in rows if 60 <= counts[r["author"]] < 160]  # none of them is evaluated
    (tmp_path / "existing.jsonl").write_text("\n".join(json.dumps(r) for r in existing))
    evaluation = run(tiny_backbone, tmp_path / "out", methods=("xpeft_hard_warm",),
                     pool_data=str(tmp_path / "existing.jsonl"))
    assert set(evaluation.plan.folds.values()) == {0} and len(evaluation.plan.profiles) == 9
    warm = json.loads((tmp_path / "out" / "pools" / "pool-0.json").read_text())
    largest = sorted({r["author"] for r in existing}, key=lambda a: (-counts[a], a))
    assert warm["built_from"] == [a for a in largest if len({r["category"] for r in existing
                                                            if r["author"] == a}) > 1][:8]


def test_pool_data_never_builds_the_pool_from_an_evaluated_author(tmp_path):
    """The same file as --data and --pool-data: the evaluated authors' rows would reach the shared head that
    scores their holdouts, so they are left out of the pool, and the plan says which."""
    from profilekit.data import read_rows
    from profilekit.evaluation.plan import make_plan, write_plan

    config = EvalConfig(**(SMALL | {"methods": METHODS, "pool_data": str(NEWS)}))
    plan = make_plan(read_rows(NEWS), config, pool_rows=read_rows(NEWS))
    evaluated = {p.key for p in plan.profiles}
    [builders] = plan.builders
    assert len(evaluated) == 9 and len(builders) == 8 and not evaluated & {b.key for b in builders}
    assert plan.left_out == sorted(evaluated)
    write_plan(plan, tmp_path / "plan.json")
    assert json.loads((tmp_path / "plan.json").read_text())["left_out_of_the_pool"] == sorted(evaluated)


def test_rows_an_evaluation_cannot_train_are_refused_or_skipped_before_it_starts():
    """--min-rows/--max-rows below what a profile trains on are refused up front; an author whose seeded
    --max-rows sample draws one category only is skipped with the reason, not a crash hours into the run."""
    from profilekit.data import Row
    from profilekit.evaluation.plan import make_plan

    for bad in ({"min_rows": 1}, {"max_rows": 2}):
        with pytest.raises(EvalError, match=f"--{next(iter(bad)).replace('_', '-')} must be at least 3"):
            EvalConfig(data=str(NEWS), **bad)
    rows = [Row(f"story {i}", "a", "lopsided") for i in range(200)] + [Row("the one b", "b", "lopsided")]
    rows += [Row(f"news {i}", "ab"[i % 2], "even") for i in range(20)]
    plan = make_plan(rows, EvalConfig(data="rows.jsonl", min_rows=3, max_rows=3))
    assert [p.key for p in plan.profiles] == ["even"]
    assert plan.skipped == {"lopsided": "its 3 sampled rows (--max-rows) are all a"}


def fresh_backbone(tokenizer):
    """The same tiny BERT again (an Engine wraps a backbone once)."""
    from profilekit.backbone.loader import wrap_model
    from tests.conftest import TinyTokenizer, tiny_model

    return wrap_model(tiny_model(), TinyTokenizer(tokenizer), backbone_id="bert:tiny:test", max_length=32)


def test_same_seed_same_results_and_a_stopped_run_resumes(tiny_backbone, tokenizer, tmp_path):
    first = run(tiny_backbone, tmp_path / "a")
    reference = read_results(first.results)

    stopped = {"groups": 0}

    def stop_after_two_groups(method, finished, step):
        if finished:
            stopped["groups"] += 1
            if stopped["groups"] == 2:
                raise KeyboardInterrupt

    config = EvalConfig(**(SMALL | {"methods": METHODS}))
    with pytest.raises(KeyboardInterrupt):
        Evaluation(config, tmp_path / "b", fresh_backbone(tokenizer), progress=stop_after_two_groups).run()
    partial = read_results(tmp_path / "b" / "results.csv")
    assert 0 < len(partial) < len(reference)
    resumed = Evaluation(config, tmp_path / "b", fresh_backbone(tokenizer))
    assert sum(len(todo) for _, todo in resumed.pending()) == len(reference) - len(partial)
    resumed.run()
    assert without_seconds(read_results(tmp_path / "b" / "results.csv")) == without_seconds(reference)
    third = Evaluation(config, tmp_path / "c", fresh_backbone(tokenizer))
    torch.manual_seed(12345)  # whatever ran before in the process, the warm pool comes out the same
    rebuilt = third.warm_pool(0)
    built = [json.loads((tmp_path / run / "pools" / "pool-0.json").read_text())["pool_hash"] for run in ("a", "b")]
    assert built == [rebuilt.pool_hash] * 2


def test_a_line_cut_by_a_kill_is_dropped_and_retrained(tiny_backbone, tokenizer, tmp_path):
    run(tiny_backbone, tmp_path, methods=("head_only",))
    path = tmp_path / "results.csv"
    complete = read_results(path)
    path.write_text(path.read_text()[:-15])  # the last row lost its end, as if killed mid-write
    assert len(read_results(path)) == len(complete) - 1
    run(fresh_backbone(tokenizer), tmp_path, methods=("head_only",))
    assert without_seconds(read_results(path)) == without_seconds(complete)


def test_resuming_with_other_settings_is_refused(tiny_backbone, tokenizer, tmp_path):
    run(tiny_backbone, tmp_path, methods=("head_only",))
    with pytest.raises(EvalError, match="other settings.*epochs"):
        run(fresh_backbone(tokenizer), tmp_path, methods=("head_only",), epochs=2)


def test_a_folder_remembers_every_method_it_was_asked_for(tiny_backbone, tokenizer, tmp_path):
    run(tiny_backbone, tmp_path, methods=("head_only", "global"))
    run(fresh_backbone(tokenizer), tmp_path, methods=("global", "xpeft_hard"))
    assert json.loads((tmp_path / "config.json").read_text())["methods"] == ["head_only", "global", "xpeft_hard"]
    assert {r["method"] for r in read_results(tmp_path / "results.csv")} == {"head_only", "global", "xpeft_hard"}


def test_a_folder_has_one_writer_and_a_later_run_adds_no_row_twice(tiny_backbone, tokenizer, tmp_path):
    """Two `profilekit eval` processes on one folder: while one writes it, the other is refused with the folder's
    name; a run made ready before another finished the same rows trains none of them again."""
    import fcntl

    config = EvalConfig(**(SMALL | {"methods": ("head_only",)}))
    waiting = Evaluation(config, tmp_path, fresh_backbone(tokenizer))
    with open(tmp_path / "eval.lock", "a") as other:  # as another process holds it while it trains
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(EvalError, match=re.escape(f"another `profilekit eval` is writing {tmp_path};")):
            Evaluation(config, tmp_path, tiny_backbone)
        with pytest.raises(EvalError, match="another `profilekit eval`"):
            waiting.run()
    run(tiny_backbone, tmp_path, methods=("head_only",))
    rows = read_results(tmp_path / "results.csv")
    waiting.run()
    assert read_results(tmp_path / "results.csv") == rows
    assert len({(r["profile"], r["method"]) for r in rows}) == len(rows) == len(waiting.plan.profiles)


@pytest.mark.parametrize("name", method_names())
def test_every_registered_method_can_be_evaluated_under_its_own_name(name):
    """A method added to methods/ (one folder, one line) is known to `profilekit eval` without a line here."""
    config = EvalConfig(data=str(NEWS), methods=("head_only", name))
    assert EVAL_METHODS[name].method == name and config.methods == ("head_only", name)
    assert (EVAL_METHODS[name].pool == "random") == get_method(name).uses_pool


def test_bad_method_settings_fail_before_training(tiny_backbone, tmp_path):
    with pytest.raises(EvalError, match="unknown methods"):
        EvalConfig(data=str(NEWS), methods=("xpeft_huge",))
    with pytest.raises(EvalError, match="on the random pool: k=50 exceeds the pool's N=8 .*--set xpeft_hard.k="):
        run(tiny_backbone, tmp_path, overrides={"xpeft_hard": {"k": 50}})
    with pytest.raises(EvalError, match="mask_init='nearest' needs a warm pool"):  # the random pool records no authors
        run(tiny_backbone, tmp_path, overrides={"xpeft_hard": {"k": 3, "mask_init": "nearest"}})
    with pytest.raises(EvalError, match="on the tuned pool: k=999 exceeds the pool.s N="):  # N: its builders, < 1000
        run(tiny_backbone, tmp_path, methods=("xpeft_hard_tuned_delta",), pool_size=1000,
            overrides={"xpeft_hard_tuned_delta": {"k": 999}})
    assert not (tmp_path / "results.csv").exists()


@pytest.mark.parametrize("task", ["LaMP_1", "LaMP_3"])
def test_lamp_users_answer_their_questions_in_lamps_format(tiny_backbone_dir, tmp_path, task):  # noqa: F811
    from profilekit.cli import main

    data = REPO / "tests" / "data" / "lamp" / f"{task}_dev_questions.json"
    code = main(["eval", "--data", str(data), "--out", str(tmp_path), "--min-rows", "4", "--methods",
                 "head_only,xpeft_hard,global", "--set", "xpeft_hard.k=3", "--pool-size", "8", "--epochs", "1",
                 "--batch-size", "4", "--backbone", str(tiny_backbone_dir), "--no-progress",
                 "--lamp-out", str(tmp_path / "lamp.json"), "--lamp-method", "xpeft_hard"])
    assert code == 0
    questions = json.loads(data.read_text())
    rows = read_results(tmp_path / "results.csv")
    assert {(r["profile"], r["method"]) for r in rows} == {
        (f"lamp-{q['id']}", m) for q in questions for m in ("head_only", "xpeft_hard", "global")}
    assert all(r["n_holdout"] == "1" for r in rows)  # each user is scored on its own question
    written = json.loads((tmp_path / "lamp.json").read_text())
    assert written["task"] == task and {g["id"] for g in written["golds"]} == {q["id"] for q in questions}
    allowed = {"[1]", "[2]"} if task == "LaMP_1" else {"1", "2", "3", "4", "5"}
    assert {g["output"] for g in written["golds"]} <= allowed
    golds = {g["id"]: g["output"] for g in json.loads(data.with_name(f"{task}_dev_outputs.json").read_text())["golds"]}
    mine = {r["profile"]: float(r["accuracy"]) for r in rows if r["method"] == "xpeft_hard"}
    assert mine == {f"lamp-{g['id']}": float(g["output"] == golds[g["id"]]) for g in written["golds"]}
    summary = (tmp_path / "summary.md").read_text()
    assert "LaMP's figures over all questions" in summary and ("| MAE | RMSE |" in summary) == (task == "LaMP_3")


def test_lamp_flags_that_cannot_be_honoured_are_refused_before_training(tmp_path, capsys):
    from profilekit.cli import main

    lamp = str(REPO / "tests" / "data" / "lamp" / "LaMP_3_dev_questions.json")
    for data, flags, said in ((str(NEWS), ["--lamp-out", "x.json"], "--lamp-out needs LaMP data"),
                              (lamp, ["--lamp-out", "x.json", "--lamp-method", "xpeft_hard"],
                               "--lamp-method xpeft_hard is not one of --methods (head_only)")):
        assert main(["eval", "--data", data, "--out", str(tmp_path / "out"), "--methods", "head_only",
                     "--min-rows", "3", "--no-progress", *flags]) == 2
        assert said in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_a_run_with_other_settings_is_scored_on_another_folders_pools(tiny_backbone_dir, tmp_path):  # noqa: F811
    """--pools-dir: a sweep (--set) in a folder of its own, on the very pools of an earlier run."""
    from profilekit.cli import main

    common = ["eval", "--data", str(NEWS), "--min-rows", "160", "--max-rows", "10", "--methods", "xpeft_hard_warm",
              "--pool-size", "8", "--pool-folds", "2", "--epochs", "1", "--batch-size", "4",
              "--backbone", str(tiny_backbone_dir), "--no-progress"]
    assert main(common + ["--out", str(tmp_path / "k3"), "--set", "xpeft_hard_warm.k=3"]) == 0
    built = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "k3" / "pools").iterdir()}
    assert main(common + ["--out", str(tmp_path / "k2"), "--set", "xpeft_hard_warm.k=2",
                          "--pools-dir", str(tmp_path / "k3" / "pools")]) == 0
    assert not (tmp_path / "k2" / "pools").exists()  # nothing rebuilt: the same pools, untouched
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "k3" / "pools").iterdir()} == built
    k2, k3 = (read_results(tmp_path / k / "results.csv") for k in ("k2", "k3"))
    assert {r["profile"] for r in k2} == {r["profile"] for r in k3} and len(k2) == 9


def test_masks_start_on_similar_authors_and_prior_trained_pools_keep_their_own_folder(tiny_backbone_dir, tmp_path,  # noqa: F811
                                                                                   capsys):
    """xpeft_hard_warm_near: masks started on the adapters of the pool authors nearest by label counts, also on
    pools saved before pools recorded them; --pool-adapter-prior pools are never mixed with plain ones."""
    from dataclasses import replace

    from profilekit.cli import main
    from profilekit.pool import load_pool, save_pool

    common = ["eval", "--data", str(NEWS), "--min-rows", "160", "--max-rows", "10", "--pool-size", "8",
              "--pool-folds", "2", "--epochs", "1", "--batch-size", "4", "--backbone", str(tiny_backbone_dir),
              "--no-progress"] + [f"--set=xpeft_hard_{m}.k=2" for m in ("warm_delta", "warm_near", "random_near")]
    plain = tmp_path / "plain"
    assert main(common + ["--out", str(plain), "--methods", "xpeft_hard_warm_delta"]) == 0
    for fold in (0, 1):  # as a pool file written before pools recorded their authors' labels
        path = plain / "pools" / f"pool-{fold}.safetensors"
        pool = load_pool(path)
        assert pool.builder_labels.shape == (8, len(pool.head.labels)) and pool.builder_labels.sum() > 0
        save_pool(replace(pool, builder_labels=None), path)
    assert main(common + ["--out", str(plain), "--methods", "xpeft_hard_warm_near,xpeft_hard_random_near"]) == 0
    rows = read_results(plain / "results.csv")
    assert {r["method"] for r in rows} == {"xpeft_hard_warm_delta", "xpeft_hard_warm_near", "xpeft_hard_random_near"}
    assert len(rows) == 27

    capsys.readouterr()
    assert main(common + ["--out", str(tmp_path / "prior"), "--methods", "xpeft_hard_warm_delta", "--pools-dir",
                          str(plain / "pools"), "--pool-adapter-prior"]) == 2
    assert "built with other settings" in capsys.readouterr().err
    assert main(common + ["--out", str(tmp_path / "prior"), "--methods", "xpeft_hard_warm_delta",
                          "--pool-adapter-prior"]) == 0
    assert json.loads((tmp_path / "prior" / "pools" / "config.json").read_text())["pool_adapter_prior"] is True
    prior_pool, plain_pool = (load_pool(f / "pools" / "pool-0.safetensors") for f in (tmp_path / "prior", plain))
    assert torch.equal(prior_pool.head.weight, plain_pool.head.weight)  # the same shared head, other adapters
    assert prior_pool.pool_hash != plain_pool.pool_hash


def test_refit_heads_are_built_once_per_fold_adapters_and_form(tiny_backbone_dir, tmp_path):  # noqa: F811
    """xpeft_hard_{warm,random}_fit[_delta]: the fold's warm head refit on rows through the warm or the random
    adapters as the method composes them (k, LayerNorm); xpeft_hard_tuned_delta: the warm pool tuned as masked
    profiles use it. Each saved beside the pools and reused by later runs."""
    from profilekit.cli import main
    from profilekit.pool import load_pool

    fits = ("warm_fit", "random_fit", "warm_fit_delta", "random_fit_delta", "tuned_delta")
    common = ["eval", "--data", str(NEWS), "--min-rows", "160", "--max-rows", "10", "--pool-size", "8",
              "--pool-folds", "2", "--epochs", "1", "--batch-size", "4", "--backbone", str(tiny_backbone_dir),
              "--no-progress", "--out", str(tmp_path / "fit")] + [f"--set=xpeft_hard_{m}.k=2" for m in fits]
    assert main(common + ["--methods", ",".join(f"xpeft_hard_{m}" for m in fits)]) == 0
    pools = tmp_path / "fit" / "pools"
    refit = sorted(p.name for p in pools.glob("pool-*-*_fit-*.safetensors"))
    assert refit == sorted(f"pool-{fold}-{kind}-k2{ln}.safetensors" for fold in (0, 1)
                           for kind in ("random_fit", "warm_fit") for ln in ("", "-ln"))  # the delta profile: no LN
    warm = load_pool(pools / "pool-0.safetensors")
    warm_fit, random_fit = (load_pool(pools / f"pool-0-{k}-k2-ln.safetensors") for k in ("warm_fit", "random_fit"))
    assert torch.equal(warm_fit.up_w, warm.up_w) and not torch.equal(random_fit.up_w, warm.up_w)
    assert not torch.equal(warm_fit.head.weight, warm.head.weight)
    assert not torch.equal(warm_fit.head.weight, random_fit.head.weight)
    assert sorted(p.name for p in pools.glob("pool-*-tuned-*.safetensors")) == [
        "pool-0-tuned-k2.safetensors", "pool-1-tuned-k2.safetensors"]
    tuned = load_pool(pools / "pool-0-tuned-k2.safetensors")
    assert not torch.equal(tuned.up_w, warm.up_w) and tuned.spec == warm.spec
    assert len(read_results(tmp_path / "fit" / "results.csv")) == 45
    assert "tuned as masked profiles use it (k=2) in" in (tmp_path / "fit" / "summary.md").read_text()

    built = {p.name: p.stat().st_mtime_ns for p in pools.iterdir()}
    assert main(common + ["--seed", "1", "--out", str(tmp_path / "seed-1"), "--pools-dir", str(pools),
                          "--methods", "xpeft_hard_warm_fit"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in pools.iterdir()} == built  # reused, not refit again


def test_pool_shared_down_builds_its_own_pools_whose_adapters_share_one_down_projection(tiny_backbone_dir, tmp_path,  # noqa: F811
                                                                                        capsys):
    from profilekit.cli import main
    from profilekit.pool import load_pool

    common = ["eval", "--data", str(NEWS), "--min-rows", "160", "--max-rows", "10", "--pool-size", "8",
              "--pool-folds", "2", "--epochs", "1", "--batch-size", "4", "--backbone", str(tiny_backbone_dir),
              "--no-progress", "--methods", "xpeft_hard_warm_delta", "--set=xpeft_hard_warm_delta.k=2"]
    assert main(common + ["--out", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    assert main(common + ["--out", str(tmp_path / "shared"), "--pools-dir", str(tmp_path / "plain" / "pools"),
                          "--pool-shared-down"]) == 2
    assert "built with other settings" in capsys.readouterr().err
    assert main(common + ["--out", str(tmp_path / "shared"), "--pool-shared-down"]) == 0
    assert len(read_results(tmp_path / "shared" / "results.csv")) == 9
    for fold in (0, 1):
        shared, plain = (load_pool(tmp_path / f / "pools" / f"pool-{fold}.safetensors") for f in ("shared", "plain"))
        assert all(torch.equal(shared.down_w[:, n], shared.down_w[:, 0]) for n in range(shared.num_adapters))
        assert not torch.equal(plain.down_w[:, 1], plain.down_w[:, 0])
        assert torch.equal(shared.head.weight, plain.head.weight)  # the same shared head, other adapters


def test_runs_sharing_a_pools_folder_build_a_missing_pool_once(tiny_backbone, tokenizer, tmp_path, monkeypatch):
    """Two evaluations (other seeds, other methods) on one --pools-dir that both need a pool not built yet: one
    builds it, the other waits for it and reads it, instead of spending the same minutes to overwrite it."""
    import threading

    config = EvalConfig(**(SMALL | {"methods": ("xpeft_hard_warm",)}))
    runs = [Evaluation(config, tmp_path / name, backbone, pools_dir=tmp_path / "pools")
            for name, backbone in (("a", tiny_backbone), ("b", fresh_backbone(tokenizer)))]
    builds, build = [], Evaluation._build_warm

    def counted(self, *args):
        builds.append(self)
        started.set()
        return build(self, *args)

    started, pools = threading.Event(), {}
    monkeypatch.setattr(Evaluation, "_build_warm", counted)
    first = threading.Thread(target=lambda: pools.setdefault("a", runs[0].warm_pool(0)))
    first.start()
    assert started.wait(60)  # the first is building: the second must wait for it
    pools["b"] = runs[1].warm_pool(0)
    first.join()
    assert builds == [runs[0]]
    assert pools["a"].pool_hash == pools["b"].pool_hash
