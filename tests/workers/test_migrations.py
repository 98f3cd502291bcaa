"""A migrated database has exactly the schema of the models (Alembic's autogenerate finds no diff)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from profilekit.store import Base, make_engine
from profilekit.store.migrate import upgrade


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
