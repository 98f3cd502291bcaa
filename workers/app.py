"""The Celery app. Broker: the embedded default needs no server (kombu's SQLAlchemy transport on a
SQLite file); at scale PROFILEKIT_BROKER_URL points at Redis. Job state lives in the database."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from profilekit.jobs import TRAINING_QUEUE
from profilekit.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("profilekit", broker=settings.resolved_broker_url)
    app.conf.update(
        task_queues=[Queue(TRAINING_QUEUE)],
        task_default_queue=TRAINING_QUEUE,
        task_acks_late=True,  # a job is acknowledged when it ends, so a killed worker's job comes back
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # one training job at a time per worker process
        task_ignore_result=True,  # results and progress are written to the database
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    if settings.resolved_broker_url.startswith("redis"):
        # unacknowledged jobs return after this long: longer than the longest job
        app.conf.broker_transport_options = {"visibility_timeout": settings.visibility_timeout}
    app.conf.profilekit_settings = settings
    return app
