"""Thin Celery layer: tasks that take job ids and call profilekit.runner; the app and its queue come
from profilekit.jobs (shared with the API and the command line, which only send)."""
