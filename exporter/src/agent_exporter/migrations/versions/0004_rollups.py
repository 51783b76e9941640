"""Rollups per UTC hour and day and per dimension, on both stores (they replace SQLite's daily
rollup of migration 0003 and the covering indexes the reads scanned).

This creates the tables and notes which days of runs the store already holds; the cells of those
days are built afterwards, a day per transaction, by `agent_exporter.migrations.upgrade` (what
`agent-exporter db upgrade` runs), which resumes where it stopped and shows its progress.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from importlib import import_module

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
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
FACTS = (  # (name, integer)
    ("runs", True),
    ("duration_sum", False),
    ("duration_max", False),
    ("input_tokens", True),
    ("output_tokens", True),
    ("cache_read_tokens", True),
    ("cache_write_tokens", True),
    ("reasoning_tokens", True),
    ("token_runs", True),
    ("cost_sum", False),
    ("cost_runs", True),
    ("llm_calls", True),
    ("llm_runs", True),
    ("tool_calls", True),
    ("tool_runs", True),
    ("confidence_sum", False),
    ("confidence_runs", True),
    ("quality_sum", False),
    ("quality_runs", True),
    ("first_ended_at", False),
    ("last_ended_at", False),
)
SCANNED_INDEXES = ("ix_runs_ratings", "ix_runs_report", "ix_runs_figures")


def _rollup_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("bucket", sa.Integer(), nullable=False),
        *(sa.Column(d, sa.String(128), nullable=False) for d in DIMENSIONS),
        *(sa.Column(f, sa.BigInteger() if integer else sa.Float(), nullable=False) for f, integer in FACTS),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", *DIMENSIONS, name=f"pk_{name}"),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for trigger in ("run_rollup_update", "run_rollup_delete", "run_rollup_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.drop_table("run_rollup")
    for index in SCANNED_INDEXES:
        op.drop_index(index, "runs")
    _rollup_table("rollup_hour")
    _rollup_table("rollup_day")
    op.create_table(
        "rollup_dirty_days",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("writes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_rollup_dirty_days"),
    )
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_rollup_state"),
    )
    # the days to build: probes of the ended_at index (min and max together would scan it)
    bind = op.get_bind()
    first = bind.execute(sa.text("SELECT ended_at FROM runs ORDER BY ended_at LIMIT 1")).scalar()
    last = bind.execute(sa.text("SELECT ended_at FROM runs ORDER BY ended_at DESC LIMIT 1")).scalar()
    if first is not None and last is not None:
        op.execute(
            sa.text(
                "INSERT INTO rollup_state (name, value) VALUES "
                "('backfill_next_day', :first), ('backfill_last_day', :last)"
            ).bindparams(first=float(first // 86400), last=float(last // 86400))
        )


def downgrade() -> None:
    op.drop_table("rollup_state")
    op.drop_table("rollup_dirty_days")
    op.drop_table("rollup_day")
    op.drop_table("rollup_hour")
    indexes = import_module("agent_exporter.migrations.versions.0002_read_indexes")
    op.create_index("ix_runs_figures", "runs", indexes.FIGURE_COLUMNS)
    op.create_index("ix_runs_report", "runs", indexes.REPORT_COLUMNS)
    op.create_index(
        "ix_runs_ratings",
        "runs",
        indexes.RATING_COLUMNS,
        sqlite_where=sa.text(indexes.RATED),
        postgresql_where=sa.text(indexes.RATED),
    )
    if op.get_bind().dialect.name == "sqlite":
        import_module("agent_exporter.migrations.versions.0003_sqlite_rollup").upgrade()
