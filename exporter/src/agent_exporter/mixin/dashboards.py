"""The Grafana dashboards: overview, cost, run history, one run, and the exporter's health.

Prometheus panels filter with the agent/model/issue_type/status variables where the metric has
that label (the description says when one does not apply); SQL panels read the store's `runs`
tables on PostgreSQL, with `$__unixEpochFilter` on the Unix-seconds `ended_at` column.
"""

from __future__ import annotations

from typing import Final

from .config import MixinConfig
from .panels import (
    POSTGRES,
    PROMETHEUS,
    Json,
    barchart,
    custom_variable,
    dashboard,
    datasource_variable,
    gauge,
    link_override,
    prom,
    query_variable,
    row,
    sql,
    stat,
    status_override,
    table,
    textbox_variable,
    timeseries,
    unit_override,
)
from .rules import (
    COST_UID,
    EXPORTER_UID,
    FAILED,
    OVERVIEW_UID,
    QUANTILES,
    RATE_WINDOW,
    RUN_UID,
    RUNS_UID,
    RuleNames,
    quantile_name,
    w,
)

STATUSES: Final = ("success", "failure", "error", "timeout", "cancelled")
RI: Final = "$__rate_interval"
RANGE: Final = "$__range"
RUN_LINK: Final = f"/d/{RUN_UID}?var-run_id=${{__value.raw}}&${{__url_time_range}}"

_VARS: Final = {
    "agent": 'agent=~"$agent"',
    "model": 'model=~"$model"',
    "issue_type": 'issue_type=~"$issue_type"',
    "status": 'status=~"$status"',
}


def sel(*labels: str, extra: str = "") -> str:
    """A label selector for the dashboard variables `labels`, plus `extra` matchers."""
    parts = [_VARS[label] for label in labels]
    if extra:
        parts.append(extra)
    return "{" + ", ".join(parts) + "}"


RUNS: Final = sel("agent", "model", "issue_type", "status")
SUCCESS: Final = sel("agent", "model", "issue_type", extra='status="success"')
DECIDED: Final = sel("agent", "model", "issue_type", extra='status!="cancelled"')
FAILED_RUNS: Final = sel("agent", "model", "issue_type", extra=f'status=~"{FAILED}"')
MODEL_SUCCESS: Final = sel("agent", "model", extra='status="success"')
INPUT: Final = sel("agent", "model", extra='token_type="input"')
RUNS_NO_STATUS: Final = sel("agent", "model", "issue_type")
DURATION: Final = sel("agent", "model", "status")
MODEL: Final = sel("agent", "model")
AGENT: Final = sel("agent")


def _prom_variables() -> list[Json]:
    return [
        datasource_variable("datasource", "Prometheus", "prometheus"),
        query_variable("agent", "Agent", "label_values(agent_runs_total, agent)", PROMETHEUS),
        query_variable(
            "model", "Model", 'label_values(agent_runs_total{agent=~"$agent"}, model)', PROMETHEUS
        ),
        query_variable(
            "issue_type",
            "Issue type",
            'label_values(agent_runs_total{agent=~"$agent"}, issue_type)',
            PROMETHEUS,
        ),
        custom_variable("status", "Status", STATUSES),
    ]


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
        row("Daily and weekly"),
        timeseries(
            "Runs per day by status",
            "Runs that ended each day, by status.",
            [
                prom(
                    f"sum by (status) (increase(agent_runs_total{RUNS}[$__interval]))",
                    "{{status}}",
                    interval="1d",
                )
            ],
            "short",
            bars=True,
            stack=True,
            interval="1d",
        ),
        timeseries(
            "Success rate per day by agent",
            "Successful over non-cancelled runs each day. The status filter does not apply.",
            [
                prom(
                    f"sum by (agent) (increase(agent_runs_total{SUCCESS}[$__interval]))"
                    f" / sum by (agent) (increase(agent_runs_total{DECIDED}[$__interval]))",
                    "{{agent}}",
                    interval="1d",
                )
            ],
            "percentunit",
            max_=1,
            interval="1d",
        ),
        timeseries(
            "Spend per day by model",
            "US dollars spent each day, per model." + model_only,
            [
                prom(
                    f"sum by (model) (increase(agent_cost_usd_total{MODEL}[$__interval]))",
                    "{{model}}",
                    interval="1d",
                )
            ],
            "currencyUSD",
            bars=True,
            stack=True,
            interval="1d",
        ),
        timeseries(
            "Runs per week by agent",
            "Runs that ended each week, per agent.",
            [
                prom(
                    f"sum by (agent) (increase(agent_runs_total{RUNS}[$__interval]))",
                    "{{agent}}",
                    interval="1w",
                )
            ],
            "short",
            bars=True,
            stack=True,
            interval="1w",
        ),
    ]
    return dashboard(
        OVERVIEW_UID,
        "Agents: overview",
        "What the agents did: runs, success, duration, tokens, cost and calls, from agent-exporter's "
        "metrics.",
        panels,
        _prom_variables(),
        time_from=cfg.dashboards.time_from,
        refresh=cfg.dashboards.refresh,
    )


def _sql_filter(*, time: bool = True) -> str:
    parts = ["$__unixEpochFilter(ended_at)"] if time else []
    parts += [
        "agent ~ '^(${agent:regex})$'",
        "coalesce(model, 'unknown') ~ '^(${model:regex})$'",
    ]
    return " AND ".join(parts)


def cost(cfg: MixinConfig) -> Json:
    """Spend by model, agent and issue type; burn against the daily budget; month-end projection."""
    budget = cfg.cost.daily_budget_usd
    model_only = " Only the agent and model filters apply."
    month = (
        "WITH m AS (SELECT extract(epoch FROM date_trunc('month', now())) AS start,\n"
        "                  extract(epoch FROM date_trunc('month', now()) + interval '1 month') AS finish,\n"
        "                  extract(epoch FROM now()) AS now)\n"
        'SELECT coalesce(sum(cost_usd) FILTER (WHERE ended_at >= m.start), 0) AS "month to date",\n'
        "       coalesce(sum(cost_usd) FILTER (WHERE ended_at >= m.start), 0)\n"
        "         + coalesce(sum(cost_usd) FILTER (WHERE ended_at >= m.now - 7 * 86400), 0)\n"
        '           / (7 * 86400) * (m.finish - m.now) AS "projected month end"\n'
        "FROM runs, m\n"
        f"WHERE ended_at >= least(m.start, m.now - 7 * 86400) AND {_sql_filter(time=False)}\n"
        "GROUP BY m.start, m.finish, m.now"
    )
    panels: list[Json] = [
        row("Spend"),
        stat(
            "Spend in range",
            "US dollars spent by the runs in the time range." + model_only,
            [prom(f"sum(increase(agent_cost_usd_total{MODEL}[{RANGE}]))", "spend", instant=True)],
            "currencyUSD",
            decimals=2,
        ),
        gauge(
            "Last 24 hours against the daily budget",
            f"Spend over the last 24 hours; the gauge's maximum is the daily budget of {budget:g} USD "
            "(alerts/config.yaml). With filters, the share of the filtered agents and models.",
            [prom(f"sum(increase(agent_cost_usd_total{MODEL}[1d]))", "last 24h", instant=True)],
            "currencyUSD",
            max_=budget,
            thresholds=[(None, "green"), (0.8 * budget, "orange"), (budget, "red")],
        ),
        stat(
            "Budget burn rate (last hour)",
            "The last hour's pace as a multiple of the daily budget: 1 spends exactly the budget in a day; "
            "AgentCostBudgetBurn pages at "
            + ", ".join(f"{b.burn_rate:g} over {b.window // 3600}h" for b in cfg.cost.budget_windows)
            + ".",
            [
                prom(
                    f"sum(rate(agent_cost_usd_total{MODEL}[1h])) * 86400 / {budget:g}",
                    "burn rate",
                    instant=True,
                )
            ],
            "x",
            decimals=2,
            thresholds=[
                (None, "green"),
                (1, "orange"),
                (max(b.burn_rate for b in cfg.cost.budget_windows), "red"),
            ],
        ),
        stat(
            "Month to date and projection",
            "From the store: spend since the first of the month, and the month-end total if the last 7 days' "
            "pace holds.",
            [sql(month)],
            "currencyUSD",
            decimals=0,
            width=8,
        ),
        stat(
            "Unpriced runs",
            "Runs without a reported cost whose model has no known price: their cost is missing from these "
            "panels. Add the model to the price file." + model_only,
            [prom(f"sum(increase(agent_runs_unpriced_total{MODEL}[{RANGE}]))", "unpriced", instant=True)],
            "short",
            decimals=0,
            thresholds=[(None, "green"), (1, "orange")],
        ),
        row("Over time"),
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
            "Spend by issue type",
            "From the store (the cost metric has no issue_type label): US dollars per interval, per issue "
            "type.",
            [
                sql(
                    "SELECT $__unixEpochGroupAlias(ended_at, $__interval), coalesce(issue_type, 'unknown') "
                    "AS metric,\n"
                    "       sum(cost_usd) AS spend\n"
                    f"FROM runs\nWHERE {_sql_filter()}\nGROUP BY 1, 2\nORDER BY 1",
                    time_series=True,
                )
            ],
            "currencyUSD",
            bars=True,
            stack=True,
        ),
        timeseries(
            "Rolling 24 hours against the daily budget",
            "Spend over the 24 hours before each point, against the daily budget (the budget covers all "
            "agents; the filters apply to the spend only).",
            [
                prom(f"sum(increase(agent_cost_usd_total{MODEL}[1d]))", "last 24h"),
                prom(f"vector({budget:g})", "daily budget"),
            ],
            "currencyUSD",
        ),
        timeseries(
            "Estimated vs reported",
            "Spend per hour by where the cost comes from: reported by the agent, or estimated from tokens "
            "and "
            "the price table." + model_only,
            [
                prom(
                    f"sum by (cost_source) (rate(agent_cost_usd_total{MODEL}[{RI}])) * 3600",
                    "{{cost_source}}",
                )
            ],
            "currencyUSD",
            stack=True,
        ),
        timeseries(
            "Cost per run p50 / p95 by model",
            "Quantiles of one run's cost per model; exemplars link the expensive runs." + model_only,
            [
                prom(
                    f"histogram_quantile({q}, sum by (model, le) "
                    f"(rate(agent_run_cost_usd_bucket{MODEL}[{RI}])))",
                    f"{{{{model}}}} {name}",
                    exemplar=q == 0.95,
                )
                for q, name in ((0.5, "p50"), (0.95, "p95"))
            ],
            "currencyUSD",
        ),
        timeseries(
            "Spend per day by model",
            "US dollars spent each day, per model." + model_only,
            [
                prom(
                    f"sum by (model) (increase(agent_cost_usd_total{MODEL}[$__interval]))",
                    "{{model}}",
                    interval="1d",
                )
            ],
            "currencyUSD",
            bars=True,
            stack=True,
            interval="1d",
            width=24,
        ),
        row("Who spends"),
        table(
            "Spend by agent and model",
            "US dollars spent in the time range by each agent and model." + model_only,
            [
                prom(
                    f"sort_desc(sum by (agent, model) (increase(agent_cost_usd_total{MODEL}[{RANGE}])))",
                    instant=True,
                    table=True,
                )
            ],
            unit="currencyUSD",
            transformations=[
                {
                    "id": "organize",
                    "options": {"excludeByName": {"Time": True}, "renameByName": {"Value": "spend"}},
                }
            ],
            width=12,
        ),
        table(
            "Most expensive runs",
            "From the store: the 20 runs in the time range that cost the most; click a run to open it.",
            [
                sql(
                    "SELECT run_id, agent, model, issue_type, status, cost_usd AS cost,\n"
                    "       input_tokens + output_tokens AS tokens, duration_seconds AS duration\n"
                    f"FROM runs\nWHERE {_sql_filter()} AND cost_usd IS NOT NULL\nORDER BY cost_usd "
                    "DESC\nLIMIT 20"
                )
            ],
            overrides=[
                link_override("run_id", "Open run", RUN_LINK),
                unit_override("cost", "currencyUSD"),
                unit_override("duration", "s"),
                unit_override("tokens", "short"),
                status_override(),
            ],
            width=12,
        ),
    ]
    variables = [
        datasource_variable("datasource", "Prometheus", "prometheus"),
        datasource_variable("store", "Store", "grafana-postgresql-datasource"),
        query_variable("agent", "Agent", "label_values(agent_cost_usd_total, agent)", PROMETHEUS),
        query_variable(
            "model", "Model", 'label_values(agent_cost_usd_total{agent=~"$agent"}, model)', PROMETHEUS
        ),
    ]
    return dashboard(
        COST_UID,
        "Agents: cost",
        "What the agents cost: by model, agent and issue type, against the daily budget, projected to month "
        "end.",
        panels,
        variables,
        time_from=cfg.dashboards.time_from,
        refresh=cfg.dashboards.refresh,
    )


_FILTER_NO_STATUS: Final = (
    "$__unixEpochFilter(ended_at) AND agent IN ($agent) AND coalesce(model, 'unknown') IN ($model)\n"
    "  AND coalesce(issue_type, 'unknown') IN ($issue_type)"
)
_RUN_FILTER: Final = _FILTER_NO_STATUS + " AND status IN ($status)"


def _store_variables() -> list[Json]:
    # no allValue: Grafana then expands All to the quoted list of values, which IN (...) needs
    return [
        datasource_variable("store", "Store", "grafana-postgresql-datasource"),
        query_variable(
            "agent", "Agent", "SELECT DISTINCT agent FROM runs ORDER BY 1", POSTGRES, all_value=None
        ),
        query_variable(
            "model",
            "Model",
            "SELECT DISTINCT coalesce(model, 'unknown') FROM runs ORDER BY 1",
            POSTGRES,
            all_value=None,
        ),
        query_variable(
            "issue_type",
            "Issue type",
            "SELECT DISTINCT coalesce(issue_type, 'unknown') FROM runs ORDER BY 1",
            POSTGRES,
            all_value=None,
        ),
        custom_variable("status", "Status", STATUSES, all_value=None),
    ]


def _daily(bucket: str, label: str) -> str:
    return (
        f'SELECT to_timestamp({bucket}) AS "{label}",\n'
        "       count(*) AS runs,\n"
        "       avg((status = 'success')::int) FILTER (WHERE status <> 'cancelled') AS \"success rate\",\n"
        f"       count(*) FILTER (WHERE status IN ('failure', 'error', 'timeout')) AS failed,\n"
        '       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_seconds) AS "p50 duration",\n'
        '       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS "p95 duration",\n'
        "       sum(input_tokens + output_tokens) AS tokens,\n"
        "       sum(cost_usd) AS cost\n"
        f"FROM runs\nWHERE {_RUN_FILTER}\nGROUP BY 1\nORDER BY 1 DESC"
    )


_HISTORY_UNITS: Final = (
    unit_override("success rate", "percentunit"),
    unit_override("p50 duration", "s"),
    unit_override("p95 duration", "s"),
    unit_override("tokens", "short"),
    unit_override("cost", "currencyUSD"),
)


def run_history(cfg: MixinConfig) -> Json:
    """SQL over the store: recent runs, failures by error type, daily and weekly history."""
    panels: list[Json] = [
        row("Runs in range (from the store)"),
        stat(
            "Runs",
            "Runs that ended in the time range.",
            [sql(f"SELECT count(*) AS runs FROM runs WHERE {_RUN_FILTER}")],
            "short",
            decimals=0,
        ),
        stat(
            "Success rate",
            "Successful over non-cancelled runs in the time range. The status filter does not apply.",
            [
                sql(
                    "SELECT avg((status = 'success')::int) AS \"success rate\" FROM runs\n"
                    f"WHERE {_FILTER_NO_STATUS} AND status <> 'cancelled'"
                )
            ],
            "percentunit",
            decimals=1,
        ),
        stat(
            "Failed runs",
            "Runs that ended with status failure, error or timeout. The status filter does not apply.",
            [
                sql(
                    f"SELECT count(*) AS failed FROM runs WHERE {_FILTER_NO_STATUS}\n"
                    "  AND status IN ('failure', 'error', 'timeout')"
                )
            ],
            "short",
            decimals=0,
        ),
        stat(
            "p95 duration",
            "Exact 95th percentile of run duration in the time range (from the stored runs, not buckets).",
            [
                sql(
                    "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS p95\n"
                    f"FROM runs WHERE {_RUN_FILTER}"
                )
            ],
            "s",
        ),
        stat(
            "Cost",
            "US dollars spent by the runs in the time range (runs with a known cost).",
            [sql(f"SELECT sum(cost_usd) AS cost FROM runs WHERE {_RUN_FILTER}")],
            "currencyUSD",
            decimals=2,
        ),
        stat(
            "Tokens per run",
            "Mean input plus output tokens per run.",
            [sql(f"SELECT avg(input_tokens + output_tokens) AS tokens FROM runs WHERE {_RUN_FILTER}")],
            "short",
        ),
        timeseries(
            "Runs by status",
            "Runs that ended in each interval, by status.",
            [
                sql(
                    "SELECT $__unixEpochGroupAlias(ended_at, $__interval), status AS metric, count(*) AS "
                    "runs\n"
                    f"FROM runs\nWHERE {_RUN_FILTER}\nGROUP BY 1, 2\nORDER BY 1",
                    time_series=True,
                )
            ],
            "short",
            bars=True,
            stack=True,
            width=24,
        ),
        table(
            "Recent runs",
            "The 500 newest runs in the time range; click a run_id for its phases, per-model usage, tools "
            "and "
            "error.",
            [
                sql(
                    "SELECT to_timestamp(ended_at) AS ended, run_id, agent, model, issue_type, status,\n"
                    "       duration_seconds AS duration, input_tokens + output_tokens AS tokens,\n"
                    "       cost_usd AS cost, llm_calls, tool_calls, error_type, error_summary\n"
                    f"FROM runs\nWHERE {_RUN_FILTER}\nORDER BY ended_at DESC\nLIMIT 500"
                )
            ],
            overrides=[
                link_override("run_id", "Open run", RUN_LINK),
                unit_override("duration", "s"),
                unit_override("tokens", "short"),
                unit_override("cost", "currencyUSD"),
                status_override(),
            ],
            height=14,
        ),
        table(
            "Failures by error type",
            "Failed runs (failure, error, timeout) in the time range grouped by error_type, with the newest "
            "run and its error summary. The status filter does not apply.",
            [
                sql(
                    "SELECT coalesce(error_type, 'unknown') AS error_type, count(*) AS runs,\n"
                    "       to_timestamp(max(ended_at)) AS last_seen,\n"
                    "       (array_agg(run_id ORDER BY ended_at DESC))[1] AS run_id,\n"
                    "       (array_agg(error_summary ORDER BY ended_at DESC))[1] AS latest_summary\n"
                    f"FROM runs\nWHERE {_FILTER_NO_STATUS} AND status IN ('failure', 'error', 'timeout')\n"
                    "GROUP BY 1\nORDER BY runs DESC"
                )
            ],
            overrides=[link_override("run_id", "Open run", RUN_LINK)],
        ),
        row("History (beyond Prometheus retention)"),
        table(
            "Daily",
            "One row per day (UTC): runs, success rate, failures, exact duration percentiles, tokens, cost.",
            [sql(_daily("floor(ended_at / 86400) * 86400", "day"))],
            overrides=_HISTORY_UNITS,
            width=12,
        ),
        table(
            "Weekly",
            "One row per ISO week (UTC, from Monday): the same figures as the daily table.",
            [sql(_daily("extract(epoch FROM date_trunc('week', to_timestamp(ended_at)))", "week"))],
            overrides=_HISTORY_UNITS,
            width=12,
        ),
    ]
    return dashboard(
        RUNS_UID,
        "Agents: run history",
        "Which runs failed and why: the stored run records (PostgreSQL), with a drill-down to one run.",
        panels,
        _store_variables(),
        time_from=cfg.dashboards.time_from,
        refresh=cfg.dashboards.refresh,
    )


RUN: Final = "run_id = ${run_id:sqlstring}"


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
            "How long each phase of the run took, in order.",
            [
                sql(
                    "SELECT position || '. ' || name AS phase, duration_seconds AS duration\n"
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


def exporter_health(cfg: MixinConfig) -> Json:
    """Is the exporter healthy: ingest by outcome, rejects, overflow, lag, scrape, store errors."""
    job = f'job="{cfg.exporter_job}", instance=~"$instance"'
    j = "{" + job + "}"
    panels: list[Json] = [
        stat(
            "Up",
            "1 when Prometheus scraped the instance at its last attempt.",
            [prom(f"up{j}", "{{instance}}", instant=True)],
            "none",
            thresholds=[(None, "red"), (1, "green")],
            width=6,
        ),
        table(
            "Version",
            "agent-exporter and Python versions of each instance.",
            [prom(f"agent_exporter_build_info{j}", instant=True, table=True)],
            transformations=[
                {
                    "id": "organize",
                    "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}},
                }
            ],
            width=18,
            height=4,
        ),
        timeseries(
            "Records by outcome",
            "Records received per second: accepted, duplicate (stored already), conflict (same run_id, "
            "different body), rejected (invalid).",
            [prom(f"sum by (outcome) (rate(agent_exporter_records_total{j}[{RI}]))", "{{outcome}}")],
            "reqps",
            stack=True,
        ),
        timeseries(
            "Rejected records by reason",
            "Rejected records per second by the rule they broke (agent_exporter_records_rejected_total).",
            [prom(f"sum by (reason) (rate(agent_exporter_records_rejected_total{j}[{RI}]))", "{{reason}}")],
            "reqps",
            stack=True,
        ),
        timeseries(
            "Label overflow",
            "Label values replaced by 'other' because the label reached its cap of distinct values.",
            [prom(f"sum by (label) (increase(agent_exporter_label_overflow_total{j}[{RI}]))", "{{label}}")],
            "short",
        ),
        timeseries(
            "Ingest lag p50 / p95 / p99",
            "Receipt time minus the run's reported ended_at: how late records arrive (retries, backfills).",
            [
                prom(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(agent_exporter_ingest_lag_seconds_bucket{j}[{RI}])))",
                    name,
                )
                for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
            ],
            "s",
        ),
        timeseries(
            "Scrape duration",
            "How long Prometheus takes to scrape /metrics, per instance.",
            [prom(f"scrape_duration_seconds{j}", "{{instance}}")],
            "s",
        ),
        timeseries(
            "Samples per scrape",
            "Samples exposed per scrape: grows with the label values in use (cardinality).",
            [prom(f"scrape_samples_scraped{j}", "{{instance}}")],
            "short",
        ),
        timeseries(
            "Store errors",
            "Failed store operations (write, read, ping). Failed writes answer 503: agents retry.",
            [
                prom(
                    f"sum by (operation) (increase(agent_exporter_store_errors_total{j}[{RI}]))",
                    "{{operation}}",
                )
            ],
            "short",
        ),
        timeseries(
            "HTTP p95 by handler",
            "p95 time to answer requests, per route.",
            [
                prom(
                    "histogram_quantile(0.95, sum by (handler, le) "
                    f"(rate(agent_exporter_http_request_duration_seconds_bucket{j}[{RI}])))",
                    "{{handler}}",
                )
            ],
            "s",
        ),
        timeseries(
            "HTTP requests by code",
            "Requests per second per route and status code.",
            [
                prom(
                    "sum by (handler, code) "
                    f"(rate(agent_exporter_http_request_duration_seconds_count{j}[{RI}]))",
                    "{{handler}} {{code}}",
                )
            ],
            "reqps",
        ),
        timeseries(
            "Memory and CPU",
            "Resident memory and CPU seconds per second of each instance.",
            [
                prom(f"process_resident_memory_bytes{j}", "{{instance}} memory"),
                prom(f"rate(process_cpu_seconds_total{j}[{RI}])", "{{instance}} CPU"),
            ],
            "bytes",
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".* CPU"},
                    "properties": [
                        {"id": "unit", "value": "percentunit"},
                        {"id": "custom.axisPlacement", "value": "right"},
                    ],
                }
            ],
        ),
    ]
    variables = [
        datasource_variable("datasource", "Prometheus", "prometheus"),
        query_variable(
            "instance", "Instance", f'label_values(up{{job="{cfg.exporter_job}"}}, instance)', PROMETHEUS
        ),
    ]
    return dashboard(
        EXPORTER_UID,
        "agent-exporter: health",
        "The exporter itself: ingest by outcome, rejects, label overflow, ingest lag, scrapes, store errors.",
        panels,
        variables,
        time_from="now-6h",
        refresh=cfg.dashboards.refresh,
    )


def dashboards(cfg: MixinConfig) -> dict[str, Json]:
    """Every dashboard, by file name (without `.json`)."""
    return {
        "overview": overview(cfg),
        "cost": cost(cfg),
        "run-history": run_history(cfg),
        "run": run_detail(cfg),
        "exporter-health": exporter_health(cfg),
    }
