"""`profilekit db upgrade`: apply the Alembic migrations in migrations/ to the configured database."""

from __future__ import annotations

from pathlib import Path

ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


def alembic_config(url: str):
    from alembic.config import Config

    if not ALEMBIC_INI.is_file():
        raise FileNotFoundError(f"alembic.ini not found at {ALEMBIC_INI}: run from a checkout of profilekit")
    config = Config(str(ALEMBIC_INI))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)
