"""The demo's incidents fire the matching alerts, and its baseline fires none (docs/demo.md).

Each scenario is `agent-exporter demo --seed 1` at the default rate with one `--incident` at its
default magnitude, replayed through a real exporter on a simulated clock; promtool runs the shipped
rules over the scrapes (`demo_replay` says how, and why not a live Prometheus). The expectation is
the complete list of alerts that fired during the replay: the matching one, from the minute
docs/demo.md gives, and nothing else. The replays run two at a time (one exporter each).
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_exporter.demo import DEFAULT_RATE
from agent_exporter.traffic import Traffic, parse_incident

from .demo_replay import JOB, Fired, fired, promtool_test, replay, rules_under_test, run_promtool
from .support import exporter, unavailable

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

SEED = 1
MINUTE = 60
WEEK = 7 * 86400


def alert(name: str, **labels: str) -> dict[str, str]:
    """An alert's labels: its name, `component="agents"` and `labels`."""
    return {"alertname": name, "component": "agents", **labels}


@dataclass(frozen=True)
class Scenario:
    """The demo with `incident` (None: the baseline) replayed for `horizon` seconds; what fires.

    `week_before`: the demo (without the incident) also ran the same minutes a week earlier, and
    only `alert`'s rules are evaluated (a week of minutes of every rule takes promtool minutes).
    """

    incident: str | None
    horizon: int
    fired: tuple[Fired, ...]
    week_before: bool = False
    alert: str | None = None

    @property
    def replayed(self) -> int:
        """Seconds of traffic replayed (the replay's cost)."""
        return 2 * (self.horizon - WEEK) if self.week_before else self.horizon


FIXER_PAGE = alert("AgentFailureBudgetBurn", agent="fixer", severity="critical")
SCENARIOS = {
    # no incident: over the longest scenario's horizon, nothing fires
    "baseline": Scenario(None, 140 * MINUTE, ()),
    # 10 minutes of baseline, then 90% of the fixer's runs fail: the 6h/30m pair pages after 21
    # minutes (the 6-hour window holds only the demo's 31 minutes), the 1h/5m pair after 39
    "failure-spike": Scenario(
        "failure-spike:start=600",
        50 * MINUTE,
        (
            Fired({**FIXER_PAGE, "long_window": "1h", "short_window": "5m"}, 2880, 3000, 3),
            Fired({**FIXER_PAGE, "long_window": "6h", "short_window": "30m"}, 1800, 3000, 21),
        ),
    ),
    # 10 minutes of baseline, then the fixer's runs cost 10 times as much: the last hour's pace
    # passes 6 daily budgets
    "cost-spike": Scenario(
        "cost-spike:start=600",
        65 * MINUTE,
        (Fired(alert("AgentCostBudgetBurn", job=JOB, severity="critical", window="1h"), 3720, 3900, 4),),
    ),
    # the same, a week after the demo ran the same hour without it: over 3 times last week's spend
    "cost-spike-a-week-later": Scenario(
        "cost-spike:start=600",
        WEEK + 40 * MINUTE,
        (Fired(alert("AgentCostSpike", agent="fixer", severity="warning"), WEEK + 1680, WEEK + 2400, 13),),
        week_before=True,
        alert="AgentCostSpike",
    ),
    # an hour of baseline (the regression alerts compare with the baseline as of an hour earlier),
    # then the fixer's runs take 4 times as long
    "latency-regression": Scenario(
        "latency-regression:start=3600",
        100 * MINUTE,
        (Fired(alert("AgentRunDurationRegression", agent="fixer", severity="warning"), 5580, 6000, 8),),
    ),
    # an hour of baseline, then 4 times the input tokens per fixer run
    "token-spike": Scenario(
        "token-spike:start=3600",
        115 * MINUTE,
        (Fired(alert("AgentTokensPerRunSpike", agent="fixer", severity="warning"), 6660, 6900, 5),),
    ),
    # 10 minutes of baseline, then the fixer sends nothing: 2 hours after its last run, plus `for`
    "agent-silent": Scenario(
        "agent-silent:start=600",
        140 * MINUTE,
        (Fired(alert("AgentStoppedReporting", agent="fixer", severity="warning"), 8100, 8400, 6),),
    ),
}


@dataclass
class Outcome:
    """What one scenario's replay and promtool run gave."""

    sent: int
    returncode: int
    output: str
    seconds: float


def run_scenario(scenario: Scenario, directory: Path, start: float | None = None) -> Outcome:
    """Replay `scenario` through a real exporter in `directory`, then judge it with promtool."""
    began = time.monotonic()
    incidents = [parse_incident(scenario.incident)] if scenario.incident else []
    start = start if start is not None else int(time.time()) - scenario.horizon - 60  # every run has ended
    runs: Iterator[tuple[float, dict[str, Any]]]
    if scenario.week_before:
        session = scenario.horizon - WEEK
        before = Traffic(SEED, rate=DEFAULT_RATE, start=start).runs(until=session)
        now = Traffic(SEED, rate=DEFAULT_RATE, start=start + WEEK, incidents=incidents).runs(until=session)
        runs = itertools.chain(before, ((WEEK + offset, run) for offset, run in now))
    else:
        runs = Traffic(SEED, rate=DEFAULT_RATE, start=start, incidents=incidents).runs(until=scenario.horizon)
    rules = rules_under_test(directory, scenario.alert)
    with exporter(directory) as server:
        result = replay(runs, start=start, horizon=scenario.horizon, url=server.url, rules=rules)
    test_file = promtool_test(result, scenario.fired, rules)
    completed = run_promtool(test_file)
    output = completed.stdout + completed.stderr
    return Outcome(result.sent, completed.returncode, output, time.monotonic() - began)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome | BaseException]:
    """Every scenario's outcome (or what went wrong), two scenarios at a time."""
    if shutil.which("promtool") is None:
        unavailable("promtool is not installed (Debian: apt-get install prometheus)")
    base = tmp_path_factory.mktemp("demo-alerts")

    def one(name: str) -> Outcome | BaseException:
        directory = base / name
        directory.mkdir()
        try:
            return run_scenario(SCENARIOS[name], directory)
        except BaseException as exc:  # noqa: BLE001 - reported by the scenario's own test
            return exc

    longest_first = sorted(SCENARIOS, key=lambda name: -SCENARIOS[name].replayed)
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(longest_first, pool.map(one, longest_first), strict=True))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_demo_fires_exactly_the_matching_alert(
    name: str, outcomes: dict[str, Outcome | BaseException]
) -> None:
    outcome = outcomes[name]
    if isinstance(outcome, BaseException):
        raise outcome
    if outcome.returncode != 0:
        got = fired(outcome.output)
        pytest.fail(
            f"{name}: promtool disagrees.\nfired instead:\n"
            + "\n".join(f"  {f}" for f in got)
            + f"\n\npromtool said:\n{outcome.output[-4000:]}"
        )


def main() -> None:
    """Print what fires in every scenario (to write the expectations and docs/demo.md's table)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, scenario in SCENARIOS.items():
            directory = Path(tmp) / name
            directory.mkdir()
            outcome = run_scenario(dataclasses.replace(scenario, fired=()), directory)
            print(f"{name}: {outcome.sent} runs, {outcome.seconds:.1f} s")
            for f in fired(outcome.output):
                print(f"  {dict(f.labels)} first {f.first} last {f.last} evaluations {f.evaluations}")


if __name__ == "__main__":
    main()
