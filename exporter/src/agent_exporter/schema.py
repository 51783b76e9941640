"""The store's tables (SQLAlchemy Core). Alembic migrations in `migrations/` create them.

Timestamps are Unix seconds in double precision: the same arithmetic buckets hours, days and weeks
on SQLite and PostgreSQL, and Grafana's `$__unixEpochFilter` reads them directly.
A run's breakdowns (per-model usage, tools, phases) hang off `runs.run_id` with a position, so
inserting a run needs no generated key back from the database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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
    # migration 0006 (the seeds' fields): sessions, sub-runs, counts, and what the rollups fold of
    # the pipeline attempts and debugging cycles (record.Run's properties of the same names)
    Column("session_id", String(128)),
    Column("parent_run_id", String(128)),
    Column("counts", JSON),
    Column("pipeline_attempt_count", Integer),
    Column("pipeline_first_pass", Integer),
    Column("debugging_cycle_count", Integer),
    # newest-first listing and time-range scans; the dimension indexes serve filtered ranges
    Index(None, "ended_at", "run_id"),
    Index(None, "agent", "ended_at"),
    Index(None, "model", "ended_at"),
    Index(None, "status", "ended_at"),
    Index(None, "issue_type", "ended_at"),
    Index(None, "project", "ended_at"),
    # run lists sorted by duration (the web pages) walk this
    Index(None, "duration_seconds", "ended_at"),
    # a parent's children, a session's runs: partial, since most runs have neither, and a full
    # index of NULLs tells SQLite's planner that `parent_run_id = ?` matches every run (after
    # ANALYZE it walked the whole (ended_at, run_id) index instead: 0.4 s a run page at 1M runs)
    Index(
        None,
        "parent_run_id",
        sqlite_where=text("parent_run_id IS NOT NULL"),
        postgresql_where=text("parent_run_id IS NOT NULL"),
    ),
    Index(
        None,
        "session_id",
        "ended_at",
        sqlite_where=text("session_id IS NOT NULL"),
        postgresql_where=text("session_id IS NOT NULL"),
    ),
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

# --- the seeds' breakdowns and scores (migration 0006) ----------------------------------------------

run_subagents = Table(
    "run_subagents",
    metadata,
    Column("run_id", String(128), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("successes", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("duration_seconds", Float),
)

run_pipeline_attempts = Table(
    "run_pipeline_attempts",
    metadata,
    Column("run_id", String(128), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("id", String(128)),
    Column("commit_sha", String(128)),
    Column("duration_seconds", Float),
)

run_debugging_cycles = Table(
    "run_debugging_cycles",
    metadata,
    Column("run_id", String(128), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("agent", String(128)),
    Column("error_type", String(64)),
    Column("attempts", Integer, nullable=False),
    Column("resolved", Integer, nullable=False),  # 0 or 1 on both stores
    Column("duration_seconds", Float),
)

#: scores given after a run ended; (run_id, score_id) is the idempotency key
run_scores = Table(
    "run_scores",
    metadata,
    Column("run_id", String(128), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("score_id", String(128), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("value", Float, nullable=False),
    Column("source", String(128)),
    Column("comment", Text),
    Column("author", String(128)),
    Column("received_at", Float, nullable=False),
    Column("body_hash", String(64), nullable=False),
    Index(None, "name", "received_at"),
)


# --- rollups (migration 0004) ----------------------------------------------------------------------

#: the run fields a rollup cell is keyed on, besides its time bucket: every filter and grouping of
#: the read API, cost_source, and error_type (migration 0008: the health digest's failed runs by
#: error type). A missing value is '' (names are never empty).
ROLLUP_DIMENSIONS: Final = (
    "agent",
    "model",
    "provider",
    "issue_type",
    "status",
    "project",
    "team",
    "environment",
    "cost_source",
    "error_type",
)


class Kind(enum.Enum):
    """How a fact folds the runs of a cell, and how cells fold into a larger one."""

    COUNT = "count"  # runs in the cell
    SUM = "sum"  # sum of a column, nulls skipped
    PRESENT = "present"  # runs where any of the columns is not null
    MIN = "min"
    MAX = "max"


@dataclass(frozen=True, slots=True)
class Fact:
    """One number a rollup cell keeps: its column, how it folds, the run columns it reads."""

    name: str
    kind: Kind
    source: tuple[str, ...] = ()
    integer: bool = False

    @property
    def additive(self) -> bool:
        """Whether removing a run is subtracting it (min and max have to be looked up again)."""
        return self.kind in {Kind.COUNT, Kind.SUM, Kind.PRESENT}


#: What a rollup cell keeps besides its duration sketch. Adding a fact: a line here, a field of the
#: same name on `aggregates.Aggregate`, and a migration that adds the column and rebuilds the cells
#: (`rollups.rebuild`); ingest, reprice, deletes and reads follow from this list (docs/rollups.md).
ROLLUP_FACTS: Final = (
    Fact("runs", Kind.COUNT, integer=True),
    Fact("duration_sum", Kind.SUM, ("duration_seconds",)),
    Fact("duration_max", Kind.MAX, ("duration_seconds",)),
    Fact("input_tokens", Kind.SUM, ("input_tokens",), integer=True),
    Fact("output_tokens", Kind.SUM, ("output_tokens",), integer=True),
    Fact("cache_read_tokens", Kind.SUM, ("cache_read_tokens",), integer=True),
    Fact("cache_write_tokens", Kind.SUM, ("cache_write_tokens",), integer=True),
    Fact("reasoning_tokens", Kind.SUM, ("reasoning_tokens",), integer=True),
    Fact("token_runs", Kind.PRESENT, ("input_tokens", "output_tokens"), integer=True),
    Fact("cost_sum", Kind.SUM, ("cost_usd",)),
    Fact("cost_runs", Kind.PRESENT, ("cost_usd",), integer=True),
    Fact("llm_calls", Kind.SUM, ("llm_calls",), integer=True),
    Fact("llm_runs", Kind.PRESENT, ("llm_calls",), integer=True),
    Fact("tool_calls", Kind.SUM, ("tool_calls",), integer=True),
    Fact("tool_runs", Kind.PRESENT, ("tool_calls",), integer=True),
    Fact("confidence_sum", Kind.SUM, ("confidence",)),
    Fact("confidence_runs", Kind.PRESENT, ("confidence",), integer=True),
    Fact("quality_sum", Kind.SUM, ("quality_score",)),
    Fact("quality_runs", Kind.PRESENT, ("quality_score",), integer=True),
    # migration 0006: the seed-004 questions (first-attempt pipelines, debugging cycles per issue)
    Fact("pipeline_runs", Kind.PRESENT, ("pipeline_attempt_count",), integer=True),
    Fact("pipeline_attempts", Kind.SUM, ("pipeline_attempt_count",), integer=True),
    Fact("pipeline_first_pass", Kind.SUM, ("pipeline_first_pass",), integer=True),
    Fact("debugging_runs", Kind.PRESENT, ("debugging_cycle_count",), integer=True),
    Fact("debugging_cycles", Kind.SUM, ("debugging_cycle_count",), integer=True),
    Fact("first_ended_at", Kind.MIN, ("ended_at",)),
    Fact("last_ended_at", Kind.MAX, ("ended_at",)),
)
#: the grains: a cell covers [origin + bucket·seconds, origin + (bucket+1)·seconds) of ended_at, in
#: UTC; hours and days count from the epoch, weeks from its first Monday (ISO weeks)
HOUR_SECONDS: Final = 3600
DAY_SECONDS: Final = 86400
WEEK_SECONDS: Final = 7 * DAY_SECONDS
#: 1970-01-05T00:00Z was a Monday
WEEK_ORIGIN: Final = 4 * DAY_SECONDS


def _rollup(name: str, dimensions: tuple[str, ...] = ROLLUP_DIMENSIONS) -> Table:
    return Table(
        name,
        metadata,
        Column("bucket", Integer, primary_key=True),
        *(Column(d, String(128), primary_key=True) for d in dimensions),
        *(Column(f.name, BigInteger if f.integer else Float, nullable=False) for f in ROLLUP_FACTS),
        # the durations' sketch (sketch.py): (int32 bucket, int32 count, float64 sum) entries
        Column("sketch", LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )


#: An hour cell is written by the commit that stores its runs: sums add up, its sketch is appended to
#: (`sketch || new`: nothing read, nothing merged in the writer).
rollup_hour = _rollup("rollup_hour")
#: the dimensions of the coarse hour cells: those the hourly charts filter and group by
COARSE_DIMENSIONS: Final = ("agent", "model", "status")
#: A coarse hour cell (migration 0009) is the fold of an hour's cells that share agent, model and
#: status, written with them by the same commit: an hour holds a dozen where it holds a hundred
#: cells of every dimension, however many runs it has, so a read by hour whose filters and groups
#: name only these dimensions folds a tenth of the rows, and no more as the runs grow.
rollup_hour_coarse = _rollup("rollup_hour_coarse", COARSE_DIMENSIONS)
#: the grain and dimensions of the edge cells: those of the coarse hour cells, and those the report
#: (issue_type) and the health digest (error_type) group by
EDGE_SECONDS: Final = 300
EDGE_DIMENSIONS: Final = ("agent", "model", "status", "issue_type", "error_type")
#: An edge cell (migration 0010) holds five minutes of runs of one combination of `EDGE_DIMENSIONS`,
#: written by the commit that stores them, like the hour cells. Reads take the whole hours of a range
#: from the hour cells and its partial hours at either end, to the five minutes, from these: what is
#: left to read from the runs is under five minutes at each end, not up to an hour. Retention deletes
#: them with the runs: before the raw horizon a range's ends widen to whole hours anyway.
rollup_edge = _rollup("rollup_edge", EDGE_DIMENSIONS)
#: A day cell is the fold of its hours' cells, made by compaction (`rollups.compact`) once the day
#: has been written to; until then the day is in `rollup_dirty_days` and reads take its hours.
rollup_day = _rollup("rollup_day")
#: the days whose hours changed since their day cells were made; `writes` counts the commits, so
#: that compaction clears only a day nobody wrote to meanwhile
rollup_dirty_days = Table(
    "rollup_dirty_days",
    metadata,
    Column("day", Integer, primary_key=True),
    Column("writes", BigInteger, nullable=False),
)
#: A week cell (Monday to Sunday, UTC) is the fold of its days' cells, made by compaction once
#: every day of the week has its cells (migration 0007): an all-time read folds a thirteenth of the
#: cells it would over days. A week is stale while it is in `rollup_dirty_weeks` (compaction put it
#: there when it made one of its days) or one of its days is dirty; reads then take its days.
rollup_week = _rollup("rollup_week")
rollup_dirty_weeks = Table(
    "rollup_dirty_weeks",
    metadata,
    Column("week", Integer, primary_key=True),
    Column("writes", BigInteger, nullable=False),
)
#: grain seconds -> table, of the cells the writer and rebuilds make from the runs
ROLLUPS: Final = {HOUR_SECONDS: rollup_hour, DAY_SECONDS: rollup_day}

#: what the rollups' maintenance remembers: `raw_horizon` (runs that ended before it were deleted
#: by retention; their rollups remain), `backfill_next_day`/`backfill_last_day` (a rollup build in
#: progress, migration 0004)
rollup_state = Table(
    "rollup_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Float, nullable=False),
)

#: OTLP spans waiting for the rest of their trace (`otlp.assembly`): one row per trace per request,
#: its spans in `body` (the codec's compact JSON), `chunk` a digest of their span ids (a re-sent
#: request adds nothing); `closed_at` is set when the chunk holds the trace's root span
otlp_pending = Table(
    "otlp_pending",
    metadata,
    Column("trace_id", String(32), primary_key=True),
    Column("chunk", String(32), primary_key=True),
    Column("received_at", Float, nullable=False),
    Column("closed_at", Float),
    Column("spans", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
)
#: traces whose runs were written: a span that arrives for one later is late (counted, ignored)
otlp_traces = Table(
    "otlp_traces",
    metadata,
    Column("trace_id", String(32), primary_key=True),
    Column("assembled_at", Float, nullable=False),
    Index(None, "assembled_at"),
)
