"""`profilekit db upgrade`: apply the Alembic migrations in migrations/ to the configured database.

Every process that starts (API replicas, workers, the migration job) may upgrade at once, so on PostgreSQL
the upgrade holds an advisory lock: the first process migrates, the others wait for it and then find the
schema at head. SQLite needs no lock (one machine; its own file lock serialises writers)."""

from __future__ import annotations

from pathlib import Path

ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"
# pg_advisory_lock's key for schema upgrades: fixed, so every profilekit process contends for the same lock
UPGRADE_LOCK_KEY = 0x70726F66696C6B  # "profilk" in ASCII


def alembic_config(url: str):
    from alembic.config import Config

    if not ALEMBIC_INI.is_file():
        raise FileNotFoundError(f"alembic.ini not found at {ALEMBIC_INI}: run from a checkout of profilekit")
    config = Config(str(ALEMBIC_INI))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command
    from sqlalchemy import text

    from profilekit.store.session import make_engine

    config = alembic_config(url)
    if not url.startswith("postgresql"):
        command.upgrade(config, revision)
        return
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            # a session-level lock: it outlives the commits below and ends with the connection at the latest
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
            connection.commit()
            try:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": UPGRADE_LOCK_KEY})
                connection.commit()
    finally:
        engine.dispose()
