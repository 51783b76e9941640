"""The run dashboard: one stored run's record, error, phases, tools and per-model usage."""

from __future__ import annotations

from typing import Final

from ..config import MixinConfig
from ..panels import (
    Json,
    barchart,
    dashboard,
    datasource_variable,
    sql,
    status_override,
    table,
    textbox_variable,
    unit_override,
)
from ..rules import (
    RUN_UID,
)

#: the run id through the PostgreSQL datasource's default format, which doubles quotes (`:sqlstring`
#: would also turn a `"` into `\"`, which a standard SQL string keeps as two characters)
RUN: Final = "run_id = '${run_id}'"


def run_detail(cfg: MixinConfig) -> Json:
    """One run: its record, phases, per-model usage, tools and error."""
    panels: list[Json] = [
        table(
            "Run",
            "The stored record of the run.",
            [
                sql(
                    "SELECT run_id, agent, agent_version, model, provider, issue_type, project, team, "
                    "environment,\n"
                    "       status, to_timestamp(started_at) AS started, to_timestamp(ended_at) AS ended,\n"
                    "       duration_seconds AS duration, input_tokens, output_tokens, cache_read_tokens,\n"
                    "       cache_write_tokens, reasoning_tokens, cost_usd AS cost, cost_source, llm_calls,\n"
                    "       tool_calls, retries, quality_score, confidence\n"
                    f"FROM runs WHERE {RUN}"
                )
            ],
            overrides=[
                unit_override("duration", "s"),
                unit_override("cost", "currencyUSD"),
                status_override(),
            ],
            height=5,
        ),
        table(
            "Error",
            "The run's status, error category and summary, as the agent reported them.",
            [sql(f"SELECT status, error_type, error_summary FROM runs WHERE {RUN}")],
            overrides=[status_override()],
            height=5,
        ),
        barchart(
            "Phases",
            "How long each phase of the run took, in order, numbered from 1.",
            [
                sql(
                    "SELECT (position + 1) || '. ' || name AS phase, duration_seconds AS duration\n"
                    f"FROM run_phases WHERE {RUN}\nORDER BY position"
                )
            ],
            "s",
            x_field="phase",
        ),
        barchart(
            "Tool calls",
            "Calls and failed calls per tool.",
            [sql(f"SELECT name AS tool, calls, errors\nFROM run_tools WHERE {RUN}\nORDER BY calls DESC")],
            "short",
            x_field="tool",
        ),
        table(
            "Usage by model",
            "Tokens, calls and cost of each model the run used.",
            [
                sql(
                    "SELECT model, provider, input_tokens, output_tokens, cache_read_tokens, "
                    "cache_write_tokens,\n"
                    "       reasoning_tokens, calls, cost_usd AS cost, cost_source\n"
                    f"FROM run_usage WHERE {RUN}\nORDER BY position"
                )
            ],
            overrides=[unit_override("cost", "currencyUSD")],
            width=16,
            height=7,
        ),
        table(
            "Labels",
            "The run's free-form labels.",
            [sql(f"SELECT key, value FROM runs, json_each_text(labels) WHERE {RUN}\nORDER BY key")],
            width=8,
            height=7,
        ),
    ]
    variables = [
        datasource_variable("store", "Store", "grafana-postgresql-datasource"),
        textbox_variable(
            "run_id", "Run id", "The run to show; the run tables and exemplars link here with it."
        ),
    ]
    return dashboard(
        RUN_UID,
        "Agents: run",
        "One stored run: its record, error, phases, tool calls and per-model usage.",
        panels,
        variables,
        time_from=cfg.dashboards.time_from,
        refresh="",
    )
