"""The per-process engine: one backbone loaded once, and the pools of stored rows, each built or
loaded once. Workers train on it (`training_engine`), API processes serve from it (`serving_engine`).
Trained pools are stored in and read from the pool store (`store/blobs.py`), never a machine's own disk."""

from __future__ import annotations

import threading

from profilekit.errors import PoolError
from profilekit.settings import Settings
from profilekit.store.blobs import PoolBlobs, StoredBlob
from profilekit.store.models import Pool


class EngineCache:
    """One backbone and Engine per process; pools regenerated (random) or loaded (trained) once each."""

    def __init__(self, settings: Settings, *, engine=None, blobs: PoolBlobs | None = None):
        """`engine`: an Engine already built on a given backbone (benchmarks); default: the settings'.
        `blobs`: the pool store (default: the settings' pool_store and database)."""
        self.settings = settings
        self._engine = engine
        self.blobs = blobs or PoolBlobs(settings)
        self.pools: dict[str, object] = {}
        self._lock = threading.RLock()  # request threads load profiles while others may add pools

    def engine(self):
        """The Engine on the configured backbone, device and dtype (loaded on first use)."""
        with self._lock:
            if self._engine is None:
                from profilekit.backbone import load_backbone
                from profilekit.engine import Engine

                s = self.settings
                backbone = load_backbone(s.backbone_path, device=s.device, dtype=s.dtype, max_length=s.max_length)
                self._engine = Engine(backbone, split_overhead=s.length_split_overhead)
            return self._engine

    def pool(self, row: Pool):
        """The pool of a stored row, checked against its hash."""
        with self._lock:
            if row.pool_hash not in self.pools:
                from profilekit.pool import PoolSpec, load_pool, random_pool

                if row.uri:
                    pool = load_pool(self.blobs.fetch(row.uri, pool_hash=row.pool_hash, sha256=row.blob_sha256))
                else:
                    pool = random_pool(PoolSpec(**row.spec))
                if pool.pool_hash != row.pool_hash:
                    raise PoolError(f"pool {row.pool_hash[:12]}… was rebuilt with hash {pool.pool_hash[:12]}…")
                self.pools[row.pool_hash] = pool
            return self.pools[row.pool_hash]

    def store_pool(self, pool) -> StoredBlob:
        """Put a trained pool into the pool store (through this process's cache file); register the row with
        the uri and sha256 returned, and any process loads it."""
        import tempfile
        from pathlib import Path

        from profilekit.pool import save_pool

        cached = self.blobs.cache_path(pool.pool_hash)
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".partial", delete=False) as handle:
            partial = Path(handle.name)
        try:  # a failed save leaves no partial file behind either
            save_pool(pool, partial)
            with partial.open("rb") as source:
                stored = self.blobs.put(pool.pool_hash, source)
            partial.replace(cached)
        finally:
            partial.unlink(missing_ok=True)
        with self._lock:
            self.pools.setdefault(pool.pool_hash, pool)
        return stored

    def random_pool(self, num_adapters: int):
        """The random pool of N adapters (seed 0) for this backbone, generated once."""
        with self._lock:
            from profilekit.pool import PoolSpec, random_pool

            backbone = self.engine().backbone
            spec = PoolSpec(backbone.backbone_id, num_adapters, backbone.num_layers, backbone.hidden_size)
            known = next((p for p in self.pools.values() if p.spec == spec), None)
            if known is None:
                known = random_pool(spec)
                self.pools[known.pool_hash] = known
            return known

    def training_engine(self, row: Pool | None):
        """The engine with the pool of `row` as the default of the profiles it trains (None: no pool)."""
        with self._lock:
            engine = self.engine()
            engine.use_pool(self.pool(row) if row is not None else None)
            return engine

    def serving_engine(self, rows: list[Pool]):
        """The engine with these pools added to the ones it serves (its default pool is left alone)."""
        with self._lock:
            engine = self.engine()
            for row in rows:
                engine.add_pool(self.pool(row))
            return engine
