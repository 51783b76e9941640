"""The label selectors and variables the dashboards share: PromQL matchers for the dashboard variables,
the SQL list of failed statuses, the link from a run_id to the run dashboard.
"""

from __future__ import annotations

from typing import Final

from ...record import FAILED_STATUSES, Status
from ..panels import (
    PROMETHEUS,
    Json,
    custom_variable,
    datasource_variable,
    query_variable,
)
from ..rules import (
    FAILED,
    RUN_UID,
)

STATUSES: Final = tuple(s.value for s in Status)
#: the failed statuses as a SQL list, `('failure', 'error', 'timeout')`; cancelled runs are neither
#: successes nor failures (docs/record.md, "What counts as a failure")
FAILED_SQL: Final = "(" + ", ".join(f"'{s.value}'" for s in FAILED_STATUSES) + ")"
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
DURATION: Final = sel("agent", "model", "status")
MODEL: Final = sel("agent", "model")
AGENT: Final = sel("agent")


def prom_variables() -> list[Json]:
    """The overview's variables: values from Prometheus' label values."""
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
