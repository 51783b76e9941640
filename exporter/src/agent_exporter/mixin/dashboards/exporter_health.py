"""The exporter-health dashboard: ingest by outcome, rejects, overflow, lag, scrapes, store errors."""

from __future__ import annotations

from ..config import MixinConfig, format_duration
from ..panels import (
    PROMETHEUS,
    Json,
    dashboard,
    datasource_variable,
    prom,
    query_variable,
    stat,
    table,
    timeseries,
)
from ..rules import (
    EXPORTER_UID,
)
from .selectors import (
    RI,
)


def exporter_health(cfg: MixinConfig) -> Json:
    """Is the exporter healthy: ingest by outcome, rejects, overflow, lag, scrape, store errors."""
    job = f'job="{cfg.exporter_job}", instance=~"$instance"'
    j = "{" + job + "}"
    overflow = format_duration(cfg.exporter.label_overflow_window)
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
            "Label values replaced by 'other' because the label reached its cap of distinct values, over "
            f"the {overflow} before each point (the window of AgentExporterLabelOverflow at any zoom).",
            [
                prom(
                    f"sum by (label) (increase(agent_exporter_label_overflow_total{j}[{overflow}]))",
                    "{{label}}",
                )
            ],
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
            "Failed store operations (write, read, ping) per minute. Failed writes answer 503: agents retry.",
            [
                prom(
                    f"sum by (operation) (rate(agent_exporter_store_errors_total{j}[{RI}])) * 60",
                    "{{operation}}",
                )
            ],
            "suffix: errors/min",
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
