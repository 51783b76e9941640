"""tests/grafana_render.py renders what Grafana renders: its formats (scenes' formatRegistry), the
PostgreSQL datasource's default, custom all values, and the server's macros (macros.go)."""

from __future__ import annotations

import pytest

from .grafana_render import ALL, MacroError, Selection, render

MULTI = {"name": "v", "type": "query", "multi": True, "includeAll": True, "allValue": ".*"}
VALUES = ["a.b", "it's", 'say "hi"']


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$v", "'a.b','it''s','say \"hi\"'"),  # the PostgreSQL datasource: quoted literals
        ("${v:sqlstring}", "'a.b','it''s','say \\\"hi\\\"'"),
        ("${v:regex}", '(a\\.b|it\'s|say "hi")'),
        ("${v:csv}", 'a.b,it\'s,say "hi"'),
        ("${v:pipe}", 'a.b|it\'s|say "hi"'),
        ("${v:singlequote}", "'a.b','it\\'s','say \"hi\"'"),
        ("${v:percentencode}", "%7Ba.b%2Cit%27s%2Csay%20%22hi%22%7D"),
        ("[[v:csv]]", 'a.b,it\'s,say "hi"'),
    ],
)
def test_formats_of_several_values(template: str, expected: str) -> None:
    assert render(template, [MULTI], Selection({"v": VALUES}), start=0, end=60) == expected


def test_all_sends_the_custom_all_value_unformatted() -> None:
    selection = Selection({"v": [ALL]}, {"v": VALUES})
    rendered = [
        render(t, [MULTI], selection, start=0, end=60) for t in ("$v", "${v:regex}", "${v:sqlstring}")
    ]
    assert rendered == [".*", ".*", ".*"]
    without = {**MULTI, "allValue": None}
    assert render("$v", [without], selection, start=0, end=60) == "'a.b','it''s','say \"hi\"'"
    assert render("IN ($v)", [without], Selection({"v": [ALL]}, {"v": []}), start=0, end=60) == "IN ()"


def test_macros_as_the_postgresql_engine_expands_them() -> None:
    sql = (
        "$__unixEpochFilter(t) $__unixEpochFrom() $__unixEpochTo() $__unixEpochGroupAlias(t, $__interval) "
        "$__timeFilter(ts) $__timeGroup(ts, '5m') $__interval_ms $unknown"
    )
    assert render(sql, [], Selection({}), start=1_700_000_000, end=1_700_003_600, interval="1h") == (
        't >= 1700000000 AND t <= 1700003600 1700000000 1700003600 floor((t)/3600)*3600 AS "time" '
        "ts BETWEEN '2023-11-14T22:13:20Z' AND '2023-11-14T23:13:20Z' floor(extract(epoch from ts)/300)*300 "
        "3600000 $unknown"
    )
    with pytest.raises(MacroError, match="unknown macro"):
        render("$__nope(x)", [], Selection({}), start=0, end=60)
