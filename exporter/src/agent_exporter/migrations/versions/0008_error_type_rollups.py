"""`error_type` in the rollups' keys: the health digest counts a window's failed runs by error type
from the cells, not from the runs (at ten million runs a day's failures are a hundred thousand).

The cells already made get an empty error type ('', as a run without one has) and the days of
stored runs are noted, as migration 0004 does, for `agent_exporter.migrations.upgrade` (what
`agent-exporter db upgrade` runs) to rebuild from the runs, a day per transaction with progress,
resuming where it stopped. Cells of days whose runs retention deleted keep their history, with the
error type unknown.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agent_exporter.migrations import note_stored_days

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# spelled out rather than imported from schema.py: a migration must not change when the schema does
DIMENSIONS = (
    "agent",
    "model",
    "provider",
    "issue_type",
    "status",
    "project",
    "team",
    "environment",
    "cost_source",
)
ROLLUPS = ("rollup_hour", "rollup_day", "rollup_week")


def _key(table: str, dimensions: tuple[str, ...]) -> None:
    """Give `table` the primary key (bucket, *dimensions), its cells kept."""
    with op.batch_alter_table(table, table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_constraint(f"pk_{table}", type_="primary")
        batch.create_primary_key(f"pk_{table}", ["bucket", *dimensions])


def upgrade() -> None:
    for table in ROLLUPS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("error_type", sa.String(128), nullable=False, server_default=""))
        _key(table, (*DIMENSIONS, "error_type"))
    note_stored_days(op.get_bind())


def downgrade() -> None:
    for table in ROLLUPS:
        # the cells of one key without its error type fold together: rebuild them (db upgrade)
        op.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608
        _key(table, DIMENSIONS)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("error_type")
