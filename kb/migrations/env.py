"""Alembic environment: kb passes its own connection in ``config.attributes``."""

from alembic import context
import sqlalchemy as sa

from kb.models import Base
import kb.autoreply.models  # noqa: F401,E402  (registers the mail tables on Base.metadata)
import kb.followup.models  # noqa: F401,E402  (the follow-up tables)
import kb.jobs.models  # noqa: F401,E402  (the job table)
import kb.recovery.models  # noqa: F401,E402  (gesture types, bounds and the recovery ledger)
import kb.capture.models  # noqa: F401,E402  (example questions and synonym sets)
import kb.insights.models  # noqa: F401,E402  (portal visits, article days, rate counts)

config = context.config
target_metadata = Base.metadata


def run() -> None:
    """Run migrations on the connection kb handed over, or on ``sqlalchemy.url`` for autogenerate."""
    connection = config.attributes.get("connection")
    if connection is None:
        engine = sa.create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as connection:
            _migrate(connection)
    else:
        _migrate(connection)


def _migrate(connection) -> None:
    """Configure the context and run the migration scripts in one transaction."""
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
