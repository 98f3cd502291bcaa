"""`profilekit worker`: one Celery worker process that loads the backbone once and keeps it."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from profilekit.jobs import TRAINING_QUEUE, make_celery
from profilekit.settings import get_settings
from workers.tasks import register_tasks

log = logging.getLogger(__name__)


def exit_with_parent(parent_pid: int, every: float = 0.5) -> None:
    """Stop as on SIGTERM (the running job is handed back) once `parent_pid` is no longer our parent: the
    embedded worker of `profilekit serve` must not outlive it, even when it is SIGKILLed. A thread that
    watches our parent id works on every OS, unlike Linux's parent-death signal."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(every)
        log.warning("parent process %d is gone: stopping", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="profilekit-parent-watch", daemon=True).start()


def start_worker(*, pool: str = "solo", concurrency: int = 1, loglevel: str = "INFO",
                 parent_pid: int | None = None) -> None:
    """GPU workers use the solo pool (one process owns the device); CPU workers may use prefork."""
    import warnings

    from celery.exceptions import SecurityWarning

    from profilekit.store.migrate import upgrade

    warnings.filterwarnings("ignore", category=SecurityWarning)  # containers run workers as root

    if parent_pid is not None:
        exit_with_parent(parent_pid)
    settings = get_settings()
    upgrade(settings.resolved_database_url)
    app = register_tasks(make_celery(settings))
    app.worker_main(["worker", f"--pool={pool}", f"--concurrency={concurrency}", f"--loglevel={loglevel}",
                     "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", TRAINING_QUEUE,
                     "-n", "profilekit@%h"])
