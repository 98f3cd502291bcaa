"""`profilekit worker`: one Celery worker process that loads the backbone once and keeps it."""

from __future__ import annotations

from profilekit.jobs import TRAINING_QUEUE, make_celery
from profilekit.settings import get_settings
from workers.tasks import register_tasks


def start_worker(*, pool: str = "solo", concurrency: int = 1, loglevel: str = "INFO") -> None:
    """GPU workers use the solo pool (one process owns the device); CPU workers may use prefork."""
    import warnings

    from celery.exceptions import SecurityWarning

    from profilekit.store.migrate import upgrade

    warnings.filterwarnings("ignore", category=SecurityWarning)  # containers run workers as root

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    app = register_tasks(make_celery(settings))
    app.worker_main(["worker", f"--pool={pool}", f"--concurrency={concurrency}", f"--loglevel={loglevel}",
                     "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", TRAINING_QUEUE,
                     "-n", "profilekit@%h"])
