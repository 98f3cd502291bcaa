"""The reliability scenarios run against the API served by a real uvicorn (tests/api/conftest.py), on the
embedded default and on PostgreSQL + Redis."""

from tests.api.conftest import backend, server, settings, tiny_backbone_dir  # noqa: F401  (fixtures)
