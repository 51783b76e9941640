"""The read side of the store over the runs themselves: which runs a read looks at (`RunFilter`),
run history by keyset pages, single runs, and the health facts that need individual runs (the
latest run, failure streaks, error groups). Figures over time ranges come from the rollups
(`aggregates.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Table,
    case,
    func,
    select,
    tuple_,
)

from . import schema
from .record import FAILED_STATUSES, Status

R: Final = schema.runs

#: the run fields that `group_by` and the dimension filters accept
DIMENSIONS: Final = ("agent", "model", "provider", "issue_type", "status", "project", "team", "environment")
#: the statuses of a failed run (`record.FAILED_STATUSES`); `cancelled` is neither success nor failure
FAILED: Final = tuple(s.value for s in FAILED_STATUSES)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a query looks at: a half-open range of `ended_at` and dimension values.

    Within a dimension the values are alternatives (`agent` fixer or reviewer); across dimensions
    all must hold. An empty tuple does not filter.
    """

    start: float | None = None  # ended_at >= start (Unix seconds)
    end: float | None = None  # ended_at < end
    dimensions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, start: float | None = None, end: float | None = None, **values: Sequence[str]) -> RunFilter:
        """A filter from keyword lists: `RunFilter.of(agent=["fixer"], status=["failure"])`."""
        unknown = set(values) - set(DIMENSIONS)
        if unknown:
            raise ValueError(f"not filterable: {', '.join(sorted(unknown))}")
        dims = tuple((name, tuple(values[name])) for name in DIMENSIONS if values.get(name))
        return cls(start, end, dims)

    def narrowed(self, start: float | None = None, end: float | None = None) -> RunFilter:
        """The same filter on the intersection of its range and [start, end)."""
        new_start = self.start if start is None else start if self.start is None else max(self.start, start)
        new_end = self.end if end is None else end if self.end is None else min(self.end, end)
        return replace(self, start=new_start, end=new_end)

    def values(self, name: str) -> tuple[str, ...]:
        """The values asked for dimension `name` (empty: not filtered)."""
        return dict(self.dimensions).get(name, ())

    def conditions(self, table: Table = R) -> list[ColumnElement[bool]]:
        """The WHERE conditions on `table` (the runs table or an alias of it)."""
        c = table.c
        conds: list[ColumnElement[bool]] = []
        if self.start is not None:
            conds.append(c.ended_at >= self.start)
        if self.end is not None:
            conds.append(c.ended_at < self.end)
        for name, wanted in self.dimensions:
            column = c[name]
            conds.append(column == wanted[0] if len(wanted) == 1 else column.in_(wanted))
        return conds


# ---------------------------------------------------------------------------------------------
# run history


LIST_COLUMNS: Final = (
    "run_id",
    "agent",
    "agent_version",
    "model",
    "provider",
    "issue_type",
    "project",
    "team",
    "environment",
    "status",
    "started_at",
    "ended_at",
    "duration_seconds",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_source",
    "llm_calls",
    "tool_calls",
    "retries",
    "error_type",
    "error_summary",
    "session_id",
    "parent_run_id",
    "counts",
)


def list_runs(
    conn: Connection, flt: RunFilter, *, limit: int, after: tuple[float, str] | None = None
) -> list[RowMapping]:
    """Up to `limit` runs, newest first by (`ended_at`, `run_id`), strictly after the keyset `after`.

    Keyset pagination: the page after a cursor costs the same as the first, however deep.
    """
    query = select(*(R.c[name] for name in LIST_COLUMNS)).where(*flt.conditions())
    if after is not None:
        ended_at, run_id = after
        # a row-value comparison: both databases turn it into one range of (ended_at, run_id)
        query = query.where(tuple_(R.c.ended_at, R.c.run_id) < tuple_(ended_at, run_id))
    query = query.order_by(R.c.ended_at.desc(), R.c.run_id.desc()).limit(limit)
    return list(conn.execute(query).mappings())


@dataclass(frozen=True, slots=True)
class RunDetail:
    """One stored run with its breakdowns, as stored."""

    run: RowMapping
    usage: list[RowMapping]
    tools: list[RowMapping]
    phases: list[RowMapping]
    subagents: list[RowMapping]
    pipeline_attempts: list[RowMapping]
    debugging_cycles: list[RowMapping]
    #: the runs whose parent_run_id is this run (its sub-agents' runs), oldest first, at most
    #: MAX_CHILDREN of them; `children_total` counts them all
    children: list[RowMapping]
    children_total: ChildTotals


#: the children a run's detail lists (their totals cover all of them)
MAX_CHILDREN: Final = 200


@dataclass(frozen=True, slots=True)
class ChildTotals:
    """What a run's direct children add up to (each child counted once, in its own right)."""

    runs: int
    failures: int
    duration_seconds: float
    cost_usd: float | None  # None when no child's cost is known
    input_tokens: int | None
    output_tokens: int | None


def get_run(conn: Connection, run_id: str) -> RunDetail | None:
    """The run stored under `run_id` with its per-model usage, tools and phases, or None."""
    row = conn.execute(select(R).where(R.c.run_id == run_id)).mappings().first()
    if row is None:
        return None

    def children(table: Table) -> list[RowMapping]:
        query = select(table).where(table.c.run_id == run_id).order_by(table.c.position)
        return list(conn.execute(query).mappings())

    kids = R.c.parent_run_id == run_id
    listed = select(*(R.c[name] for name in LIST_COLUMNS)).where(kids)
    listed = listed.order_by(R.c.ended_at, R.c.run_id).limit(MAX_CHILDREN)
    sums = conn.execute(
        select(
            func.count(),
            func.count().filter(R.c.status.in_(FAILED)),
            func.coalesce(func.sum(R.c.duration_seconds), 0.0),
            func.sum(R.c.cost_usd),
            func.sum(R.c.input_tokens),
            func.sum(R.c.output_tokens),
        ).where(kids)
    ).one()
    return RunDetail(
        row,
        children(schema.run_usage),
        children(schema.run_tools),
        children(schema.run_phases),
        children(schema.run_subagents),
        children(schema.run_pipeline_attempts),
        children(schema.run_debugging_cycles),
        list(conn.execute(listed).mappings()),
        ChildTotals(
            int(sums[0]),
            int(sums[1]),
            float(sums[2]),
            None if sums[3] is None else float(sums[3]),
            None if sums[4] is None else int(sums[4]),
            None if sums[5] is None else int(sums[5]),
        ),
    )


#: the orders a run listing can take, each (the value sorted on, the condition of a run without it)
SORTS: Final[dict[str, Callable[[], tuple[ColumnElement[Any], ColumnElement[bool] | None]]]] = {
    "ended_at": lambda: (R.c.ended_at, None),
    "duration_seconds": lambda: (R.c.duration_seconds, None),
    "cost_usd": lambda: (R.c.cost_usd, R.c.cost_usd.is_(None)),
    "total_tokens": lambda: (
        func.coalesce(R.c.input_tokens, 0) + func.coalesce(R.c.output_tokens, 0),
        R.c.input_tokens.is_(None) & R.c.output_tokens.is_(None),
    ),
    "llm_calls": lambda: (R.c.llm_calls, R.c.llm_calls.is_(None)),
    "tool_calls": lambda: (R.c.tool_calls, R.c.tool_calls.is_(None)),
}


def list_runs_sorted(
    conn: Connection, flt: RunFilter, *, sort: str, descending: bool, limit: int, offset: int
) -> list[RowMapping]:
    """Up to `limit` runs ordered by `sort` (a key of SORTS), skipping `offset`; ties newest first.

    Runs without the value (a cost nobody knows) come last either way. An offset page: newest first
    walks the (ended_at, run_id) index; any other order reads the whole filtered range, so narrow
    the range for speed.
    """
    key, missing = SORTS[sort]()
    order: list[ColumnElement[Any]] = [] if missing is None else [case((missing, 1), else_=0)]
    if sort == "ended_at":  # the index's own order: no sort at all
        order += [R.c.ended_at.desc(), R.c.run_id.desc()] if descending else [R.c.ended_at, R.c.run_id]
    else:
        order += [key.desc() if descending else key.asc(), R.c.ended_at.desc(), R.c.run_id.desc()]
    query = (
        select(*(R.c[name] for name in LIST_COLUMNS))
        .where(*flt.conditions())
        .order_by(*order)
        .offset(offset)
        .limit(limit)
    )
    return list(conn.execute(query).mappings())


def count_runs(conn: Connection, flt: RunFilter) -> int:
    """How many runs the filter matches (a count over an index range)."""
    return int(conn.execute(select(func.count()).select_from(R).where(*flt.conditions())).scalar_one())


def adjacent_run(
    conn: Connection, flt: RunFilter, key: tuple[float, str], *, newer: bool, failed: bool = False
) -> str | None:
    """The run_id of the filtered run just newer (or older) than the keyset `key` (ended_at, run_id).

    With `failed`, only failed runs (failure, error, timeout) count: the previous and next failure.
    """
    position = tuple_(R.c.ended_at, R.c.run_id)
    query = select(R.c.run_id).where(*flt.conditions(), position > key if newer else position < key)
    if failed:
        query = query.where(R.c.status.in_(FAILED))
    order = (R.c.ended_at.asc(), R.c.run_id.asc()) if newer else (R.c.ended_at.desc(), R.c.run_id.desc())
    found: str | None = conn.execute(query.order_by(*order).limit(1)).scalar()
    return found


#: dimensions with an index that leads with them: their distinct values cost a probe each
_INDEXED: Final = frozenset({"agent", "model", "status", "issue_type", "project"})
#: the newest runs looked at for the values of a dimension without such an index
RECENT_SAMPLE: Final = 5_000


def dimension_values(conn: Connection, name: str, *, limit: int) -> list[str]:
    """Up to `limit` distinct non-empty values of dimension `name`, sorted.

    An indexed dimension is read by a skip scan (the next value after the last one, one index probe
    each: milliseconds at any size); another one from the newest RECENT_SAMPLE runs.
    """
    column = R.c[name]
    if name in _INDEXED:
        first = select(func.min(column)).scalar_subquery()
        walk = select(first.label("value")).cte("walk", recursive=True)
        following = select(func.min(column)).where(column > walk.c.value).scalar_subquery()
        walk = walk.union_all(select(following).where(walk.c.value.is_not(None)))
        query = select(walk.c.value).where(walk.c.value.is_not(None)).limit(limit)
        return [str(v) for v in conn.execute(query).scalars()]
    recent = (
        select(column.label("value")).order_by(R.c.ended_at.desc()).limit(RECENT_SAMPLE).subquery("recent")
    )
    query = (
        select(recent.c.value)
        .where(recent.c.value.is_not(None))
        .distinct()
        .order_by(recent.c.value)
        .limit(limit)
    )
    return [str(v) for v in conn.execute(query).scalars()]


# ---------------------------------------------------------------------------------------------
# health facts


def latest_run(conn: Connection, flt: RunFilter, *, failed: bool = False) -> RowMapping | None:
    """The newest run (with `failed`, the newest failed one: failure, error or timeout), or None."""
    query = select(*(R.c[name] for name in LIST_COLUMNS)).where(*flt.conditions())
    if failed:
        query = query.where(R.c.status.in_(FAILED))
    query = query.order_by(R.c.ended_at.desc(), R.c.run_id.desc()).limit(1)
    return conn.execute(query).mappings().first()


@dataclass(frozen=True, slots=True)
class Streak:
    """An agent's unbroken run of failures up to its most recent run, cancelled runs aside."""

    agent: str
    failures: int
    since: float  # ended_at of the first failure of the streak
    last: float  # ended_at of the most recent failure
    error_types: list[str]
    bounded: bool  # no success inside the period looked at: the streak may be longer
    cancelled: int = 0  # cancelled runs since the last success: they neither break nor extend it


def failure_streaks(
    conn: Connection, flt: RunFilter, *, agents: Sequence[str], min_failures: int
) -> list[Streak]:
    """Those of `agents` whose latest runs all failed, `min_failures` or more in a row, within
    `flt`'s range.

    A cancelled run is ignored: someone stopped it, which says nothing about whether the agent
    works, so it neither breaks a streak (it is not a success) nor extends it (it is not a
    failure), as the failure-rate alerts leave it out of both sides of their ratio.

    Per agent, two index walks: back from the newest run to its last success, then a count of the
    failed and the cancelled runs after it (nothing else can follow the last success). An agent
    with no success in range has every failed run in range counted, and the streak is marked as
    possibly longer.
    """
    is_failed = R.c.status.in_(FAILED)
    streaks = []
    for agent in agents:
        mine = [*flt.conditions(), R.c.agent == agent]
        last_ok = conn.execute(
            select(R.c.ended_at)
            .where(*mine, R.c.status == Status.SUCCESS.value)
            .order_by(R.c.ended_at.desc())
            .limit(1)
        ).scalar()
        # one lower bound on ended_at (just after the success), not two: SQLite's planner would
        # walk the agent's index from the range's start and filter the rest (2 ms a million runs)
        since_ok = flt if last_ok is None else flt.narrowed(math.nextafter(float(last_ok), math.inf))
        after = [*since_ok.conditions(), R.c.agent == agent]
        count, cancelled, since, last = conn.execute(
            select(
                func.sum(case((is_failed, 1), else_=0)),
                func.sum(case((R.c.status == Status.CANCELLED.value, 1), else_=0)),
                func.min(case((is_failed, R.c.ended_at))),
                func.max(case((is_failed, R.c.ended_at))),
            ).where(*after)
        ).one()
        if not count or count < min_failures:
            continue
        type_query = (
            select(R.c.error_type)
            .where(*after, is_failed, R.c.error_type.is_not(None))
            .group_by(R.c.error_type)
            .order_by(func.count().desc(), R.c.error_type)
            .limit(5)
        )
        streaks.append(
            Streak(
                agent=agent,
                failures=int(count),
                since=float(since),
                last=float(last),
                error_types=list(conn.execute(type_query).scalars()),
                bounded=last_ok is None,
                cancelled=int(cancelled or 0),
            )
        )
    return sorted(streaks, key=lambda s: (-s.failures, s.agent))


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """The failed runs (failure, error, timeout) sharing one `error_type` (None: failed runs that
    gave no type). Cancelled runs are not failures and are not grouped."""

    error_type: str | None
    runs: int
    agents: int
    first_seen: float
    last_seen: float
    statuses: dict[str, int]
    latest_run_id: str | None  # None: retention deleted the group's runs (its cells remain)
    latest_agent: str | None
    latest_summary: str | None


def latest_failed_of_type(conn: Connection, flt: RunFilter, error_type: str | None) -> RowMapping | None:
    """The newest failed run of `error_type` (None: without one) within `flt`: its id, agent and
    error summary. A walk of the `ended_at` index back from the range's end."""
    of_type = R.c.error_type.is_(None) if error_type is None else R.c.error_type == error_type
    query = (
        select(R.c.run_id, R.c.agent, R.c.error_summary)
        .where(*flt.conditions(), R.c.status.in_(FAILED), of_type)
        .order_by(R.c.ended_at.desc(), R.c.run_id.desc())
        .limit(1)
    )
    return conn.execute(query).mappings().first()


def scores_of(conn: Connection, run_id: str) -> list[RowMapping] | None:
    """The scores of run `run_id` in the order they arrived, or None when no run has that id."""
    if conn.execute(select(R.c.run_id).where(R.c.run_id == run_id)).first() is None:
        return None
    s = schema.run_scores
    query = select(s.c.score_id, s.c.name, s.c.value, s.c.source, s.c.comment, s.c.author, s.c.received_at)
    query = query.where(s.c.run_id == run_id).order_by(s.c.received_at, s.c.score_id)
    return list(conn.execute(query).mappings())
