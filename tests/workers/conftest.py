"""Backends for the job path: the embedded default (SQLite + SQLite broker) always, and PostgreSQL +
Redis when PROFILEKIT_TEST_DATABASE_URL / PROFILEKIT_TEST_REDIS_URL are set (CI sets both; with
CI=true a missing service fails the tests instead of skipping them)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import tiny_model


@dataclass
class Backend:
    name: str
    database_url: str
    broker_url: str
    data_dir: Path

    def env(self, **more) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROFILEKIT_")}
        return env | {"PROFILEKIT_DATABASE_URL": self.database_url, "PROFILEKIT_BROKER_URL": self.broker_url,
                      "PROFILEKIT_DATA_DIR": str(self.data_dir)} | more


def _required(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{variable} is not set, but CI must test against the real service")
        pytest.skip(f"{variable} not set")
    return value


def _postgres_schema(url: str) -> tuple[str, callable]:
    """A fresh schema per test, so runs never see each other's rows."""
    from sqlalchemy import create_engine, text

    schema = f"pk_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {url} is not usable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    separator = "&" if "?" in url else "?"

    def drop():
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()

    return f"{url}{separator}options=-csearch_path%3D{schema}", drop


def _redis(url: str) -> str:
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {url} is not usable: {exc}")
        pytest.skip(f"Redis not reachable: {exc}")
    return url


@pytest.fixture(params=["embedded", "scale"])
def backend(request, tmp_path) -> Backend:
    if request.param == "embedded":
        yield Backend("embedded", f"sqlite:///{tmp_path / 'profilekit.sqlite'}",
                      f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}", tmp_path)
        return
    database, drop = _postgres_schema(_required("PROFILEKIT_TEST_DATABASE_URL"))
    broker = _redis(_required("PROFILEKIT_TEST_REDIS_URL"))
    yield Backend("scale", database, broker, tmp_path)
    drop()


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny BERT saved as a local encoder folder, so workers load it like any configured backbone."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    tiny_model(vocab_size=tokenizer.vocab_size).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def settings(backend, tiny_backbone_dir):
    from profilekit.settings import Settings

    return Settings(database_url=backend.database_url, broker_url=backend.broker_url, data_dir=backend.data_dir,
                    backbone_path=tiny_backbone_dir, default_pool_size=12, job_stale_seconds=3)


@pytest.fixture
def sessions(settings):
    from profilekit.store import make_engine, make_session_factory
    from profilekit.store.migrate import upgrade

    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    yield make_session_factory(engine)
    engine.dispose()
