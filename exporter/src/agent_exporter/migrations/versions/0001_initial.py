"""Runs and their breakdowns (usage, tools, phases).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _child_key() -> list[sa.Column[object]]:
    return [
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("agent_version", sa.String(64)),
        sa.Column("model", sa.String(128)),
        sa.Column("provider", sa.String(128)),
        sa.Column("issue_type", sa.String(128)),
        sa.Column("project", sa.String(128)),
        sa.Column("team", sa.String(128)),
        sa.Column("environment", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger()),
        sa.Column("output_tokens", sa.BigInteger()),
        sa.Column("cache_read_tokens", sa.BigInteger()),
        sa.Column("cache_write_tokens", sa.BigInteger()),
        sa.Column("reasoning_tokens", sa.BigInteger()),
        sa.Column("cost_usd", sa.Float()),
        sa.Column("cost_source", sa.String(16), nullable=False),
        sa.Column("llm_calls", sa.Integer()),
        sa.Column("tool_calls", sa.Integer()),
        sa.Column("retries", sa.Integer()),
        sa.Column("quality_score", sa.Float()),
        sa.Column("confidence", sa.Float()),
        sa.Column("error_type", sa.String(64)),
        sa.Column("error_summary", sa.Text()),
        sa.Column("labels", sa.JSON()),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_ended_at_run_id", "runs", ["ended_at", "run_id"])
    op.create_index("ix_runs_agent_ended_at", "runs", ["agent", "ended_at"])
    op.create_index("ix_runs_model_ended_at", "runs", ["model", "ended_at"])
    op.create_index("ix_runs_status_ended_at", "runs", ["status", "ended_at"])
    op.create_index("ix_runs_issue_type_ended_at", "runs", ["issue_type", "ended_at"])

    op.create_table(
        "run_usage",
        *_child_key(),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("provider", sa.String(128)),
        sa.Column("input_tokens", sa.BigInteger()),
        sa.Column("output_tokens", sa.BigInteger()),
        sa.Column("cache_read_tokens", sa.BigInteger()),
        sa.Column("cache_write_tokens", sa.BigInteger()),
        sa.Column("reasoning_tokens", sa.BigInteger()),
        sa.Column("cost_usd", sa.Float()),
        sa.Column("cost_source", sa.String(16), nullable=False),
        sa.Column("calls", sa.Integer()),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_run_usage_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "position", name="pk_run_usage"),
    )
    op.create_table(
        "run_tools",
        *_child_key(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("duration_seconds", sa.Float()),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_run_tools_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "position", name="pk_run_tools"),
    )
    op.create_table(
        "run_phases",
        *_child_key(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16)),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_run_phases_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "position", name="pk_run_phases"),
    )


def downgrade() -> None:
    op.drop_table("run_phases")
    op.drop_table("run_tools")
    op.drop_table("run_usage")
    op.drop_table("runs")
