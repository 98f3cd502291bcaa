"""`profilekit eval`: train every (profile, method) of a plan and append one row per pair to
results.csv as soon as its group of profiles finishes, so a killed run continues where it stopped.

Profiles of a method train `profiles_per_step` at a time in mixed batches; training together gives
the same artifacts as training alone (tests/engine), so resuming in other groups changes nothing.
Seeds come from (seed, author): the same command gives the same accuracies (not the same seconds).
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

from profilekit.data import ProfileData, Split, read_lamp, read_rows
from profilekit.engine import Engine
from profilekit.evaluation.plan import METHODS, MIN_PROFILE_ROWS, EvalConfig, EvalError, Plan, make_plan, write_plan
from profilekit.evaluation.results import append_predictions, append_results, read_results
from profilekit.jobs import TrainConfig
from profilekit.methods import get_method
from profilekit.pool import AdapterPool, PoolSpec, load_pool, random_pool, save_pool
from profilekit.training import Progress, accuracy, build_warm_pool, evaluate, macro_f1, train_profiles
from profilekit.training.warm import builder_labels, refit_head, tune_pool, warm_members


def _check_resume(out: Path, config: EvalConfig) -> None:
    """Refuse a folder run with other settings; record the settings and every method the folder has
    been asked for (a command that adds one method keeps the others' names)."""
    saved = out / "config.json"
    methods = list(config.methods)
    if saved.is_file() and read_results(out / "results.csv"):  # without results there is nothing to keep
        before = json.loads(saved.read_text())
        now = json.loads(json.dumps(config.fingerprint()))
        changed = sorted(k for k in now if before.get(k) != now[k])
        if changed:
            raise EvalError(f"{out} holds a run with other settings ({', '.join(changed)}); "
                            "use another --out or the same settings to resume it")
        known = before.get("methods", [])
        methods = known + [m for m in methods if m not in known]
    saved.write_text(json.dumps(config.fingerprint() | {"methods": methods}, indent=1))


def _save(pool: AdapterPool, path: Path) -> None:
    """save_pool through a partial file: a run killed while saving leaves no torn pool for the next to read."""
    partial = path.with_name(path.name + ".partial")
    save_pool(pool, partial)
    partial.replace(path)


@contextmanager
def _locked(path: Path, *, wait: bool = True) -> Iterator[None]:
    """Held while `path` is checked or built: evaluations sharing a pools folder (other seeds, other methods)
    that need the same missing pool build it once, the later ones waiting and then reading it. Without `wait`,
    BlockingIOError when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:  # "a": waiting changes no file's time
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _writer(out: Path) -> Iterator[None]:
    """Held by the one evaluation writing a folder (its results, config and plan; `eval.lock`). A second process
    asked to write the same folder is refused at once rather than retraining what the first is training and
    appending the same rows twice; seeds each have their own folder (--seeds), so they run side by side."""
    held = ExitStack()
    try:
        held.enter_context(_locked(out / "eval", wait=False))
    except BlockingIOError:
        raise EvalError(f"another `profilekit eval` is writing {out}; wait for it, or run other seeds or "
                        "methods into another --out (--pools-dir shares its pools)") from None
    with held:
        yield


# Pools derived from the fold's warm pool for a method's (k, layer_norm): the warm head refit on rows through the
# warm or the random adapters (refit_head), or the warm adapters and head trained on as masked profiles use them
# (tune_pool).
FIT_KINDS = ("warm_fit", "random_fit", "tuned")
WARM_KINDS = ("warm", "random_head", *FIT_KINDS)  # pools that depend on the profile's fold
WARM_ADAPTERS = ("warm", "warm_fit", "tuned")  # kinds whose adapters are the fold's warm ones (N: its builders)


class Evaluation:
    """One evaluation folder: its plan, pools, and the rows already written. Warm pools live in
    `pools_dir` (default: the folder's pools/), so runs with other seeds can share them."""

    def __init__(self, config: EvalConfig, out: str | Path, backbone,
                 progress: Callable[[str, int, Progress | None], None] | None = None,
                 pools_dir: str | Path | None = None):
        self.config, self.out, self.backbone = config, Path(out), backbone
        self.results = self.out / "results.csv"
        pool_rows = read_rows(config.pool_data) if config.pool_data else None
        self.lamp = read_lamp(config.data, seed=config.seed) if config.data.endswith("_questions.json") else None
        rows = self.lamp.rows if self.lamp is not None else read_rows(config.data)
        self.plan: Plan = make_plan(rows, config, pool_rows)
        self.questions = {}  # LaMP: each profile is scored on its questions, not on a holdout of its rows
        for question in self.lamp.questions if self.lamp is not None else []:
            self.questions.setdefault(question.user, []).append(question)
        with _writer(self.out):
            _check_resume(self.out, config)
            write_plan(self.plan, self.out / "plan.json")
            self.done = {(r["profile"], r["method"]) for r in read_results(self.results)}
        self.pools_dir = Path(pools_dir) if pools_dir is not None else self.out / "pools"
        self.progress = progress or (lambda method, finished, step: None)
        spec = PoolSpec(backbone.backbone_id, config.pool_size, backbone.num_layers, backbone.hidden_size,
                        seed=config.seed)
        self.engine = Engine.of(backbone)  # several runs (seeds) in one process share the backbone
        self.engine.use_pool(random_pool(spec))
        self.random_pool = self.engine.pool
        self.pools: dict[tuple[str, int], object] = {}
        self.train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                                        profiles_per_step=config.profiles_per_step, seed=config.seed,
                                        min_rows=MIN_PROFILE_ROWS)  # the plan chose the profiles (--min-rows)
        self._check_methods()

    def _check_methods(self) -> None:
        """Refuse bad overrides before any training rather than after hours of it."""
        for name in self.config.methods:
            method = METHODS[name]
            try:
                self._method_config(name)
            except (TypeError, ValueError) as exc:
                hint = f"; lower it with --set {name}.k=…" if "exceeds the pool" in str(exc) else ""
                raise EvalError(f"method {name} on the {method.pool} pool: {exc}{hint}") from exc

    def pending(self) -> list[tuple[str, list[ProfileData]]]:
        return [(m, [p for p in self.plan.profiles if (p.key, m) not in self.done]) for m in self.config.methods]

    def run(self) -> None:
        with _writer(self.out):
            self.done = {(r["profile"], r["method"]) for r in read_results(self.results)}  # another run may have added
            self._run_pending()

    def _run_pending(self) -> None:
        for name, todo in self.pending():
            if not todo:
                continue
            if name == "global":
                self._run_global()
                continue
            kind = METHODS[name].pool
            by_pool: dict[int, list[ProfileData]] = {}
            for profile in todo:  # warm kinds: each profile on its own fold's pool
                by_pool.setdefault(self.plan.folds[profile.key] if kind in WARM_KINDS else 0, []).append(profile)
            form = self._form(name) if kind in FIT_KINDS else (0, False)
            for fold, mine in sorted(by_pool.items()):
                self.engine.use_pool(self.pool(kind, fold, form))
                size = self.config.profiles_per_step
                for start in range(0, len(mine), size):
                    self._run_group(name, mine[start:start + size])

    def _method_config(self, name: str):
        """The config a method trains with: its preset and --set overrides, resolved for its pool (k, a shared
        head, nearest masks) where the method resolves one. Raises on bad fields."""
        method = METHODS[name]
        made = get_method(method.method or "head_only").make_config(
            **method.preset | self.config.overrides.get(name, {}))
        if not hasattr(made, "resolved"):
            return made
        n = min(map(len, self.plan.builders)) if method.pool in WARM_ADAPTERS else self.config.pool_size
        return made.resolved(pool_has_head=method.pool in WARM_KINDS, num_adapters=n)

    def _form(self, name: str) -> tuple[int, bool]:
        """(k, layer_norm) of an X-PEFT method on a warm pool: how it composes the adapters."""
        made = self._method_config(name)
        return getattr(made, "k", 0), bool(getattr(made, "layer_norm", False))

    def pool(self, kind: str | None, fold: int, form: tuple[int, bool] = (0, False)):
        """The pool a method of this kind trains its fold's profiles on: the random pool, the fold's
        warm pool, or random adapters with the fold's warm head; FIT_KINDS derive one from these for a method
        that composes adapters as `form` (k, layer_norm) says, and save it in pools_dir."""
        if kind not in WARM_KINDS:
            return self.random_pool
        key = (kind, fold, form) if kind in FIT_KINDS else (kind, fold)
        if key not in self.pools:
            self.pools[key] = self._derived(kind, fold, form) if kind in FIT_KINDS else self._base(kind, fold)
        return self.pools[key]

    def _base(self, kind: str, fold: int) -> AdapterPool:
        """The fold's warm pool, or (random kinds) the random adapters with its head."""
        warm = self.warm_pool(fold)
        if kind in WARM_ADAPTERS:
            return warm
        adapters = self.random_pool
        return AdapterPool(adapters.spec, adapters.down_w, adapters.down_b, adapters.up_w, adapters.up_b,
                           head=warm.head, builder_labels=warm.builder_labels)

    def _derived(self, kind: str, fold: int, form: tuple[int, bool]) -> AdapterPool:
        """The base pool with its head refit (warm_fit, random_fit) or tuned (tuned); built once, then read back."""
        k, layer_norm = form
        layer_norm = layer_norm and kind != "tuned"  # tune_pool trains the byte-sized profile's form: no LayerNorm
        path = self.pools_dir / f"pool-{fold}-{kind}-k{k}{'-ln' if layer_norm else ''}.safetensors"
        with _locked(path):  # the base's own lock is taken inside this one, never the other way round
            if path.is_file():
                return load_pool(path).to(self.engine.ctx.device, self.engine.ctx.dtype)
            return self._build_derived(kind, fold, self._base(kind, fold), k, layer_norm, path)

    def _build_derived(self, kind: str, fold: int, pool: AdapterPool, k: int, layer_norm: bool, path: Path):
        config = replace(self.train_config, min_rows=3, seed=self.config.pool_seed)
        began = time.perf_counter()

        def progress(step: Progress) -> None:
            self.progress(f"{kind} pool {fold}", 0, step)

        if kind == "tuned":
            pool = tune_pool(self.engine, pool, self.plan.builders[fold], k=k, callback=progress,
                             config=replace(config, epochs=3, batch_size=4))  # 64 rows a step: many steps
        else:
            pool = refit_head(self.engine, pool, self.plan.builders[fold], k=k, layer_norm=layer_norm,
                              config=config, callback=progress)
        _save(pool, path)
        path.with_suffix(".json").write_text(json.dumps({
            "pool_hash": pool.pool_hash, "seconds": round(time.perf_counter() - began, 1)}, indent=1))
        return pool

    def warm_pool(self, fold: int = 0):
        """Built once from the fold's builders, saved in pools_dir, and reused when resuming and by runs
        of other seeds with the same pool settings."""
        self.pools_dir.mkdir(parents=True, exist_ok=True)
        settings = self.pools_dir / "config.json"
        wanted = json.loads(json.dumps(self.config.pool_fingerprint()))
        with _locked(settings):
            if not settings.is_file():
                settings.write_text(json.dumps(wanted, indent=1))
            elif json.loads(settings.read_text()) != wanted:
                raise EvalError(f"{self.pools_dir} holds warm pools built with other settings; "
                                "use another --out or --pools-dir")
        path = self.pools_dir / f"pool-{fold}.safetensors"
        builders = self.plan.builders[fold]
        config = replace(self.train_config, min_rows=3, seed=self.config.pool_seed)
        with _locked(path):
            if path.is_file():
                pool = load_pool(path).to(self.engine.ctx.device, self.engine.ctx.dtype)
                if pool.builder_labels is None:  # saved before pools recorded them: the same counts, from the plan
                    pool.builder_labels = builder_labels(warm_members(builders, self.plan.labels, config),
                                                         self.plan.labels)
                return pool
            return self._build_warm(fold, builders, config, path)

    def _build_warm(self, fold: int, builders: list[ProfileData], config: TrainConfig, path: Path) -> AdapterPool:
        if len(builders) < 2:
            raise EvalError(f"warm pool {fold} needs at least two authors with {self.config.warm_min_rows}+ rows "
                            f"in two categories besides the ones it is evaluated on; found {len(builders)}")
        began = time.perf_counter()
        pool = build_warm_pool(self.engine, builders, config=config, labels=self.plan.labels,
                               adapter_prior=self.config.pool_adapter_prior, shared_down=self.config.pool_shared_down,
                               callback=lambda step: self.progress(f"warm pool {fold}", 0, step))
        _save(pool, path)
        (self.pools_dir / f"pool-{fold}.json").write_text(json.dumps({
            "pool_hash": pool.pool_hash, "num_adapters": pool.num_adapters,
            "build_seconds": round(time.perf_counter() - began, 1),
            "built_from": [b.key for b in builders]}, indent=1))
        return pool

    def _run_group(self, name: str, profiles: list[ProfileData]) -> None:
        method = METHODS[name]
        overrides = method.preset | self.config.overrides.get(name, {})
        results = train_profiles(self.engine, profiles, method.method, config=self.train_config,
                                 callback=lambda step: self.progress(name, 0, step), **overrides)
        saved = {r.key: self.engine.save(r.state) for r in results}
        states = {r.key: self._as_stored(r, saved[r.key], profiles) for r in results}
        scores = self._ask(name, list(states.items())) if self.lamp is not None else {}
        records = [{
            "profile": r.key, "method": name, "train_seconds": f"{r.train_seconds:.3f}",
            "trainable_params": r.trainable_params, "stored_bytes": saved[r.key].stored_bytes,
            "n_train": r.n_train, **(scores.get(r.key) or {"accuracy": f"{r.accuracy:.6f}",
                                                           "macro_f1": f"{r.macro_f1:.6f}", "n_holdout": r.n_holdout}),
        } for r in results]
        append_results(self.results, records)
        self.done |= {(r.key, name) for r in results}
        self.progress(name, len(results), None)

    def _as_stored(self, result, artifact, profiles: list[ProfileData]):
        """The state a profile is scored with: one stored in fewer bits (stored_dtype float16 or int8) as its
        artifact loads back, its holdout accuracy and macro-F1 rescored with it (in place), so they describe
        the stored bytes; any other profile as trained."""
        if getattr(result.state.config, "stored_dtype", "float32") == "float32":
            return result.state
        state = self.engine.load(artifact)
        data = next(p for p in profiles if p.key == result.key)
        truth = [data.labels[i] for i in result.split.holdout]
        predicted, _ = evaluate(self.engine, [state] * len(truth), [data.texts[i] for i in result.split.holdout],
                                truth, self.train_config.eval_batch_size)
        result.accuracy, result.macro_f1 = accuracy(truth, predicted), macro_f1(truth, predicted)
        return state

    def _ask(self, name: str, states: list[tuple[str, object]]) -> dict[str, dict]:
        """LaMP: each profile answers its questions; accuracy over them per profile, and every answer
        appended to predictions.csv (the dataset-level macro-F1, MAE and RMSE, and --lamp-out, read it)."""
        asked = [(key, state, q) for key, state in states for q in self.questions.get(key, [])]
        texts = [text for _, _, q in asked for text in self.lamp.texts_of(q)]
        owners = [state for _, state, q in asked for _ in self.lamp.texts_of(q)]
        scored = []
        for start in range(0, len(texts), self.train_config.eval_batch_size):
            chunk = slice(start, start + self.train_config.eval_batch_size)
            scored += [p.scores for p in self.engine.predict(texts[chunk], owners[chunk])]
        answers, at = [], 0
        for key, _, question in asked:
            count = len(self.lamp.texts_of(question))
            answers.append((key, question, self.lamp.answer(question, scored[at:at + count])))
            at += count
        append_predictions(self.out / "predictions.csv", [
            {"profile": key, "method": name, "question": q.id, "predicted": answer, "gold": q.gold or ""}
            for key, q, answer in answers])
        out = {}
        for key, _ in states:
            mine = [(answer, q.gold) for k, q, answer in answers if k == key and q.gold is not None]
            hits = [a == g for a, g in mine]
            accuracy_value = sum(hits) / len(hits) if hits else 0.0
            out[key] = {"accuracy": f"{accuracy_value:.6f}", "macro_f1": f"{accuracy_value:.6f}",
                        "n_holdout": len(mine)}
        return out

    def _run_global(self) -> None:
        """head_only on the union of all profiles' training rows (best epoch by the union of their
        holdouts, as each personal model is chosen by its own), scored on each profile's holdout.
        Its seconds and stored bytes are shared by all profiles: each row carries its share."""
        self.engine.use_pool(self.random_pool)
        texts, labels, train, holdout = [], [], [], []
        for p in self.plan.profiles:
            offset = len(texts)
            texts += p.texts
            labels += p.labels
            train += [offset + i for i in p.split.train]
            holdout += [offset + i for i in p.split.holdout]
        merged = ProfileData("global", texts, labels, label_set=self.plan.labels, split=Split(train, holdout))
        config = replace(self.train_config, profiles_per_step=1)
        [result] = train_profiles(self.engine, [merged], "head_only", config=config,
                                  callback=lambda step: self.progress("global", 0, step),
                                  **self.config.overrides.get("global", {}))
        n = len(self.plan.profiles)
        stored = self.engine.save(result.state).stored_bytes
        todo = [p for p in self.plan.profiles if (p.key, "global") not in self.done]
        if self.lamp is not None:
            scores = self._ask("global", [(p.key, result.state) for p in todo])
            append_results(self.results, [{
                "profile": p.key, "method": "global", **scores[p.key],
                "train_seconds": f"{result.train_seconds / n:.3f}",
                "trainable_params": result.trainable_params, "stored_bytes": round(stored / n),
                "n_train": len(p.split.train)} for p in todo])
            self.done |= {(p.key, "global") for p in self.plan.profiles}
            self.progress("global", n, None)
            return
        records = []
        for p in todo:
            truth = [p.labels[i] for i in p.split.holdout]
            predicted, _ = evaluate(self.engine, [result.state] * len(truth), [p.texts[i] for i in p.split.holdout],
                                    truth)
            records.append({
                "profile": p.key, "method": "global", "accuracy": f"{accuracy(truth, predicted):.6f}",
                "macro_f1": f"{macro_f1(truth, predicted):.6f}", "train_seconds": f"{result.train_seconds / n:.3f}",
                "trainable_params": result.trainable_params, "stored_bytes": round(stored / n),
                "n_train": len(p.split.train), "n_holdout": len(truth)})
        append_results(self.results, records)
        self.done |= {(p.key, "global") for p in self.plan.profiles}
        self.progress("global", n, None)
