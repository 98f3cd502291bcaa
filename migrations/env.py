"""Alembic environment: the URL comes from the caller (profilekit.store.migrate) or from settings."""

from alembic import context

from profilekit.settings import get_settings
from profilekit.store.models import Base
from profilekit.store.session import make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    url = config.attributes.get("url") or get_settings().resolved_database_url
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection, url)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection, url)
    engine.dispose()


def _run(connection, url: str) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=url.startswith("sqlite"), compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
