"""Recording rules and alert rules, rendered from the configuration.

Recording rules are named `level:metric:operations` (Prometheus naming practice): `agent:` rules
aggregate to one series per agent, `agent_model:` per agent and model, `job:` per exporter job
(all agents together). Window names in rule names are the nominal windows of the configuration,
also when `time_scale` shortens the ranges for the live test, so dashboards query the same names.

Failure means status `failure`, `error` or `timeout` (`record.FAILED_STATUSES`, the definition the
read API, the CLI and the demo share: docs/record.md, "What counts as a failure"). `cancelled` runs
count on neither side of the failure ratio: someone stopped them, which says nothing about whether the
agent works.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from ..record import FAILED_STATUSES
from .config import MixinConfig, format_duration

#: the failed statuses as a PromQL regex, `failure|error|timeout`
FAILED: Final = "|".join(s.value for s in FAILED_STATUSES)
RATE_WINDOW: Final = 300  # the dashboards' recorded 5m rates
QUANTILES: Final = (0.5, 0.95, 0.99)

OVERVIEW_UID: Final = "agent-exporter-overview"
COST_UID: Final = "agent-exporter-cost"
RUNS_UID: Final = "agent-exporter-runs"
RUN_UID: Final = "agent-exporter-run"
EXPORTER_UID: Final = "agent-exporter-health"

Rule = dict[str, Any]
Group = dict[str, Any]


def quantile_name(q: float) -> str:
    """`p95` for 0.95, `p99_9` for 0.999: a quantile as a rule-name part."""
    return "p" + f"{q * 100:g}".replace(".", "_")


def w(seconds: int) -> str:
    """A nominal window as it appears in rule names (`1h`, `1d`, `1w`)."""
    return format_duration(seconds)


def _num(value: float) -> str:
    return f"{value:g}"


class RuleNames:
    """The recording rules' names, shared by the alert rules and the dashboards."""

    @staticmethod
    def runs_rate(level: str, window: int) -> str:
        """Runs per second of every status."""
        return f"{level}:agent_runs:rate{w(window)}"

    @staticmethod
    def decided_rate(window: int) -> str:
        """Runs per second that ended with a verdict (every status but cancelled), per agent."""
        return f"agent:agent_runs_decided:rate{w(window)}"

    @staticmethod
    def failure_ratio(window: int) -> str:
        """Failed share of decided runs, per agent."""
        return f"agent:agent_run_failure:ratio_rate{w(window)}"

    @staticmethod
    def cost_rate(level: str, window: int) -> str:
        """US dollars per second."""
        return f"{level}:agent_cost_usd:rate{w(window)}"

    @staticmethod
    def duration_quantile(level: str, q: float, window: int) -> str:
        """A quantile of run durations, in seconds."""
        return f"{level}:agent_run_duration_seconds:{quantile_name(q)}_rate{w(window)}"

    @staticmethod
    def tokens_mean(window: int) -> str:
        """Mean tokens (input plus output) per run, per agent."""
        return f"agent:agent_run_tokens:mean_rate{w(window)}"


N = RuleNames


def _record(name: str, expr: str) -> Rule:
    return {"record": name, "expr": expr}


def recording_groups(cfg: MixinConfig) -> list[Group]:
    """The recording rule groups."""
    r = cfg.range
    job = f'job="{cfg.exporter_job}"'

    dashboards: list[Rule] = [
        _record(
            N.runs_rate("agent_model", RATE_WINDOW),
            f"sum by (agent, model) (rate(agent_runs_total{{{job}}}[{r(RATE_WINDOW)}]))",
        ),
        _record(
            N.runs_rate("agent", RATE_WINDOW),
            f"sum by (agent) (rate(agent_runs_total{{{job}}}[{r(RATE_WINDOW)}]))",
        ),
        _record(
            N.cost_rate("agent_model", RATE_WINDOW),
            f"sum by (agent, model) (rate(agent_cost_usd_total{{{job}}}[{r(RATE_WINDOW)}]))",
        ),
    ]
    for q in QUANTILES:
        dashboards.append(
            _record(
                N.duration_quantile("agent_model", q, RATE_WINDOW),
                f"histogram_quantile({_num(q)}, sum by (agent, model, le) "
                f"(rate(agent_run_duration_seconds_bucket{{{job}}}[{r(RATE_WINDOW)}])))",
            )
        )

    fr = cfg.failure_rate
    windows = sorted({x for pair in fr.windows for x in (pair.long, pair.short)})
    slo: list[Rule] = []
    for window in windows:
        slo.append(
            _record(
                N.failure_ratio(window),
                f'sum by (agent) (rate(agent_runs_total{{{job}, status=~"{FAILED}"}}[{r(window)}]))\n'
                "/\n"
                f'sum by (agent) (rate(agent_runs_total{{{job}, status!="cancelled"}}[{r(window)}]))',
            )
        )
    for window in sorted({pair.long for pair in fr.windows}):
        slo.append(
            _record(
                N.decided_rate(window),
                f'sum by (agent) (rate(agent_runs_total{{{job}, status!="cancelled"}}[{r(window)}]))',
            )
        )

    cost: list[Rule] = [
        _record(
            N.cost_rate("agent", cfg.cost.spike.window),
            f"sum by (agent) (rate(agent_cost_usd_total{{{job}}}[{r(cfg.cost.spike.window)}]))",
        )
    ]
    for window in sorted({b.window for b in cfg.cost.budget_windows}):
        cost.append(
            _record(
                N.cost_rate("job", window),
                f"sum by (job) (rate(agent_cost_usd_total{{{job}}}[{r(window)}]))",
            )
        )
    # the owners' spend, for their budgets: per job too, as the fleet's budget is
    recorded = {rule["record"] for rule in cost}
    for owner in sorted({b.owner for b in cfg.cost.owner_budgets}):
        for window in sorted({b.window for b in cfg.cost.budget_windows}):
            name = N.cost_rate(f"job_{owner}", window)
            if name not in recorded:
                recorded.add(name)
                cost.append(
                    _record(name, f"sum by (job, {owner}) (rate(agent_cost_usd_total{{{job}}}[{r(window)}]))")
                )

    d, t = cfg.duration, cfg.tokens
    # The current window reads raw samples. The week-long baselines average 5m rates recorded per
    # agent (and bucket): a week of one series per agent and bucket, not of every label set.
    rate5m = r(RATE_WINDOW)
    buckets = f"agent_le:agent_run_duration_seconds_bucket:rate{w(RATE_WINDOW)}"
    tokens_sum = f"agent:agent_run_tokens_sum:rate{w(RATE_WINDOW)}"
    tokens_count = f"agent:agent_run_tokens_count:rate{w(RATE_WINDOW)}"
    current: list[Rule] = [
        _record(buckets, f"sum by (agent, le) (rate(agent_run_duration_seconds_bucket{{{job}}}[{rate5m}]))"),
        _record(tokens_sum, f"sum by (agent) (rate(agent_run_tokens_sum{{{job}}}[{rate5m}]))"),
        _record(tokens_count, f"sum by (agent) (rate(agent_run_tokens_count{{{job}}}[{rate5m}]))"),
        _record(
            N.duration_quantile("agent", d.quantile, d.window),
            f"histogram_quantile({_num(d.quantile)}, sum by (agent, le) "
            f"(rate(agent_run_duration_seconds_bucket{{{job}}}[{r(d.window)}])))",
        ),
        _record(
            N.tokens_mean(t.window),
            f"sum by (agent) (rate(agent_run_tokens_sum{{{job}}}[{r(t.window)}]))\n"
            "/\n"
            f"sum by (agent) (rate(agent_run_tokens_count{{{job}}}[{r(t.window)}]))",
        ),
    ]
    for window in sorted({d.window, t.window}):
        current.append(
            _record(
                N.runs_rate("agent", window), f"sum by (agent) (rate(agent_runs_total{{{job}}}[{r(window)}]))"
            )
        )
    baselines: list[Rule] = [
        _record(
            N.duration_quantile("agent", d.quantile, d.baseline),
            f"histogram_quantile({_num(d.quantile)}, avg_over_time({buckets}[{r(d.baseline)}]))",
        ),
        _record(
            N.tokens_mean(t.baseline),
            f"avg_over_time({tokens_sum}[{r(t.baseline)}])\n/\navg_over_time({tokens_count}[{r(t.baseline)}])",
        ),
    ]

    return [
        {"name": "agent-exporter.dashboards", "rules": dashboards},
        {"name": "agent-exporter.failure-ratio", "rules": slo},
        {"name": "agent-exporter.cost", "rules": cost},
        {"name": "agent-exporter.regressions", "rules": current},
        # week-long baselines move slowly: every 2 minutes is plenty, and well within the 5-minute
        # lookback through which the alerts read them
        {"name": "agent-exporter.baselines", "interval": r(120), "rules": baselines},
    ]


class Alerts:
    """Alert rules with the labels and annotations every alert carries."""

    def __init__(self, cfg: MixinConfig) -> None:
        self.cfg = cfg

    def alert(
        self,
        name: str,
        expr: str,
        *,
        for_: int,
        severity: str,
        component: str,
        summary: str,
        description: str,
        dashboard: str,
        labels: dict[str, str] | None = None,
        runs: str | None = None,
    ) -> Rule:
        """One alert rule; `runbook_url` is the section of docs/runbooks.md named after the alert.

        `runs`, the query of the exporter's /runs page that lists the runs behind the alert, adds a
        `runs_url` annotation when the exporter's URL is configured.
        """
        grafana = self.cfg.links.grafana_url.rstrip("/")
        rule: Rule = {"alert": name, "expr": expr}
        if for_:
            rule["for"] = self.cfg.range(for_)
        rule["labels"] = {"severity": severity, "component": component, **(labels or {})}
        rule["annotations"] = {
            "summary": summary,
            "description": description,
            "runbook_url": f"{self.cfg.links.runbook_url}#{name.lower()}",
            "dashboard_url": f"{grafana}/d/{dashboard}",
        }
        exporter = self.cfg.links.exporter_url.rstrip("/")
        if exporter and runs is not None:
            rule["annotations"]["runs_url"] = f"{exporter}/runs?{runs}"
        return rule

    def _owner_budget_alerts(self) -> list[Rule]:
        """AgentOwnerBudgetBurn: an owner's spend over each budget window against its budget's daily
        share (a monthly budget's is a 30th), at the window's burn rate."""
        cfg = self.cfg
        day = cfg.seconds(86400)  # shortened like every window: the live test's rates are per real second
        out = []
        for budget in cfg.cost.owner_budgets:
            selector = f'{{{budget.owner}="{_quoted(budget.name)}"}}'
            for b in cfg.cost.budget_windows:
                out.append(
                    self.alert(
                        "AgentOwnerBudgetBurn",
                        f"{N.cost_rate(f'job_{budget.owner}', b.window)}{selector} * {day}"
                        f" > {_num(b.burn_rate)} * {_num(round(budget.daily_usd, 6))}",
                        for_=b.for_,
                        severity=b.severity,
                        component="agents",
                        labels={"window": w(b.window), "budget_owner": budget.owner, "period": budget.period},
                        summary=(
                            f"The {budget.owner} {_braces(budget.name)} spends at "
                            f"{{{{ $value | humanize }}}} USD a day, {_num(b.burn_rate)}× its "
                            f"{_PERIODLY[budget.period]} budget's pace or more."
                        ),
                        description=(
                            f"Over the last {w(b.window)} the {budget.owner} {_braces(budget.name)} "
                            f"spent at a pace of {{{{ $value | humanize }}}} USD a day, against a budget of "
                            f"{_usd(budget.usd)} USD a {budget.period}"
                            + (f" ({_usd(budget.daily_usd)} a day)" if budget.period != "day" else "")
                            + f" (burn rate {_num(b.burn_rate)} or more)."
                        ),
                        dashboard=COST_UID,
                        runs=f"{budget.owner}={quote(budget.name, safe='')}",
                    )
                )
        return out

    def agent_groups(self) -> list[Group]:
        """Alerts on what the agents do: failures, cost, duration, tokens, silence."""
        cfg, r = self.cfg, self.cfg.range
        fr = cfg.failure_rate
        agent_dash = f"{OVERVIEW_UID}?var-agent={{{{ $labels.agent }}}}"
        # the exporter's /runs page of the agent (urlquery: an agent name may hold `&` or spaces)
        agent_runs = "agent={{ $labels.agent | urlquery }}"
        failed_runs = agent_runs + "".join(f"&status={s.value}" for s in FAILED_STATUSES)
        failures: list[Rule] = []
        for pair in fr.windows:
            threshold = f"{_num(pair.burn_rate)} * {_num(round(fr.budget, 10))}"
            failures.append(
                self.alert(
                    "AgentFailureBudgetBurn",
                    f"{N.failure_ratio(pair.long)} > {threshold}\n"
                    "and\n"
                    f"{N.failure_ratio(pair.short)} > {threshold}\n"
                    "and\n"
                    f"{N.decided_rate(pair.long)} * {cfg.seconds(pair.long)} >= {fr.min_runs}",
                    for_=pair.for_,
                    severity=pair.severity,
                    component="agents",
                    labels={"long_window": w(pair.long), "short_window": w(pair.short)},
                    summary="Agent {{ $labels.agent }} fails {{ $value | humanizePercentage }} of its runs.",
                    description=(
                        f"{{{{ $labels.agent }}}} failed {{{{ $value | humanizePercentage }}}} of its runs "
                        f"over the last {w(pair.long)}, and more than "
                        f"{_num(pair.burn_rate * fr.budget * 100)}% "
                        f"over the last {w(pair.short)}: it burns its error budget at "
                        f"{_num(pair.burn_rate)}× "
                        f"the pace a {_num(fr.objective * 100)}% success objective over {w(fr.period)} "
                        "allows. "
                        "Failed runs are status failure, error and timeout; cancelled runs do not count."
                    ),
                    dashboard=agent_dash,
                    runs=failed_runs,
                )
            )

        spike = cfg.cost.spike
        rate, seconds = N.cost_rate("agent", spike.window), cfg.seconds(spike.window)
        spent = f"{rate} * {seconds}"
        cost: list[Rule] = [
            self.alert(
                "AgentCostSpike",
                f"{spent} > {_num(spike.factor)} * ({rate} offset {r(spike.offset)}) * {seconds}\n"
                "and\n"
                f"{spent} >= {_num(spike.min_spend_usd)}",
                for_=spike.for_,
                severity="warning",
                component="agents",
                summary=(
                    f"Agent {{{{ $labels.agent }}}} spends over {_num(spike.factor)}× what it spent "
                    f"{w(spike.offset)} ago."
                ),
                description=(
                    f"{{{{ $labels.agent }}}} spent {{{{ $value | humanize }}}} USD over the last "
                    f"{w(spike.window)}: more than {_num(spike.factor)}× its spend in the same "
                    f"{w(spike.window)} {w(spike.offset)} earlier, and at least {_num(spike.min_spend_usd)} "
                    "USD."
                ),
                dashboard=f"{COST_UID}?var-agent={{{{ $labels.agent }}}}",
                runs=agent_runs,
            )
        ]
        budget = cfg.cost.daily_budget_usd
        day = cfg.seconds(86400)  # shortened like every window: the live test's rates are per real second
        for b in cfg.cost.budget_windows:
            cost.append(
                self.alert(
                    "AgentCostBudgetBurn",
                    f"{N.cost_rate('job', b.window)} * {day} > {_num(b.burn_rate)} * {_num(budget)}",
                    for_=b.for_,
                    severity=b.severity,
                    component="agents",
                    labels={"window": w(b.window)},
                    summary=(
                        "Agents spend at {{ $value | humanize }} USD a day, "
                        f"{_num(b.burn_rate)}× the daily budget or more."
                    ),
                    description=(
                        f"Over the last {w(b.window)} the agents of job {{{{ $labels.job }}}} spent at a "
                        "pace of "
                        f"{{{{ $value | humanize }}}} USD a day, against a daily budget of {_num(budget)} "
                        "USD "
                        f"(burn rate {_num(b.burn_rate)} or more)."
                    ),
                    dashboard=COST_UID,
                )
            )

        cost.extend(self._owner_budget_alerts())

        d, t = cfg.duration, cfg.tokens
        # The baseline is read as it was one window ago: the window under judgment is never part
        # of its own baseline. On a young deployment (hours of history, not a week) it would be
        # a large part of it, and a regression would dilute the baseline it is compared with.
        regressions = [
            self.alert(
                "AgentRunDurationRegression",
                f"{N.duration_quantile('agent', d.quantile, d.window)}\n"
                f"  > {_num(d.factor)} * ({N.duration_quantile('agent', d.quantile, d.baseline)} "
                f"offset {r(d.window)})\n"
                "and\n"
                f"{N.runs_rate('agent', d.window)} * {cfg.seconds(d.window)} >= {d.min_runs}",
                for_=d.for_,
                severity="warning",
                component="agents",
                summary=(
                    f"Agent {{{{ $labels.agent }}}} runs take over {_num(d.factor)}× longer than usual "
                    f"({quantile_name(d.quantile)})."
                ),
                description=(
                    f"The {quantile_name(d.quantile)} duration of {{{{ $labels.agent }}}}'s runs over the "
                    "last "
                    f"{w(d.window)} is {{{{ $value | humanizeDuration }}}}, more than {_num(d.factor)}× "
                    f"its {quantile_name(d.quantile)} over the {w(d.baseline)} before that {w(d.window)}."
                ),
                dashboard=agent_dash,
                runs=agent_runs,
            ),
            self.alert(
                "AgentTokensPerRunSpike",
                f"{N.tokens_mean(t.window)} > {_num(t.factor)} * ({N.tokens_mean(t.baseline)} "
                f"offset {r(t.window)})\n"
                "and\n"
                f"{N.runs_rate('agent', t.window)} * {cfg.seconds(t.window)} >= {t.min_runs}",
                for_=t.for_,
                severity="warning",
                component="agents",
                summary=(
                    f"Agent {{{{ $labels.agent }}}} uses over {_num(t.factor)}× its usual tokens per run."
                ),
                description=(
                    f"{{{{ $labels.agent }}}}'s runs used {{{{ $value | humanize }}}} tokens each on "
                    "average over "
                    f"the last {w(t.window)}, more than {_num(t.factor)}× their mean over the "
                    f"{w(t.baseline)} before that {w(t.window)}."
                ),
                dashboard=agent_dash,
                runs=agent_runs,
            ),
        ]

        s = cfg.stopped_reporting
        silence = [
            self.alert(
                "AgentStoppedReporting",
                "time() - max by (agent) (max_over_time("
                f'agent_last_run_timestamp_seconds{{job="{cfg.exporter_job}"}}[{r(s.lookback)}]))\n'
                f"  > {cfg.seconds(s.after)}",
                for_=s.for_,
                severity="warning",
                component="agents",
                summary=(
                    "Agent {{ $labels.agent }} has not reported a run for {{ $value | humanizeDuration }}."
                ),
                description=(
                    "The newest run of {{ $labels.agent }} ended {{ $value | humanizeDuration }} ago; it "
                    "reported "
                    f"within the last {w(s.lookback)} and usually within {w(s.after)}."
                ),
                dashboard=agent_dash,
                runs=agent_runs,
            )
        ]
        return [
            {"name": "agent-exporter.failures", "rules": failures},
            {"name": "agent-exporter.cost-alerts", "rules": cost},
            {"name": "agent-exporter.regression-alerts", "rules": regressions},
            {"name": "agent-exporter.silence", "rules": silence},
        ]

    def exporter_group(self) -> Group:
        """Alerts on the exporter itself."""
        cfg, e, r = self.cfg, self.cfg.exporter, self.cfg.range
        job = f'job="{cfg.exporter_job}"'
        records = "agent_exporter_records_total"
        rejected = f'{records}{{{job}, outcome="rejected"}}'
        return {
            "name": "agent-exporter.exporter",
            "rules": [
                self.alert(
                    "AgentExporterDown",
                    f"up{{{job}}} == 0 or absent(up{{{job}}})",
                    for_=e.down_for,
                    severity="critical",
                    component="exporter",
                    summary="agent-exporter{{ with $labels.instance }} {{ . }}{{ end }} is down.",
                    description=(
                        f"Prometheus cannot scrape job {cfg.exporter_job}"
                        "{{ with $labels.instance }} at {{ . }}{{ else }}: it has no such target{{ end }}. "
                        "Agents posting to it get errors, and every agent-level alert is blind "
                        "(Alertmanager inhibits them while this fires)."
                    ),
                    dashboard=EXPORTER_UID,
                ),
                self.alert(
                    "AgentExporterRecordsRejected",
                    f"sum by (job) (rate({rejected}[{r(e.rejected_window)}]))\n"
                    f"  / sum by (job) (rate({records}{{{job}}}[{r(e.rejected_window)}])) > "
                    f"{_num(e.rejected_ratio)}\n"
                    "and\n"
                    f"sum by (job) (increase({rejected}[{r(e.rejected_window)}])) >= {e.rejected_min}",
                    for_=e.rejected_for,
                    severity="warning",
                    component="exporter",
                    summary="agent-exporter rejects {{ $value | humanizePercentage }} of its records.",
                    description=(
                        "{{ $value | humanizePercentage }} of the records posted to job {{ $labels.job }} "
                        "over the "
                        f"last {w(e.rejected_window)} were rejected as invalid (threshold "
                        f"{_num(e.rejected_ratio * 100)}%): those runs are neither stored nor counted. "
                        "agent_exporter_records_rejected_total says which rule they broke."
                    ),
                    dashboard=EXPORTER_UID,
                ),
                self.alert(
                    "AgentExporterLabelOverflow",
                    f"sum by (job, label) (increase(agent_exporter_label_overflow_total{{{job}}}"
                    f"[{r(e.label_overflow_window)}])) > 0",
                    for_=0,
                    severity="warning",
                    component="exporter",
                    summary="Label {{ $labels.label }} reached its cap of distinct values.",
                    description=(
                        "{{ $value | humanize }} values of label {{ $labels.label }} became 'other' "
                        f"over the last {w(e.label_overflow_window)} (job {{{{ $labels.job }}}}): the "
                        "metrics "
                        "lump those runs together. Raise metrics.label_limits or stop sending unbounded "
                        "values."
                    ),
                    dashboard=EXPORTER_UID,
                ),
            ],
        }


_PERIODLY: Final = {"day": "daily", "month": "monthly"}


def _usd(value: float) -> str:
    """Dollars as people write them in a sentence: 3000000, 1234.5."""
    return f"{round(value, 2):f}".rstrip("0").rstrip(".")


def _quoted(value: str) -> str:
    """`value` inside a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _braces(value: str) -> str:
    """`value` in an annotation, where `{{` would start a template."""
    return value.replace("{{", "{ {").replace("}}", "} }")


def alert_groups(cfg: MixinConfig) -> list[Group]:
    """The alert rule groups."""
    alerts = Alerts(cfg)
    return [*alerts.agent_groups(), alerts.exporter_group()]
