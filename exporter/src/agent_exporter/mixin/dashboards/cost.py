"""The cost dashboard: spend by model, agent and issue type, the daily budget, the month-end projection."""

from __future__ import annotations

from ..config import MixinConfig
from ..panels import (
    Json,
    dashboard,
    datasource_variable,
    gauge,
    prom,
    row,
    sql,
    stat,
    status_override,
    table,
    timeseries,
    unit_override,
)
from ..rules import (
    COST_UID,
    FAILED,
)
from .daily import spend_per_day_by_model
from .selectors import (
    MODEL,
    RANGE,
    RI,
    sel,
)
from .store import run_links, store_filter, store_variables


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
        "WHERE ended_at >= least(m.start, m.now - 7 * 86400)\n"
        f"  AND {store_filter('agent', 'model', time=False)}\n"
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
            "Share of spend on failed runs",
            "The share of the spend in the time range that went to runs that failed (status failure, error "
            "or timeout; agent_cost_usd_total's status label)." + model_only,
            [
                prom(
                    f"sum(increase(agent_cost_usd_total{FAILED_MODEL}[{RANGE}]))"
                    f" / sum(increase(agent_cost_usd_total{MODEL}[{RANGE}]))",
                    "failed share",
                    instant=True,
                )
            ],
            "percentunit",
            decimals=1,
            thresholds=[(None, "green"), (0.2, "orange"), (0.5, "red")],
        ),
        *_owner_budgets(cfg),
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
            "Spend per hour on failed runs by agent and model",
            "US dollars per hour at the current pace that runs which failed cost (failure, error, "
            "timeout), per agent and model: what failures cost." + model_only,
            [
                prom(
                    f"sum by (agent, model) (rate(agent_cost_usd_total{FAILED_MODEL}[{RI}])) * 3600",
                    "{{agent}} {{model}}",
                )
            ],
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
                    f"FROM runs\nWHERE {store_filter('agent', 'model')}\nGROUP BY 1, 2\nORDER BY 1",
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
        spend_per_day_by_model("agent", "model", width=24),
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
                    f"FROM runs\nWHERE {store_filter('agent', 'model')}\n"
                    "  AND cost_usd IS NOT NULL\nORDER BY cost_usd DESC\nLIMIT 20"
                )
            ],
            overrides=[
                run_links(cfg.links.exporter_url),
                unit_override("cost", "currencyUSD"),
                unit_override("duration", "s"),
                unit_override("tokens", "short"),
                status_override(),
            ],
            width=12,
        ),
    ]
    # the agents and models of the store: the SQL panels match them exactly, and PromQL panels filter
    # with them too (an agent past the exporter's label cap is `other` in Prometheus, see the docs)
    variables = [
        datasource_variable("datasource", "Prometheus", "prometheus"),
        *store_variables("agent", "model"),
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


#: the agent and model filters, and the statuses of a failed run
FAILED_MODEL = sel("agent", "model", extra=f'status=~"{FAILED}"')


def _owner_budgets(cfg: MixinConfig) -> list[Json]:
    """Each owner's last 24 hours against its budget's daily share (none without budgets)."""
    budgets = cfg.cost.owner_budgets
    if not budgets:
        return []
    targets = [
        prom(
            f'(sum(increase(agent_cost_usd_total{{{b.owner}="{b.name}"}}[1d])) or vector(0))'
            f" / {b.daily_usd:g}",
            f"{b.owner} {b.name} ({'daily' if b.period == 'day' else 'monthly'})",
            instant=True,
        )
        for b in budgets
    ]
    return [
        stat(
            "Spend against owner budgets",
            "Each owner's spend over the last 24 hours as a share of its budget's daily share (a monthly "
            "budget's is a 30th), from cost.owner_budgets in alerts/config.yaml; AgentOwnerBudgetBurn "
            "alerts on them. A team or project shows 0 unless its label is on the metrics "
            "(metrics.extra_labels); GET /api/v1/budget reads the store instead.",
            targets,
            "percentunit",
            decimals=0,
            thresholds=[(None, "green"), (0.8, "orange"), (1, "red")],
            width=8,
        )
    ]
