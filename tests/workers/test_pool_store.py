"""Trained pools live in the pool store (store/blobs.py), never on one machine's disk: chunks in the database
(SQLite and PostgreSQL) or an S3 object (against moto's server), checked on load; a pool built by one
worker is trained on by another and served by an API process, each with its own data_dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from sqlalchemy import update

from profilekit.errors import PoolStoreError
from profilekit.pool import AdapterPool, PoolSpec, SharedHead, random_pool
from profilekit.serving import EngineCache
from profilekit.store import PoolChunk, repo
from profilekit.store.blobs import PoolBlobs
from profilekit.store.models import Pool


def warm_like_pool(seed: int = 3):
    """A pool with a shared head (what a build_pool job stores), a few KB as safetensors."""
    random = random_pool(PoolSpec("bert:tiny:test", num_adapters=6, num_layers=2, hidden_size=32,
                                  reduction_factor=4, seed=seed))
    generator = torch.Generator().manual_seed(seed)
    head = SharedHead(torch.randn(2, 32, generator=generator), torch.zeros(2), ("politics", "sports"))
    return AdapterPool(replace(random.spec, source="warm"), random.down_w, random.down_b, random.up_w,
                       random.up_b, head=head)


def same_tensors(a, b) -> bool:
    return all(torch.equal(getattr(a, n), getattr(b, n)) for n in ("down_w", "down_b", "up_w", "up_b")) and \
        torch.equal(a.head.weight, b.head.weight) and a.head.labels == b.head.labels


def elsewhere(settings, name: str):
    """The same store seen from another machine: a data_dir of its own."""
    return settings.model_copy(update={"data_dir": settings.data_dir / name})


# ---- the database: chunks ---------------------------------------------------------------------------
def test_a_pool_larger_than_a_chunk_round_trips_through_the_database(settings, sessions):
    settings = settings.model_copy(update={"pool_chunk_bytes": 1000})
    pool = warm_like_pool()
    builder = EngineCache(settings)
    stored = builder.store_pool(pool)
    assert stored.uri == f"db://pools/{pool.pool_hash}" and stored.nbytes > 3 * 1000
    with sessions() as session:
        row = repo.ensure_pool(session, pool=pool, uri=stored.uri, blob_sha256=stored.sha256)
        session.commit()
        chunks = session.query(PoolChunk).filter_by(pool_hash=pool.pool_hash).count()
    assert chunks == -(-stored.nbytes // 1000)
    reader = EngineCache(elsewhere(settings, "replica"))
    assert not reader.blobs.cache_path(pool.pool_hash).exists()
    loaded = reader.pool(row)
    assert loaded.pool_hash == pool.pool_hash and same_tensors(loaded, pool)
    assert reader.blobs.cache_path(pool.pool_hash).is_file()  # the local copy is a cache keyed by hash
    assert b"".join(PoolBlobs(settings).open(stored.uri)) == reader.blobs.cache_path(pool.pool_hash).read_bytes()
    assert builder.store_pool(pool) == stored  # a second build of the same pool keeps the stored bytes
    with sessions() as session:
        assert session.query(PoolChunk).filter_by(pool_hash=pool.pool_hash).count() == chunks


def test_a_pool_that_fails_to_save_leaves_no_partial_file(settings, monkeypatch):
    import profilekit.pool

    def disk_full(pool, path):
        Path(path).write_bytes(b"half a pool")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(profilekit.pool, "save_pool", disk_full)
    builder = EngineCache(settings)
    with pytest.raises(OSError, match="No space left"):
        builder.store_pool(warm_like_pool())
    assert not list(builder.blobs.cache_path("x").parent.iterdir())


def test_a_tampered_chunk_is_refused_and_never_cached(settings, sessions):
    settings = settings.model_copy(update={"pool_chunk_bytes": 1000})
    pool = warm_like_pool()
    stored = EngineCache(settings).store_pool(pool)
    with sessions() as session:
        row = repo.ensure_pool(session, pool=pool, uri=stored.uri, blob_sha256=stored.sha256)
        session.execute(update(PoolChunk).where(PoolChunk.pool_hash == pool.pool_hash, PoolChunk.seq == 2)
                        .values(data=b"\0" * 1000))
        session.commit()
    reader = EngineCache(elsewhere(settings, "replica"))
    with pytest.raises(PoolStoreError, match=f"pool db://pools/{pool.pool_hash} is corrupt: its bytes have sha256"):
        reader.pool(row)
    assert not list(reader.blobs.cache_path(pool.pool_hash).parent.iterdir())
    with sessions() as session:
        session.query(PoolChunk).filter_by(pool_hash=pool.pool_hash, seq=1).delete()
        session.commit()
    with pytest.raises(PoolStoreError, match=r"is corrupt: chunks \[1\] of 0…\d+ are missing"):
        reader.pool(row)


def test_a_pool_without_stored_bytes_or_with_an_old_host_path_names_what_is_missing(settings, sessions, tmp_path):
    reader = EngineCache(settings)
    missing = Pool(pool_hash="f" * 64, spec={}, uri="db://pools/" + "f" * 64, blob_sha256="0" * 64)
    with pytest.raises(PoolStoreError, match="has no chunks in the database"):
        reader.pool(missing)
    old = Pool(pool_hash="e" * 64, spec={}, uri=str(tmp_path / "gone" / "pool.safetensors"))
    with pytest.raises(PoolStoreError, match="is not on this machine.*profilekit db upgrade"):
        reader.pool(old)


# ---- S3: moto's server -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_endpoint(monkeypatch):
    """moto's S3 server in a subprocess on a free loopback port, with a bucket `pools`."""
    pytest.importorskip("moto", reason="moto[server] is not installed")
    boto3 = pytest.importorskip("boto3")
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.skip("moto_server is not installed")
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    port = free_port()
    process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client("s3", endpoint_url=url)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket="pools")
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url, client
    finally:
        process.terminate()
        process.wait(10)


def test_a_pool_stored_in_s3_is_read_by_another_machine_and_checked(s3_endpoint, tmp_path):
    from profilekit.settings import Settings

    url, client = s3_endpoint
    settings = Settings(data_dir=tmp_path / "builder", pool_store="s3://pools/prod/", s3_endpoint_url=url,
                        pool_chunk_bytes=1000)
    pool = warm_like_pool()
    stored = EngineCache(settings).store_pool(pool)
    assert stored.uri == f"s3://pools/prod/{pool.pool_hash}.safetensors"
    assert EngineCache(settings).store_pool(pool) == stored  # stored once: a rebuild keeps the object
    row = Pool(pool_hash=pool.pool_hash, spec=asdict(pool.spec), uri=stored.uri, blob_sha256=stored.sha256)
    # a replica configured for the database store still reads the pool where its uri says it is
    replica = settings.model_copy(update={"data_dir": tmp_path / "replica", "pool_store": "db"})
    assert same_tensors(EngineCache(replica).pool(row), pool)

    client.put_object(Bucket="pools", Key=f"prod/{pool.pool_hash}.safetensors", Body=b"not the pool")
    with pytest.raises(PoolStoreError, match="is corrupt"):
        EngineCache(settings.model_copy(update={"data_dir": tmp_path / "third"})).pool(row)
    gone = Pool(pool_hash="d" * 64, spec={}, uri="s3://no-such-bucket/x.safetensors", blob_sha256="0" * 64)
    with pytest.raises(PoolStoreError, match="cannot read pool s3://no-such-bucket/x.safetensors"):
        EngineCache(settings).pool(gone)
    with pytest.raises(PoolStoreError, match="cannot write pool .* to s3://no-such-bucket/"):
        EngineCache(settings.model_copy(update={"pool_store": "s3://no-such-bucket"})).store_pool(pool)


def test_an_s3_read_cut_off_midway_is_a_pool_store_error_and_leaves_no_cache(tmp_path):
    from profilekit.settings import Settings

    class CutOff:  # get_object answered, then the connection dropped after the first chunk
        def iter_chunks(self, size):
            yield b"x" * size
            raise ConnectionResetError("connection reset by peer")

    class Store:
        def get_object(self, **_):
            return {"Body": CutOff()}

    blobs = PoolBlobs(Settings(data_dir=tmp_path, pool_store="s3://pools", pool_chunk_bytes=1000))
    blobs._s3 = Store()
    with pytest.raises(PoolStoreError, match="cannot read pool s3://pools/x.safetensors: connection reset"):
        blobs.fetch("s3://pools/x.safetensors", pool_hash="c" * 64, sha256="0" * 64)
    assert not list(blobs.cache_path("c" * 64).parent.iterdir())


def test_the_pool_store_setting_is_checked():
    from pydantic import ValidationError

    from profilekit.settings import Settings

    with pytest.raises(ValidationError, match="pool_store"):
        Settings(pool_store="/mnt/pools")
    assert Settings(pool_store="s3://bucket").pool_store == "s3://bucket"
    for endpoint in ("not a url", "minio:9000", "ftp://minio:9000"):  # boto3's "Invalid endpoint" only at a build
        with pytest.raises(ValidationError, match="s3_endpoint_url"):
            Settings(s3_endpoint_url=endpoint)
    assert Settings(s3_endpoint_url="http://minio:9000").s3_endpoint_url == "http://minio:9000"


# ---- two worker processes and a serving process, three data_dirs ---------------------------------------
@pytest.mark.parametrize("backend", ["scale"], indirect=True)  # separate machines share a database server
def test_a_pool_built_by_one_worker_is_trained_on_by_another_and_served(backend, settings, sessions,
                                                                       tiny_backbone_dir, tmp_path):
    from profilekit.jobs import create_training_jobs, enqueue, make_celery
    from profilekit.serving.service import Serving
    from profilekit.store import Profile
    from tests.workers.test_runner import add_profile
    from tests.workers.test_worker_process import environment, start_worker, stop, wait_for

    with sessions() as session:
        builders = [add_profile(session, f"warm-{i}", seed=i) for i in range(3)]
        build, _ = repo.create_job(session, kind="build_pool", profile_ids=[p.id for p in builders],
                                   params={"train": {"epochs": 1}, "reduction_factor": 4})
        newcomer = add_profile(session, "newcomer", seed=7).id
        session.commit()
    app = make_celery(settings)

    def run_on_worker(job_id: str, data_dir: Path) -> object:
        enqueue(app, job_id)
        log = tmp_path / f"{data_dir.name}.log"
        worker = start_worker(environment(backend, tiny_backbone_dir) | {"PROFILEKIT_DATA_DIR": str(data_dir)}, log)

        def finished():
            with sessions() as session:
                job = repo.get_job(session, job_id=job_id)
                return job if job.state in ("succeeded", "failed", "cancelled") else None

        try:
            job = wait_for(finished, 180, f"job {job_id} on the worker of {data_dir.name}", log)
        finally:
            stop(worker)
        assert job.state == "succeeded", job.error
        return job

    machine_a, machine_b = tmp_path / "machine-a", tmp_path / "machine-b"
    pool_hash = run_on_worker(build.id, machine_a).progress["pool_hash"]
    with sessions() as session:
        assert repo.get_pool(session, pool_hash=pool_hash).uri == f"db://pools/{pool_hash}"
        [train] = create_training_jobs(session, profile_ids=[newcomer], method="xpeft_hard", pool=pool_hash,
                                       method_config={"k": 1, "head": "shared"}, train={"epochs": 1})
        session.commit()
    assert not (machine_b / "pools").exists()
    run_on_worker(train.id, machine_b)
    assert (machine_b / "pools" / f"{pool_hash}.safetensors").is_file()  # fetched from the store

    serving = Serving(elsewhere(settings, "api-replica"), sessions)
    try:
        [(state, artifact_id)] = serving.states([newcomer]).values()
        [prediction] = serving.engines.engine().predict(["the senate passed the bill"], [state])
    finally:
        serving.close()
    with sessions() as session:
        artifact = repo.current_artifact(session, profile=session.get(Profile, newcomer))
    assert artifact.id == artifact_id and artifact.pool_hash == pool_hash
    assert prediction.label in ("politics", "sports")
    assert os.listdir(settings.data_dir / "api-replica" / "pools") == [f"{pool_hash}.safetensors"]


# ---- pools registered by their host path before migration 0009 -------------------------------------------
def test_upgrading_copies_pool_files_into_the_database(backend, settings, tmp_path):
    import sqlalchemy as sa

    from profilekit.pool import save_pool
    from profilekit.store import make_engine, make_session_factory
    from profilekit.store.migrate import upgrade

    upgrade(backend.database_url, "0008")
    pool = warm_like_pool()
    path = save_pool(pool, tmp_path / "machine-a" / "pools" / f"{pool.pool_hash}.safetensors")
    columns = [sa.column(c.name, c.type) for c in Pool.__table__.columns if c.name != "blob_sha256"]
    before = sa.table("pools", *columns)
    db = make_engine(backend.database_url)
    with db.begin() as connection:
        for pool_hash, uri in ((pool.pool_hash, str(path.resolve())), ("c" * 64, str(tmp_path / "gone.safetensors"))):
            connection.execute(before.insert().values(
                pool_hash=pool_hash, source="warm", spec=asdict(pool.spec), num_adapters=6, reduction_factor=4,
                backbone_id="bert:tiny:test", uri=uri, nbytes=0, created_at=repo.now()))
    upgrade(backend.database_url)
    path.unlink()  # the building machine's disk is no longer needed
    with make_session_factory(db)() as session:
        copied, kept = repo.get_pool(session, pool_hash=pool.pool_hash), repo.get_pool(session, pool_hash="c" * 64)
    db.dispose()
    assert copied.uri == f"db://pools/{pool.pool_hash}" and len(copied.blob_sha256) == 64
    assert kept.uri == str(tmp_path / "gone.safetensors") and kept.blob_sha256 is None
    assert same_tensors(EngineCache(elsewhere(settings, "replica")).pool(copied), pool)
