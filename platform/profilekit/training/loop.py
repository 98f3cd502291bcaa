"""Training: one or many profiles in one run, each row's loss updating only its own profile.

Every profile walks through its own shuffled chunks of `batch_size` rows with its own linear
learning-rate decay; a step packs the current chunk of up to `profiles_per_step` profiles into one
mixed forward. The loss is the sum over profiles of each profile's mean loss, so a profile's
gradient is exactly the one it would get trained alone, and AdamW skips profiles absent from a
step (their gradients stay None). Training profiles together therefore gives the same artifacts
as training them one by one, only faster.
"""

from __future__ import annotations

import copy
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from profilekit.data import ProfileData, Split, profile_seed, split_profile, validate_profile
from profilekit.engine import Engine
from profilekit.errors import TrainingDataError
from profilekit.jobs import TrainConfig
from profilekit.methods.base import ProfileState
from profilekit.pool import SharedHead
from profilekit.training.metrics import accuracy, macro_f1


@dataclass
class Progress:
    epoch: int
    step: int  # global step of the run
    total_steps: int
    loss: float  # mean over the profiles of this step
    profiles: list[str]


@dataclass
class TrainResult:
    key: str
    state: ProfileState
    accuracy: float
    macro_f1: float
    holdout_loss: float
    split: Split  # the profile's rows (indices into its data) used for training and held out
    epochs_run: int
    best_epoch: int
    train_seconds: float
    trainable_params: int

    @property
    def n_train(self) -> int:
        return len(self.split.train)

    @property
    def n_holdout(self) -> int:
        return len(self.split.holdout)


@dataclass
class _Job:
    data: ProfileData
    train: list[int]
    holdout: list[int]
    state: ProfileState
    generator: torch.Generator  # shuffling and training noise of this profile
    group: int  # its optimizer param groups start here
    total_steps: int
    num_groups: int = 2  # how many param groups it owns
    steps: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict | None = None
    bad_epochs: int = 0
    epochs_run: int = 0
    seconds: float = 0.0

    def target(self, row: int) -> int:
        return self.state.labels.index(self.data.labels[row])


class PooledRows:
    """The plain backbone's pooled row of each text, encoded once: profiles whose method never changes
    the backbone (`plain_backbone`, e.g. head_only) then train and score their heads on these rows
    instead of running the encoder at every step and epoch. With `through`, each text is encoded through
    the adapters of the frozen state it maps to instead (a warm pool refits its head on such rows)."""

    def __init__(self, engine: Engine, batch_size: int = 128, through: dict[str, ProfileState] | None = None):
        self.engine, self.batch_size, self.through = engine, batch_size, through
        self.rows: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        """[len(texts), d]"""
        missing = [t for t in dict.fromkeys(texts) if t not in self.rows]
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            tokens = self.engine.backbone.tokenize(chunk)
            states = [self.through[t] for t in chunk] if self.through is not None else [None] * len(chunk)
            pooled = self.engine.forward(tokens["input_ids"], tokens["attention_mask"], states).pooled
            self.rows.update(zip(chunk, pooled, strict=True))
        return torch.stack([self.rows[t] for t in texts])


def logits_of(engine: Engine, states: list[ProfileState], texts: list[str], *, training: bool = False,
              generators: list[torch.Generator] | None = None, pooled: PooledRows | None = None) -> torch.Tensor:
    """[B, C_max] logits of row i by states[i]: one mixed forward, or heads on cached pooled rows."""
    if pooled is not None:
        return engine.score(pooled(texts), states)
    tokens = engine.backbone.tokenize(texts)
    return engine.forward(tokens["input_ids"], tokens["attention_mask"], states, training=training,
                          generators=generators).logits


def profiles_loss(engine: Engine, states: list[ProfileState], texts: list[str], targets: list[int],
                  *, training: bool, generators: list[torch.Generator] | None = None,
                  pooled: PooledRows | None = None) -> torch.Tensor:
    """Σ over profiles of the mean cross-entropy of that profile's rows; states[i] is row i's profile."""
    logits = logits_of(engine, states, texts, training=training, generators=generators, pooled=pooled)
    per_row = F.cross_entropy(logits, torch.tensor(targets, device=logits.device), reduction="none")
    owners: dict[int, list[int]] = {}
    for row, state in enumerate(states):
        owners.setdefault(id(state), []).append(row)
    return sum(per_row[rows].mean() for rows in owners.values())


def lr_factor(step: int, total: int, warmup: int = 0) -> float:
    """The schedule of every training here: linear warm-up over `warmup` steps, then linear decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, 1.0 - (step - warmup) / max(1, total - warmup))


@torch.no_grad()
def evaluate(engine: Engine, states: list[ProfileState], texts: list[str], labels: list[str],
             batch_size: int = 128, pooled: PooledRows | None = None) -> tuple[list[str], list[float]]:
    """Predicted label and cross-entropy per row (inference form: hard masks without noise)."""
    predicted, losses = [], []
    for start in range(0, len(texts), batch_size):
        chunk = slice(start, start + batch_size)
        logits = logits_of(engine, states[chunk], texts[chunk], pooled=pooled)
        targets = [s.labels.index(label) for s, label in zip(states[chunk], labels[chunk], strict=True)]
        losses += F.cross_entropy(logits, torch.tensor(targets, device=logits.device), reduction="none").tolist()
        best = logits.argmax(-1).tolist()
        predicted += [s.labels[i] for s, i in zip(states[chunk], best, strict=True)]
    return predicted, losses


def _holdout(engine: Engine, jobs: list[_Job], batch_size: int,
             pooled: PooledRows | None) -> dict[int, tuple[float, list[str]]]:
    """Mean holdout loss and predictions per job, all profiles' holdout rows in mixed batches."""
    states, texts, labels, owner = [], [], [], []
    for j, job in enumerate(jobs):
        for row in job.holdout:
            states.append(job.state), texts.append(job.data.texts[row])
            labels.append(job.data.labels[row]), owner.append(j)
    predicted, losses = evaluate(engine, states, texts, labels, batch_size, pooled)
    result = {}
    for j in range(len(jobs)):
        rows = [i for i, o in enumerate(owner) if o == j]
        result[j] = (sum(losses[i] for i in rows) / len(rows), [predicted[i] for i in rows])
    return result


def train_profiles(engine: Engine, profiles: list[ProfileData], method: str, *,
                   config: TrainConfig = TrainConfig(), callback: Callable[[Progress], None] | None = None,
                   start_head: SharedHead | None = None, freeze_head: bool = False, head_prior: bool = False,
                   rows: PooledRows | None = None, shared: list[dict] | None = None,
                   **method_overrides) -> list[TrainResult]:
    """Train one artifact per profile. Bad data raises TrainingDataError before any training.
    `start_head`: every profile's own head starts from these weights (the rows of its labels), and
    stays fixed with `freeze_head` (the warm pool trains its adapters against its shared head so);
    with `head_prior` its bias starts at the shared bias plus the log label frequencies and learns
    (a label prior beside the frozen weight). `rows`: the pooled rows that heads of a plain-backbone
    method train on (default: the plain backbone's). `shared`: optimizer groups of parameters that every
    profile's rows train (tune_pool: the pool's adapters and head), at their lr with the run's schedule; they
    keep their last values (early stopping chooses each profile's own epoch only)."""
    label_sets = [validate_profile(p, min_rows=config.min_rows) for p in profiles]
    jobs: list[_Job] = []
    groups = []
    for data, label_set in zip(profiles, label_sets, strict=True):
        seed = profile_seed(config.seed, data.key)
        split = data.split or split_profile(data.labels, holdout_fraction=config.holdout_fraction, seed=seed)
        state = engine.new_state(method, label_set, seed=seed, **method_overrides)
        state.train()
        counts = Counter(data.labels[i] for i in split.train)
        state.prepare(counts, engine.ctx)
        if start_head is not None:
            state.start_head_from(start_head, freeze=freeze_head, label_counts=counts if head_prior else None,
                                  train_bias=head_prior)
        if state.shared_head:
            missing = sorted(set(data.labels) - set(state.labels))
            if missing:
                raise TrainingDataError(f"profile {data.key}: labels {missing} are not scored by the shared head")
        steps_per_epoch = math.ceil(len(split.train) / config.batch_size)
        job = _Job(data, split.train, split.holdout, state, torch.Generator().manual_seed(seed), len(groups),
                   steps_per_epoch * config.epochs)
        jobs.append(job)
        own = state.optimizer_groups()  # e.g. method at lr, head at head_lr; DePT: prompt, low-rank, head
        decay = state.config.weight_decay
        groups += [group | {"base_lr": group["lr"], "weight_decay": decay} for group in own]
        job.num_groups = len(own)
    first_shared = len(groups)
    groups += [group | {"base_lr": group["lr"], "weight_decay": 0.0} for group in shared or []]
    optimizer = torch.optim.AdamW(groups)
    plain = all(j.state.plain_backbone for j in jobs)
    if rows is not None and not plain:
        raise ValueError(f"given pooled rows train only heads; {method} changes the backbone")
    pooled = rows or (PooledRows(engine, config.eval_batch_size) if plain else None)
    per_epoch = [j.total_steps // config.epochs for j in jobs]  # chunks per epoch of each profile
    total_steps = config.epochs * sum(
        math.ceil(sum(n > position for n in per_epoch) / config.profiles_per_step)
        for position in range(max(per_epoch)))  # an upper bound: early stopping may end sooner
    step = 0
    for epoch in range(1, config.epochs + 1):
        active = [j for j in jobs if j.bad_epochs < config.patience]
        if not active:
            break
        chunks = {}
        for job in active:
            order = torch.randperm(len(job.train), generator=job.generator).tolist()
            rows = [job.train[i] for i in order]
            chunks[id(job)] = [rows[i:i + config.batch_size] for i in range(0, len(rows), config.batch_size)]
        for position in range(max(len(c) for c in chunks.values())):
            ready = [j for j in active if position < len(chunks[id(j)])]
            for start in range(0, len(ready), config.profiles_per_step):
                wave = ready[start:start + config.profiles_per_step]
                began = time.perf_counter()
                states, texts, targets = [], [], []
                for job in wave:
                    for row in chunks[id(job)][position]:
                        states.append(job.state), texts.append(job.data.texts[row]), targets.append(job.target(row))
                loss = profiles_loss(engine, states, texts, targets, training=True,
                                     generators=[j.generator for j in wave], pooled=pooled)
                loss.backward()
                for job in wave:
                    factor = lr_factor(job.steps, job.total_steps, int(config.warmup_ratio * job.total_steps))
                    for group in optimizer.param_groups[job.group:job.group + job.num_groups]:
                        group["lr"] = group["base_lr"] * factor
                    job.steps += 1
                for group in optimizer.param_groups[first_shared:]:
                    group["lr"] = group["base_lr"] * lr_factor(step, total_steps)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                spent = (time.perf_counter() - began) / len(wave)
                for job in wave:
                    job.seconds += spent
                step += 1
                if callback is not None:
                    callback(Progress(epoch, step, total_steps, loss.item() / len(wave),
                                      [j.data.key for j in wave]))
        began = time.perf_counter()
        for job in active:
            job.state.eval()
        scores = _holdout(engine, active, config.eval_batch_size, pooled)
        for j, job in enumerate(active):
            job.epochs_run = epoch
            job.seconds += (time.perf_counter() - began) / len(active)
            loss = scores[j][0]
            if loss < job.best_loss - 1e-7:
                job.best_loss, job.best_epoch, job.bad_epochs = loss, epoch, 0
                job.best_state = copy.deepcopy(job.state.state_dict())
            else:
                job.bad_epochs += 1
            job.state.train()
    results = []
    for job in jobs:
        if job.best_state is not None:
            job.state.load_state_dict(job.best_state)
        job.state.eval()
        job.state.requires_grad_(False)
    final = _holdout(engine, jobs, config.eval_batch_size, pooled)
    for j, job in enumerate(jobs):
        loss, predicted = final[j]
        truth = [job.data.labels[r] for r in job.holdout]
        results.append(TrainResult(
            key=job.data.key, state=job.state, accuracy=accuracy(truth, predicted), macro_f1=macro_f1(truth, predicted),
            holdout_loss=loss, split=Split(job.train, job.holdout), epochs_run=job.epochs_run,
            best_epoch=job.best_epoch, train_seconds=job.seconds,
            trainable_params=sum(p.numel() for p in job.state.parameters()),
        ))
    return results
