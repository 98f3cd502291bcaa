"""Tasks: a job id in, profilekit.runner does the work; state and retries live in the database."""

from __future__ import annotations

import logging

from celery import Celery, signals

from profilekit.jobs import RUN_JOB, enqueue
from profilekit.settings import Settings

log = logging.getLogger(__name__)


class WorkerRuntime:
    """What one worker process keeps: database sessions and the loaded backbone/pools."""

    def __init__(self, settings: Settings):
        from profilekit.serving import EngineCache
        from profilekit.store import make_engine, make_session_factory

        self.settings = settings
        self.sessions = make_session_factory(make_engine(settings.resolved_database_url))
        self.cache = EngineCache(settings)


def register_tasks(app: Celery, runtime_factory=WorkerRuntime) -> Celery:
    state: dict = {}

    def runtime() -> WorkerRuntime:
        if "runtime" not in state:
            state["runtime"] = runtime_factory(app.conf.profilekit_settings)
        return state["runtime"]

    @app.task(name=RUN_JOB, acks_late=True, reject_on_worker_lost=True)
    def run_job(job_id: str) -> str:
        from profilekit.runner import run_job as run

        rt = runtime()
        return run(job_id, sessions=rt.sessions, cache=rt.cache)

    @signals.worker_ready.connect(weak=False)
    def recover(sender=None, **_):
        """Re-enqueue what the database says is queued (the broker may have lost it) and the jobs of
        workers that died mid-run. A job already running elsewhere is skipped when claimed twice."""
        from profilekit.store import repo

        rt = runtime()
        with rt.sessions() as session:
            job_ids = repo.orphaned_jobs(session, stale_seconds=rt.settings.job_stale_seconds)
        for job_id in job_ids:
            enqueue(app, job_id)
        if job_ids:
            log.warning("re-enqueued %d job(s) on start-up: %s", len(job_ids), ", ".join(job_ids))

    return app
