"""The seeds' fields: sessions and sub-runs, counts, sub-agents, pipeline attempts, debugging cycles,
scores given after a run, and the rollup facts of the seed-004 questions.

Runs stored before this have none of these (their columns are null, their lists empty), so the
rollup cells they made stay right with the new facts at 0: nothing is rebuilt.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# spelled out rather than imported from schema.py: a migration must not change when the schema does
RUN_COLUMNS = (
    ("session_id", sa.String(128)),
    ("parent_run_id", sa.String(128)),
    ("counts", sa.JSON()),
    ("pipeline_attempt_count", sa.Integer()),
    ("pipeline_first_pass", sa.Integer()),
    ("debugging_cycle_count", sa.Integer()),
)
FACTS = ("pipeline_runs", "pipeline_attempts", "pipeline_first_pass", "debugging_runs", "debugging_cycles")
ROLLUPS = ("rollup_hour", "rollup_day")


def _child(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=f"fk_{name}_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "position", name=f"pk_{name}"),
    )


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name, kind in RUN_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    for name, columns in (
        ("ix_runs_parent_run_id", ["parent_run_id"]),
        ("ix_runs_session_id_ended_at", ["session_id", "ended_at"]),
    ):
        present = sa.text(f"{columns[0]} IS NOT NULL")  # most runs have none: partial (schema.py)
        op.create_index(name, "runs", columns, sqlite_where=present, postgresql_where=present)
    for table in ROLLUPS:
        with op.batch_alter_table(table) as batch:
            for fact in FACTS:
                batch.add_column(sa.Column(fact, sa.BigInteger(), nullable=False, server_default="0"))
    _child(
        "run_subagents",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("duration_seconds", sa.Float()),
    )
    _child(
        "run_pipeline_attempts",
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("id", sa.String(128)),
        sa.Column("commit_sha", sa.String(128)),
        sa.Column("duration_seconds", sa.Float()),
    )
    _child(
        "run_debugging_cycles",
        sa.Column("agent", sa.String(128)),
        sa.Column("error_type", sa.String(64)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column("duration_seconds", sa.Float()),
    )
    op.create_table(
        "run_scores",
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("score_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", sa.String(128)),
        sa.Column("comment", sa.Text()),
        sa.Column("author", sa.String(128)),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_run_scores_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "score_id", name="pk_run_scores"),
    )
    op.create_index("ix_run_scores_name_received_at", "run_scores", ["name", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_run_scores_name_received_at", "run_scores")
    for table in ("run_scores", "run_debugging_cycles", "run_pipeline_attempts", "run_subagents"):
        op.drop_table(table)
    for table in ROLLUPS:
        with op.batch_alter_table(table) as batch:
            for fact in FACTS:
                batch.drop_column(fact)
    op.drop_index("ix_runs_session_id_ended_at", "runs")
    op.drop_index("ix_runs_parent_run_id", "runs")
    with op.batch_alter_table("runs") as batch:
        for name, _ in RUN_COLUMNS:
            batch.drop_column(name)
