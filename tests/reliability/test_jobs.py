"""No job may hang (#13), against real worker processes (infra/start-worker.sh), on the embedded default
and on PostgreSQL + Redis:

- a worker SIGKILLed mid-job while others are already up (their start-up look for orphans already done)
  and one is restarted at once:
  the reconciler of a running worker re-queues the job once its heartbeat is stale, exactly one worker
  wins, and the job succeeds with exactly one current artifact per profile;
- Redis flushed while a job runs and its worker is killed: the job and every queued job still succeed
  (0 jobs lost).

`make test` runs them short (one kill, on PostgreSQL + Redis, a few profiles, shorter jobs); `make reliability`
(PROFILEKIT_RELIABILITY_FULL=1) kills the worker twice on both stores and queues more, longer jobs. Figures
go to stdout (`-s`)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import select

from profilekit.jobs import create_training_jobs, enqueue, make_celery
from profilekit.store import Artifact, Profile, repo
from tests.workers.conftest import backend, sessions, settings, tiny_backbone_dir  # noqa: F401  (fixtures)
from tests.workers.test_runner import add_profile
from tests.workers.test_worker_process import environment, start_worker, stop, wait_for

pytestmark = pytest.mark.reliability
FULL = os.environ.get("PROFILEKIT_RELIABILITY_FULL") == "1"
STALE_SECONDS, RECONCILE_SECONDS = 3, 1  # the orphan timeout and the reconciler's period of these workers
# the kill scenario's orphan timeout outlasts a worker's start, as 120 s does in production: a worker
# restarted at once finds the job's heartbeat fresh, so only the periodic reconciler brings the job back
RESTART_STALE_SECONDS = 20
FAST = {"PROFILEKIT_RECONCILE_SECONDS": str(RECONCILE_SECONDS), "PROFILEKIT_WORKER_HEARTBEAT_SECONDS": "0.5"}
# long enough to be killed mid-way: through the encoder, one-row steps at lr 1e-6 (head_only on cached features
# could end between two polls of an idle machine); the short form's job runs some seconds, the full one's a minute
LONG = {"epochs": 100 if FULL else 25, "patience": 100, "batch_size": 1, "min_rows": 3}


def queue_jobs(store, config, count: int, profiles_per_job: int, max_attempts: int = 3) -> list[str]:
    with store() as session:
        job_ids = []
        for j in range(count):
            profiles = [add_profile(session, f"job{j}-p{p}", n_per_label=40, seed=p) for p in range(profiles_per_job)]
            [job] = create_training_jobs(session, profile_ids=[p.id for p in profiles], method="xpeft_soft",
                                         pool="random-12", train=LONG, method_config={"lr": 1e-6},
                                         per_job=profiles_per_job, max_attempts=max_attempts)
            job_ids.append(job.id)
        session.commit()
    app = make_celery(config)
    for job_id in job_ids:
        enqueue(app, job_id)
    return job_ids


def job(store, job_id: str):
    with store() as session:
        return repo.get_job(session, job_id=job_id)


def training(store, job_id: str, attempt: int):
    """The job when its `attempt` has made progress, else None."""
    current = job(store, job_id)
    return current if current.state == "running" and current.attempts == attempt and current.progress.get("step") \
        else None


def ready(store, process) -> bool:
    """The worker has started: its start-up recovery ran, its heartbeat thread writes."""
    with store() as session:
        return any(w.name.endswith(f":{process.pid}") and w.stopped_at is None for w in repo.list_workers(session))


def ended(store, job_ids: list[str]):
    jobs = [job(store, job_id) for job_id in job_ids]
    return jobs if all(j.state in ("succeeded", "failed", "cancelled") for j in jobs) else None


def one_current_artifact_each(store, job_ids: list[str]) -> int:
    """Every profile of the jobs has exactly one artifact and it is current; returns how many profiles."""
    with store() as session:
        profile_ids = [pid for job_id in job_ids for pid in repo.get_job(session, job_id=job_id).profile_ids]
        for profile_id in profile_ids:
            [artifact] = session.scalars(select(Artifact).where(Artifact.profile_id == profile_id)).all()
            assert session.get(Profile, profile_id).current_artifact_id == artifact.id
    return len(profile_ids)


def start_ready_workers(count: int, env, log, store) -> list:
    """Workers up and idle before any job exists: their start-up look for orphans finds nothing, so only
    the periodic reconciler can bring back a job whose worker dies later. One at a time: workers starting
    together on a fresh SQLite broker race to create its queue row (kombu), and one of them dies."""
    workers = []
    for _ in range(count):
        workers.append(start_worker(env, log))
        wait_for(lambda: ready(store, workers[-1]), 180, "a worker to start", log)
    return workers


def kill_runner(workers: list, running) -> None:
    """SIGKILL the worker process that runs the job: no clean shutdown, no acknowledgement."""
    [victim] = [p for p in workers if running.worker.endswith(f":{p.pid}")]
    stop(victim, signal.SIGKILL)


def test_a_killed_workers_job_succeeds_on_a_worker_already_running(backend, tiny_backbone_dir, settings,  # noqa: F811
                                                                   sessions, tmp_path):  # noqa: F811
    if not FULL and backend.name != "scale":
        pytest.skip("the short form kills on PostgreSQL + Redis only (tests/workers/test_worker_process.py kills an "
                    "embedded worker); make reliability runs both")
    kills = 2 if FULL else 1
    env = environment(backend, tiny_backbone_dir) | FAST | {"PROFILEKIT_JOB_STALE_SECONDS": str(RESTART_STALE_SECONDS)}
    log = tmp_path / "workers.log"
    workers = start_ready_workers(kills + 1, env, log, sessions)
    try:
        [job_id] = queue_jobs(sessions, settings, 1, profiles_per_job=4 if FULL else 2, max_attempts=kills + 1)
        for kill in range(kills):
            running = wait_for(lambda attempt=kill + 1: training(sessions, job_id, attempt), 180,
                               f"attempt {kill + 1} to train", log)
            kill_runner(workers, running)
            killed_at = time.monotonic()
        workers.append(start_worker(env, log))  # and a restarted one at once: reconcilers race for the job
        [done] = wait_for(lambda: ended(sessions, [job_id]), 300, "the job to end", log)
        waited = time.monotonic() - killed_at
    finally:
        for process in workers:
            stop(process, signal.SIGKILL)
    assert done.state == "succeeded" and done.attempts == kills + 1, done.error
    last_run = (done.finished_at - done.started_at).total_seconds()
    # the orphan timeout, two reconciler rounds, the last attempt's run, and slack for a loaded machine
    assert waited < RESTART_STALE_SECONDS + 2 * RECONCILE_SECONDS + last_run + 60, (waited, last_run)
    with sessions() as session:
        events = [e.message for e in repo.get_job(session, job_id=job_id).events]
    assert sum(m.startswith("re-queued") for m in events) == kills  # exactly one winner per orphaning
    profiles = one_current_artifact_each(sessions, [job_id])
    print(f"\nworker SIGKILL [{backend.name}]: {kills} kill(s), {len(workers)} workers, {profiles} profiles; "
          f"succeeded after {done.attempts} attempts, {waited:.1f} s after the last kill (last run "
          f"{last_run:.1f} s, orphan timeout {RESTART_STALE_SECONDS} s); 1 artifact per profile")


def test_a_flushed_broker_loses_no_job(backend, tiny_backbone_dir, settings, sessions, tmp_path):  # noqa: F811
    if backend.name != "scale":
        pytest.skip("the broker to flush is Redis")
    import redis

    env = environment(backend, tiny_backbone_dir) | FAST
    log = tmp_path / "workers.log"
    workers = start_ready_workers(2, env, log, sessions)
    try:
        job_ids = queue_jobs(sessions, settings, 5 if FULL else 3, profiles_per_job=2)
        running = wait_for(lambda: next(filter(None, (training(sessions, j, 1) for j in job_ids)), None), 180,
                           "a job to train", log)
        kill_runner(workers, running)
        redis.Redis.from_url(backend.broker_url).flushdb()  # the running job's message and the queued ones
        killed_at = time.monotonic()
        jobs = wait_for(lambda: ended(sessions, job_ids), 600, "every job to end", log)
        waited = time.monotonic() - killed_at
    finally:
        for process in workers:
            stop(process, signal.SIGKILL)
    assert [j.state for j in jobs] == ["succeeded"] * len(job_ids), [j.error for j in jobs]
    assert sorted(j.attempts for j in jobs) == [1] * (len(jobs) - 1) + [2]  # only the killed one ran twice
    profiles = one_current_artifact_each(sessions, job_ids)
    print(f"\nbroker flushed [{backend.name}]: {len(job_ids)} jobs ({profiles} profiles), worker killed mid-job and "
          f"Redis flushed; {len(job_ids)} succeeded, 0 lost, {waited:.1f} s after the flush")
