"""Alembic environment: migrates the engine handed over by `agent_exporter.migrations`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from agent_exporter.schema import metadata

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations with `agent-exporter db upgrade`, which supplies the database")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
