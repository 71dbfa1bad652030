"""Alembic environment: migrations run on the connection `Store.migrate` passes in.

For a developer's ``alembic revision --autogenerate`` (see ``federation/store/alembic.ini``),
the database comes from ``FEDERATION_DATABASE_URL`` instead.
"""

from alembic import context
from sqlalchemy import create_engine

from federation.settings import Settings
from federation.store.models import Base

connection = context.config.attributes.get("connection")


def _run(bound: object) -> None:
    context.configure(
        connection=bound,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    with create_engine(Settings().database_url).connect() as own:
        _run(own)
        own.commit()
