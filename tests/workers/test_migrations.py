"""A migrated database has exactly the schema of the models (Alembic's autogenerate finds no diff), and
concurrent upgrades on PostgreSQL are safe."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from profilekit.store import Base, make_engine
from profilekit.store.migrate import alembic_config, upgrade


def test_upgraded_database_matches_the_models(backend):
    url = backend.database_url
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert {"pools", "profiles", "examples", "artifacts", "jobs", "job_events"} <= tables
    upgrade(url)  # applying again is a no-op


def test_db_upgrade_command_creates_the_embedded_database(tmp_path, monkeypatch):
    from profilekit.cli import main
    from profilekit.settings import get_settings

    monkeypatch.setenv("PROFILEKIT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PROFILEKIT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert main(["db", "upgrade"]) == 0
    finally:
        get_settings.cache_clear()
    assert (tmp_path / "profilekit.sqlite").is_file()


@pytest.fixture
def empty_postgres_database():
    """A PostgreSQL database of its own, created empty for the test and dropped after it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tests.workers.conftest import _required

    url = make_url(_required("PROFILEKIT_TEST_DATABASE_URL"))
    name = f"pk_upgrade_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"cannot create a PostgreSQL database at {url.render_as_string()}: {exc}")
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_two_processes_upgrading_an_empty_database_at_once_both_succeed(empty_postgres_database, tmp_path):
    """What every replica's start script does at the same moment: the advisory lock lets one migrate while
    the other waits, then finds the schema at head."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFILEKIT_")}
    env |= {"PROFILEKIT_DATABASE_URL": empty_postgres_database, "PROFILEKIT_DATA_DIR": str(tmp_path)}
    command = [str(Path(sys.executable).parent / "profilekit"), "db", "upgrade"]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    engine = make_engine(empty_postgres_database)
    with engine.connect() as connection:
        [version] = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()
    assert version == ScriptDirectory.from_config(alembic_config(empty_postgres_database)).get_current_head()
