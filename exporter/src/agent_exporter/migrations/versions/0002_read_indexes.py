"""Indexes for the read API: project filter, duration percentiles, covering summary and report,
and the runs that carry ratings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# spelled out rather than imported from schema.py: a migration must not change when the schema does
FIGURE_COLUMNS = [
    "ended_at",
    "status",
    "duration_seconds",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "llm_calls",
    "tool_calls",
]
REPORT_COLUMNS = [
    "agent",
    "model",
    "issue_type",
    "status",
    "ended_at",
    "duration_seconds",
    "cost_usd",
    "input_tokens",
    "output_tokens",
]
RATING_COLUMNS = ["agent", "model", "issue_type", "ended_at", "confidence", "quality_score"]
RATED = "confidence IS NOT NULL OR quality_score IS NOT NULL"


def upgrade() -> None:
    op.create_index("ix_runs_project_ended_at", "runs", ["project", "ended_at"])
    op.create_index("ix_runs_duration_seconds_ended_at", "runs", ["duration_seconds", "ended_at"])
    op.create_index("ix_runs_figures", "runs", FIGURE_COLUMNS)
    op.create_index("ix_runs_report", "runs", REPORT_COLUMNS)
    op.create_index(
        "ix_runs_ratings",
        "runs",
        RATING_COLUMNS,
        sqlite_where=sa.text(RATED),
        postgresql_where=sa.text(RATED),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_ratings", "runs")
    op.drop_index("ix_runs_report", "runs")
    op.drop_index("ix_runs_figures", "runs")
    op.drop_index("ix_runs_duration_seconds_ended_at", "runs")
    op.drop_index("ix_runs_project_ended_at", "runs")
