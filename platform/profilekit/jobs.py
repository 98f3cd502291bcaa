"""Task names, queues and enqueueing shared by the CLI, the API and the workers. Imports no torch."""

from __future__ import annotations

RUN_JOB = "profilekit.run_job"
TRAINING_QUEUE = "training"
METHOD_ALIASES = {"xpeft-hard": "xpeft_hard", "xpeft-soft": "xpeft_soft", "head-only": "head_only",
                  "single-adapter": "single_adapter"}


def method_name(name: str) -> str:
    """Accept the command line's dashed spellings (xpeft-hard) as well as registry names (xpeft_hard)."""
    return METHOD_ALIASES.get(name, name.replace("-", "_"))


def enqueue(celery_app, job_id: str) -> None:
    celery_app.send_task(RUN_JOB, args=[job_id], queue=TRAINING_QUEUE)
