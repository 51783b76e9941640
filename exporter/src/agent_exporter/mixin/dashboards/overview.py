"""The overview dashboard: runs, success, duration, tokens, cost and calls from the metrics."""

from __future__ import annotations

from ..config import MixinConfig
from ..panels import (
    Json,
    dashboard,
    prom,
    row,
    stat,
    table,
    timeseries,
    unit_override,
)
from ..rules import (
    OVERVIEW_UID,
    QUANTILES,
    RATE_WINDOW,
    RuleNames,
    quantile_name,
    w,
)
from .selectors import (
    AGENT,
    DECIDED,
    DURATION,
    FAILED_RUNS,
    INPUT,
    MODEL,
    MODEL_SUCCESS,
    RANGE,
    RI,
    RUNS,
    SUCCESS,
    prom_variables,
    sel,
)


def overview(cfg: MixinConfig) -> Json:
    """Runs, success, duration, tokens, cost and calls: for leads and SREs."""
    objective = cfg.failure_rate.objective
    budget = cfg.failure_rate.budget
    burns = "; ".join(
        f"{p.burn_rate:g} over {w(p.long)} and {w(p.short)} ({p.severity})" for p in cfg.failure_rate.windows
    )
    decided = f"sum(increase(agent_runs_total{DECIDED}[{RANGE}]))"
    no_issue = " The issue_type filter does not apply: this metric has no issue_type label."
    model_only = " Only the agent and model filters apply: this metric has no issue_type or status label."
    panels: list[Json] = [
        row("Summary over the dashboard's time range"),
        stat(
            "Runs",
            "Runs that ended in the time range, all filters applied.",
            [prom(f"sum(increase(agent_runs_total{RUNS}[{RANGE}]))", "runs", instant=True)],
            "short",
            decimals=0,
        ),
        stat(
            "Success rate",
            "Successful runs over runs with a verdict (cancelled runs excluded). The status filter does not "
            f"apply. The objective is {objective:.0%}.",
            [
                prom(
                    f"sum(increase(agent_runs_total{SUCCESS}[{RANGE}])) / {decided}",
                    "success rate",
                    instant=True,
                )
            ],
            "percentunit",
            decimals=1,
            thresholds=[(None, "red"), (objective - 0.05, "orange"), (objective, "green")],
        ),
        stat(
            "Failed runs",
            "Runs that ended with status failure, error or timeout. The status filter does not apply.",
            [
                prom(
                    f"sum(increase(agent_runs_total{FAILED_RUNS}[{RANGE}]))",
                    "failed",
                    instant=True,
                )
            ],
            "short",
            decimals=0,
            thresholds=[(None, "green"), (1, "orange")],
        ),
        stat(
            "Run duration p50 / p95 / p99",
            "Quantiles of run duration over the time range, estimated from the histogram buckets." + no_issue,
            [
                prom(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(increase(agent_run_duration_seconds_bucket{DURATION}"
                    f"[{RANGE}])))",
                    name,
                    instant=True,
                )
                for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
            ],
            "s",
            width=8,
        ),
        stat(
            "Cost",
            "Spend of the runs in the time range, reported or estimated from tokens." + model_only,
            [prom(f"sum(increase(agent_cost_usd_total{MODEL}[{RANGE}]))", "cost", instant=True)],
            "currencyUSD",
            decimals=2,
        ),
        stat(
            "Cost per run",
            "Mean cost of the runs with a known cost." + model_only,
            [
                prom(
                    f"sum(increase(agent_run_cost_usd_sum{MODEL}[{RANGE}])) / "
                    f"sum(increase(agent_run_cost_usd_count{MODEL}[{RANGE}]))",
                    "per run",
                    instant=True,
                )
            ],
            "currencyUSD",
            decimals=3,
        ),
        stat(
            "Cost per successful run",
            "All spend divided by the successful runs: what one success costs, failures included."
            + model_only,
            [
                prom(
                    f"sum(increase(agent_cost_usd_total{MODEL}[{RANGE}])) / "
                    f"sum(increase(agent_runs_total{MODEL_SUCCESS}[{RANGE}]))",
                    "per success",
                    instant=True,
                )
            ],
            "currencyUSD",
            decimals=3,
        ),
        stat(
            "Tokens in / out",
            "Input tokens (cache reads and writes included) and output tokens (reasoning included)."
            + model_only,
            [
                prom(
                    f"sum by (token_type) (increase(agent_tokens_total{MODEL}[{RANGE}]))",
                    "{{token_type}}",
                    instant=True,
                )
            ],
            "short",
            width=6,
        ),
        stat(
            "Cache hit ratio",
            "Input tokens read from the prompt cache over all input tokens." + model_only,
            [
                prom(
                    f"sum(increase(agent_cache_read_tokens_total{MODEL}[{RANGE}])) / "
                    f"sum(increase(agent_tokens_total{INPUT}[{RANGE}]))",
                    "cache hits",
                    instant=True,
                )
            ],
            "percentunit",
            decimals=1,
        ),
        stat(
            "LLM calls per run",
            "Mean LLM calls per run (runs that reported them)." + model_only,
            [
                prom(
                    f"sum(increase(agent_run_llm_calls_sum{MODEL}[{RANGE}])) / "
                    f"sum(increase(agent_run_llm_calls_count{MODEL}[{RANGE}]))",
                    "LLM calls",
                    instant=True,
                )
            ],
            "short",
            decimals=1,
        ),
        stat(
            "Tool calls per run",
            "Mean tool calls per run (runs that reported them)." + model_only,
            [
                prom(
                    f"sum(increase(agent_run_tool_calls_sum{MODEL}[{RANGE}])) / "
                    f"sum(increase(agent_run_tool_calls_count{MODEL}[{RANGE}]))",
                    "tool calls",
                    instant=True,
                )
            ],
            "short",
            decimals=1,
        ),
        row("Over time"),
        timeseries(
            "Runs by status",
            "Runs ending per minute, stacked by status.",
            [prom(f"sum by (status) (rate(agent_runs_total{RUNS}[{RI}])) * 60", "{{status}}")],
            "suffix: runs/min",
            stack=True,
        ),
        timeseries(
            "Success rate by agent",
            f"Successful over non-cancelled runs, per agent; the line is the {objective:.0%} objective. "
            "The status filter does not apply.",
            [
                prom(
                    f"sum by (agent) (rate(agent_runs_total{SUCCESS}[{RI}]))"
                    f" / sum by (agent) (rate(agent_runs_total{DECIDED}[{RI}]))",
                    "{{agent}}",
                )
            ],
            "percentunit",
            max_=1,
            thresholds=[(None, "red"), (objective, "green")],
            threshold_line=True,
        ),
        timeseries(
            "Failures by agent and status",
            "Failed runs (failure, error, timeout) per minute. The status filter does not apply.",
            [
                prom(
                    f"sum by (agent, status) (rate(agent_runs_total{FAILED_RUNS}[{RI}])) * 60",
                    "{{agent}} {{status}}",
                )
            ],
            "suffix: runs/min",
            stack=True,
        ),
        timeseries(
            "Run duration p50 / p95 / p99",
            "Duration quantiles; the dots are exemplars: hover one for its run_id, click it to open the run."
            + no_issue,
            [
                prom(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(agent_run_duration_seconds_bucket{DURATION}[{RI}])))",
                    name,
                    exemplar=q == 0.99,
                )
                for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
            ],
            "s",
        ),
        timeseries(
            "Run duration p95 by model",
            "p95 run duration per model." + no_issue,
            [
                prom(
                    "histogram_quantile(0.95, sum by (model, le) "
                    f"(rate(agent_run_duration_seconds_bucket{DURATION}[{RI}])))",
                    "{{model}}",
                )
            ],
            "s",
        ),
        timeseries(
            "Run duration p95 by agent",
            "p95 run duration per agent." + no_issue,
            [
                prom(
                    "histogram_quantile(0.95, sum by (agent, le) "
                    f"(rate(agent_run_duration_seconds_bucket{DURATION}[{RI}])))",
                    "{{agent}}",
                )
            ],
            "s",
        ),
        timeseries(
            "Tokens by model",
            "Tokens per minute by model and direction (input includes cache; output includes reasoning)."
            + model_only,
            [
                prom(
                    f"sum by (model, token_type) (rate(agent_tokens_total{MODEL}[{RI}])) * 60",
                    "{{model}} {{token_type}}",
                )
            ],
            "short",
        ),
        timeseries(
            "Cache hit ratio by model",
            "Share of input tokens read from the prompt cache, per model." + model_only,
            [
                prom(
                    f"sum by (model) (rate(agent_cache_read_tokens_total{MODEL}[{RI}])) / "
                    f"sum by (model) (rate(agent_tokens_total{INPUT}[{RI}]))",
                    "{{model}}",
                )
            ],
            "percentunit",
            max_=1,
        ),
        timeseries(
            "Spend per hour by model",
            "US dollars per hour at the current pace, per model." + model_only,
            [prom(f"sum by (model) (rate(agent_cost_usd_total{MODEL}[{RI}])) * 3600", "{{model}}")],
            "currencyUSD",
            stack=True,
        ),
        timeseries(
            "Spend per hour by agent",
            "US dollars per hour at the current pace, per agent." + model_only,
            [prom(f"sum by (agent) (rate(agent_cost_usd_total{MODEL}[{RI}])) * 3600", "{{agent}}")],
            "currencyUSD",
            stack=True,
        ),
        timeseries(
            "Cost per run p50 / p95",
            "Quantiles of the cost of one run; exemplars link the expensive ones to their run." + model_only,
            [
                prom(
                    f"histogram_quantile({q}, sum by (le) (rate(agent_run_cost_usd_bucket{MODEL}[{RI}])))",
                    name,
                    exemplar=q == 0.95,
                )
                for q, name in ((0.5, "p50"), (0.95, "p95"))
            ],
            "currencyUSD",
        ),
        timeseries(
            "Tokens per run p50 / p95",
            "Quantiles of tokens (input plus output) per run; exemplars link outliers to their run."
            + model_only,
            [
                prom(
                    f"histogram_quantile({q}, sum by (le) (rate(agent_run_tokens_bucket{MODEL}[{RI}])))",
                    name,
                    exemplar=q == 0.95,
                )
                for q, name in ((0.5, "p50"), (0.95, "p95"))
            ],
            "short",
        ),
        timeseries(
            "LLM and tool calls per run",
            "Mean LLM calls and tool calls per run." + model_only,
            [
                prom(
                    f"sum(rate(agent_run_llm_calls_sum{MODEL}[{RI}])) / "
                    f"sum(rate(agent_run_llm_calls_count{MODEL}[{RI}]))",
                    "LLM calls",
                ),
                prom(
                    f"sum(rate(agent_run_tool_calls_sum{MODEL}[{RI}])) / "
                    f"sum(rate(agent_run_tool_calls_count{MODEL}[{RI}]))",
                    "tool calls",
                ),
            ],
            "short",
        ),
        timeseries(
            "Tool error ratio by tool",
            "Failed tool calls over tool calls, per tool. Only the agent filter applies.",
            [
                prom(
                    f"sum by (tool) (rate(agent_tool_errors_total{AGENT}[{RI}])) / "
                    f"sum by (tool) (rate(agent_tool_calls_total{AGENT}[{RI}]))",
                    "{{tool}}",
                )
            ],
            "percentunit",
        ),
        timeseries(
            "Phase duration p95",
            "p95 duration of run phases (plan, edit, test, review, ...). Only the agent filter applies.",
            [
                prom(
                    "histogram_quantile(0.95, sum by (phase, le) "
                    f"(rate(agent_phase_duration_seconds_bucket{AGENT}[{RI}])))",
                    "{{phase}}",
                    exemplar=True,
                )
            ],
            "s",
        ),
        *_workflow(),
        row("Error budget and agents now (recording rules)"),
        timeseries(
            "Error budget burn rate by agent",
            f"Failed share of non-cancelled runs over each alert window, divided by the error budget "
            f"({budget:.0%} for a {objective:.0%} objective): 1 spends the budget exactly over "
            f"{w(cfg.failure_rate.period)}. AgentFailureBudgetBurn fires when a long and a short window both "
            f"exceed: {burns}. Only the agent filter applies.",
            [
                prom(
                    f'{RuleNames.failure_ratio(long)}{{agent=~"$agent"}} / {budget:g}',
                    f"{{{{agent}}}} {w(long)}",
                )
                for long in sorted({p.long for p in cfg.failure_rate.windows})
            ],
            "x",
            thresholds=[(None, "green"), *((p.burn_rate, "red") for p in cfg.failure_rate.windows[:1])],
            threshold_line=True,
        ),
        table(
            "Agents and models, last 5 minutes",
            "Per agent and model from the recording rules: runs per minute, duration quantiles and spend per "
            "hour over the last 5 minutes. Only the agent and model filters apply.",
            [
                prom(
                    f"{RuleNames.runs_rate('agent_model', RATE_WINDOW)}{MODEL} * 60", instant=True, table=True
                ),
                *(
                    prom(
                        f"{RuleNames.duration_quantile('agent_model', q, RATE_WINDOW)}{MODEL}",
                        instant=True,
                        table=True,
                    )
                    for q in QUANTILES
                ),
                prom(
                    f"{RuleNames.cost_rate('agent_model', RATE_WINDOW)}{MODEL} * 3600",
                    instant=True,
                    table=True,
                ),
            ],
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "Value #A": "runs/min",
                            **{
                                f"Value #{chr(ord('B') + i)}": f"{quantile_name(q)} duration"
                                for i, q in enumerate(QUANTILES)
                            },
                            f"Value #{chr(ord('B') + len(QUANTILES))}": "spend/h",
                        },
                    },
                },
            ],
            overrides=[
                *(unit_override(f"{quantile_name(q)} duration", "s") for q in QUANTILES),
                unit_override("spend/h", "currencyUSD"),
            ],
            width=12,
        ),
    ]
    return dashboard(
        OVERVIEW_UID,
        "Agents: overview",
        "What the agents did: runs, success, duration, tokens, cost and calls, from agent-exporter's "
        "metrics. Daily and weekly totals: the run-history dashboard.",
        panels,
        prom_variables(),
        time_from=cfg.dashboards.time_from,
        refresh=cfg.dashboards.refresh,
    )


def _workflow() -> list[Json]:
    """Seed 004's questions from the pipeline, debugging and sub-agent counters (runs that report
    pipeline_attempts, debugging_cycles and subagents). Only the agent filter applies."""
    first = sel("agent", extra='first_attempt="true"')
    passed = sel("agent", extra='first_attempt="true", status="success"')
    only_agent = " Only the agent filter applies."
    return [
        row("Pipelines, debugging cycles and sub-agents"),
        stat(
            "Pipelines passing on the first attempt",
            "Of the runs' first pipeline attempts in the time range, the share that succeeded "
            "(agent_pipeline_attempts_total, runs that report pipeline_attempts)." + only_agent,
            [
                prom(
                    f"sum(increase(agent_pipeline_attempts_total{passed}[{RANGE}]))"
                    f" / sum(increase(agent_pipeline_attempts_total{first}[{RANGE}]))",
                    "first attempt",
                    instant=True,
                )
            ],
            "percentunit",
            decimals=1,
            width=6,
        ),
        timeseries(
            "Debugging cycles per hour by resolution",
            "Failures the agents had to rework (debugging_cycles), resolved or not, per hour at the current "
            "pace." + only_agent,
            [
                prom(
                    f"sum by (resolution) (rate(agent_debugging_cycles_total{AGENT}[{RI}])) * 3600",
                    "{{resolution}}",
                )
            ],
            "short",
            stack=True,
        ),
        timeseries(
            "Sub-agent retries per hour",
            "Retries of the sub-agents inside runs (coding, testing, review, ...), per hour at the current "
            "pace: which one causes most retries." + only_agent,
            [
                prom(
                    f"sum by (subagent) (rate(agent_subagent_retries_total{AGENT}[{RI}])) * 3600",
                    "{{subagent}}",
                )
            ],
            "short",
            stack=True,
        ),
    ]
