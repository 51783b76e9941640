"""Budgets per owner: a team, project or agent may spend so many USD a day or a month.

They are data in `alerts/config.yaml` (`cost.owner_budgets`), read twice: by the mixin, which
renders a burn-rate alert per budget and window (`AgentOwnerBudgetBurn`), and by the exporter
(setting `budgets_file`), whose `GET /api/v1/budget` reports each budget's spend in the current
period from the store, and the spend projected to the period's end at the pace so far.

Periods are UTC: a day from midnight, a month from the first. A monthly budget's daily share, the
unit of its burn rate, is the budget over 30 days.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .fields import Name

#: the run fields a budget may be owned by; each must be a metric label for its alerts to see it
OWNERS: Final = ("team", "project", "agent")
DAY: Final = 86400
MONTH_DAYS: Final = 30  # a monthly budget's burn rate is against a 30th of it a day


class OwnerBudget(BaseModel):
    """What one team, project or agent may spend a day or a month."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: Literal["team", "project", "agent"]
    name: Name
    period: Literal["day", "month"]
    usd: float = Field(gt=0, allow_inf_nan=False)

    @property
    def daily_usd(self) -> float:
        """The budget's share of one day: the unit its burn rate is measured in."""
        return self.usd if self.period == "day" else self.usd / MONTH_DAYS


def period_bounds(period: str, now: float) -> tuple[float, float]:
    """The UTC day or month holding `now`: [start, end) in Unix seconds."""
    if period == "day":
        start = now - now % DAY
        return start, start + DAY
    moment = datetime.fromtimestamp(now, UTC)
    first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    days = calendar.monthrange(moment.year, moment.month)[1]
    return first.timestamp(), first.timestamp() + days * DAY


def projected(spent: float, start: float, end: float, now: float) -> float:
    """The spend at the period's end if it goes on at the pace since the period started."""
    elapsed = max(now - start, 1.0)
    return spent * (end - start) / elapsed


class BudgetFileError(ValueError):
    """The budgets file cannot be read or holds an invalid budget."""


def load(path: Path) -> list[OwnerBudget]:
    """The budgets of `alerts/config.yaml` (`cost.owner_budgets`); a clear error when wrong."""
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BudgetFileError(f"cannot read budgets from {path}: {exc}") from exc
    items = ((data or {}).get("cost") or {}).get("owner_budgets") or []
    if not isinstance(items, list):
        raise BudgetFileError(f"{path}: cost.owner_budgets must be a list")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(OwnerBudget.model_validate(item))
        except ValidationError as exc:
            raise BudgetFileError(f"{path}: cost.owner_budgets[{i}]: {exc.errors()[0]['msg']}") from exc
    return out
