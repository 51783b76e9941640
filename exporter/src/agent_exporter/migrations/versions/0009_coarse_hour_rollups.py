"""Coarse hour cells: an hour's cells folded by agent, model and status (`rollup_hour_coarse`),
written with the hour cells by the same commits, so that a read by hour whose filters and groups
name only those dimensions folds a dozen rows an hour, however many runs the hour holds.

This creates the table and folds the hour cells already made into it in one statement, then
merges each coarse cell's concatenated sketch into one (the hour cells' sketches appended).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agent_exporter.sketch import decode, encode

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# spelled out rather than imported from schema.py: a migration must not change when the schema does
DIMENSIONS = ("agent", "model", "status")
FACTS = (  # (name, integer, how the hour cells fold into a coarse one)
    ("runs", True, "sum"),
    ("duration_sum", False, "sum"),
    ("duration_max", False, "max"),
    ("input_tokens", True, "sum"),
    ("output_tokens", True, "sum"),
    ("cache_read_tokens", True, "sum"),
    ("cache_write_tokens", True, "sum"),
    ("reasoning_tokens", True, "sum"),
    ("token_runs", True, "sum"),
    ("cost_sum", False, "sum"),
    ("cost_runs", True, "sum"),
    ("llm_calls", True, "sum"),
    ("llm_runs", True, "sum"),
    ("tool_calls", True, "sum"),
    ("tool_runs", True, "sum"),
    ("confidence_sum", False, "sum"),
    ("confidence_runs", True, "sum"),
    ("quality_sum", False, "sum"),
    ("quality_runs", True, "sum"),
    ("pipeline_runs", True, "sum"),
    ("pipeline_attempts", True, "sum"),
    ("pipeline_first_pass", True, "sum"),
    ("debugging_runs", True, "sum"),
    ("debugging_cycles", True, "sum"),
    ("first_ended_at", False, "min"),
    ("last_ended_at", False, "max"),
)


def upgrade() -> None:
    op.create_table(
        "rollup_hour_coarse",
        sa.Column("bucket", sa.Integer(), nullable=False),
        *(sa.Column(d, sa.String(128), nullable=False) for d in DIMENSIONS),
        *(
            sa.Column(f, sa.BigInteger() if integer else sa.Float(), nullable=False)
            for f, integer, _ in FACTS
        ),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", *DIMENSIONS, name="pk_rollup_hour_coarse"),
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    sketches = "CAST(group_concat(sketch, x'') AS BLOB)" if sqlite else "string_agg(sketch, ''::bytea)"
    keys = ", ".join(("bucket", *DIMENSIONS))
    facts = ", ".join(f for f, _, _ in FACTS)
    folds = ", ".join(f"{how}({f})" for f, _, how in FACTS)
    bind.execute(
        sa.text(
            f"INSERT INTO rollup_hour_coarse ({keys}, {facts}, sketch) "  # noqa: S608
            f"SELECT {keys}, {folds}, {sketches} FROM rollup_hour GROUP BY {keys}"
        )
    )
    match = " AND ".join(f"{k} = :{k}" for k in ("bucket", *DIMENSIONS))
    update = sa.text(f"UPDATE rollup_hour_coarse SET sketch = :sketch WHERE {match}")  # noqa: S608
    rows = bind.execute(sa.text(f"SELECT {keys}, sketch FROM rollup_hour_coarse")).all()  # noqa: S608
    merged = [
        {
            **dict(zip(("bucket", *DIMENSIONS), row[:-1], strict=True)),
            "sketch": encode(decode(bytes(row[-1]))),
        }
        for row in rows
    ]
    if merged:
        bind.execute(update, merged)


def downgrade() -> None:
    op.drop_table("rollup_hour_coarse")
