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
