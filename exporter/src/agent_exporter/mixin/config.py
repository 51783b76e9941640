"""The schema of `alerts/config.yaml`: thresholds, objectives, windows and budgets, validated once.

The YAML file is the only place values live: every key is required here, so a value has no second,
silent default in code. `scaled()` shrinks every duration by a factor for the live integration
test, which renders the same source with windows of seconds instead of hours.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ..budgets import OwnerBudget

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in a one-unit Prometheus duration (`90s`, `5m`, `1h`, `3d`, `1w`)."""
    match = _DURATION.match(str(text).strip())
    if not match or match.group(2) == "ms":
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h, 1d or 1w")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be positive")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest Prometheus duration for `seconds` (`3600` is `1h`, `5400` is `90m`)."""
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _seconds(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


#: a duration, written `5m` in YAML, held as whole seconds
Seconds = Annotated[int, BeforeValidator(_seconds), Field(gt=0)]
Severity = Literal["critical", "warning"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Links(_Model):
    """Where alerts point humans."""

    grafana_url: str = Field(pattern=r"^https?://")
    runbook_url: str = Field(pattern=r"^https?://")
    #: the exporter's public URL: the run tables and exemplars link to its web run pages, alerts to
    #: its filtered /runs page; empty: no such links
    exporter_url: str = Field(pattern=r"^(https?://\S+)?$")


class BurnWindow(_Model):
    """One multi-window burn-rate alert: both windows must burn the budget `burn_rate` times too fast."""

    severity: Severity
    long: Seconds
    short: Seconds
    burn_rate: float = Field(gt=0)
    for_: Seconds = Field(alias="for")

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnWindow:
        if self.short >= self.long:
            raise ValueError("short must be shorter than long")
        return self


class FailureRate(_Model):
    """The success objective and its burn-rate alerts."""

    objective: float = Field(gt=0, lt=1)
    period: Seconds
    min_runs: int = Field(ge=1)
    windows: list[BurnWindow] = Field(min_length=1)

    @property
    def budget(self) -> float:
        """The error budget: the share of runs that may fail."""
        return 1 - self.objective

    @model_validator(mode="after")
    def _can_fire(self) -> FailureRate:
        for w in self.windows:
            if w.burn_rate * self.budget >= 1:
                raise ValueError(
                    f"windows: burn_rate {w.burn_rate:g} with objective {self.objective:g} needs a failure "
                    f"ratio of {w.burn_rate * self.budget:.0%}, which can never happen; lower the burn rate"
                )
        return self


class BudgetWindow(_Model):
    """Spend over `window` at `burn_rate` times the daily budget's share of that window."""

    severity: Severity
    window: Seconds
    burn_rate: float = Field(gt=0)
    for_: Seconds = Field(alias="for")


class Spike(_Model):
    """An agent's spend over `window` against the same window `offset` earlier."""

    window: Seconds
    offset: Seconds
    factor: float = Field(gt=1)
    min_spend_usd: float = Field(ge=0)
    for_: Seconds = Field(alias="for")


class Cost(_Model):
    """The daily budget, the budgets per owner, and the cost alerts."""

    daily_budget_usd: float = Field(gt=0)
    budget_windows: list[BudgetWindow] = Field(min_length=1)
    #: a team's, project's or agent's daily or monthly budget, each alerted on the budget windows
    owner_budgets: list[OwnerBudget]
    spike: Spike

    @model_validator(mode="after")
    def _one_budget_per_owner_and_period(self) -> Cost:
        keys = [(b.owner, b.name, b.period) for b in self.owner_budgets]
        if len(keys) != len(set(keys)):
            raise ValueError("owner_budgets: one budget per owner, name and period")
        return self


class Regression(_Model):
    """A per-agent value over `window` against the same value over `baseline`."""

    window: Seconds
    baseline: Seconds
    factor: float = Field(gt=1)
    min_runs: int = Field(ge=1)
    for_: Seconds = Field(alias="for")

    @model_validator(mode="after")
    def _baseline_is_longer(self) -> Regression:
        if self.baseline <= self.window:
            raise ValueError("baseline must be longer than window")
        return self


class DurationRegression(Regression):
    """The run-duration regression: a quantile of the duration histogram."""

    quantile: float = Field(gt=0, lt=1)


class StoppedReporting(_Model):
    """An agent seen within `lookback` but not within `after`."""

    after: Seconds
    lookback: Seconds
    for_: Seconds = Field(alias="for")

    @model_validator(mode="after")
    def _lookback_is_longer(self) -> StoppedReporting:
        if self.lookback <= self.after:
            raise ValueError("lookback must be longer than after")
        return self


class Exporter(_Model):
    """Alerts on the exporter itself."""

    down_for: Seconds
    rejected_ratio: float = Field(gt=0, lt=1)
    rejected_min: int = Field(ge=1)
    rejected_window: Seconds
    rejected_for: Seconds
    label_overflow_window: Seconds


class Dashboards(_Model):
    """Defaults of the generated dashboards."""

    time_from: str = Field(pattern=r"^now-\d+[smhdwMy]$")
    refresh: str = Field(pattern=r"^\d+[smhd]$")


class MixinConfig(_Model):
    """Everything `alerts/config.yaml` holds."""

    links: Links
    exporter_job: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    failure_rate: FailureRate
    cost: Cost
    duration: DurationRegression
    tokens: Regression
    stopped_reporting: StoppedReporting
    exporter: Exporter
    dashboards: Dashboards
    #: every duration is divided by this when rendering (1 for the shipped files)
    time_scale: int = Field(default=1, ge=1, exclude=True)

    def scaled(self, factor: int) -> MixinConfig:
        """This configuration with every window `factor` times shorter (rule names keep the nominal ones)."""
        return self.model_copy(update={"time_scale": factor})

    def seconds(self, nominal: int) -> int:
        """The nominal duration `nominal` shortened by `time_scale` (at least a second)."""
        return max(1, round(nominal / self.time_scale))

    def range(self, nominal: int) -> str:
        """A range selector or `for` duration for the nominal `nominal` seconds, shortened by `time_scale`."""
        return format_duration(self.seconds(nominal))


class MixinConfigError(ValueError):
    """The configuration file does not validate; the message names every offending key."""


def load_config(path: Path) -> MixinConfig:
    """Read and validate the configuration at `path`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MixinConfigError(f"{path}: {exc}") from exc
    try:
        return MixinConfig.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise MixinConfigError(f"{path} is not a valid configuration:\n" + "\n".join(lines)) from exc
