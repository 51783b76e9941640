"""The Grafana dashboards: overview, cost, run history, one run, and the exporter's health.

Prometheus panels filter with the agent/model/issue_type/status variables where the metric has
that label (the description says when one does not apply); SQL panels read the store's `runs`
tables on PostgreSQL, with `$__unixEpochFilter` on the Unix-seconds `ended_at` column.

One module per dashboard; `selectors` holds what they share.
"""

from __future__ import annotations

from ..config import MixinConfig
from ..panels import Json
from .cost import cost
from .exporter_health import exporter_health
from .overview import overview
from .run import run_detail
from .run_history import run_history

__all__ = ["cost", "dashboards", "exporter_health", "overview", "run_detail", "run_history"]


def dashboards(cfg: MixinConfig) -> dict[str, Json]:
    """Every dashboard, by file name (without `.json`)."""
    return {
        "overview": overview(cfg),
        "cost": cost(cfg),
        "run-history": run_history(cfg),
        "run": run_detail(cfg),
        "exporter-health": exporter_health(cfg),
    }
