"""The store side of `profilekit bench`'s scale run: a fresh database built by the project's migrations,
a pool, and X-PEFT hard-mask profiles registered in bulk with exactly the rows a finished training job
writes (`repo.write_results`: a profile, its artifact, the profile's current_artifact_id).

The profiles are NOT trained (a million trainings do not fit on a CPU): a handful of real states are
saved by the engine, and every profile gets one of their artifacts with its mask bits replaced by a
random valid hard mask (exactly k of N bits set per layer and A/B), which `engine.load` accepts as it
accepts a trained one. Serving costs the same whether the bits were learned or drawn.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import make_url

from profilekit.methods.base import Artifact as StoredArtifact
from profilekit.methods.xpeft.artifact import (
    HEADER_BYTES,
    LAYER_NORM,
    PRIOR,
    SHARED_HEAD,
    decode_header,
    hard_mask_bytes,
)
from profilekit.store import repo
from profilekit.store.models import Artifact, Profile, new_id, now

UNTRAINED = "random hard mask (profilekit bench scale), not trained"


def rss_mb() -> float:
    """Resident set size of this process in MiB (VmRSS of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def warm_like_pool(backbone, *, num_adapters: int, labels: tuple[str, ...], seed: int):
    """A random pool of N adapters with a random shared head over `labels`: what a warm pool looks like
    to serving (profiles with XPeftConfig(head="shared") store no head), without training one."""
    from profilekit.pool import AdapterPool, PoolSpec, SharedHead, random_pool

    pool = random_pool(PoolSpec(backbone.backbone_id, num_adapters, backbone.num_layers, backbone.hidden_size,
                                seed=seed))
    generator = torch.Generator().manual_seed(seed)
    head = SharedHead(torch.randn(len(labels), backbone.hidden_size, generator=generator) * 0.02,
                      torch.zeros(len(labels)), tuple(labels))
    return AdapterPool(replace(pool.spec, source="warm"), pool.down_w, pool.down_b, pool.up_w, pool.up_b,
                       head=head)


def template_artifacts(engine, *, count: int, head: str, labels: tuple[str, ...], k: int,
                       seed: int) -> list[StoredArtifact]:
    """`count` artifacts saved by `engine.save` from xpeft_hard states with random masks and LayerNorms
    (and, with head="profile", random 5-class heads): the extras every registered profile reuses."""
    generator = torch.Generator().manual_seed(seed)
    saved = []
    for i in range(count):
        own = [labels[j] for j in torch.randperm(len(labels), generator=generator)[:5].tolist()]
        state = engine.new_state("xpeft_hard", own, seed=seed + i, k=k, head=head)
        with torch.no_grad():
            for tensor in (state.mask_logits, state.ln_weight, state.ln_bias, state.head_weight):
                if tensor is not None:
                    tensor.add_(torch.randn(tensor.shape, generator=generator).to(tensor) * 0.1)
        saved.append(engine.save(state))
    return saved


def random_hard_masks(count: int, *, layers: int, adapters: int, k: int, generator: torch.Generator) -> np.ndarray:
    """[count, 2·⌈N/8⌉·L] uint8: random hard masks in `encode_hard`'s byte layout (per layer A then B, N
    bits little-endian, zero padding), exactly k bits set per row."""
    scores = torch.rand(count, 2 * layers, adapters, generator=generator)  # [C, 2L, N]
    chosen = scores.topk(k, dim=-1).indices
    width = 8 * math.ceil(adapters / 8)
    bits = torch.zeros(count, 2 * layers, width, dtype=torch.bool).scatter_(-1, chosen, True)
    return np.packbits(bits.numpy(), axis=-1, bitorder="little").reshape(count, -1)


@dataclass
class Registration:
    """What registering profiles reached: ids in order, and per chunk (profiles, seconds)."""

    ids: list[str] = field(default_factory=list)
    chunks: list[tuple[int, float]] = field(default_factory=list)
    stopped_by: str = "target"
    stored_bytes: int = 0  # payload + extras of one profile's artifact
    row_bytes: int = 0  # the artifact column's bytes (Artifact.to_bytes)
    seconds: float = 0.0


def register_profiles(db, *, pool_hash: str, templates: list[StoredArtifact], target: int, chunk: int,
                      max_seconds: float, max_rss_mb: float, min_free_disk_mb: float, disk_path: Path | None,
                      seed: int, tenant: str = "scale", on_chunk=None) -> Registration:
    """Insert hard-mask profiles in transactions of `chunk` until `target`, the time budget, the RSS
    limit or the free-disk floor. Each chunk: INSERT profiles, INSERT artifacts, UPDATE the profiles'
    current_artifact_id (the order write_results flushes them in; the foreign keys are checked).
    Unlike a training job's rows, job_id is None and metrics are empty: nothing was trained.
    `on_chunk(result)` is called after each chunk (progress)."""
    template = templates[0]
    header = template.payload[:HEADER_BYTES]
    _, _, _, adapters, k, layers, _ = decode_header(template.payload)
    tail_at = HEADER_BYTES + hard_mask_bytes(adapters, layers)  # labels, prior, LayerNorm: the template's
    hyperparameters = {"method": _config_of(template), "untrained": UNTRAINED}
    profiles, artifacts = Profile.__table__, Artifact.__table__
    make_current = (update(profiles).where(profiles.c.id == bindparam("b_profile"))
                    .values(current_artifact_id=bindparam("b_artifact"), updated_at=bindparam("b_at")))
    generator = torch.Generator().manual_seed(seed)
    result = Registration(stored_bytes=template.stored_bytes)
    began = time.perf_counter()
    while len(result.ids) < target:
        start = time.perf_counter()
        n = min(chunk, target - len(result.ids))
        masks = random_hard_masks(n, layers=layers, adapters=adapters, k=k, generator=generator)
        moment = now()
        profile_rows, artifact_rows, current_rows = [], [], []
        for i in range(n):
            profile_id, artifact_id = new_id(), new_id()
            template = templates[(len(result.ids) + i) % len(templates)]
            extras = template.extras
            payload = header + masks[i].tobytes() + template.payload[tail_at:]
            blob = StoredArtifact("xpeft_hard", payload, extras).to_bytes()
            profile_rows.append({"id": profile_id, "tenant": tenant, "external_id": f"scale-{len(result.ids) + i}",
                                 "labels": None, "current_artifact_id": None, "created_at": moment,
                                 "updated_at": moment})
            artifact_rows.append({"id": artifact_id, "profile_id": profile_id, "job_id": None, "method": "xpeft_hard",
                                  "pool_hash": pool_hash, "payload": blob, "payload_bytes": len(payload),
                                  "stored_bytes": len(payload) + len(extras), "hyperparameters": hyperparameters,
                                  "metrics": {}, "created_at": moment})
            current_rows.append({"b_profile": profile_id, "b_artifact": artifact_id, "b_at": moment})
        with db.begin() as connection:
            connection.execute(insert(profiles), profile_rows)
            connection.execute(insert(artifacts), artifact_rows)
            connection.execute(make_current, current_rows)
        result.ids += [row["id"] for row in profile_rows]
        result.row_bytes = len(artifact_rows[-1]["payload"])
        result.chunks.append((n, time.perf_counter() - start))
        if on_chunk is not None:
            on_chunk(result)
        if len(result.ids) >= target:
            break
        if time.perf_counter() - began > max_seconds:
            result.stopped_by = "time budget"
            break
        if rss_mb() > max_rss_mb:
            result.stopped_by = "memory limit"
            break
        if disk_path is not None and shutil.disk_usage(disk_path).free / 2**20 < min_free_disk_mb:
            result.stopped_by = "free disk floor"
            break
    result.seconds = time.perf_counter() - began
    return result


def _config_of(artifact: StoredArtifact) -> dict:
    """The serving config a version-2 payload's header carries."""
    _, _, _, _, k, _, flags = decode_header(artifact.payload)
    return {"mask": "hard", "k": k, "layer_norm": bool(flags & LAYER_NORM),
            "head": "shared" if flags & SHARED_HEAD else "profile", "prior": bool(flags & PRIOR)}


def count_registered(db, *, tenant: str = "scale") -> int:
    """Profiles of the tenant that have a current artifact, counted in the database."""
    with db.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Profile)
                                 .where(Profile.tenant == tenant, Profile.current_artifact_id.is_not(None)))


def database_folder(url: str) -> Path | None:
    """The folder of an SQLite database file (whose disk the registration watches); None for servers."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database).resolve().parent
    return None


def database_mb(db) -> float | None:
    """Size of the database on disk in MiB: SQLite's file with its WAL, PostgreSQL's pg_database_size;
    None for other backends."""
    url = make_url(str(db.url))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 2**20
    if url.get_backend_name() == "postgresql":
        with db.connect() as connection:
            return connection.scalar(select(func.pg_database_size(func.current_database()))) / 2**20
    return None


def register_pool(sessions, pool, engines) -> str:
    """Store a pool with a shared head in the pool store (serving loads it from there) or register a random
    one by its spec, as the worker does; returns its hash."""
    with sessions() as session:
        if pool.head is not None:
            stored = engines.store_pool(pool)
            repo.ensure_pool(session, pool=pool, uri=stored.uri, blob_sha256=stored.sha256)
        else:
            repo.ensure_pool(session, pool=pool)
        session.commit()
    return pool.pool_hash
