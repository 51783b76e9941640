"""A panel's SQL as Grafana sends it to PostgreSQL, for tests that run it without a Grafana.

Two steps, as in Grafana:

1. The browser interpolates the dashboard's template variables (`$agent`, `${agent:regex}`,
   `[[agent]]`): Grafana's variable syntax and format registry, the PostgreSQL datasource's
   `interpolateVariable` for the default format (each value quoted as a literal when the variable
   is multi-value or has All), and a variable's `allValue` sent as it is, unformatted, when All is
   selected (without an `allValue`, All is the list of the variable's options: empty on an empty
   store). Names Grafana does not know (`$__unixEpochFilter`) stay as they are.
2. The server expands the SQL macros: `$__interval`, `$__interval_ms`, `$__unixEpochFrom()` and
   `$__unixEpochTo()` first (sqleng), then `$__name(args)` by the PostgreSQL macro engine
   (`$__timeFilter`, `$__timeGroup[Alias]`, `$__unixEpochFilter`, `$__unixEpochGroup[Alias]`, ...);
   an unknown macro is an error, as in Grafana.

Sources: grafana/grafana's public/app/features/templating/template_srv.ts and scenes' formatRegistry
(formats, custom all values), the PostgreSQL datasource's datasource.ts (`interpolateVariable`),
pkg/tsdb/sqleng and pkg/tsdb/grafana-postgresql-datasource/macros.go (macros).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

#: Grafana's variable syntax: `$name`, `[[name:format]]`, `${name.field:format}`
VARIABLE: Final = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")
#: the PostgreSQL macro engine's `$__name(args)`
MACRO: Final = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
#: what Grafana's regex format escapes (escapeRegex in @grafana/data)
REGEX_SPECIAL: Final = re.compile(r"([\\^$*+?.()|\[\]{}/])")
ALL: Final = "$__all"


class MacroError(ValueError):
    """A macro Grafana's PostgreSQL engine would refuse (the panel shows this error)."""


@dataclass(frozen=True)
class Selection:
    """What the dashboard's variables hold: selected values (or All) and the options All stands for."""

    #: variable name -> selected values; ALL alone for All; a str for a textbox variable
    values: Mapping[str, Sequence[str] | str]
    #: variable name -> the options the variable's query returned (what All expands to without allValue)
    options: Mapping[str, Sequence[str]] = field(default_factory=dict)


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _regex_escape(value: str) -> str:
    return REGEX_SPECIAL.sub(r"\\\1", value)


def _format(value: str | list[str], fmt: str, variable: Mapping[str, Any]) -> str:
    """Grafana's format registry, and the PostgreSQL datasource's default (`interpolateVariable`)."""
    values = [value] if isinstance(value, str) else value
    if fmt == "default":
        if isinstance(value, str):
            multi = variable.get("multi") or variable.get("includeAll")
            return _quote_literal(value) if multi else value.replace("'", "''")
        return ",".join(_quote_literal(v) for v in values)
    if fmt == "regex":
        escaped = [_regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "sqlstring":  # quotes doubled, and a double quote backslashed (scenes' sqlStringFormatter)
        return ",".join("'" + v.replace("'", "''").replace('"', '\\"') + "'" for v in values)
    if fmt in ("csv", "raw"):
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt == "percentencode":  # encodeURIComponent, and !'()* too; several values as a glob
        return quote(value if isinstance(value, str) else "{" + ",".join(values) + "}", safe="-_.~")
    if fmt == "text":
        return ",".join(values)
    if fmt == "json":
        return value if isinstance(value, str) else json.dumps(value)
    raise ValueError(f"format {fmt!r} is not one this test knows")


def interpolate(raw: str, variables: Sequence[Mapping[str, Any]], selection: Selection, interval: str) -> str:
    """Step 1: the browser's interpolation of the dashboard's variables into `raw`."""
    by_name = {v["name"]: v for v in variables}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6) or "default"
        if name == "__interval":
            return interval
        if name not in by_name or name not in selection.values:
            return match.group(0)
        variable, selected = by_name[name], selection.values[name]
        if isinstance(selected, str):  # a textbox
            return _format(selected, fmt, variable)
        if list(selected) == [ALL]:
            if variable.get("allValue") is not None:
                # a custom all value: unformatted, but for the text and percentencode formats
                if fmt == "text":
                    return "All"
                if fmt == "percentencode":
                    return quote(variable["allValue"], safe="-_.~")
                return str(variable["allValue"])
            return _format(list(selection.options.get(name, [])), fmt, variable)
        return _format(list(selected), fmt, variable)

    return VARIABLE.sub(replace, raw)


def _interval_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip().strip("'"))
    if not match:
        raise MacroError(f"error parsing interval {text}")
    return int(match.group(1)) * units[match.group(2)]


def _rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def _seconds(value: int) -> str:
    return str(value)  # Go's %v of a float64 of whole seconds: 3600, not 3600.0


def expand_macros(sql: str, start: int, end: int, interval: str) -> str:
    """Step 2: Grafana's server-side SQL macros for the time range [start, end] (Unix seconds)."""
    step = _interval_seconds(interval)
    sql = sql.replace("$__interval_ms", str(step * 1000)).replace("$__interval", interval)
    sql = sql.replace("$__unixEpochFrom()", str(start)).replace("$__unixEpochTo()", str(end))

    def macro(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
        if name in ("__timeGroup", "__timeGroupAlias", "__unixEpochGroup", "__unixEpochGroupAlias"):
            if len(args) < 2:
                raise MacroError(f"macro {name} needs time column and interval and optional fill value")
            n = _seconds(_interval_seconds(args[1]))
            if name.startswith("__timeGroup"):
                group = f"floor(extract(epoch from {args[0]})/{n})*{n}"
            else:
                group = f"floor(({args[0]})/{n})*{n}"
            return group + (' AS "time"' if name.endswith("Alias") else "")
        if not args[0] and name in ("__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter"):
            raise MacroError(f"missing time column argument for macro {name}")
        expansions = {
            "__time": lambda: f'{args[0]} AS "time"',
            "__timeEpoch": lambda: f'extract(epoch from {args[0]}) as "time"',
            "__timeFilter": lambda: f"{args[0]} BETWEEN '{_rfc3339(start)}' AND '{_rfc3339(end)}'",
            "__timeFrom": lambda: f"'{_rfc3339(start)}'",
            "__timeTo": lambda: f"'{_rfc3339(end)}'",
            "__unixEpochFilter": lambda: f"{args[0]} >= {start} AND {args[0]} <= {end}",
        }
        if name not in expansions:
            raise MacroError(f"unknown macro {name!r}")
        return expansions[name]()

    return MACRO.sub(macro, sql)


def render(
    raw: str,
    variables: Sequence[Mapping[str, Any]],
    selection: Selection,
    *,
    start: int,
    end: int,
    interval: str = "1m",
) -> str:
    """`raw` as PostgreSQL receives it from Grafana, for the time range [start, end]."""
    return expand_macros(interpolate(raw, variables, selection, interval), start, end, interval)
