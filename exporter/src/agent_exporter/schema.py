"""The store's tables (SQLAlchemy Core). Alembic migrations in `migrations/` create them.

Timestamps are Unix seconds in double precision: the same arithmetic buckets hours, days and weeks
on SQLite and PostgreSQL, and Grafana's `$__unixEpochFilter` reads them directly.
A run's breakdowns (per-model usage, tools, phases) hang off `runs.run_id` with a position, so
inserting a run needs no generated key back from the database.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: what the summary figures read, led by the time range they filter on
FIGURE_COLUMNS = (
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
)
#: what the report reads, in the order it groups by
REPORT_COLUMNS = (
    "agent",
    "model",
    "issue_type",
    "status",
    "ended_at",
    "duration_seconds",
    "cost_usd",
    "input_tokens",
    "output_tokens",
)
#: the agents' own judgement, which few runs carry: a partial index holds only those runs
RATING_COLUMNS = ("agent", "model", "issue_type", "ended_at", "confidence", "quality_score")
RATED = "confidence IS NOT NULL OR quality_score IS NOT NULL"

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(128), primary_key=True),
    Column("agent", String(128), nullable=False),
    Column("agent_version", String(64)),
    Column("model", String(128)),
    Column("provider", String(128)),
    Column("issue_type", String(128)),
    Column("project", String(128)),
    Column("team", String(128)),
    Column("environment", String(128)),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cache_read_tokens", BigInteger),
    Column("cache_write_tokens", BigInteger),
    Column("reasoning_tokens", BigInteger),
    Column("cost_usd", Float),
    Column("cost_source", String(16), nullable=False),
    Column("llm_calls", Integer),
    Column("tool_calls", Integer),
    Column("retries", Integer),
    Column("quality_score", Float),
    Column("confidence", Float),
    Column("error_type", String(64)),
    Column("error_summary", Text),
    Column("labels", JSON),
    Column("received_at", Float, nullable=False),
    Column("body_hash", String(64), nullable=False),
    # newest-first listing and time-range scans; the dimension indexes serve filtered ranges
    Index(None, "ended_at", "run_id"),
    Index(None, "agent", "ended_at"),
    Index(None, "model", "ended_at"),
    Index(None, "status", "ended_at"),
    Index(None, "issue_type", "ended_at"),
    # migration 0002, for the read API (queries.py) at a million runs and more
    Index(None, "project", "ended_at"),
    # percentiles: ORDER BY duration LIMIT 2 OFFSET k walks this in order, filtering on ended_at
    Index(None, "duration_seconds", "ended_at"),
    # covering indexes: SQLite answers /summary and /report from them without reading the rows
    Index("ix_runs_figures", *FIGURE_COLUMNS),
    Index("ix_runs_report", *REPORT_COLUMNS),
    Index("ix_runs_ratings", *RATING_COLUMNS, sqlite_where=text(RATED), postgresql_where=text(RATED)),
)

run_usage = Table(
    "run_usage",
    metadata,
    Column("run_id", String(128), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("model", String(128), nullable=False),
    Column("provider", String(128)),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cache_read_tokens", BigInteger),
    Column("cache_write_tokens", BigInteger),
    Column("reasoning_tokens", BigInteger),
    Column("cost_usd", Float),
    Column("cost_source", String(16), nullable=False),
    Column("calls", Integer),
)

run_tools = Table(
    "run_tools",
    metadata,
    Column("run_id", String(128), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("calls", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("duration_seconds", Float),
)

run_phases = Table(
    "run_phases",
    metadata,
    Column("run_id", String(128), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("status", String(16)),
)


# --- SQLite only: the daily rollup the report reads (migration 0003) ---------------------------------

#: SQLite scans about four million index entries a second with a dozen aggregates each: a report over
#: a million runs took half a second. Triggers on `runs` (migration 0003) keep, per day, agent, model,
#: issue type and status, the sums the report needs, so that over whole days it reads a few rows per
#: group instead. PostgreSQL scans in parallel and has no rollup. NULL model and issue_type are ''
#: in the key (names are never empty). Its own metadata: it exists on SQLite only.
sqlite_metadata = MetaData(naming_convention=metadata.naming_convention)
ROLLUP_DAY_SECONDS = 86400
ROLLUP_KEYS = ("agent", "model", "issue_type", "status")
run_rollup = Table(
    "run_rollup",
    sqlite_metadata,
    Column("agent", String(128), primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("issue_type", String(128), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("day", Integer, primary_key=True),  # CAST(ended_at / 86400 AS INTEGER): UTC days
    Column("runs", Integer, nullable=False),
    Column("duration_sum", Float, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("token_runs", Integer, nullable=False),  # runs that reported input or output tokens
    Column("cost_sum", Float, nullable=False),
    Column("cost_runs", Integer, nullable=False),  # runs whose cost is known
    sqlite_with_rowid=False,
)
