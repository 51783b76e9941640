"""Figures over time ranges (summary, time series, report, trends, health), read from the rollups.

A range [from, to) is cut into whole weeks (Monday to Sunday, UTC), whole UTC days and whole hours
at its ends, and the partial hours at its very ends (`plan`): weeks are read from `rollup_week`,
days from `rollup_day`, hours from `rollup_hour` (or `rollup_hour_coarse`), the partial hours from
the five-minute cells of `rollup_edge` when the read names only their dimensions, and only what is
left, under five minutes at either end, from the runs themselves; so a read costs what its cells
cost, not what its runs cost. Counts and sums are exact; duration percentiles come from the cells'
sketches, within `sketch.RELATIVE_ACCURACY` of the exact ones. Before the raw horizon (runs deleted
by retention), a partial hour is read as its whole hour from the rollup.

Each read has its own entry point: `summary`, `series`, `report_cells` and `daily`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Table, func, literal_column, select, type_coerce
from sqlalchemy.types import LargeBinary

from . import schema
from .analytics import PERCENTILES
from .queries import FAILED, ErrorGroup, R, RunFilter, latest_failed_of_type
from .record import Status
from .rollups import INPUTS, accumulate, first_day_of, week_of
from .schema import (
    DAY_SECONDS,
    EDGE_DIMENSIONS,
    EDGE_SECONDS,
    HOUR_SECONDS,
    ROLLUP_DIMENSIONS,
    ROLLUP_FACTS,
    WEEK_ORIGIN,
    WEEK_SECONDS,
    Kind,
)
from .sketch import Tally, encode

HOUR: Final = HOUR_SECONDS
DAY: Final = DAY_SECONDS
WEEK: Final = WEEK_SECONDS
#: 1970-01-05T00:00Z was a Monday: weeks counted from it start on Mondays, as ISO weeks do
MONDAY_ORIGIN: Final = WEEK_ORIGIN
#: the groups of the report
REPORT_CELLS: Final = ("agent", "model", "issue_type")


@dataclass(frozen=True, slots=True)
class Bucket:
    """Time buckets of `size` seconds counted from `origin` (Unix seconds)."""

    size: int
    origin: float = 0.0

    def start(self, index: int) -> float:
        """Where bucket `index` begins."""
        return self.origin + index * self.size

    def index(self, moment: float) -> int:
        """The bucket `moment` falls in."""
        return int((moment - self.origin) // self.size)

    def holds(self, grain: int, origin: int = 0) -> bool:
        """Whether every cell of `grain` seconds (counted from `origin`) lies inside one bucket."""
        return self.size % grain == 0 and (self.origin - origin) % grain == 0


_ADD, _MIN, _MAX = "add", "min", "max"
#: (name, integer, how it folds) of each fact, worked out once: `add_facts` runs for every row read
_FOLDS: Final = tuple(
    (f.name, f.integer, _ADD if f.additive else _MIN if f.kind is Kind.MIN else _MAX) for f in ROLLUP_FACTS
)


@dataclass(slots=True)
class Aggregate:
    """Counts and sums over a group of runs (and a time bucket). The fields after `statuses` are
    the rollups' facts (`schema.ROLLUP_FACTS`), by the same names."""

    key: tuple[str | None, ...] = ()
    bucket: int | None = None
    successes: int = 0
    cancelled: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # runs per status
    duration_percentiles: dict[float, float | None] = field(default_factory=dict)
    runs: int = 0  # every run, cancelled ones included
    duration_sum: float = 0.0
    duration_max: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    token_runs: int = 0  # runs that reported any tokens
    cost_sum: float = 0.0
    cost_runs: int = 0  # runs whose cost is known
    llm_calls: int = 0
    llm_runs: int = 0
    tool_calls: int = 0
    tool_runs: int = 0
    confidence_sum: float = 0.0
    confidence_runs: int = 0
    quality_sum: float = 0.0
    quality_runs: int = 0
    pipeline_runs: int = 0  # runs that reported pipeline attempts
    pipeline_attempts: int = 0
    pipeline_first_pass: int = 0  # runs whose first pipeline attempt succeeded
    debugging_runs: int = 0  # runs that reported pipeline attempts or debugging cycles
    debugging_cycles: int = 0
    first_ended_at: float | None = None
    last_ended_at: float | None = None

    @property
    def attempts(self) -> int:
        """Runs with a verdict: every run but the cancelled ones. The denominator of success rates."""
        return self.runs - self.cancelled

    @property
    def failures(self) -> int:
        """Failed runs (failure, error or timeout): attempts that did not succeed."""
        return self.attempts - self.successes

    def add_facts(self, values: Sequence[Any]) -> None:
        """Fold facts given in `schema.ROLLUP_FACTS` order into this aggregate."""
        for (name, integer, fold), given in zip(_FOLDS, values, strict=True):
            if given is None:
                continue
            value = int(given) if integer else float(given)
            mine = getattr(self, name)
            if fold is _ADD:
                setattr(self, name, mine + value)
            elif mine is None:
                setattr(self, name, value)
            else:
                setattr(self, name, min(mine, value) if fold is _MIN else max(mine, value))

    def add(self, other: Aggregate) -> None:
        """Fold `other` into this one (percentiles are not additive and are dropped)."""
        self.successes += other.successes
        self.cancelled += other.cancelled
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.duration_percentiles = {}
        self.add_facts([getattr(other, f.name) for f in ROLLUP_FACTS])


# --- the plan of a range ----------------------------------------------------------------------------

Span = tuple[float | None, float | None]


@dataclass(slots=True)
class Plan:
    """A range of ended_at cut into what is read where."""

    raw: list[tuple[float, float]] = field(default_factory=list)  # [start, end) from the runs
    hours: list[Span] = field(default_factory=list)  # [start, end) in hours, from rollup_hour
    days: list[Span] = field(default_factory=list)  # [start, end) in days, from rollup_day
    weeks: list[Span] = field(default_factory=list)  # [start, end) in weeks, from rollup_week


def _up(value: float, grain: int) -> int:
    return math.ceil(value / grain)


def _down(value: float, grain: int) -> int:
    return math.floor(value / grain)


def plan(
    start: float | None, end: float | None, *, days: bool, weeks: bool = False, horizon: float | None = None
) -> Plan:
    """Cut [start, end) into partial hours (raw), whole hours and, with `days`, whole days (and
    with `weeks` too, whole weeks). An end before the raw `horizon` widens to its whole hour."""
    out = Plan()

    def early(moment: float | None) -> bool:
        return moment is not None and horizon is not None and moment < horizon

    first = None if start is None else (_down(start, HOUR) if early(start) else _up(start, HOUR))
    last = None if end is None else (_up(end, HOUR) if early(end) else _down(end, HOUR))
    if first is not None and last is not None and first >= last:
        assert start is not None
        assert end is not None
        edge = float(first * HOUR)  # a raw piece never crosses an hour: its bucket is its start's
        out.raw += [(start, edge), (edge, end)] if start < edge < end else [(start, end)]
        return out
    if start is not None and first is not None and start < first * HOUR:
        out.raw.append((start, float(first * HOUR)))
    if end is not None and last is not None and last * HOUR < end:
        out.raw.append((float(last * HOUR), end))
    if not days:
        out.hours.append((first, last))
        return out
    per_day = DAY // HOUR
    day_first = None if first is None else _up(first, per_day)
    day_last = None if last is None else _down(last, per_day)
    if day_first is not None and day_last is not None and day_first >= day_last:
        out.hours.append((first, last))
        return out
    if first is not None and day_first is not None and first < day_first * per_day:
        out.hours.append((first, day_first * per_day))
    if last is not None and day_last is not None and day_last * per_day < last:
        out.hours.append((day_last * per_day, last))
    if weeks:
        out.days, out.weeks = _weeks_of((day_first, day_last))
    else:
        out.days.append((day_first, day_last))
    return out


def edge_cut(start: float, end: float) -> tuple[list[tuple[float, float]], Span | None]:
    """A partial hour [start, end) cut into the five-minute edge cells it holds whole (a span of
    `rollup_edge` buckets, or None) and the pieces at its ends left to read from the runs."""
    first, last = _up(start, EDGE_SECONDS), _down(end, EDGE_SECONDS)
    if first >= last:
        return [(start, end)], None
    raw = []
    if start < first * EDGE_SECONDS:
        raw.append((start, float(first * EDGE_SECONDS)))
    if last * EDGE_SECONDS < end:
        raw.append((float(last * EDGE_SECONDS), end))
    return raw, (first, last)


def _weeks_of(days: Span) -> tuple[list[Span], list[Span]]:
    """A span of days cut into the days at its ends and the whole weeks between them."""
    day_first, day_last = None if days[0] is None else int(days[0]), None if days[1] is None else int(days[1])
    week_first = None if day_first is None else -(-(day_first - first_day_of(0)) // 7)
    week_last = None if day_last is None else week_of(day_last)
    if week_first is not None and week_last is not None and week_first >= week_last:
        return [days], []
    edges: list[Span] = []
    if day_first is not None and week_first is not None and day_first < first_day_of(week_first):
        edges.append((day_first, first_day_of(week_first)))
    if day_last is not None and week_last is not None and first_day_of(week_last) < day_last:
        edges.append((first_day_of(week_last), day_last))
    return edges, [(week_first, week_last)]


def _dirty_days(conn: Connection, span: Span) -> list[int]:
    """The days of `span` whose day cells are not made yet (`rollups.compact`)."""
    dirty = schema.rollup_dirty_days
    query = select(dirty.c.day).order_by(dirty.c.day)
    if span[0] is not None:
        query = query.where(dirty.c.day >= span[0])
    if span[1] is not None:
        query = query.where(dirty.c.day < span[1])
    return [int(day) for day in conn.execute(query).scalars()]


def _stale_weeks(conn: Connection, span: Span) -> list[int]:
    """The weeks of `span` whose cells are not made yet or not since their days changed."""
    marked = schema.rollup_dirty_weeks
    query = select(marked.c.week)
    if span[0] is not None:
        query = query.where(marked.c.week >= span[0])
    if span[1] is not None:
        query = query.where(marked.c.week < span[1])
    days = (
        None if span[0] is None else first_day_of(int(span[0])),
        None if span[1] is None else first_day_of(int(span[1])),
    )
    stale = {int(week) for week in conn.execute(query).scalars()}
    stale.update(week_of(day) for day in _dirty_days(conn, days))
    return sorted(stale)


def raw_horizon(conn: Connection) -> float | None:
    """The time before which retention deleted the runs (None: every run is kept)."""
    state = schema.rollup_state
    value = conn.execute(select(state.c.value).where(state.c.name == "raw_horizon")).scalar()
    return None if value is None else float(value)


# --- reading ------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _fact_columns(table: Table) -> tuple[ColumnElement[Any], ...]:
    """The aggregates of every fact over the cells of the rollup `table`, built once."""
    return tuple(_fact_column(table.c[f.name], f.kind) for f in ROLLUP_FACTS)


def _fact_column(column: ColumnElement[Any], kind: Kind) -> ColumnElement[Any]:
    if kind is Kind.MIN:
        return func.min(column)
    if kind is Kind.MAX:
        return func.max(column)
    return func.sum(column)


def _concat_sketches(dialect: str, sketch: str) -> ColumnElement[Any]:
    """The sketches of a group's cells, concatenated (`sketch` an SQL expression; NULLs skipped)."""
    if dialect == "postgresql":
        return literal_column(f"string_agg({sketch}, ''::bytea)")
    return type_coerce(literal_column(f"CAST(group_concat({sketch}, x'') AS BLOB)"), LargeBinary)


GroupKey = tuple[int, tuple[str | None, ...], int | None]  # (grouping, the group's values, bucket)


class _Collector:
    """Rows of the plan's pieces folded into aggregates per grouping, group key and bucket, with
    sketches. One read serves several groupings: the rows are grouped by every dimension any of
    them names (and status), and each row folds into its group of each grouping."""

    def __init__(self, groupings: Sequence[Sequence[str]], bucket: Bucket | None, sketches: bool) -> None:
        self.by = tuple(dict.fromkeys(d for grouping in groupings for d in grouping))
        self.picks = [tuple(self.by.index(d) for d in grouping) for grouping in groupings]
        self.bucket = bucket
        self.sketches = sketches
        self.found: dict[GroupKey, Aggregate] = {}
        self.groups: dict[GroupKey, int] = {}
        self.facts: dict[GroupKey, list[Any]] = {}
        self.tally = Tally()

    def _keys(self, row: Sequence[Any], index: int | None) -> list[GroupKey]:
        values = tuple(v or None for v in row[: len(self.by)])
        return [(g, tuple(values[i] for i in pick), index) for g, pick in enumerate(self.picks)]

    def fold(self, row: Sequence[Any], index: int | None) -> None:
        """One grouped row: the dimensions, status, the facts, (the sketches)."""
        width = len(self.by)
        status = row[width]
        facts = row[width + 1 : width + 1 + len(ROLLUP_FACTS)]
        runs = int(facts[0])
        keys = self._keys(row, index)
        for group_key in keys:
            group = self.found.get(group_key)
            if group is None:
                group = self.found[group_key] = Aggregate(key=group_key[1], bucket=index)
                self.groups[group_key] = len(self.groups)
                self.facts[group_key] = list(facts)
            else:
                _fold_facts(self.facts[group_key], facts)
            group.statuses[status] = group.statuses.get(status, 0) + runs
            if status == Status.SUCCESS.value:
                group.successes += runs
            elif status == Status.CANCELLED.value:
                group.cancelled += runs
        blob = row[width + 1 + len(ROLLUP_FACTS)] if self.sketches else None
        if blob is not None:
            self.tally.add_blob_to([self.groups[k] for k in keys], bytes(blob))

    def rollup(
        self, conn: Connection, table: Table, grain: int, span: Span, flt: RunFilter, *, cells_from: int = 0
    ) -> None:
        """The cells of `table` (of `grain` seconds counted from `cells_from`) in `span`."""
        index: ColumnElement[Any] | None = None
        if self.bucket is not None:
            offset, size = cells_from - int(self.bucket.origin), int(self.bucket.size)
            index = literal_column(f"({table.name}.bucket * {grain} + {offset}) / {size}")
        columns = [table.c[name] for name in self.by]
        query = select(
            *columns,
            table.c.status,
            *_fact_columns(table),
            *([_concat_sketches(conn.dialect.name, f"{table.name}.sketch")] if self.sketches else []),
            *([index.label("bucket_index")] if index is not None else []),
        )
        conditions: list[ColumnElement[bool]] = [table.c[n].in_(v) for n, v in flt.dimensions]
        if span[0] is not None:
            conditions.append(table.c.bucket >= span[0])
        if span[1] is not None:
            conditions.append(table.c.bucket < span[1])
        group = [*columns, table.c.status, *([literal_column("bucket_index")] if index is not None else [])]
        for row in conn.execute(query.where(*conditions).group_by(*group)):
            self.fold(row, int(row[-1]) if index is not None else None)

    def raw(self, conn: Connection, start: float, end: float, flt: RunFilter) -> None:
        """A partial hour [start, end) from the runs: each run read once, folded into cells as the
        writer folds them (`rollups.accumulate`), and the cells into the groups."""
        piece = flt.narrowed(start, end)
        index = self.bucket.index(start) if self.bucket is not None else None  # one hour, one bucket
        runs = conn.execute(select(*(R.c[name] for name in INPUTS)).where(*piece.conditions()))
        at = [1 + ROLLUP_DIMENSIONS.index(name) for name in (*self.by, "status")]
        for key, cell in accumulate(runs).items():
            sketch = [encode(cell[-1])] if self.sketches else []
            self.fold((*(key[i] for i in at), *cell[:-1], *sketch), index)

    def result(self) -> list[list[Aggregate]]:
        """The aggregates of each grouping, the largest groups first (by bucket, in a series)."""
        for group, facts in self.facts.items():
            self.found[group].add_facts(facts)
        if self.sketches and self.found:
            ordered = list(self.found.values())
            found = self.tally.percentiles(PERCENTILES, len(ordered), [a.duration_max for a in ordered])
            for agg, percentiles in zip(ordered, found, strict=True):
                agg.duration_percentiles = percentiles
        out: list[list[Aggregate]] = [[] for _ in self.picks]
        for (g, _, _), agg in self.found.items():
            if agg.runs > 0:
                out[g].append(agg)
        for aggs in out:
            aggs.sort(
                key=lambda a: (a.bucket if a.bucket is not None else 0, -a.runs, [k or "" for k in a.key])
            )
        return out


def _fold_facts(into: list[Any], facts: Sequence[Any]) -> None:
    """Fold facts (in `schema.ROLLUP_FACTS` order, None where a cell had no value) into `into`."""
    for i, (_, _, how) in enumerate(_FOLDS):
        value = facts[i]
        if value is None:
            continue
        if into[i] is None:
            into[i] = value
        elif how is _ADD:
            into[i] += value
        elif how is _MIN:
            into[i] = min(into[i], value)
        else:
            into[i] = max(into[i], value)


def _figures(
    conn: Connection,
    flt: RunFilter,
    groupings: Sequence[Sequence[str]],
    bucket: Bucket | None,
    *,
    sketches: bool,
) -> list[list[Aggregate]]:
    if bucket is not None and not bucket.holds(HOUR):
        raise ValueError(f"{bucket}: buckets are whole UTC hours")
    collector = _Collector(groupings, bucket, sketches)
    cut = plan(
        flt.start,
        flt.end,
        days=bucket is None or bucket.holds(DAY),
        weeks=bucket is None or bucket.holds(WEEK, MONDAY_ORIGIN),
        horizon=raw_horizon(conn),
    )
    for span in cut.weeks:
        # a week whose cells are stale is read from its days
        stale = _stale_weeks(conn, span)
        for start, end in zip([span[0], *[w + 1 for w in stale]], [*stale, span[1]], strict=True):
            if start is None or end is None or start < end:
                collector.rollup(conn, schema.rollup_week, WEEK, (start, end), flt, cells_from=MONDAY_ORIGIN)
        cut.days += [(first_day_of(w), first_day_of(w + 1)) for w in stale]
    for span in cut.days:
        # a day written to since its cells were made is read from its hours
        dirty = _dirty_days(conn, span)
        for start, end in zip([span[0], *[d + 1 for d in dirty]], [*dirty, span[1]], strict=True):
            if start is None or end is None or start < end:
                collector.rollup(conn, schema.rollup_day, DAY, (start, end), flt)
        cut.hours += [(d * (DAY // HOUR), (d + 1) * (DAY // HOUR)) for d in dirty]
    # hours read from the coarse cells when every dimension the read names is one of theirs
    named = {*collector.by, *(name for name, _ in flt.dimensions)}
    hours = schema.rollup_hour_coarse if named <= set(schema.COARSE_DIMENSIONS) else schema.rollup_hour
    for span in cut.hours:
        collector.rollup(conn, hours, HOUR, span, flt)
    # the partial hours from the edge cells (to the five minutes) when they have every dimension named
    edges = named <= set(EDGE_DIMENSIONS)
    for start, end in cut.raw:
        raw, cells = edge_cut(start, end) if edges else ([(start, end)], None)
        if cells is not None:
            collector.rollup(conn, schema.rollup_edge, EDGE_SECONDS, cells, flt)
        for piece in raw:
            collector.raw(conn, *piece, flt)
    return collector.result()


def summary(conn: Connection, flt: RunFilter, by: Sequence[str] = ()) -> list[Aggregate]:
    """Figures per group of the dimensions `by` (one aggregate over everything without), with the
    runs per status and duration percentiles; the largest groups first."""
    return _figures(conn, flt, [by], None, sketches=True)[0]


def summaries(
    conn: Connection, flt: RunFilter, *groupings: Sequence[str], percentiles: bool = True
) -> list[list[Aggregate]]:
    """`summary` by each of `groupings`, from one read of the cells (a read that shows a total and
    its groups reads once, not twice): `summaries(conn, flt, (), ("model",))` is
    `[summary(conn, flt), summary(conn, flt, ("model",))]`. Without `percentiles`, `facts` by each."""
    return _figures(conn, flt, groupings, None, sketches=percentiles)


def error_groups(conn: Connection, flt: RunFilter, *, limit: int) -> list[ErrorGroup]:
    """The failed runs (failure, error, timeout) of `flt` grouped by `error_type`, the most first
    (then by name, the runs without a type last), each with its newest example. The counts come
    from the cells; only the `limit` examples are read from the runs."""
    asked = flt.values("status")
    failed = tuple(s for s in asked if s in FAILED) if asked else FAILED
    if not failed:
        return []
    only_failed = RunFilter.of(flt.start, flt.end, **{**dict(flt.dimensions), "status": failed})
    by_type, by_agent = summaries(
        conn, only_failed, ("error_type",), ("error_type", "agent"), percentiles=False
    )
    agents: dict[str | None, int] = {}
    for agg in by_agent:
        agents[agg.key[0]] = agents.get(agg.key[0], 0) + 1
    ranked = sorted(by_type, key=lambda a: (-a.runs, a.key[0] is None, a.key[0] or ""))[:limit]
    groups = []
    for agg in ranked:
        error_type = agg.key[0]
        example: Mapping[Any, Any] = latest_failed_of_type(conn, only_failed, error_type) or {}  # retention
        assert agg.first_ended_at is not None
        assert agg.last_ended_at is not None
        groups.append(
            ErrorGroup(
                error_type=error_type,
                runs=agg.runs,
                agents=agents[error_type],
                first_seen=agg.first_ended_at,
                last_seen=agg.last_ended_at,
                statuses={s: agg.statuses[s] for s in FAILED if agg.statuses.get(s)},
                latest_run_id=example.get("run_id"),
                latest_agent=example.get("agent"),
                latest_summary=example.get("error_summary"),
            )
        )
    return groups


def series(conn: Connection, flt: RunFilter, bucket: Bucket, by: Sequence[str] = ()) -> list[Aggregate]:
    """`summary` per time bucket (and group), ordered by bucket; buckets without runs are absent."""
    return _figures(conn, flt, [by], bucket, sketches=True)[0]


def facts(conn: Connection, flt: RunFilter, by: Sequence[str] = ()) -> list[Aggregate]:
    """`summary` without the percentiles: the cells' facts only."""
    return _figures(conn, flt, [by], None, sketches=False)[0]


def report_cells(conn: Connection, flt: RunFilter) -> list[Aggregate]:
    """The report's figures per (agent, model, issue_type), without percentiles."""
    return _figures(conn, flt, [REPORT_CELLS], None, sketches=False)[0]


def daily(conn: Connection, flt: RunFilter, origin: float) -> list[Aggregate]:
    """Figures per day counted from `origin` (a UTC midnight), without percentiles: the trends'."""
    return _figures(conn, flt, [()], Bucket(DAY, origin), sketches=False)[0]


def time_span(conn: Connection, flt: RunFilter) -> tuple[float, float] | None:
    """The first and last `ended_at` among the filtered runs, or None when there are none: from
    the day cells, and the hour cells of the days not compacted yet."""
    first_day = None if flt.start is None else _down(flt.start, DAY)
    last_day = None if flt.end is None else _down(flt.end, DAY) + 1
    dirty = _dirty_days(conn, (first_day, last_day))
    lows, highs = [], []
    for table, spans in (
        (schema.rollup_day, [(first_day, last_day)]),
        (schema.rollup_hour, [(d * (DAY // HOUR), (d + 1) * (DAY // HOUR)) for d in dirty]),
    ):
        for start, end in spans:
            conditions: list[ColumnElement[bool]] = [table.c[n].in_(v) for n, v in flt.dimensions]
            if start is not None:
                conditions.append(table.c.bucket >= start)
            if end is not None:
                conditions.append(table.c.bucket < end)
            if table is schema.rollup_day and dirty:
                conditions.append(table.c.bucket.not_in(dirty))
            low, high = conn.execute(
                select(func.min(table.c.first_ended_at), func.max(table.c.last_ended_at)).where(*conditions)
            ).one()
            if low is not None:
                lows.append(float(low))
                highs.append(float(high))
    if not lows:
        return None
    first = min(lows) if flt.start is None else flt.start
    last = max(highs) if flt.end is None else math.nextafter(flt.end, -math.inf)
    return (first, last) if first <= last else None


def bucket_range(conn: Connection, flt: RunFilter, bucket: Bucket) -> range:
    """The indices of the buckets that `flt`'s time range (or else its runs) covers."""
    start, end = flt.start, flt.end
    if start is None or end is None:
        span = time_span(conn, flt)
        if span is None:
            return range(0)
        start = span[0] if start is None else start
        end = math.nextafter(span[1], math.inf) if end is None else end
    if start >= end:
        return range(0)
    first = math.floor((start - bucket.origin) / bucket.size)
    last = math.ceil((end - bucket.origin) / bucket.size) - 1
    return range(first, max(first, last + 1))
