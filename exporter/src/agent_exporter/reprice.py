"""Recompute estimated costs after a price change; reported costs are never touched.

A run's cost is estimated once, at ingest, from the price book of the day. When prices change
(a new `genai-prices` release, a negotiated price in the price file), `reprice` walks the runs whose
cost is estimated or unknown, prices them again with the current book and stores what changed
through the store (`Store.change_costs`), which moves the changed runs' cost in the rollups in the
same transaction.
Counters already exported are not rewritten: Prometheus counters only go up; the store, the read
API and the SQL dashboards show the new figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, RowMapping, or_, select

from . import schema
from .pricing import PriceBook
from .queries import RunFilter
from .record import CostSource, Run, Status, UsageLine
from .store import CostChange, Store

R: Final = schema.runs
U: Final = schema.run_usage
BATCH: Final = 1000
_REPORTED: Final = CostSource.REPORTED.value
_EPSILON: Final = 1e-9  # USD: below a millionth of a cent, a float's noise, not a change


@dataclass(slots=True)
class RepriceResult:
    """What a reprice examined and changed."""

    runs_examined: int = 0
    runs_changed: int = 0
    usage_lines_changed: int = 0
    became_known: int = 0
    became_unknown: int = 0
    cost_before_usd: float = 0.0
    cost_after_usd: float = 0.0


def reprice(store: Store, prices: PriceBook, flt: RunFilter, *, dry_run: bool = False) -> RepriceResult:
    """Price again every run of `flt` whose cost (or a usage line's) is not reported; store changes
    unless `dry_run`. Batches of runs in `run_id` order, each read, priced and stored
    (`Store.change_costs`: costs and rollups in one transaction) before the next; raises
    `StoreError` if the store fails (the batches stored by then stay repriced)."""
    result = RepriceResult()
    after = ""
    while True:
        with store.reading() as conn:
            rows, usage = _batch(conn, flt, after)
        if not rows:
            break
        changes = _price_batch(rows, usage, prices, result)
        if changes and not dry_run:
            store.change_costs(changes)
        after = rows[-1]["run_id"]
    return result


def _batch(
    conn: Connection, flt: RunFilter, after: str
) -> tuple[list[RowMapping], dict[str, list[RowMapping]]]:
    not_reported = or_(
        R.c.cost_source != _REPORTED,
        R.c.run_id.in_(select(U.c.run_id).where(U.c.cost_source != _REPORTED)),
    )
    query = (
        select(R).where(*flt.conditions(), not_reported, R.c.run_id > after).order_by(R.c.run_id).limit(BATCH)
    )
    rows = list(conn.execute(query).mappings())
    usage: dict[str, list[RowMapping]] = defaultdict(list)
    if rows:
        lines = (
            select(U).where(U.c.run_id.in_([r["run_id"] for r in rows])).order_by(U.c.run_id, U.c.position)
        )
        for line in conn.execute(lines).mappings():
            usage[line["run_id"]].append(line)
    return rows, usage


def _as_run(row: RowMapping, usage: Sequence[RowMapping]) -> Run:
    """The stored run as `PriceBook.price` sees it: reported costs kept, estimates forgotten."""

    def kept(cost: float | None, source: str) -> tuple[float | None, CostSource]:
        return (cost, CostSource.REPORTED) if source == _REPORTED else (None, CostSource.UNKNOWN)

    lines = []
    for u in usage:
        cost, source = kept(u["cost_usd"], u["cost_source"])
        lines.append(
            UsageLine(
                model=u["model"],
                provider=u["provider"],
                input_tokens=u["input_tokens"],
                output_tokens=u["output_tokens"],
                cache_read_tokens=u["cache_read_tokens"],
                cache_write_tokens=u["cache_write_tokens"],
                reasoning_tokens=u["reasoning_tokens"],
                cost_usd=cost,
                cost_source=source,
                calls=u["calls"],
            )
        )
    cost, source = kept(row["cost_usd"], row["cost_source"])
    return Run(
        run_id=row["run_id"],
        agent=row["agent"],
        status=Status(row["status"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration_seconds=row["duration_seconds"],
        received_at=row["received_at"],
        body_hash=row["body_hash"],
        model=row["model"],
        provider=row["provider"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cache_read_tokens=row["cache_read_tokens"],
        cache_write_tokens=row["cache_write_tokens"],
        cost_usd=cost,
        cost_source=source,
        usage=lines,
    )


def _differs(old_cost: float | None, old_source: str, new_cost: float | None, new_source: str) -> bool:
    if old_source != new_source or (old_cost is None) != (new_cost is None):
        return True
    return old_cost is not None and new_cost is not None and abs(old_cost - new_cost) > _EPSILON


def _price_batch(
    rows: Sequence[RowMapping],
    usage: dict[str, list[RowMapping]],
    prices: PriceBook,
    result: RepriceResult,
) -> list[CostChange]:
    changes: list[CostChange] = []
    for row in rows:
        lines = usage.get(row["run_id"], [])
        run = _as_run(row, lines)
        prices.price(run)
        result.runs_examined += 1
        old_cost, new_cost = row["cost_usd"], run.cost_usd
        result.cost_before_usd += old_cost or 0.0
        result.cost_after_usd += new_cost or 0.0
        changed = False
        for stored, fresh in zip(lines, run.usage, strict=True):
            if _differs(stored["cost_usd"], stored["cost_source"], fresh.cost_usd, fresh.cost_source.value):
                changes.append(
                    CostChange(row["run_id"], fresh.cost_usd, fresh.cost_source, stored["position"])
                )
                result.usage_lines_changed += 1
                changed = True
        if _differs(old_cost, row["cost_source"], new_cost, run.cost_source.value):
            changes.append(CostChange(row["run_id"], new_cost, run.cost_source))
            changed = True
            if old_cost is None and new_cost is not None:
                result.became_known += 1
            elif old_cost is not None and new_cost is None:
                result.became_unknown += 1
        result.runs_changed += changed
    return changes
