"""OTLP spans waiting for the rest of their trace, and the traces whose runs were written.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the pending-span and assembled-trace tables."""
    op.create_table(
        "otlp_pending",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("chunk", sa.String(32), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("closed_at", sa.Float),
        sa.Column("spans", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "chunk", name="pk_otlp_pending"),
    )
    op.create_table(
        "otlp_traces",
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("assembled_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", name="pk_otlp_traces"),
    )
    op.create_index("ix_otlp_traces_assembled_at", "otlp_traces", ["assembled_at"])


def downgrade() -> None:
    """Drop them (spans still pending are lost)."""
    op.drop_index("ix_otlp_traces_assembled_at", table_name="otlp_traces")
    op.drop_table("otlp_traces")
    op.drop_table("otlp_pending")
