"""Metrics details the mutation run (make mutate, docs/quality.md) found untested: totals an agent
reported beside a breakdown that does not add up to them, unpriced and free usage lines, the cap of an
extra label, and both exposition formats."""

from __future__ import annotations

import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from agent_exporter.metrics import Metrics
from agent_exporter.record import Run

from .test_metrics import FIXER, metrics, run, value

DATA = Path(__file__).parent / "data"  # beside the tests: mutmut runs a copy of them

OWN = {"agent": "fixer", "model": "own-model"}
A = {"agent": "fixer", "model": "a"}
B = {"agent": "fixer", "model": "b"}


def test_a_total_the_breakdown_does_not_add_up_to_goes_to_the_runs_model(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    usage = [{"model": "a", "input_tokens": 1000, "output_tokens": 10}, {"model": "b", "input_tokens": 1000}]
    # 5000 input tokens reported against 2000 in the breakdown; the output total (10) is the breakdown's
    m.observe_run(run("r", model="own-model", input_tokens=5000, usage=usage, cost_usd=None))
    assert value(registry, "agent_tokens_total", **OWN, token_type="input") == 5000
    assert value(registry, "agent_tokens_total", **A, token_type="input") is None
    assert value(registry, "agent_tokens_total", **A, token_type="output") == 10
    assert value(registry, "agent_tokens_total", **B, token_type="output") is None
    assert value(registry, "agent_tokens_total", **OWN, token_type="output") is None


def test_an_unpriced_run_with_a_breakdown_is_unpriced_under_its_own_model(
    registry: CollectorRegistry,
) -> None:
    m = metrics(registry)
    m.observe_run(run("r", model="own-model", usage=[{"model": "internal-x", "input_tokens": 5}]))
    assert value(registry, "agent_runs_unpriced_total", **OWN) == 1
    assert value(registry, "agent_runs_unpriced_total", agent="fixer", model="internal-x") is None


def test_a_cost_the_breakdown_does_not_add_up_to_goes_to_the_runs_model(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    usage = [{"model": "a", "cost_usd": 1.0}, {"model": "b", "cost_usd": 2.0}]
    m.observe_run(run("r", model="own-model", cost_usd=3.5, usage=usage))
    assert value(registry, "agent_cost_usd_total", **OWN, cost_source="reported", status="success") == 3.5
    assert value(registry, "agent_cost_usd_total", **A, cost_source="reported", status="success") is None


def test_a_breakdown_with_an_unknown_line_cost_leaves_the_cost_to_the_runs_model(
    registry: CollectorRegistry,
) -> None:
    m = metrics(registry)
    usage = [{"model": "a", "cost_usd": 5.0}, {"model": "internal-x", "input_tokens": 5}]
    m.observe_run(run("r", model="own-model", cost_usd=5.0, usage=usage))
    assert value(registry, "agent_cost_usd_total", **OWN, cost_source="reported", status="success") == 5.0
    assert value(registry, "agent_cost_usd_total", **A, cost_source="reported", status="success") is None


def test_a_free_usage_line_is_counted_at_zero(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(
        run("r", model=None, usage=[{"model": "a", "cost_usd": 0.0}, {"model": "b", "cost_usd": 2.0}])
    )
    assert value(registry, "agent_cost_usd_total", **A, cost_source="reported", status="success") == 0.0
    assert value(registry, "agent_cost_usd_total", **B, cost_source="reported", status="success") == 2.0


def test_a_line_without_a_token_kind_adds_none_of_it(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    usage = [{"model": "a", "output_tokens": 10}, {"model": "b", "input_tokens": 7}]
    m.observe_run(run("r", model=None, usage=usage))
    assert value(registry, "agent_tokens_total", **A, token_type="output") == 10
    assert value(registry, "agent_tokens_total", **B, token_type="output") is None
    assert value(registry, "agent_tokens_total", **B, token_type="input") == 7


def test_an_extra_label_is_capped_by_its_own_limit(registry: CollectorRegistry) -> None:
    m = metrics(registry, extra=("project",), limits={"project": 1})
    m.observe_run(run("r", project="billing"))
    m.observe_run(run("s", project="search"))
    labels = {"agent": "fixer", "model": "claude-sonnet-4-5", "issue_type": "complexity", "status": "success"}
    assert value(registry, "agent_runs_total", **labels, project="billing") == 1
    assert value(registry, "agent_runs_total", **labels, project="other") == 1
    assert value(registry, "agent_exporter_label_overflow_total", label="project") == 1


def test_the_scrape_is_openmetrics_or_text_throughout(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("r"))
    om, text = m.render(openmetrics=True).decode(), m.render(openmetrics=False).decode()
    assert "# TYPE agent_runs counter\n" in om
    assert om.endswith("# EOF\n")
    assert "# TYPE agent_runs_total counter\n" in text
    assert "# TYPE agent_exporter_build_info gauge\n" in text
    assert "# EOF" not in text


def test_pipeline_attempts_cycles_and_subagent_retries_are_counted(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(
        run(
            "r",
            pipeline_attempts=[{"status": "failure"}, {"status": "success"}, {"status": "success"}],
            debugging_cycles=[{"resolved": True}, {"resolved": False}, {"resolved": False}],
            subagents=[
                {"name": "tester", "attempts": 3, "successes": 2, "failures": 1, "retries": 2},
                {"name": "linter", "attempts": 1, "successes": 1, "failures": 0},
            ],
        )
    )
    attempts = {
        (status, first): value(
            registry, "agent_pipeline_attempts_total", agent="fixer", status=status, first_attempt=first
        )
        for status in ("success", "failure", "error", "cancelled")
        for first in ("true", "false")
    }
    assert attempts == {
        ("success", "true"): 0.0,
        ("success", "false"): 2.0,
        ("failure", "true"): 1.0,
        ("failure", "false"): 0.0,
        ("error", "true"): 0.0,
        ("error", "false"): 0.0,
        ("cancelled", "true"): 0.0,
        ("cancelled", "false"): 0.0,
    }
    cycles = [
        value(registry, "agent_debugging_cycles_total", agent="fixer", resolution=r)
        for r in ("resolved", "unresolved")
    ]
    assert cycles == [1.0, 2.0]
    assert value(registry, "agent_subagent_retries_total", agent="fixer", subagent="tester") == 2.0
    assert value(registry, "agent_subagent_retries_total", agent="fixer", subagent="linter") is None


def test_a_run_without_a_workflow_adds_no_workflow_series(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("r"))
    rendered = m.render(openmetrics=False).decode()
    assert "agent_pipeline_attempts_total{" not in rendered
    assert "agent_debugging_cycles_total{" not in rendered


def test_a_score_is_observed_under_its_agent_name_and_source_with_the_run_as_exemplar(
    registry: CollectorRegistry,
) -> None:
    m = metrics(registry, limits={"score_source": 1})
    m.observe_score("fixer", "review", "ci", 0.8, "run-1")
    m.observe_score("fixer", "review", "person", 0.3, "run-2")
    m.observe_score("fixer", "review", None, 0.5, "r" * 200)

    def sample(name: str, source: str, **extra: str) -> float | None:
        labels = {"agent": "fixer", "name": "review", "source": source, **extra}
        return registry.get_sample_value(name, labels)

    assert sample("agent_run_score_sum", "ci") == 0.8
    assert sample("agent_run_score_bucket", "ci", le="0.7") == 0.0
    assert sample("agent_run_score_bucket", "ci", le="0.8") == 1.0
    assert sample("agent_run_score_sum", "other") == 0.3  # past the cap of one source
    assert sample("agent_run_score_sum", "unknown") == 0.5
    om = m.render(openmetrics=True).decode()
    assert '# {run_id="run-1"} 0.8' in om
    assert 'run_id="' + "r" * 200 not in om  # too long for an exemplar: counted without one


def test_a_fresh_scrape_is_the_catalogue_byte_for_byte(registry: CollectorRegistry) -> None:
    """Every family's name, help and type, the zeros that exist before the first record, the buckets."""
    expected = (DATA / "empty_scrape.prom").read_text(encoding="utf-8")
    scrape = metrics(registry).render(openmetrics=False).decode()
    assert scrape == expected.replace("PYTHON_VERSION", platform.python_version())


def test_each_label_is_capped_under_its_own_name(registry: CollectorRegistry) -> None:
    capped = ("agent", "model", "issue_type", "tool", "phase", "subagent", "score_name", "score_source")
    m = metrics(registry, limits=dict.fromkeys(capped, 1))

    def workflow_run(run_id: str, n: int, **fields: Any) -> Run:
        return run(
            run_id,
            agent=f"a{n}",
            issue_type=f"i{n}",
            tools=[{"name": f"t{n}", "calls": n}],
            phases=[{"name": f"p{n}", "duration_seconds": n}],
            subagents=[{"name": f"s{n}", "attempts": n + 1, "successes": 1, "failures": n, "retries": n}],
            **fields,
        )

    m.observe_run(workflow_run("r1", 1, model="m1"))
    # the second run's agent, issue type, tool, phase, sub-agent and its usage line's model are one too many
    usage = [{"model": "m1", "input_tokens": 10}, {"model": "m2", "input_tokens": 5}]
    m.observe_run(workflow_run("r2", 2, model="m1", input_tokens=15, usage=usage))
    m.observe_score("a1", "n1", "s1", 0.5, "r1")
    m.observe_score("a3", "n2", "s2", 0.7, "r2")
    other = {"agent": "other"}
    runs = {"model": "m1", "issue_type": "other", "status": "success"}
    assert value(registry, "agent_runs_total", **other, **runs) == 1
    assert value(registry, "agent_tokens_total", **other, model="m1", token_type="input") == 10
    assert value(registry, "agent_tokens_total", **other, model="other", token_type="input") == 5
    assert value(registry, "agent_tool_calls_total", **other, tool="other") == 2
    assert value(registry, "agent_phase_duration_seconds_sum", **other, phase="other") == 2
    assert value(registry, "agent_subagent_retries_total", **other, subagent="other") == 2
    assert value(registry, "agent_subagent_retries_total", agent="a1", subagent="s1") == 1
    score = {"agent": "other", "name": "other", "source": "other"}
    assert registry.get_sample_value("agent_run_score_sum", score) == 0.7
    overflow = {
        label: value(registry, "agent_exporter_label_overflow_total", label=label) for label in capped
    }
    assert overflow == dict.fromkeys(capped, 1.0) | {"agent": 2.0}


def test_a_run_id_of_exactly_the_exemplar_limit_is_an_exemplar(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    longest, too_long = "x" * (128 - len("run_id")), "y" * (129 - len("run_id"))
    m.observe_run(run(longest))
    m.observe_run(run(too_long))
    m.observe_score("fixer", "review", "ci", 0.5, longest)
    m.observe_score("fixer", "review", "ci", 0.6, too_long)
    om = m.render(openmetrics=True).decode()
    assert om.count(f'# {{run_id="{longest}"}}') == 2  # its duration and its score
    assert too_long not in om


def test_every_histogram_of_a_run_carries_its_exemplar_at_one_time(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    before = time.time()
    m.observe_run(
        run(
            "r-1",
            input_tokens=3000,
            output_tokens=1000,
            cost_usd=2.0,
            llm_calls=9,
            tool_calls=5,
            phases=[{"name": "plan", "duration_seconds": 4}],
        )
    )
    after = time.time()
    exemplars = {
        line.split("_bucket{", 1)[0]: line.split(" # ", 1)[1]
        for line in m.render(openmetrics=True).decode().splitlines()
        if ' # {run_id="r-1"}' in line
    }
    values = {name: exemplar.split()[1] for name, exemplar in exemplars.items()}
    assert values == {
        "agent_run_duration_seconds": "30.0",
        "agent_run_tokens": "4000.0",
        "agent_run_cost_usd": "2.0",
        "agent_run_llm_calls": "9.0",
        "agent_run_tool_calls": "5.0",
        "agent_phase_duration_seconds": "4.0",
    }
    # one run is one update: its exemplars share the time it was counted
    (stamp,) = {exemplar.split()[2] for exemplar in exemplars.values()}
    assert before <= float(stamp) <= after


def test_each_kind_of_workflow_is_counted_on_its_own(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("cycles", agent="a", debugging_cycles=[{"resolved": True}]))
    m.observe_run(run("pipeline", agent="b", pipeline_attempts=[{"status": "success"}]))
    m.observe_run(
        run(
            "subagents",
            agent="c",
            subagents=[{"name": "tester", "attempts": 2, "successes": 1, "failures": 1, "retries": 1}],
        )
    )
    assert value(registry, "agent_debugging_cycles_total", agent="a", resolution="resolved") == 1
    assert (
        value(registry, "agent_pipeline_attempts_total", agent="b", status="success", first_attempt="true")
        == 1
    )
    assert value(registry, "agent_subagent_retries_total", agent="c", subagent="tester") == 1


def test_a_failed_runs_first_cost_starts_every_status_at_zero(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("r", status="failure", cost_usd=1.5))
    costs = {
        status: value(registry, "agent_cost_usd_total", **FIXER, cost_source="reported", status=status)
        for status in ("success", "failure", "error", "timeout", "cancelled")
    }
    assert costs == {"success": 0.0, "failure": 1.5, "error": 0.0, "timeout": 0.0, "cancelled": 0.0}


def test_the_values_seen_of_a_label_are_live_before_its_first_value(registry: CollectorRegistry) -> None:
    limit = metrics(registry).limit
    tools = limit.seen("tool")
    assert tools == set()
    assert limit("tool", "bash") == "bash"
    assert tools == {"bash"}


def test_a_breakdown_a_trillionth_of_a_dollar_off_the_total_is_split(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("r", model="own-model", cost_usd=0.0, usage=[{"model": "a", "cost_usd": 5e-13}]))
    assert value(registry, "agent_cost_usd_total", **A, cost_source="reported", status="success") == 5e-13
    assert value(registry, "agent_cost_usd_total", **OWN, cost_source="reported", status="success") is None


def test_a_lag_under_a_second_is_observed_as_it_is(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    receipt = datetime(2026, 11, 18, 10, tzinfo=UTC).timestamp()
    m.observe_run(run("a", ended_at="2026-11-18T09:59:59.750Z", received_at=receipt))
    assert value(registry, "agent_exporter_ingest_lag_seconds_sum") == 0.25
    assert value(registry, "agent_exporter_ingest_lag_seconds_bucket", le="0.5") == 1


def test_an_empty_label_value_is_unknown(registry: CollectorRegistry) -> None:
    limit = metrics(registry, limits={"project": 1}).limit
    assert (limit("project", ""), limit("project", None), limit("project", "billing")) == (
        "unknown",
        "unknown",
        "billing",
    )


def test_by_default_the_scrape_has_version_0_0_0_and_the_process_collectors(
    registry: CollectorRegistry,
) -> None:
    scrape = Metrics(registry).render(openmetrics=False).decode()
    python = platform.python_version()
    assert f'agent_exporter_build_info{{python_version="{python}",version="0.0.0"}} 1.0\n' in scrape
    for family in ("process_cpu_seconds_total", "python_info", "python_gc_objects_collected_total"):
        assert f"\n# TYPE {family} " in scrape, family


def test_http_requests_are_timed_in_the_exporters_own_buckets(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_http("/api/v1/runs", "POST", 201, 0.003)
    m.observe_http("/api/v1/runs", "POST", 201, 0.004)
    request = {"handler": "/api/v1/runs", "method": "POST", "code": "201"}
    buckets = {
        le: registry.get_sample_value(
            "agent_exporter_http_request_duration_seconds_bucket", request | {"le": le}
        )
        for le in ("0.001", "0.0025", "0.005", "+Inf")
    }
    assert buckets == {"0.001": 0.0, "0.0025": 0.0, "0.005": 2.0, "+Inf": 2.0}
