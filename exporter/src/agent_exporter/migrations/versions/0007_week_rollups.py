"""Week cells: the rollups per ISO week (Monday to Sunday, UTC) and per dimension, folded from the
day cells by compaction, so that a read over months folds a seventh of the cells it would over days.

This creates the tables and marks every week that has day cells; their cells are made afterwards
by `agent_exporter.migrations.upgrade` (what `agent-exporter db upgrade` runs), a few weeks per
transaction with progress, or else by the service's compaction. Until a week's cells are made,
reads take that week from its days: the figures are the same either way.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
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
FACTS = (  # (name, integer), in the order of the day cells' columns
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
    ("pipeline_runs", True),
    ("pipeline_attempts", True),
    ("pipeline_first_pass", True),
    ("debugging_runs", True),
    ("debugging_cycles", True),
    ("first_ended_at", False),
    ("last_ended_at", False),
)
#: week 0 begins on day 4 after the epoch, 1970-01-05, a Monday
FIRST_MONDAY = 4


def upgrade() -> None:
    op.create_table(
        "rollup_week",
        sa.Column("bucket", sa.Integer(), nullable=False),
        *(sa.Column(d, sa.String(128), nullable=False) for d in DIMENSIONS),
        *(sa.Column(f, sa.BigInteger() if integer else sa.Float(), nullable=False) for f, integer in FACTS),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", *DIMENSIONS, name="pk_rollup_week"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rollup_dirty_weeks",
        sa.Column("week", sa.Integer(), nullable=False),
        sa.Column("writes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("week", name="pk_rollup_dirty_weeks"),
    )
    days = op.get_bind().execute(sa.text("SELECT DISTINCT bucket FROM rollup_day")).scalars()
    weeks = sorted({(int(day) - FIRST_MONDAY) // 7 for day in days})
    if weeks:
        op.get_bind().execute(
            sa.text("INSERT INTO rollup_dirty_weeks (week, writes) VALUES (:week, 1)"),
            [{"week": week} for week in weeks],
        )


def downgrade() -> None:
    op.drop_table("rollup_dirty_weeks")
    op.drop_table("rollup_week")
