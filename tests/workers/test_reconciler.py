"""Orphaned jobs against the real store (#13): the reconciler re-queues a running job whose heartbeat went
stale with exactly one winner among many workers; a new attempt starts with empty progress; an attempt
that was taken over (a zombie worker) can neither report progress nor store results."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, update

from profilekit.errors import AttemptLost
from profilekit.runner import run_job
from profilekit.store import Artifact, Profile, repo
from profilekit.store.models import Job
from tests.workers.test_runner import add_profile, queue, start_slow_job


def running_job(sessions, settings, worker="worker-a") -> tuple[str, str]:
    """A queued head_only job of one profile, claimed by `worker` and 7 steps in; (job id, profile id)."""
    with sessions() as session:
        profile = add_profile(session, "orphan")
        job_id = queue(session, settings, [profile], method="head_only")
        repo.claim_job(session, job_id=job_id, worker=worker)
        repo.heartbeat(session, job_id=job_id, progress={"epoch": 2, "step": 7, "total_steps": 9}, attempt=1)
        return job_id, profile.id


def test_a_new_attempt_starts_with_empty_progress(sessions, settings):
    job_id, _ = running_job(sessions, settings)
    with sessions() as session:
        assert repo.get_job(session, job_id=job_id).progress["step"] == 7
        assert repo.requeue_stale(session, stale_seconds=0) == [job_id]
        retried = repo.claim_job(session, job_id=job_id, worker="worker-b")
        assert retried.attempts == 2 and retried.progress == {} and retried.result is None


def test_many_reconcilers_at_once_re_queue_a_stale_job_exactly_once(sessions, settings):
    job_id, _ = running_job(sessions, settings)
    time.sleep(0.2)
    start, won = threading.Barrier(6), []

    def reconcile():
        with sessions() as session:
            start.wait()
            won.extend(repo.requeue_stale(session, stale_seconds=0.1))

    threads = [threading.Thread(target=reconcile) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert won == [job_id]
    with sessions() as session:
        job = repo.get_job(session, job_id=job_id)
        assert job.state == "queued" and job.attempts == 1
        assert sum("re-queued" in e.message for e in job.events) == 1
        # a fresh heartbeat is not stale; out of attempts, a stale job fails instead of looping
        repo.claim_job(session, job_id=job_id, worker="worker-b")
        assert repo.requeue_stale(session, stale_seconds=60) == []
        session.execute(update(Job).where(Job.id == job_id).values(attempts=3))
        session.commit()
        assert repo.requeue_stale(session, stale_seconds=0) == []
        session.refresh(job)
        assert job.state == "failed" and "each of 3 attempts" in job.error


def test_a_taken_over_attempt_cannot_report_or_store(sessions, settings):
    job_id, profile_id = running_job(sessions, settings)
    with sessions() as session:
        repo.requeue_stale(session, stale_seconds=0)
        repo.claim_job(session, job_id=job_id, worker="worker-b")  # attempt 2 owns the job now
    record = {"profile_id": profile_id, "method": "head_only", "pool_hash": None, "payload": b"zombie",
              "payload_bytes": 6, "stored_bytes": 6, "hyperparameters": {}, "metrics": {"accuracy": 1.0}}
    with sessions() as session:
        with pytest.raises(AttemptLost):
            repo.heartbeat(session, job_id=job_id, progress={"step": 99}, attempt=1)
        with pytest.raises(AttemptLost):
            repo.write_results(session, job_id=job_id, attempt=1, records=[record])
        assert repo.finish_job(session, job_id=job_id, state="failed", error="zombie", attempt=1) is False
    with sessions() as session:
        job = repo.get_job(session, job_id=job_id)
        assert job.state == "running" and job.attempts == 2 and job.progress == {} and job.error is None
        assert session.scalars(select(Artifact)).all() == []


def test_a_zombie_worker_stops_and_the_new_attempt_alone_stores(sessions, settings):
    """A worker that hangs long enough is re-queued; when it wakes it finds its attempt gone ("lost") while
    the worker that took the job over stores the only artifact."""
    profile, job_id, cache, zombie, outcome = start_slow_job(sessions, settings, "zombie")
    deadline = time.monotonic() + 60
    while True:
        with sessions() as session:
            job = repo.get_job(session, job_id=job_id)
            if job.state == "running" and job.progress.get("step", 0) > 0:
                assert repo.requeue_stale(session, stale_seconds=0) == [job_id]  # as a reconciler would
                break
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    zombie.join(60)
    assert outcome["state"] == "lost"
    with sessions() as session:
        job = repo.get_job(session, job_id=job_id)
        job.params = job.params | {"train": job.params["train"] | {"epochs": 2}}  # the retry runs short
        session.commit()
    assert run_job(job_id, sessions=sessions, cache=cache) == "succeeded"
    with sessions() as session:
        job = repo.get_job(session, job_id=job_id)
        assert job.state == "succeeded" and job.attempts == 2
        [artifact] = session.scalars(select(Artifact).where(Artifact.profile_id == profile.id)).all()
        assert session.get(Profile, profile.id).current_artifact_id == artifact.id
