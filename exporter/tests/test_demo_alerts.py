"""The demo's incidents fire the matching alerts, and its baseline fires none (docs/demo.md).

Each scenario is `agent-exporter demo --seed 1` at the default rate with one `--incident` at its
default magnitude, replayed through a real exporter on a simulated clock; promtool runs the shipped
rules over the scrapes (`demo_replay` says how, and why not a live Prometheus). The expectation is
the complete list of alerts that fired during the replay: the matching one, from the minute
docs/demo.md gives, and nothing else. The replays run two at a time (one exporter each).

One scenario also runs live, 60 times faster, through Prometheus (windows 60 times shorter, from
the same alerts/config.yaml) and Alertmanager: its page must fire within a few minutes of the
replay's, which checks the simulated clock against the wall clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_exporter.client.delivery import encode
from agent_exporter.demo.command import DEFAULT_RATE
from agent_exporter.demo.stack import alertmanager_binary
from agent_exporter.demo.traffic import Traffic, parse_incident

from .demo_replay import JOB, Fired, fired, promtool_test, replay, rules_under_test, run_promtool
from .live_stack import alertmanager_config, start_alertmanager, start_prometheus, webhook_receiver
from .support import exporter, unavailable, wait_until

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
    # 10 minutes of baseline, then 90% of the fixer's runs fail: the 6h/30m pair pages 20 minutes
    # later (the 6-hour window holds only the demo's 30 minutes), the 1h/5m pair 38 minutes later
    "failure-spike": Scenario(
        "failure-spike:start=600",
        50 * MINUTE,
        (
            Fired({**FIXER_PAGE, "long_window": "1h", "short_window": "5m"}, 2880, 3000, 3),
            Fired({**FIXER_PAGE, "long_window": "6h", "short_window": "30m"}, 1800, 3000, 21),
        ),
    ),
    # the live test's scenario (below): 2 minutes of baseline; the 1h/5m pair pages 8 minutes later
    "failure-spike-live": Scenario(
        "failure-spike:start=120",
        12 * MINUTE,
        (Fired({**FIXER_PAGE, "long_window": "1h", "short_window": "5m"}, 600, 720, 3),),
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


def run_scenario(scenario: Scenario, directory: Path) -> Outcome:
    """Replay `scenario` through a real exporter in `directory`, then judge it with promtool."""
    began = time.monotonic()
    incidents = [parse_incident(scenario.incident)] if scenario.incident else []
    start = int(time.time()) - scenario.horizon - 60  # every run has ended by now
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


LIVE = "failure-spike-live"  # the scenario the live stack runs too
LIVE_SCALE = 60  # live, a simulated minute is a second


@dataclass
class LiveOutcome:
    """What the live stack did: when the demo began (Unix time) and Alertmanager's notifications."""

    began: float
    notifications: list[tuple[str, dict[str, Any]]]


def run_live(scenario: Scenario, directory: Path) -> LiveOutcome:
    """`scenario`'s traffic, LIVE_SCALE times faster, through a real exporter, Prometheus with every
    window LIVE_SCALE times shorter, and Alertmanager, until the first page (or the horizon)."""
    if shutil.which("prometheus") is None or alertmanager_binary() is None:
        unavailable("prometheus and prometheus-alertmanager are not installed (apt-get install them)")
    incidents = [parse_incident(scenario.incident)] if scenario.incident else []
    traffic = Traffic(SEED, rate=DEFAULT_RATE, start=0, incidents=incidents)
    with (
        exporter(directory) as server,
        webhook_receiver() as (receiver, webhook),
        contextlib.ExitStack() as processes,
    ):
        am, am_url = start_alertmanager(alertmanager_config(webhook, directory), directory)
        processes.callback(am.stop)
        prom, prom_url = start_prometheus(
            directory, exporter_port=server.port, alertmanager_url=am_url, scale=LIVE_SCALE
        )
        processes.callback(prom.stop)

        def scraped() -> bool:
            answer = httpx.get(f"{prom_url}/api/v1/query", params={"query": "up"}, timeout=5).json()
            return any(r["value"][1] == "1" for r in answer["data"]["result"] if r["metric"]["job"] == JOB)

        wait_until(scraped, 30, "Prometheus to scrape the exporter")  # as in the replay: a scrape at 0

        def paged() -> bool:
            return any(path == "/pager" for path, _ in receiver.received())

        runs = iter(traffic.runs(until=scenario.horizon))
        pending = next(runs, None)
        began = time.time()
        with httpx.Client(timeout=30) as http:
            while not paged() and time.time() - began < scenario.horizon / LIVE_SCALE + 30:
                due = (time.time() - began) * LIVE_SCALE
                batch = []
                while pending is not None and pending[0] < due:
                    offset, run = pending
                    # on the wall clock: the demo's offset, LIVE_SCALE times faster; durations as they are
                    run = {**run, "ended_at": began + offset / LIVE_SCALE}
                    run["started_at"] = run["ended_at"] - run["duration_seconds"]
                    batch.append(encode(run))
                    pending = next(runs, None)
                if batch:
                    response = http.post(
                        f"{server.url}/api/v1/runs",
                        content=b'{"runs":[' + b",".join(batch) + b"]}",
                        headers={"Content-Type": "application/json"},
                    )
                    if response.json()["accepted"] != len(batch):
                        raise RuntimeError(f"the exporter did not accept every run: {response.text}")
                time.sleep(0.1)
        return LiveOutcome(began, receiver.received())


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every scenario's outcome (or what went wrong), two replays at a time; and the live stack's
    (under the name "live"), at the same time: it mostly waits for the wall clock."""
    if shutil.which("promtool") is None:
        unavailable("promtool is not installed (Debian: apt-get install prometheus)")
    base = tmp_path_factory.mktemp("demo-alerts")

    def guarded(name: str, work: Callable[[Scenario, Path], Any], scenario: Scenario) -> Any:
        directory = base / name
        directory.mkdir()
        try:
            return work(scenario, directory)
        except BaseException as exc:  # noqa: BLE001 - reported (skip, failure) by the test that reads it
            return exc

    longest_first = sorted(SCENARIOS, key=lambda name: -SCENARIOS[name].replayed)
    with ThreadPoolExecutor(2) as replays, ThreadPoolExecutor(1) as live:
        stack = live.submit(guarded, "live", run_live, SCENARIOS[LIVE])
        done = replays.map(lambda name: guarded(name, run_scenario, SCENARIOS[name]), longest_first)
        results: dict[str, Any] = dict(zip(longest_first, done, strict=True))
        results["live"] = stack.result()
    return results


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_demo_fires_exactly_the_matching_alert(name: str, outcomes: dict[str, Any]) -> None:
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


def test_a_live_stack_pages_within_minutes_of_the_replay(outcomes: dict[str, Any]) -> None:
    """The simulated clock against the wall clock: the live stack's page fired within a few
    simulated minutes of the replay's first firing (live, each second, a minute here, holds a scrape
    and an evaluation, and an alert may read a recording one evaluation old)."""
    outcome = outcomes["live"]
    if isinstance(outcome, BaseException):
        raise outcome
    [expected] = SCENARIOS[LIVE].fired
    pages = [a for path, p in outcome.notifications if path == "/pager" for a in p["alerts"]]
    assert pages, f"no page; Alertmanager sent: {outcome.notifications}"
    notified = {a["labels"]["alertname"] for _, p in outcome.notifications for a in p["alerts"]}
    assert notified == {"AgentFailureBudgetBurn"}
    first = pages[0]
    assert {k: v for k, v in first["labels"].items() if k in expected.labels} == dict(expected.labels)
    # RFC 3339 with nanoseconds: Python reads microseconds
    fired_at = dt.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", first["startsAt"])).timestamp()
    minute = (fired_at - outcome.began) * LIVE_SCALE / MINUTE
    assert expected.first / MINUTE - 1 <= minute <= expected.first / MINUTE + 5, minute


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
