"""Thin Celery layer: the app with its queue, and tasks that take ids and call profilekit functions."""
