"""alerts/config.yaml: durations, validation with messages that name the key, and time scaling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_exporter.mixin.config import (
    MixinConfigError,
    format_duration,
    load_config,
    parse_duration,
)
from agent_exporter.mixin.generate import CONFIG_PATH
from agent_exporter.mixin.rules import alert_groups, recording_groups

from .support import REPO


def _shipped() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / CONFIG_PATH).read_text())
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("3d", 259_200), ("1w", 604_800)]
)
def test_durations_parse_to_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("seconds", "text"), [(3600, "1h"), (5400, "90m"), (86_400, "1d"), (61, "61s")])
def test_durations_format_with_the_largest_exact_unit(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["1h30m", "5", "-1h", "0s", "1.5h", "100ms"])
def test_a_bad_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_the_shipped_configuration_loads() -> None:
    cfg = load_config(REPO / CONFIG_PATH)
    assert cfg.failure_rate.objective == 0.95
    assert round(cfg.failure_rate.budget, 10) == 0.05
    assert [w.long for w in cfg.failure_rate.windows] == [3600, 21_600, 86_400, 259_200]


def test_an_unknown_key_is_refused_by_name(tmp_path: Path) -> None:
    data = _shipped()
    data["cost"]["daily_budget"] = 5
    with pytest.raises(MixinConfigError, match=r"cost\.daily_budget: Extra inputs are not permitted"):
        load_config(_write(tmp_path, data))


def test_a_missing_key_is_refused_by_name(tmp_path: Path) -> None:
    data = _shipped()
    del data["failure_rate"]["min_runs"]
    with pytest.raises(MixinConfigError, match=r"failure_rate\.min_runs: Field required"):
        load_config(_write(tmp_path, data))


def test_a_burn_rate_that_can_never_fire_is_refused(tmp_path: Path) -> None:
    data = _shipped()
    data["failure_rate"]["objective"] = 0.9  # budget 10%: a burn rate of 14.4 needs a 144% failure ratio
    with pytest.raises(
        MixinConfigError, match=r"burn_rate 14.4 with objective 0.9 needs a failure ratio of 144%"
    ):
        load_config(_write(tmp_path, data))


def test_a_short_window_longer_than_its_long_window_is_refused(tmp_path: Path) -> None:
    data = _shipped()
    data["failure_rate"]["windows"][0]["short"] = "2h"
    with pytest.raises(
        MixinConfigError, match=r"failure_rate\.windows\.0: Value error, short must be shorter"
    ):
        load_config(_write(tmp_path, data))


def test_scaling_shortens_ranges_but_keeps_rule_names() -> None:
    cfg = load_config(REPO / CONFIG_PATH).scaled(60)
    rules = {r["record"]: r["expr"] for g in recording_groups(cfg) for r in g["rules"]}
    assert "[1m]" in rules["agent:agent_run_failure:ratio_rate1h"]
    assert "[5s]" in rules["agent:agent_run_failure:ratio_rate5m"]
    assert "[168m]" in rules["agent:agent_run_duration_seconds:p95_rate1w"]


def test_scaling_shortens_the_day_of_the_daily_budget_and_the_baselines_offset() -> None:
    cfg = load_config(REPO / CONFIG_PATH).scaled(60)
    alerts = {r["alert"]: r["expr"] for g in alert_groups(cfg) for r in g["rules"]}
    # a day is 1,440 s at this scale: the pace is the spend of a shortened day
    assert alerts["AgentCostBudgetBurn"].startswith("job:agent_cost_usd:rate1d * 1440 > 1 * 250000")
    assert "p95_rate1w offset 1m)" in alerts["AgentRunDurationRegression"]
    assert "mean_rate1w offset 1m)" in alerts["AgentTokensPerRunSpike"]
