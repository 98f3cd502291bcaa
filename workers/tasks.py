"""Tasks: a job id in, profilekit.runner does the work; state and retries live in the database."""

from __future__ import annotations

import logging
import threading

from celery import Celery, signals

from profilekit.jobs import RUN_JOB, enqueue, waiting_messages
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
        self.stopping = threading.Event()  # set when the worker shuts down: heartbeats end, the job is handed back


def beat(runtime: WorkerRuntime) -> None:
    """Write this worker's heartbeat every `worker_heartbeat_seconds` until it stops. It beats while a job
    trains (a thread of its own), so a live worker whose running job's heartbeat is old is hung."""
    from profilekit.runner import worker_name
    from profilekit.store import repo

    while not runtime.stopping.is_set():
        try:
            with runtime.sessions() as session:
                repo.beat_worker(session, name=worker_name())
        except Exception:  # the database may be briefly away; the next beat tries again
            log.warning("worker heartbeat failed", exc_info=True)
        runtime.stopping.wait(runtime.settings.worker_heartbeat_seconds)


def reconcile(runtime: WorkerRuntime, app: Celery) -> None:
    """Every `reconcile_seconds`, bring back what nothing else would:
    - running jobs whose heartbeat is older than `job_stale_seconds`: a worker killed mid-job leaves its job
      running in the database while the broker holds its message unacknowledged (Redis, for the
      visibility timeout) or consumed (SQLite transport). Every worker runs this; the conditional update in
      `repo.requeue_stale` lets exactly one of them re-queue each job.
    - queued jobs older than `job_stale_seconds` while the broker's queue is empty: the broker lost their
      messages (flushed, restarted without persistence). A duplicate send is harmless: one claim wins."""
    from profilekit.store import repo

    settings = runtime.settings
    while not runtime.stopping.wait(settings.reconcile_seconds):
        try:
            with runtime.sessions() as session:
                job_ids = repo.requeue_stale(session, stale_seconds=settings.job_stale_seconds)
                if not job_ids and waiting_messages(app) == 0:
                    job_ids = repo.waiting_jobs(session, older_than=settings.job_stale_seconds)
            for job_id in job_ids:
                enqueue(app, job_id)
            if job_ids:
                log.warning("re-queued %d orphaned job(s): %s", len(job_ids), ", ".join(job_ids))
        except Exception:  # the database or the broker may be briefly away; the next round tries again
            log.warning("reconciling orphaned jobs failed", exc_info=True)


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
        state = run(job_id, sessions=rt.sessions, cache=rt.cache, stopping=rt.stopping)
        if state == "queued":  # handed back by a stopping worker: a message for whichever worker runs next
            enqueue(app, job_id)
        return state

    @signals.worker_shutting_down.connect(weak=False)
    def shutting_down(sig=None, how=None, **_):
        """SIGTERM or Ctrl-C (Celery's warm shutdown waits for the running task): tell the running job to
        hand itself back at its next step, so the worker exits within seconds and leaves no job running."""
        if "runtime" in state:
            log.warning("%s shutdown (%s): handing the running job back to the queue", how, sig)
            state["runtime"].stopping.set()

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
        threading.Thread(target=beat, args=(rt,), name="profilekit-heartbeat", daemon=True).start()
        threading.Thread(target=reconcile, args=(rt, app), name="profilekit-reconciler", daemon=True).start()

    @signals.worker_shutdown.connect(weak=False)
    def stopped(sender=None, **_):
        """A clean stop: the dashboard shows the worker stopped, not lost."""
        from profilekit.runner import worker_name
        from profilekit.store import repo

        if "runtime" in state:
            state["runtime"].stopping.set()
            with state["runtime"].sessions() as session:
                repo.beat_worker(session, name=worker_name(), stopped=True)

    return app
