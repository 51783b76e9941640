"""Metrics details the mutation run (make mutate, docs/quality.md) found untested: totals an agent
reported beside a breakdown that does not add up to them, unpriced and free usage lines, the cap of an
extra label, and both exposition formats."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from .test_metrics import metrics, run, value

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
