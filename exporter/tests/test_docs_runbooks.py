"""docs/runbooks.md's commands, section by section, run as written (with `AGENT` set to the alert's
agent, as the runbooks say) against a real exporter and a real Prometheus, print what an on-call
engineer needs: the fleet of tests/doc_stack.py has a fixer that just failed three runs in a row, a
triager silent for three hours and two rejected records."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .doc_examples import Block, Done, blocks_in
from .doc_stack import HAIKU, SONNET, TRIAGER_SILENT_SECONDS, DocsStack

pytestmark = pytest.mark.prometheus

RUNBOOKS = "docs/runbooks.md"
[FAILURE_BUDGET] = blocks_in(RUNBOOKS, "AgentFailureBudgetBurn")
[COST_SPIKE] = blocks_in(RUNBOOKS, "AgentCostSpike")
[BUDGET] = blocks_in(RUNBOOKS, "AgentCostBudgetBurn")
[DURATION] = blocks_in(RUNBOOKS, "AgentRunDurationRegression")
[TOKENS] = blocks_in(RUNBOOKS, "AgentTokensPerRunSpike")
[STOPPED] = blocks_in(RUNBOOKS, "AgentStoppedReporting")
[DOWN] = blocks_in(RUNBOOKS, "AgentExporterDown")
REJECTED_BY_REASON, REPRODUCE = blocks_in(RUNBOOKS, "AgentExporterRecordsRejected")
[OVERFLOW] = blocks_in(RUNBOOKS, "AgentExporterLabelOverflow")
#: the blocks this module runs, for test_docs_inventory
BLOCKS: tuple[Block, ...] = (
    FAILURE_BUDGET,
    COST_SPIKE,
    BUDGET,
    DURATION,
    TOKENS,
    STOPPED,
    DOWN,
    REJECTED_BY_REASON,
    REPRODUCE,
    OVERFLOW,
)
STATUSES = ("success", "failure", "error", "timeout", "cancelled")
FIXER_RUNS_OF_THE_HOUR = {
    *(f"fixer-ok-{i}" for i in range(6)),
    "fixer-gpt",
    "fixer-fail-1",
    "fixer-fail-2",
    "fixer-fail-3",
}


def run(stack: DocsStack, command: str, agent: str = "fixer") -> Done:
    return stack.shell.run(command, env={"AGENT": agent}).ok()


def vector(done: Done, *labels: str) -> dict[tuple[str, ...], float]:
    """A Prometheus instant query's answer: label values -> value."""
    body = done.json()
    assert body["status"] == "success", body
    return {tuple(s["metric"][name] for name in labels): float(s["value"][1]) for s in body["data"]["result"]}


def row(out: str, first: str) -> list[str]:
    """The cells (split on blanks) after `first` of the table row of `out` that starts with it."""
    [line] = [line for line in out.splitlines() if line.strip().startswith(first + " ")]
    return line.split()[1:]


def starts(cells: list[str], expected: str) -> bool:
    """Whether `cells` begin with the blank-separated `expected`."""
    return cells[: len(expected.split())] == expected.split()


def dollars(cells: list[str]) -> list[str]:
    """The money cells of a row: cost, cost per run, cost per success."""
    return [cell for cell in cells if cell.startswith("$")]


def run_ids(out: str) -> list[str]:
    """The run ids of an `agent-exporter runs` table, in order."""
    return re.findall(r"^\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+(\S+)", out, re.M)


# -- AgentFailureBudgetBurn ------------------------------------------------------------------------


def test_failure_budget_health_names_the_agents_streak_and_latest_failure(docs_stack: DocsStack) -> None:
    health, _, _ = FAILURE_BUDGET.commands
    out = run(docs_stack, health).stdout
    assert out.startswith("DEGRADED")
    assert "fixer has failed its last 3 runs" in out
    assert "Most recent failure: run fixer-fail-3 (fixer)" in out
    assert "tests_failed: 3 tests still fail in tests/test_invoice.py" in out


def test_failure_budget_runs_lists_the_agents_failed_runs_of_the_hour(docs_stack: DocsStack) -> None:
    _, runs, _ = FAILURE_BUDGET.commands
    out = run(docs_stack, runs).stdout
    assert out.startswith("3 runs, newest first")
    assert run_ids(out) == ["fixer-fail-3", "fixer-fail-2", "fixer-fail-1"]


def test_failure_budget_query_splits_the_agents_hour_by_model_issue_type_and_status(
    docs_stack: DocsStack,
) -> None:
    _, _, query = FAILURE_BUDGET.commands
    increases = vector(run(docs_stack, query), "model", "issue_type", "status")
    assert set(increases) == {(model, "complexity", s) for model in (SONNET, "gpt-5") for s in STATUSES}
    failed = {key[2]: value for key, value in increases.items() if value > 0}
    assert set(failed) == {"failure", "error", "timeout"}  # one each, in the second scrape
    assert all(1 <= value < 2 for value in failed.values()), failed  # extrapolated to the window's end


# -- AgentCostSpike --------------------------------------------------------------------------------


def test_cost_spike_summary_gives_the_agents_hour_by_model(docs_stack: DocsStack) -> None:
    summary, _ = COST_SPIKE.commands
    out = run(docs_stack, summary).stdout
    # runs, cancelled, failed, success, p50, p95, tokens/run, cost, cost/run, cost/success, ...
    assert starts(row(out, SONNET), "9 0 3 66.7% 5m 00s 10m 00s 204.0k $9.00 $1.00 $1.50")
    assert starts(row(out, "gpt-5"), "1 0 0 100.0% 3m 20s 3m 20s 102.0k $0.40 $0.40 $0.40")
    assert starts(row(out, "all"), "10 0 3 70.0% 5m 00s 10m 00s 193.8k $9.40 $0.94 $1.34")


def test_cost_spike_runs_lists_the_agents_runs_of_the_hour_only(docs_stack: DocsStack) -> None:
    _, runs = COST_SPIKE.commands
    out = run(docs_stack, runs).stdout
    assert out.startswith("10 runs, newest first")
    assert set(run_ids(out)) == FIXER_RUNS_OF_THE_HOUR


# -- AgentCostBudgetBurn ---------------------------------------------------------------------------


def test_budget_query_names_the_spenders_of_the_hour(docs_stack: DocsStack) -> None:
    query, _ = BUDGET.commands
    spend = vector(run(docs_stack, query), "agent", "model")
    assert set(spend) == {("fixer", SONNET), ("fixer", "gpt-5"), ("reviewer", "gpt-5"), ("triager", HAIKU)}
    assert 6.00 <= spend["fixer", SONNET] < 12.00  # the three failures cost 2 USD each
    assert 0.25 <= spend["reviewer", "gpt-5"] < 0.50
    assert spend["fixer", "gpt-5"] == spend["triager", HAIKU] == 0


def test_budget_summary_gives_the_days_spend_per_agent(docs_stack: DocsStack) -> None:
    _, summary = BUDGET.commands
    out = run(docs_stack, summary).stdout
    runs_and_cost = {
        agent: (row(out, agent)[0], dollars(row(out, agent))[0]) for agent in ("fixer", "reviewer", "triager")
    }
    assert runs_and_cost == {"fixer": ("12", "$10.40"), "reviewer": ("3", "$0.75"), "triager": ("1", "$0.01")}


# -- AgentRunDurationRegression and AgentTokensPerRunSpike -----------------------------------------


def test_duration_summaries_compare_the_hour_with_the_week_before_it(docs_stack: DocsStack) -> None:
    hour, week, _ = DURATION.commands
    # p50 and p95 of the hour, then of the baseline week (the two runs two hours ago)
    assert row(run(docs_stack, hour).stdout, "all")[4:8] == ["5m", "00s", "10m", "00s"]
    assert starts(row(run(docs_stack, week).stdout, "all"), "2 0 0 100.0% 1m 40s 1m 40s")


def test_duration_runs_lists_the_runs_of_the_hour(docs_stack: DocsStack) -> None:
    _, _, runs = DURATION.commands
    assert set(run_ids(run(docs_stack, runs).stdout)) == FIXER_RUNS_OF_THE_HOUR


def test_tokens_summaries_give_tokens_per_run_of_the_hour_and_the_week_before(docs_stack: DocsStack) -> None:
    hour, week = TOKENS.commands
    assert row(run(docs_stack, hour).stdout, SONNET)[8] == "204.0k"
    assert row(run(docs_stack, week).stdout, SONNET)[8] == "102.0k"


# -- AgentStoppedReporting -------------------------------------------------------------------------


def test_stopped_reporting_runs_shows_the_agents_newest_run(docs_stack: DocsStack) -> None:
    newest, _ = STOPPED.commands
    out = run(docs_stack, newest, agent="triager").stdout
    assert out.startswith("1 run, newest first")
    assert run_ids(out) == ["triager-0"]


def test_stopped_reporting_query_gives_each_agents_silence_in_seconds(docs_stack: DocsStack) -> None:
    _, query = STOPPED.commands
    silence = {agent: value for (agent,), value in vector(run(docs_stack, query, "triager"), "agent").items()}
    assert set(silence) == {"fixer", "reviewer", "triager"}
    assert TRIAGER_SILENT_SECONDS <= silence["triager"] < TRIAGER_SILENT_SECONDS + 600
    assert silence["fixer"] < 600
    assert silence["reviewer"] < 600


# -- AgentExporterDown -----------------------------------------------------------------------------


def test_exporter_down_probes_answer_alive_and_ready(docs_stack: DocsStack) -> None:
    healthz, readyz = DOWN.commands
    assert run(docs_stack, healthz).json() == {"status": "ok"}
    assert run(docs_stack, readyz).json() == {"status": "ready"}


# -- AgentExporterRecordsRejected ------------------------------------------------------------------


def test_rejected_query_names_the_rules_that_rejected_records(docs_stack: DocsStack) -> None:
    [query] = REJECTED_BY_REASON.commands
    assert set(vector(run(docs_stack, query), "reason")) == {("future_timestamp",), ("required",)}


def test_reproducing_with_one_record_answers_the_field_and_the_rule(docs_stack: DocsStack) -> None:
    [post] = REPRODUCE.commands
    skewed: dict[str, Any] = {
        "run_id": "skewed-again",
        "agent": "fixer",
        "status": "success",
        "duration_seconds": 1.0,
        "ended_at": "2099-01-01T00:00:00+00:00",
    }
    (docs_stack.checkout / "record.json").write_text(json.dumps(skewed))
    status, body = docs_stack.shell.run(post, http_status=True).ok().http()
    [result] = body["results"]
    assert (status, result["outcome"]) == (422, "rejected")
    assert [(e["field"], e["rule"]) for e in result["errors"]] == [("ended_at", "future_timestamp")]


# -- AgentExporterLabelOverflow --------------------------------------------------------------------


def test_overflow_query_counts_the_series_of_each_model(docs_stack: DocsStack) -> None:
    [query] = OVERFLOW.commands
    series = {model: value for (model,), value in vector(run(docs_stack, query), "model").items()}
    # five statuses of each (agent, model, issue_type): gpt-5 runs for the fixer and the reviewer
    assert series == {SONNET: 5, "gpt-5": 10, HAIKU: 5}
