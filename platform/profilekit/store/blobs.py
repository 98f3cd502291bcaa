"""Where trained pools' bytes live, so every worker and API replica reads the same pool without a shared
disk. Two stores, named by `settings.pool_store`; a uri names the store it was written to, so a pool stays
readable after the setting changes:

    db://pools/<pool_hash>            chunks of `pool_chunk_bytes` in the `pool_chunks` table (the default)
    s3://bucket/prefix/<hash>.safetensors   an object in S3 or an S3-compatible store (boto3)

The store deals in bytes (the pool floor serialises tensors). `Pool.blob_sha256` records the sha256 of the
bytes; `fetch` streams them into a cache file under data_dir/pools/ keyed by the pool hash and refuses
them (`PoolStoreError`) when that sha256 differs. Rows written before pools moved here may still hold the
host path of their file (migration 0009 copies the files it finds); such a file is read where it exists.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from profilekit.errors import PoolStoreError
from profilekit.settings import Settings
from profilekit.store.models import PoolChunk
from profilekit.store.session import make_engine

DB_PREFIX = "db://pools/"


@dataclass(frozen=True)
class StoredBlob:
    uri: str
    sha256: str
    nbytes: int


class PoolBlobs:
    """`put(pool_hash, file) → StoredBlob` into the configured store (once per pool); `open(uri)` streams the
    bytes back; `fetch(uri, …)` brings them into the local cache, checked."""

    def __init__(self, settings: Settings, *, bind: Engine | None = None):
        """`bind`: the database of db:// pools (default: a connection per use to settings' database)."""
        self.settings = settings
        self._bind = bind
        self._s3 = None

    # ---- writing -------------------------------------------------------------------------------------
    def put(self, pool_hash: str, source: BinaryIO) -> StoredBlob:
        """Store the bytes of `source` (a seekable binary file) as the pool `pool_hash`. A pool is immutable:
        when its bytes are stored already (a second build of the same pool; safetensors headers are not
        byte-for-byte reproducible), those stay and their StoredBlob is returned."""
        store = self.settings.pool_store
        if store == "db":
            return self._put_db(pool_hash, source)
        uri = f"{store.rstrip('/')}/{pool_hash}.safetensors"
        bucket, key = _split_s3(uri)
        client = self._s3_client()
        try:
            client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                raise PoolStoreError(f"cannot write pool {pool_hash[:12]}… to {uri}: {exc}") from exc
        else:  # stored already (a failure to read it back is a PoolStoreError of its own)
            return self._stored(uri)
        digest, nbytes = _sha256_of(source)
        try:
            client.upload_fileobj(source, bucket, key)
        except Exception as exc:
            raise PoolStoreError(f"cannot write pool {pool_hash[:12]}… to {uri}: {exc}") from exc
        return StoredBlob(uri, digest, nbytes)

    def _put_db(self, pool_hash: str, source: BinaryIO) -> StoredBlob:
        uri, size = DB_PREFIX + pool_hash, self.settings.pool_chunk_bytes
        with self._engine().connect() as connection:
            if connection.scalar(select(PoolChunk.seq).where(PoolChunk.pool_hash == pool_hash).limit(1)) is not None:
                return self._stored(uri)
        digest, nbytes = hashlib.sha256(), 0
        try:
            with self._engine().begin() as connection:  # all chunks or none
                for seq, data in enumerate(iter(lambda: source.read(size), b"")):  # one pass: hashed as stored
                    digest.update(data)
                    nbytes += len(data)
                    connection.execute(PoolChunk.__table__.insert().values(pool_hash=pool_hash, seq=seq, data=data))
        except IntegrityError:  # another worker stored the same pool at the same moment: its chunks stand
            return self._stored(uri)
        return StoredBlob(uri, digest.hexdigest(), nbytes)

    def _stored(self, uri: str) -> StoredBlob:
        """What is stored at `uri` already."""
        digest, nbytes = hashlib.sha256(), 0
        for data in self.open(uri):
            digest.update(data)
            nbytes += len(data)
        return StoredBlob(uri, digest.hexdigest(), nbytes)

    # ---- reading -------------------------------------------------------------------------------------
    def open(self, uri: str) -> Iterator[bytes]:
        """The stored bytes, chunk by chunk (never the whole pool in memory at once)."""
        if uri.startswith(DB_PREFIX):
            return self._open_db(uri.removeprefix(DB_PREFIX), uri)
        if uri.startswith("s3://"):
            return self._open_s3(uri)
        return self._open_file(uri)

    def _open_db(self, pool_hash: str, uri: str) -> Iterator[bytes]:
        engine = self._engine()
        with engine.connect() as connection:
            seqs = list(connection.scalars(select(PoolChunk.seq).where(PoolChunk.pool_hash == pool_hash)
                                           .order_by(PoolChunk.seq)))
        if not seqs:
            raise PoolStoreError(f"pool {uri} has no chunks in the database")
        if seqs != list(range(len(seqs))):
            lost = sorted(set(range(seqs[-1] + 1)) - set(seqs))
            raise PoolStoreError(f"pool {uri} is corrupt: chunks {lost} of 0…{seqs[-1]} are missing")
        for seq in seqs:  # one chunk per query: memory stays one chunk on any database
            with engine.connect() as connection:
                data = connection.scalar(select(PoolChunk.data).where(PoolChunk.pool_hash == pool_hash,
                                                                      PoolChunk.seq == seq))
            if data is None:
                raise PoolStoreError(f"pool {uri} changed while it was read (chunk {seq} is gone)")
            yield data

    def _open_s3(self, uri: str) -> Iterator[bytes]:
        bucket, key = _split_s3(uri)
        try:  # refused at once or cut off while streaming: both are the store's failure
            body = self._s3_client().get_object(Bucket=bucket, Key=key)["Body"]
            yield from body.iter_chunks(self.settings.pool_chunk_bytes)
        except Exception as exc:
            raise PoolStoreError(f"cannot read pool {uri}: {exc}") from exc

    def _open_file(self, uri: str) -> Iterator[bytes]:
        with _old_file(uri).open("rb") as handle:
            yield from iter(lambda: handle.read(self.settings.pool_chunk_bytes), b"")

    def cache_path(self, pool_hash: str) -> Path:
        return Path(self.settings.data_dir) / "pools" / f"{pool_hash}.safetensors"

    def fetch(self, uri: str, *, pool_hash: str, sha256: str | None) -> Path:
        """A local file with the pool's bytes: the cache under data_dir (streamed in on first use and checked
        against `sha256`), or the file itself for an old host-path uri."""
        if not uri.startswith((DB_PREFIX, "s3://")):
            return _old_file(uri)
        path = self.cache_path(pool_hash)
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        digest = hashlib.sha256()
        try:
            with partial.open("wb") as handle:
                for data in self.open(uri):
                    digest.update(data)
                    handle.write(data)
            if sha256 is not None and digest.hexdigest() != sha256:
                raise PoolStoreError(f"pool {uri} is corrupt: its bytes have sha256 {digest.hexdigest()[:12]}…, "
                                     f"the pool was stored with {sha256[:12]}…")
            os.replace(partial, path)  # whole and checked, or not there
        finally:
            partial.unlink(missing_ok=True)
        return path

    # ---- connections ---------------------------------------------------------------------------------
    def _engine(self) -> Engine:
        if self._bind is None:  # pools are read once per process: no idle connections kept for them
            self._bind = make_engine(self.settings.resolved_database_url, poolclass=NullPool)
        return self._bind

    def _s3_client(self):
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3", endpoint_url=self.settings.s3_endpoint_url or None)
        return self._s3


def _old_file(uri: str) -> Path:
    """The file of a pool registered, before pools moved to the store, by its host path."""
    path = Path(uri.removeprefix("file://"))
    if not path.is_file():
        raise PoolStoreError(f"pool file {path} is not on this machine (a pool saved before pools moved to the "
                             "database): run `profilekit db upgrade` where it was built, or build it again")
    return path


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key.lstrip("/")


def _sha256_of(source: BinaryIO) -> tuple[str, int]:
    digest, nbytes = hashlib.sha256(), 0
    for data in iter(lambda: source.read(2**20), b""):
        digest.update(data)
        nbytes += len(data)
    source.seek(0)
    return digest.hexdigest(), nbytes
