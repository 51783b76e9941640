"""Edge cells: five minutes of runs per agent, model, status, issue type and error type
(`rollup_edge`), written with the hour cells by the same commits, so that a range's partial hours at
either end are read from cells to the five minutes, and from the runs for under five minutes only.

This creates the table and notes the days of the stored runs, as migration 0004 does, for
`agent_exporter.migrations.upgrade` (what `agent-exporter db upgrade` runs) to build from the runs, a
day per transaction with progress, resuming where it stopped. Until a day is built its edge cells
are missing, so the new version's reads wait for the build: `serve` refuses a store whose build is
pending, as it does after 0004 and 0008.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agent_exporter.migrations import note_stored_days

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# spelled out rather than imported from schema.py: a migration must not change when the schema does
DIMENSIONS = ("agent", "model", "status", "issue_type", "error_type")
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
    ("pipeline_runs", True),
    ("pipeline_attempts", True),
    ("pipeline_first_pass", True),
    ("debugging_runs", True),
    ("debugging_cycles", True),
    ("first_ended_at", False),
    ("last_ended_at", False),
)


def upgrade() -> None:
    op.create_table(
        "rollup_edge",
        sa.Column("bucket", sa.Integer(), nullable=False),
        *(sa.Column(d, sa.String(128), nullable=False) for d in DIMENSIONS),
        *(sa.Column(f, sa.BigInteger() if integer else sa.Float(), nullable=False) for f, integer in FACTS),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", *DIMENSIONS, name="pk_rollup_edge"),
        sqlite_with_rowid=False,
    )
    note_stored_days(op.get_bind())


def downgrade() -> None:
    op.drop_table("rollup_edge")
