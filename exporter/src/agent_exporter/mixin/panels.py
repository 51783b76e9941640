"""Grafana dashboard JSON as plain dicts: a few helpers for the panels, targets and variables we use.

Why not grafana-foundation-sdk's typed builders, and how the JSON is checked against Grafana's own
schema instead: docs/dashboards.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

Json = dict[str, Any]

PROMETHEUS: Final = {"type": "prometheus", "uid": "${datasource}"}
POSTGRES: Final = {"type": "grafana-postgresql-datasource", "uid": "${store}"}
GRID_WIDTH: Final = 24
SCHEMA_VERSION: Final = 39


def prom(
    expr: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    exemplar: bool = False,
    interval: str | None = None,
    table: bool = False,
) -> Json:
    """A PromQL target (refId filled in by the panel)."""
    target: Json = {
        "datasource": PROMETHEUS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "exemplar": exemplar,
    }
    if interval:
        target["interval"] = interval
    if table:
        target["format"] = "table"
    return target


def sql(raw: str, *, time_series: bool = False) -> Json:
    """A raw SQL target on the PostgreSQL store."""
    return {
        "datasource": POSTGRES,
        "editorMode": "code",
        "rawQuery": True,
        "format": "time_series" if time_series else "table",
        "rawSql": raw,
    }


def _targets(targets: Sequence[Json]) -> list[Json]:
    return [{"refId": chr(ord("A") + i), **t} for i, t in enumerate(targets)]


def _datasource(targets: Sequence[Json]) -> Json:
    return dict(targets[0]["datasource"])


def _field_config(
    unit: str,
    *,
    decimals: int | None = None,
    min_: float | None = None,
    max_: float | None = None,
    thresholds: Sequence[tuple[float | None, str]] | None = None,
    custom: Json | None = None,
    overrides: Sequence[Json] = (),
    mappings: Sequence[Json] = (),
) -> Json:
    defaults: Json = {"unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    steps = thresholds or [(None, "green")]
    defaults["thresholds"] = {
        "mode": "absolute",
        # rounded: 0.95 - 0.05 is 0.8999999999999999 in floating point, not the 0.9 a reader expects
        "steps": [{"value": None if v is None else round(v, 9), "color": c} for v, c in steps],
    }
    if custom:
        defaults["custom"] = custom
    if mappings:
        defaults["mappings"] = list(mappings)
    return {"defaults": defaults, "overrides": list(overrides)}


def timeseries(
    title: str,
    description: str,
    targets: Sequence[Json],
    unit: str,
    *,
    stack: bool = False,
    bars: bool = False,
    min_: float | None = 0,
    max_: float | None = None,
    thresholds: Sequence[tuple[float | None, str]] | None = None,
    threshold_line: bool = False,
    interval: str | None = None,
    overrides: Sequence[Json] = (),
    width: int = 12,
    height: int = 8,
) -> Json:
    """A time series panel (lines, or bars for daily and weekly totals)."""
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 80 if bars else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "line" if threshold_line else "off"},
    }
    panel: Json = {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _datasource(targets),
        "gridPos": {"w": width, "h": height},
        "fieldConfig": _field_config(
            unit, min_=min_, max_=max_, thresholds=thresholds, custom=custom, overrides=overrides
        ),
        "options": {
            "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": _targets(targets),
    }
    if interval:
        panel["interval"] = interval
    return panel


def stat(
    title: str,
    description: str,
    targets: Sequence[Json],
    unit: str,
    *,
    decimals: int | None = None,
    thresholds: Sequence[tuple[float | None, str]] | None = None,
    fields: str = "",
    width: int = 4,
    height: int = 4,
) -> Json:
    """A single-value panel (one value per target or series)."""
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": _datasource(targets),
        "gridPos": {"w": width, "h": height},
        "fieldConfig": _field_config(unit, decimals=decimals, thresholds=thresholds),
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": fields, "values": False},
            "colorMode": "value" if thresholds else "none",
            "graphMode": "none",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
        },
        "targets": _targets(targets),
    }


def gauge(
    title: str,
    description: str,
    targets: Sequence[Json],
    unit: str,
    *,
    max_: float,
    thresholds: Sequence[tuple[float | None, str]],
    width: int = 4,
    height: int = 4,
) -> Json:
    """A gauge against a known maximum (a budget)."""
    return {
        "type": "gauge",
        "title": title,
        "description": description,
        "datasource": _datasource(targets),
        "gridPos": {"w": width, "h": height},
        "fieldConfig": _field_config(unit, min_=0, max_=max_, thresholds=thresholds),
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showThresholdMarkers": True,
            "showThresholdLabels": False,
        },
        "targets": _targets(targets),
    }


def table(
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    unit: str = "none",
    overrides: Sequence[Json] = (),
    transformations: Sequence[Json] = (),
    sort_by: str | None = None,
    width: int = 24,
    height: int = 10,
) -> Json:
    """A table panel."""
    # no footer: Grafana hides it by default, and 12.x moved its options (options.footer is gone)
    options: Json = {"showHeader": True, "cellHeight": "sm"}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": _datasource(targets),
        "gridPos": {"w": width, "h": height},
        "fieldConfig": _field_config(unit, overrides=overrides),
        "options": options,
        "transformations": list(transformations),
        "targets": _targets(targets),
    }


def barchart(
    title: str,
    description: str,
    targets: Sequence[Json],
    unit: str,
    *,
    x_field: str | None = None,
    horizontal: bool = True,
    stack: bool = False,
    overrides: Sequence[Json] = (),
    transformations: Sequence[Json] = (),
    max_: float | None = None,
    width: int = 12,
    height: int = 8,
) -> Json:
    """A bar chart of a table's rows: horizontal (phases, tools), or one bar a UTC day or week.

    Without `x_field` the chart's x axis is the first text column (after `transformations`).
    """
    options: Json = {
        "orientation": "horizontal" if horizontal else "vertical",
        "showValue": "auto" if horizontal else "never",
        "stacking": "normal" if stack else "none",
        "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi" if stack else "single", "sort": "desc" if stack else "none"},
    }
    if x_field:
        options["xField"] = x_field
    panel: Json = {
        "type": "barchart",
        "title": title,
        "description": description,
        "datasource": _datasource(targets),
        "gridPos": {"w": width, "h": height},
        "fieldConfig": _field_config(
            unit, min_=0, max_=max_, custom={"fillOpacity": 80, "lineWidth": 1}, overrides=overrides
        ),
        "options": options,
        "targets": _targets(targets),
    }
    if transformations:
        panel["transformations"] = list(transformations)
    return panel


def row(title: str) -> Json:
    """A row header spanning the dashboard."""
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"w": GRID_WIDTH, "h": 1},
    }


def link_override(field: str, title: str, url: str) -> Json:
    """A data link on every cell of `field` (the run table's run_id opens the run)."""
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [{"id": "links", "value": [{"title": title, "url": url}]}],
    }


def unit_override(field: str, unit: str) -> Json:
    """A unit for one column of a table."""
    return {"matcher": {"id": "byName", "options": field}, "properties": [{"id": "unit", "value": unit}]}


STATUS_COLORS: Final = {
    "success": "green",
    "failure": "orange",
    "error": "red",
    "timeout": "purple",
    "cancelled": "text",
}


def status_override(field: str = "status") -> Json:
    """Colour a status column by value."""
    mapping = {
        "type": "value",
        "options": {k: {"color": c, "index": i} for i, (k, c) in enumerate(STATUS_COLORS.items())},
    }
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [
            {"id": "mappings", "value": [mapping]},
            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
        ],
    }


def layout(panels: Sequence[Json]) -> list[Json]:
    """Place panels left to right, wrapping at the grid width; ids in order."""
    x = y = row_height = 0
    placed = []
    for i, panel in enumerate(panels, start=1):
        grid = panel["gridPos"]
        w, h = grid["w"], grid["h"]
        if x + w > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        placed.append({"id": i, **panel, "gridPos": {"h": h, "w": w, "x": x, "y": y}})
        x += w
        row_height = max(row_height, h)
        if panel["type"] == "row":
            x, y, row_height = 0, y + h, 0
    return placed


def datasource_variable(name: str, label: str, plugin: str) -> Json:
    """A variable choosing the datasource of one type."""
    return {
        "name": name,
        "label": label,
        "type": "datasource",
        "query": plugin,
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
        "skipUrlSync": False,
    }


def query_variable(
    name: str,
    label: str,
    query: str,
    datasource: Json,
    *,
    all_value: str | None = ".*",
    description: str = "",
) -> Json:
    """A multi-value variable from a query, with All (`.*` for regex matchers, the value list for SQL)."""
    variable: Json = {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": datasource,
        "query": query,
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "regex": "",
        "options": [],
        "skipUrlSync": False,
    }
    if all_value is not None:
        variable["allValue"] = all_value
    return variable


def custom_variable(name: str, label: str, values: Sequence[str], *, all_value: str | None = ".*") -> Json:
    """A multi-value variable with fixed values."""
    variable: Json = {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(values),
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [{"text": v, "value": v, "selected": False} for v in values],
        "hide": 0,
        "skipUrlSync": False,
    }
    if all_value is not None:
        variable["allValue"] = all_value
    return variable


def textbox_variable(name: str, label: str, description: str) -> Json:
    """A free-text variable (the run id of the drill-down)."""
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "textbox",
        "query": "",
        "current": {"text": "", "value": ""},
        "hide": 0,
        "skipUrlSync": False,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: Sequence[Json],
    variables: Sequence[Json],
    *,
    time_from: str,
    refresh: str,
) -> Json:
    """A whole dashboard with a fixed uid, linked to its siblings by the `agent-exporter` tag."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["agent-exporter"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": time_from, "to": "now"},
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "links": [
            {
                "title": "agent-exporter",
                "type": "dashboards",
                "tags": ["agent-exporter"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "tooltip": "",
                "targetBlank": False,
            }
        ],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": list(variables)},
        "panels": layout(panels),
    }
