"""Task bodies run directly against the real store: artifacts, progress, bad data, retries, cancel."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from profilekit.errors import UntrainableProfiles
from profilekit.jobs import create_training_jobs, default_pool
from profilekit.runner import run_job
from profilekit.serving import EngineCache
from profilekit.store import Artifact, Profile, repo
from tests.engine.test_training import profile as synthetic


def add_profile(session, key, n_per_label=6, labels=("politics", "sports"), seed=0):
    data = synthetic(key, n_per_label, labels=labels, seed=seed)
    profile = repo.create_profile(session, external_id=key)
    repo.add_examples(session, profile=profile, rows=list(zip(data.texts, data.labels)))
    return profile


def queue(session, settings, profiles, method="xpeft_hard", epochs=3, **config):
    config = {"k": 3} | config if method == "xpeft_hard" else config
    jobs = create_training_jobs(session, profile_ids=[p.id for p in profiles], method=method,
                                pool=default_pool(settings), train={"epochs": epochs}, method_config=config)
    session.commit()
    return jobs[0].id


def test_training_job_stores_one_current_artifact_with_metrics(sessions, settings):
    with sessions() as session:
        profiles = [add_profile(session, "alice"), add_profile(session, "bob", seed=1)]
        ids = [p.id for p in profiles]
        job_id = queue(session, settings, profiles)
    cache = EngineCache(settings)
    assert run_job(job_id, sessions=sessions, cache=cache) == "succeeded"
    with sessions() as session:
        job = repo.get_job(session, job_id=job_id)
        assert job.state == "succeeded" and job.attempts == 1 and job.progress["step"] >= 1
        assert [e.kind for e in job.events][:2] == ["state", "state"]
        assert any(e.kind == "progress" for e in job.events)
        for pid in ids:
            profile = session.get(Profile, pid)
            artifact = repo.current_artifact(session, profile=profile)
            assert artifact.method == "xpeft_hard" and artifact.job_id == job_id
            assert artifact.stored_bytes == len(artifact.payload) - 9 - len("xpeft_hard")  # framing excluded
            assert 0.0 <= artifact.metrics["accuracy"] <= 1.0 and artifact.metrics["n_holdout"] >= 1
            splits = {e.split for e in repo.examples_of(session, profile_id=pid)}
            assert splits == {"train", "holdout"}
        # the stored bytes are servable: the same state the worker trained
        state = cache.training_engine(repo.get_pool(session, pool_hash=artifact.pool_hash)).load(artifact.payload)
        assert state.labels == ("politics", "sports")
    # running the same job again (a redelivered message) changes nothing
    assert run_job(job_id, sessions=sessions, cache=cache) == "succeeded"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Artifact)) == 2


def test_a_retry_after_a_crash_leaves_exactly_one_current_artifact(sessions, settings):
    with sessions() as session:
        profile = add_profile(session, "carol")
        job_id = queue(session, settings, [profile])
    cache = EngineCache(settings)
    assert run_job(job_id, sessions=sessions, cache=cache) == "succeeded"
    with sessions() as session:  # as if the worker died after writing but before acknowledging
        job = repo.get_job(session, job_id=job_id)
        job.state = "queued"
        session.commit()
    assert run_job(job_id, sessions=sessions, cache=cache) == "succeeded"
    with sessions() as session:
        rows = session.scalars(select(Artifact).where(Artifact.profile_id == profile.id)).all()
        assert len(rows) == 1 and session.get(Profile, profile.id).current_artifact_id == rows[0].id
        assert repo.get_job(session, job_id=job_id).attempts == 2


def test_bad_data_fails_the_job_with_a_clear_error_and_the_worker_goes_on(sessions, settings):
    with sessions() as session:
        single = add_profile(session, "one-label", n_per_label=12, labels=("politics",))
        empty = repo.create_profile(session, external_id="empty")
        good = add_profile(session, "good")
        with pytest.raises(UntrainableProfiles) as refused:  # refused before anything is queued
            queue(session, settings, [good, single, empty], method="head_only")
        assert [p["id"] for p in refused.value.profiles] == [single.id, empty.id]
        assert "single label" in refused.value.profiles[0]["reason"] and refused.value.profiles[1]["rows"] == 0
        # what a worker may still meet: data that changed after the job was queued
        bad_single = repo.create_job(session, kind="train", profile_ids=[single.id],
                                     params={"method": "head_only", "train": {"epochs": 1}})[0].id
        bad_empty = repo.create_job(session, kind="train", profile_ids=[empty.id],
                                    params={"method": "head_only", "train": {"epochs": 1}})[0].id
        unknown_pool, _ = repo.create_job(session, kind="train", profile_ids=[good.id],
                                          params={"method": "xpeft_hard", "pool": "f" * 64})
        session.commit()
        unknown_pool = unknown_pool.id
        fine = queue(session, settings, [good], method="head_only")
    cache = EngineCache(settings)
    assert run_job(bad_single, sessions=sessions, cache=cache) == "failed"
    assert run_job(bad_empty, sessions=sessions, cache=cache) == "failed"
    assert run_job(unknown_pool, sessions=sessions, cache=cache) == "failed"
    assert run_job(fine, sessions=sessions, cache=cache) == "succeeded"
    with sessions() as session:
        assert "single label" in repo.get_job(session, job_id=bad_single).error
        assert "no examples" in repo.get_job(session, job_id=bad_empty).error
        assert "unknown pool" in repo.get_job(session, job_id=unknown_pool).error
        assert session.get(Profile, single.id).current_artifact_id is None


def start_slow_job(sessions, settings, name: str):
    """A job that would train for minutes (400 epochs at lr 1e-6), run by run_job on a thread:
    → (profile, job id, the engine cache, the thread, {"state": what run_job returned, once it ends})."""
    with sessions() as session:
        profile = add_profile(session, name, n_per_label=12)
        job_id = queue(session, settings, [profile], method="xpeft_soft", epochs=400, lr=1e-6)
    cache = EngineCache(settings)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("state", run_job(job_id, sessions=sessions,
                                                                                  cache=cache)))
    thread.start()
    return profile, job_id, cache, thread, outcome


def test_cancel_is_honoured_between_steps(sessions, settings):
    profile, job_id, cache, thread, outcome = start_slow_job(sessions, settings, "dave")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sessions() as session:
            job = repo.get_job(session, job_id=job_id)
            if job.state == "running" and job.progress.get("step", 0) > 0:
                repo.request_cancel(session, job_id=job_id)
                break
        time.sleep(0.2)
    thread.join(60)
    assert outcome["state"] == "cancelled"
    with sessions() as session:
        job = repo.get_job(session, job_id=job_id)
        assert job.state == "cancelled" and job.progress["step"] < job.progress["total_steps"]
        assert session.get(Profile, profile.id).current_artifact_id is None


def test_orphans_are_requeued_and_attempts_are_capped(sessions, settings):
    with sessions() as session:
        profile = add_profile(session, "erin")
        job_id = queue(session, settings, [profile], method="head_only")
        job = repo.get_job(session, job_id=job_id)
        job.state, job.attempts, job.heartbeat_at = "running", 1, repo.now().replace(year=2020)
        session.commit()
        assert repo.orphaned_jobs(session, stale_seconds=3) == [job_id]
        job.state, job.attempts, job.heartbeat_at = "running", 3, repo.now().replace(year=2020)
        session.commit()
        assert repo.orphaned_jobs(session, stale_seconds=3) == []
        assert repo.get_job(session, job_id=job_id).state == "failed"


def test_build_pool_job_registers_a_warm_pool_that_profiles_then_train_on(sessions, settings):
    from profilekit.store.models import Pool

    with sessions() as session:
        builders = [add_profile(session, f"warm-{i}", seed=i) for i in range(3)]
        job, _ = repo.create_job(session, kind="build_pool", profile_ids=[p.id for p in builders],
                                 params={"train": {"epochs": 2}, "reduction_factor": 4})
        newcomer = add_profile(session, "newcomer", seed=7)
        session.commit()
        job_id, builder_ids = job.id, [p.id for p in builders]
    cache = EngineCache(settings)
    assert run_job(job_id, sessions=sessions, cache=cache) == "succeeded"
    with sessions() as session:
        pool_hash = repo.get_job(session, job_id=job_id).progress["pool_hash"]
        pool = session.get(Pool, pool_hash)
        assert pool.source == "warm" and pool.num_adapters == 3 and pool.built_from == builder_ids
        assert pool.head_labels == ["politics", "sports"] and pool.uri == f"db://pools/{pool_hash}"
        jobs = create_training_jobs(session, profile_ids=[newcomer.id], method="xpeft_hard", pool=pool_hash,
                                    method_config={"k": 1, "head": "shared"}, train={"epochs": 2})
        session.commit()
        train_id = jobs[0].id
    # another worker on another machine: its data_dir never had the pool; it reads it from the database
    fresh = EngineCache(settings.model_copy(update={"data_dir": settings.data_dir / "elsewhere"}))
    assert run_job(train_id, sessions=sessions, cache=fresh) == "succeeded"
    with sessions() as session:
        artifact = repo.current_artifact(session, profile=session.get(Profile, newcomer.id))
        assert artifact.pool_hash == pool_hash
        assert artifact.hyperparameters["method"]["head"] == "shared"
