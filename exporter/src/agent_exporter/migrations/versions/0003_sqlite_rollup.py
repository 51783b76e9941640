"""SQLite only: the daily rollup of runs that the report reads, kept by triggers on runs.

A report over every run read each run's index entry and a dozen aggregates: half a second at a
million runs. The rollup holds, per (agent, model, issue_type, status, UTC day), the sums the report
needs; triggers keep it exact through inserts, deletes and updates (reprice, manual SQL), so nothing
in Python has to remember it. PostgreSQL is left as it is (it scans in parallel, and replicas would
contend on the rollup's rows).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

# ruff: noqa: S608 (the SQL here is built from this file's own names, never from input)

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# spelled out rather than imported from schema.py: a migration must not change when the schema does
KEY = "agent, model, issue_type, status, day"
COLUMNS = f"{KEY}, runs, duration_sum, input_tokens, output_tokens, token_runs, cost_sum, cost_runs"
ADDED = ", ".join(
    f"{name} = {name} + excluded.{name}"
    for name in (
        "runs",
        "duration_sum",
        "input_tokens",
        "output_tokens",
        "token_runs",
        "cost_sum",
        "cost_runs",
    )
)


def _values(row: str) -> str:
    """The rollup row of one run, `row` being NEW or OLD."""
    return (
        f"{row}.agent, coalesce({row}.model, ''), coalesce({row}.issue_type, ''), {row}.status, "
        f"CAST({row}.ended_at / 86400 AS INTEGER), 1, {row}.duration_seconds, "
        f"coalesce({row}.input_tokens, 0), coalesce({row}.output_tokens, 0), "
        f"{row}.input_tokens IS NOT NULL OR {row}.output_tokens IS NOT NULL, "
        f"coalesce({row}.cost_usd, 0.0), {row}.cost_usd IS NOT NULL"
    )


ADD_NEW = (
    f"INSERT INTO run_rollup ({COLUMNS}) VALUES ({_values('NEW')}) ON CONFLICT ({KEY}) DO UPDATE SET {ADDED};"
)
_OLD_KEY = (
    "agent = OLD.agent AND model = coalesce(OLD.model, '') AND issue_type = coalesce(OLD.issue_type, '') "
    "AND status = OLD.status AND day = CAST(OLD.ended_at / 86400 AS INTEGER)"
)
REMOVE_OLD = (
    "UPDATE run_rollup SET runs = runs - 1, duration_sum = duration_sum - OLD.duration_seconds, "
    "input_tokens = input_tokens - coalesce(OLD.input_tokens, 0), "
    "output_tokens = output_tokens - coalesce(OLD.output_tokens, 0), "
    "token_runs = token_runs - (OLD.input_tokens IS NOT NULL OR OLD.output_tokens IS NOT NULL), "
    "cost_sum = cost_sum - coalesce(OLD.cost_usd, 0.0), cost_runs = cost_runs - (OLD.cost_usd IS NOT NULL) "
    f"WHERE {_OLD_KEY}; "
    f"DELETE FROM run_rollup WHERE {_OLD_KEY} AND runs <= 0;"
)
WATCHED = (
    "agent, model, issue_type, status, ended_at, duration_seconds, input_tokens, output_tokens, cost_usd"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_table(
        "run_rollup",
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("issue_type", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("token_runs", sa.Integer(), nullable=False),
        sa.Column("cost_sum", sa.Float(), nullable=False),
        sa.Column("cost_runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agent", "model", "issue_type", "status", "day", name="pk_run_rollup"),
        sqlite_with_rowid=False,
    )
    op.execute(
        f"INSERT INTO run_rollup ({COLUMNS}) "
        "SELECT agent, coalesce(model, ''), coalesce(issue_type, ''), status, "
        "CAST(ended_at / 86400 AS INTEGER), "
        "count(*), total(duration_seconds), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
        "count(coalesce(input_tokens, output_tokens)), total(cost_usd), count(cost_usd) "
        "FROM runs GROUP BY 1, 2, 3, 4, 5"
    )
    op.execute(f"CREATE TRIGGER run_rollup_insert AFTER INSERT ON runs BEGIN {ADD_NEW} END")
    op.execute(f"CREATE TRIGGER run_rollup_delete AFTER DELETE ON runs BEGIN {REMOVE_OLD} END")
    op.execute(
        f"CREATE TRIGGER run_rollup_update AFTER UPDATE OF {WATCHED} ON runs BEGIN {REMOVE_OLD} {ADD_NEW} END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("run_rollup_update", "run_rollup_delete", "run_rollup_insert"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.drop_table("run_rollup")
