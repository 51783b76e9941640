"""The metric catalogue: what one run adds, bounded labels, exemplars."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

from agent_exporter.metrics import LabelConfig, Metrics
from agent_exporter.record import Run

from .support import NOW, priced, record

FIXER = {"agent": "fixer", "model": "claude-sonnet-4-5"}


def run(run_id: str, received_at: float = NOW, **fields: Any) -> Run:
    return priced(record(run_id, **fields), received_at=received_at)


def metrics(registry: CollectorRegistry, **config: Any) -> Metrics:
    return Metrics(registry, LabelConfig(**config), version="1.2.3", process_collectors=False)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_a_run_is_counted_by_status_with_every_other_status_at_zero(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("r", status="failure"))
    runs = {"agent": "fixer", "model": "claude-sonnet-4-5", "issue_type": "complexity"}
    assert value(registry, "agent_runs_total", **runs, status="failure") == 1
    for status in ("success", "error", "timeout", "cancelled"):
        assert value(registry, "agent_runs_total", **runs, status=status) == 0


def test_tokens_cost_and_calls_are_counted(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(
        run(
            "r",
            input_tokens=1_000_000,
            cache_read_tokens=200_000,
            cache_write_tokens=50_000,
            output_tokens=100_000,
            reasoning_tokens=30_000,
            llm_calls=12,
        )
    )
    assert value(registry, "agent_tokens_total", **FIXER, token_type="input") == 1_000_000
    assert value(registry, "agent_tokens_total", **FIXER, token_type="output") == 100_000
    assert value(registry, "agent_cache_read_tokens_total", **FIXER) == 200_000
    assert value(registry, "agent_cache_write_tokens_total", **FIXER) == 50_000
    assert value(registry, "agent_reasoning_tokens_total", **FIXER) == 30_000
    assert value(registry, "agent_llm_calls_total", **FIXER) == 12
    # 750k x $3 + 200k x $0.30 + 50k x $3.75 + 100k x $15 per million
    assert value(
        registry, "agent_cost_usd_total", **FIXER, cost_source="estimated", status="success"
    ) == pytest.approx(3.9975)


def test_reported_cost_is_counted_as_reported(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("a", cost_usd=0.5))
    m.observe_run(run("b", cost_usd=0.25))
    assert value(registry, "agent_cost_usd_total", **FIXER, cost_source="reported", status="success") == 0.75
    assert value(registry, "agent_cost_usd_total", **FIXER, cost_source="estimated", status="success") is None


def test_an_unpriced_run_is_counted_as_such_and_adds_no_cost(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("r", model="internal-coder", input_tokens=100, output_tokens=10))
    internal = {"agent": "fixer", "model": "internal-coder"}
    assert value(registry, "agent_runs_unpriced_total", **internal) == 1
    assert (
        value(registry, "agent_cost_usd_total", **internal, cost_source="estimated", status="success") is None
    )
    assert value(registry, "agent_run_cost_usd_count", **internal) is None


def test_the_per_run_histograms_observe_one_run(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(
        run(
            "r",
            duration_seconds=42.5,
            input_tokens=3000,
            output_tokens=1000,
            cost_usd=2.0,
            llm_calls=9,
            tool_calls=5,
        )
    )
    assert value(registry, "agent_run_duration_seconds_bucket", **FIXER, status="success", le="30.0") == 0
    assert value(registry, "agent_run_duration_seconds_bucket", **FIXER, status="success", le="60.0") == 1
    assert value(registry, "agent_run_duration_seconds_sum", **FIXER, status="success") == 42.5
    assert value(registry, "agent_run_tokens_sum", **FIXER) == 4000
    assert value(registry, "agent_run_tokens_bucket", **FIXER, le="4096.0") == 1
    assert value(registry, "agent_run_tokens_bucket", **FIXER, le="1024.0") == 0
    assert value(registry, "agent_run_cost_usd_bucket", **FIXER, le="2.5") == 1
    assert value(registry, "agent_run_llm_calls_bucket", **FIXER, le="16.0") == 1
    assert value(registry, "agent_run_llm_calls_bucket", **FIXER, le="8.0") == 0
    assert value(registry, "agent_run_tool_calls_sum", **FIXER) == 5


def test_tools_and_phases_are_counted_per_name(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(
        run(
            "r",
            tools=[{"name": "bash", "calls": 7, "errors": 2}, {"name": "edit", "calls": 3}],
            phases=[{"name": "plan", "duration_seconds": 4}, {"name": "test", "duration_seconds": 90}],
        )
    )
    assert value(registry, "agent_tool_calls_total", agent="fixer", tool="bash") == 7
    assert value(registry, "agent_tool_errors_total", agent="fixer", tool="bash") == 2
    assert value(registry, "agent_tool_errors_total", agent="fixer", tool="edit") is None
    assert value(registry, "agent_phase_duration_seconds_sum", agent="fixer", phase="test") == 90
    assert value(registry, "agent_run_tool_calls_sum", **FIXER) == 10


def test_a_multi_model_run_counts_tokens_and_cost_per_model(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(
        run(
            "r",
            model=None,
            usage=[
                {"model": "gpt-5", "input_tokens": 1_000_000, "output_tokens": 10, "calls": 4},
                {
                    "model": "claude-sonnet-4-5",
                    "input_tokens": 2_000_000,
                    "output_tokens": 20,
                    "cost_usd": 6.0,
                    "calls": 1,
                },
            ],
        )
    )
    gpt = {"agent": "fixer", "model": "gpt-5"}
    assert value(registry, "agent_tokens_total", **gpt, token_type="input") == 1_000_000
    assert value(registry, "agent_tokens_total", **FIXER, token_type="input") == 2_000_000
    assert value(registry, "agent_llm_calls_total", **gpt) == 4
    assert value(
        registry, "agent_cost_usd_total", **gpt, cost_source="estimated", status="success"
    ) == pytest.approx(1.2501)
    assert value(registry, "agent_cost_usd_total", **FIXER, cost_source="reported", status="success") == 6.0
    # the run itself is counted once, under its primary model (the one with most tokens)
    assert value(registry, "agent_run_cost_usd_sum", **FIXER) == pytest.approx(7.2501)
    assert value(registry, "agent_run_cost_usd_count", **gpt) is None


def test_missing_dimensions_are_labelled_unknown(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("r", model=None, issue_type=None))
    labels = {"agent": "fixer", "model": "unknown", "issue_type": "unknown", "status": "success"}
    assert value(registry, "agent_runs_total", **labels) == 1


def test_values_past_a_labels_cap_become_other_and_are_counted(registry: CollectorRegistry) -> None:
    m = metrics(registry, limits={"model": 2})
    for i, model in enumerate(["m1", "m2", "m3", "m4", "m1"]):
        m.observe_run(run(f"r{i}", model=model))
    counts = {
        model: value(
            registry,
            "agent_runs_total",
            agent="fixer",
            model=model,
            issue_type="complexity",
            status="success",
        )
        for model in ("m1", "m2", "m3", "other")
    }
    assert counts == {"m1": 2, "m2": 1, "m3": None, "other": 2}
    assert value(registry, "agent_exporter_label_overflow_total", label="model") == 2


def test_labels_can_be_dropped_and_added(registry: CollectorRegistry) -> None:
    m = metrics(registry, drop=("issue_type",), extra=("project", "labels.tier"))
    m.observe_run(run("r", project="billing", labels={"tier": "gold"}))
    m.observe_run(run("s", project=None))
    assert value(registry, "agent_runs_total", **FIXER, project="billing", tier="gold", status="success") == 1
    assert (
        value(registry, "agent_runs_total", **FIXER, project="unknown", tier="unknown", status="success") == 1
    )
    assert (
        value(registry, "agent_tokens_total", **FIXER, project="billing", tier="gold", token_type="input")
        is None
    )


def test_the_last_run_time_never_moves_backwards(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("new", ended_at="2026-11-18T10:00:00Z"))
    m.observe_run(run("late", ended_at="2026-11-18T09:00:00Z"))
    newest = datetime(2026, 11, 18, 10, tzinfo=UTC).timestamp()
    assert value(registry, "agent_last_run_timestamp_seconds", agent="fixer") == newest


def test_ingest_lag_is_observed_only_for_reported_end_times(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    receipt = datetime(2026, 11, 18, 10, tzinfo=UTC).timestamp()
    m.observe_run(run("a", ended_at="2026-11-18T09:59:00Z", received_at=receipt))  # 60 s late
    m.observe_run(run("b"))  # ended_at defaults to receipt: no lag to speak of
    assert value(registry, "agent_exporter_ingest_lag_seconds_count") == 1
    assert value(registry, "agent_exporter_ingest_lag_seconds_sum") == 60


def test_histograms_carry_the_run_id_as_an_exemplar(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("run-4711", duration_seconds=42.5, cost_usd=2.0))
    text = openmetrics(registry).decode()
    line = next(
        line
        for line in text.splitlines()
        if line.startswith('agent_run_duration_seconds_bucket{agent="fixer",le="60.0"')
    )
    assert line.endswith(f'1.0 # {{run_id="run-4711"}} 42.5 {line.split()[-1]}')
    assert '# {run_id="run-4711"} 2.0' in text


def test_a_run_id_too_long_for_an_exemplar_is_counted_without_one(registry: CollectorRegistry) -> None:
    m = metrics(registry)
    m.observe_run(run("x" * 123, duration_seconds=5))
    assert value(registry, "agent_run_duration_seconds_count", **FIXER, status="success") == 1
    assert "run_id" not in openmetrics(registry).decode()


def test_build_info_and_outcomes_exist_before_any_record(registry: CollectorRegistry) -> None:
    metrics(registry)
    assert (
        value(
            registry,
            "agent_exporter_build_info",
            version="1.2.3",
            python_version=__import__("platform").python_version(),
        )
        == 1
    )
    for outcome in ("accepted", "duplicate", "conflict", "rejected"):
        assert value(registry, "agent_exporter_records_total", outcome=outcome) == 0


def test_the_cached_exposition_is_byte_identical_to_prometheus_clients(registry: CollectorRegistry) -> None:
    from prometheus_client import generate_latest as text

    m = metrics(registry)
    m.observe_run(
        run("a", model='quote"back\\slash', input_tokens=10, output_tokens=1, cost_usd=0.1, llm_calls=2)
    )
    m.observe_run(run("b", status="failure", duration_seconds=4000, tools=[{"name": "bash", "calls": 2}]))
    m.render(openmetrics=True)  # fills the caches
    m.observe_run(run("c", phases=[{"name": "plan", "duration_seconds": 0.2}], cost_usd=1e-9))  # dirties some
    generic = CollectorRegistry()
    generic.register(m.families)
    assert m.families.render(openmetrics=False) == text(generic).decode()
    assert m.families.render(openmetrics=True) + "# EOF\n" == openmetrics(generic).decode()
