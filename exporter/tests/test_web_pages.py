"""The web pages in-process: what they show, their URLs, the token form, the downloads, escaping.

The browser tests (test_web_browser.py) drive the same pages in Chromium against a real process;
these pin the exact figures and the HTTP behaviour fast, without a browser.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text

from agent_exporter.api import charts
from agent_exporter.api.pages import GRAFANA_RUN_DASHBOARD
from agent_exporter.mixin.rules import RUN_UID

from .readfixtures import MONDAY, post, ten_runs
from .support import make_client, record

HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
TOKEN = "read-token-0123456789abcdef"
MARKUP = '<img src=x onerror="alert(1)">'


@pytest.fixture
def web(tmp_path: Path, registry: CollectorRegistry) -> Iterator[TestClient]:
    """The app with the ten fixture runs (readfixtures.ten_runs)."""
    with make_client(f"sqlite:///{tmp_path / 'web.db'}", registry) as client:
        post(client, ten_runs())
        yield client


def page(client: TestClient, url: str, status: int = 200) -> str:
    response = client.get(url, headers=HTML, follow_redirects=False)
    assert response.status_code == status, response.text[:2000]
    return response.text


def tile(html: str, key: str) -> str:
    """The text of one overview tile, tags stripped."""
    found = re.search(rf'data-tile="{key}">(.*?)</div>', html, re.S)
    assert found, f"no tile {key}"
    return " ".join(re.sub(r"<[^>]+>", " ", found[1]).split())


# --- the overview ---------------------------------------------------------------------------------


def test_the_root_shows_a_browser_the_overview_and_an_api_client_the_json_404_it_always_had(
    web: TestClient,
) -> None:
    assert "<h1>Overview</h1>" in page(web, "/")
    for accept in ("*/*", "application/json"):
        response = web.get("/", headers={"accept": accept})
        assert response.status_code == 404
        assert response.json() == {
            "error": {
                "code": "not_found",
                "message": "no route for GET /; the API is described at /openapi.json",
            }
        }


def test_the_overview_tiles_show_the_figures_of_the_view(web: TestClient) -> None:
    html = page(web, "/?from=2000-01-01")
    assert tile(html, "runs").startswith("Executions 10 10 attempts")
    assert tile(html, "success_rate").startswith("Success rate 60.0% 6 succeeded · 4 failed")
    assert tile(html, "cost").startswith("Cost $4.50")
    # r06, r08 and r09 failed with a known cost (r10's is unknown): 0.6 + 0.8 + 0.9
    assert tile(html, "failed_cost").startswith("Spent on failed runs $2.30 51.1% of the cost")
    assert tile(html, "p50").startswith("Duration p50 5.5s")
    fixer = page(web, "/?from=2000-01-01&agent=fixer")
    assert tile(fixer, "runs").startswith("Executions 5")
    assert tile(fixer, "success_rate").startswith("Success rate 80.0% 4 succeeded · 1 failed")


def test_a_range_is_compared_with_the_period_before_it(web: TestClient, tmp_path: Path) -> None:
    # the fixtures are weeks old: a custom range of their first two days against the two days before
    html = page(web, "/?from=2000-01-01")
    assert "▲" not in tile(html, "runs")  # all time has nothing before it
    first = re.search(r"<td class=\"nowrap\">(\d{4}-\d\d-\d\d)", page(web, "/runs?sort=ended_at"))
    assert first
    day = first[1]
    html = page(web, f"/runs?from={day}&to={day}T12:00:01Z")
    assert "2 runs</strong> match" in html


def test_each_page_keeps_its_filters_in_the_url_and_a_form_submission_is_made_canonical(
    web: TestClient,
) -> None:
    response = web.get("/?range=30d&agent=&model=gpt-5&bucket=day", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/?from=30d&bucket=day&model=gpt-5"
    custom = web.get(
        "/runs?range=custom&since=2026-01-01&until=2026-01-31&sort=-cost_usd", follow_redirects=False
    )
    assert custom.headers["location"] == "/runs?from=2026-01-01&to=2026-02-01&sort=-cost_usd"
    everything = web.get("/runs?range=all&status=failure", follow_redirects=False)
    assert everything.headers["location"] == "/runs?from=2000-01-01&status=failure"
    html = page(web, "/runs?from=2000-01-01&status=failure&agent=reviewer")
    assert '<option value="failure" selected>' in html
    assert '<option value="reviewer" selected>' in html
    assert "2 runs</strong> match" in html  # r06 and r10
    # the other pages' links carry the filters
    assert 'href="/report?from=2000-01-01&amp;agent=reviewer&amp;status=failure"' in html


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("/?from=yesterday", "from: 'yesterday' is not a time"),
        ("/runs?status=lost", "status: 'lost' is not one of success"),
        ("/runs?sort=-colour", "sort: '-colour' is not one of"),
        ("/runs?page=0", "page: '0' is not a page number"),
        ("/?bucket=month", "bucket: 'month' is not one of auto, hour, day, week, run"),
        ("/runs?range=fortnight", "range: 'fortnight' is not one of"),
        ("/report?from=2026-02-01&to=2026-01-01", "from: must be before to"),
    ],
)
def test_a_bad_parameter_is_a_400_page_that_names_it(web: TestClient, url: str, named: str) -> None:
    html = page(web, url, 400)
    assert named.replace("'", "&#39;") in html


def test_an_empty_store_shows_how_to_send_a_first_run(tmp_path: Path, registry: CollectorRegistry) -> None:
    with make_client(f"sqlite:///{tmp_path / 'empty.db'}", registry) as client:
        html = page(client, "/")
    assert "No runs yet: send the first one" in html
    assert "curl -X POST http://127.0.0.1/api/v1/runs" in html
    assert "make demo" in html
    assert "<svg" not in html  # no empty charts


def test_a_range_without_runs_says_where_the_runs_are(web: TestClient) -> None:
    html = page(web, "/?from=1h")
    assert "No runs in this view." in html
    assert "Show all time" in html


def test_the_overview_draws_its_charts_per_bucket_or_per_run(web: TestClient) -> None:
    daily = page(web, "/?from=2000-01-01&bucket=day")
    titles = re.findall(r'<span class="chart-title">([^<]+)</span>', daily)
    assert titles == [
        "Runs by status",
        "Success rate",
        "Duration",
        "Tokens",
        "Cost by model",
        "LLM and tool calls",
    ]
    per_run = page(web, "/?from=2000-01-01&bucket=run")
    titles = re.findall(r'<span class="chart-title">([^<]+)</span>', per_run)
    assert titles == ["Duration per run", "Cost per run", "Tokens per run", "LLM calls per run"]
    assert per_run.count('<a href="/runs/r06">') == 4  # every point opens its run


# --- runs ----------------------------------------------------------------------------------------


def run_ids(html: str) -> list[str]:
    return re.findall(r'<td class="id"><a href="/runs/[^"]*">([^<]+)</a>', html)


def test_the_run_table_sorts_by_a_column_with_unknown_values_last(web: TestClient) -> None:
    assert run_ids(page(web, "/runs")) == [f"r{i:02d}" for i in range(10, 0, -1)]
    assert run_ids(page(web, "/runs?sort=-cost_usd")) == [
        f"r{i:02d}" for i in (9, 8, 7, 6, 5, 4, 3, 2, 1, 10)
    ]
    assert run_ids(page(web, "/runs?sort=cost_usd"))[:3] == ["r01", "r02", "r03"]
    assert run_ids(page(web, "/runs?sort=-duration_seconds&status=failure")) == ["r10", "r06"]
    html = page(web, "/runs?sort=-cost_usd")
    assert 'aria-sort="descending"><a href="/runs?sort=cost_usd">Cost ↓</a>' in html


def test_the_run_table_pages_fifty_at_a_time(tmp_path: Path, registry: CollectorRegistry) -> None:
    with make_client(f"sqlite:///{tmp_path / 'many.db'}", registry) as client:
        post(
            client,
            [
                record(f"run-{i:03d}", ended_at=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z")
                for i in range(120)
            ],
        )
        first, third = page(client, "/runs"), page(client, "/runs?page=3")
    assert run_ids(first)[0] == "run-119"
    assert len(run_ids(first)) == 50
    assert 'href="/runs?page=2" rel="next"' in first
    assert run_ids(third) == [f"run-{i:03d}" for i in range(19, -1, -1)]
    assert 'rel="next"' not in third
    assert 'href="/runs?page=2" rel="prev"' in third


def test_the_run_table_marks_failed_runs_in_words_not_only_colour(web: TestClient) -> None:
    html = page(web, "/runs?status=error")
    assert '<tr class="failed">' in html
    assert '<span class="status err">! error</span>' in html
    assert "<code>crash</code> run 8 went wrong" in html


def test_the_current_view_downloads_as_csv_and_json(web: TestClient) -> None:
    post(
        web,
        [
            record(
                "formula",
                error_summary='=HYPERLINK("http://x")',
                status="failure",
                ended_at="2026-01-01T00:00:00Z",
            )
        ],
    )
    html = page(web, "/runs?status=failure&sort=-cost_usd")
    assert 'href="/api/v1/runs.csv?status=failure&amp;sort=-cost_usd" download' in html
    response = web.get("/api/v1/runs.csv?status=failure&sort=-cost_usd")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="runs-')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["run_id"] for r in rows] == ["r06", "r10", "formula"]
    assert rows[0]["cost_usd"] == "0.6"
    assert rows[1]["cost_usd"] == ""
    assert rows[2]["error_summary"] == '\'=HYPERLINK("http://x")'  # a formula stays text in a spreadsheet
    as_json = web.get("/api/v1/runs.json?status=failure&sort=-cost_usd&limit=2").json()
    assert [r["run_id"] for r in as_json] == ["r06", "r10"]
    listed = {r["run_id"]: r for r in web.get("/api/v1/runs", params={"status": "failure"}).json()["runs"]}
    assert as_json[0] == listed["r06"]
    assert web.get("/api/v1/runs.csv?sort=colour").status_code == 422
    assert web.get("/api/v1/runs.json?limit=100001").status_code == 422


# --- one run ----------------------------------------------------------------------------------------


def test_a_run_page_links_its_json_and_the_neighbouring_failures(web: TestClient) -> None:
    html = page(web, "/runs/r08")
    assert '<h1>Run <span class="mono">r08</span></h1>' in html
    assert '<a href="/api/v1/runs/r08">This run as JSON</a>' in html
    assert 'href="/runs/r06" rel="prev">← Previous failure' in html
    assert 'href="/runs/r09" rel="next">Next failure →' in html
    assert "In Grafana" not in html
    within = page(web, "/runs/r08?agent=reviewer")  # the view's filters hold: r09 is the fixer's
    assert 'href="/runs/r10?agent=reviewer" rel="next"' in within
    assert page(web, "/runs/nope", 404).count("no run with run_id") == 1


def test_a_run_page_links_to_grafana_when_it_is_configured(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    assert GRAFANA_RUN_DASHBOARD == RUN_UID
    with make_client(
        f"sqlite:///{tmp_path / 'g.db'}", registry, web={"grafana_url": "https://grafana.example.com/"}
    ) as client:
        post(
            client,
            [
                record(
                    "a/b c",
                    started_at="2026-01-01T00:00:00Z",
                    ended_at="2026-01-01T00:01:00Z",
                    duration_seconds=None,
                )
            ],
        )
        html = page(client, "/runs/a%2Fb%20c")
    assert (
        'href="https://grafana.example.com/d/agent-exporter-run?var-run_id=a%2Fb%20c'
        '&amp;from=1767225000000&amp;to=1767226260000">In Grafana</a>'
    ) in html


def test_a_run_page_shows_its_phases_usage_tools_and_multiline_error(web: TestClient) -> None:
    post(
        web,
        [
            record(
                "detailed",
                status="timeout",
                error_type="deadline",
                error_summary="first line\nsecond line",
                phases=[
                    {"name": "plan", "duration_seconds": 10.0},
                    {"name": "test", "duration_seconds": 30.0, "status": "timeout"},
                ],
                usage=[{"model": "gpt-5", "input_tokens": 1000, "output_tokens": 10, "calls": 3}],
                tools=[{"name": "bash", "calls": 4, "errors": 2}],
                labels={"trigger": "ci"},
            )
        ],
    )
    html = page(web, "/runs/detailed")
    assert '<pre class="error-summary">first line\nsecond line</pre>' in html
    assert 'aria-label="Phases, end to end: plan 10.0s; test 30.0s"' in html
    assert "✗ 30.0s · timeout" in html  # a failed phase says so in words
    assert '<tr><td>gpt-5</td><td class="num">3</td><td class="num">1,000</td>' in html
    assert '<td class="num">✗ 2</td>' in html
    assert "<dt>trigger</dt><dd>ci</dd>" in html


# --- safety ---------------------------------------------------------------------------------------


def test_text_from_records_is_text_on_every_page(web: TestClient) -> None:
    post(
        web,
        [
            record(
                "x<b>y</b>",
                agent="<i>agent</i>",
                model=MARKUP,
                status="failure",
                error_type="<u>t</u>",
                error_summary=MARKUP,
                labels={"k": MARKUP},
                tools=[{"name": MARKUP, "calls": 1, "errors": 1}],
                phases=[{"name": MARKUP, "duration_seconds": 1.0}],
            )
        ],
    )
    urls = [
        "/?from=2000-01-01",
        "/?from=2000-01-01&bucket=run",
        "/runs",
        "/runs/x%3Cb%3Ey%3C%2Fb%3E",
        "/report",
        "/health",
    ]
    for url in urls:
        html = page(web, url)
        assert re.findall(r"<img|<b>y|<i>agent", html) == [], url
    run_html = page(web, "/runs/x%3Cb%3Ey%3C%2Fb%3E")
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in run_html


def test_every_page_carries_a_csp_without_inline_script_or_style(web: TestClient) -> None:
    for url in ["/", "/runs", "/runs/r01", "/report", "/health", "/login", "/runs/missing"]:
        response = web.get(url, headers=HTML)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self';" in csp
        assert "style-src 'self';" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        html = response.text
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [], url
        assert not re.search(r"\sstyle=|\son[a-z]+=", html), url


def test_the_page_assets_are_served_from_the_package_and_stay_small(web: TestClient) -> None:
    total = 0
    for asset in ("/static/web.css", "/static/web.js", "/static/favicon.svg"):
        response = web.get(asset)
        assert response.status_code == 200, asset
        total += len(response.content)
    biggest = max(
        len(page(web, url).encode()) for url in ["/?from=2000-01-01&bucket=run", "/runs", "/report"]
    )
    assert total + biggest < 300_000


# --- the read token -----------------------------------------------------------------------------


@pytest.fixture
def secured(tmp_path: Path, registry: CollectorRegistry) -> Iterator[TestClient]:
    """The app with a read token configured."""
    with make_client(f"sqlite:///{tmp_path / 's.db'}", registry, security={"read_tokens": [TOKEN]}) as client:
        post(client, ten_runs())
        yield client


def test_a_browser_without_the_read_token_is_sent_to_the_token_form(secured: TestClient) -> None:
    response = secured.get("/runs?status=failure", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fruns%3Fstatus%3Dfailure"
    assert secured.get("/api/v1/runs", headers=HTML).status_code == 401  # the API answers, not redirects
    form = page(secured, "/login?next=/runs")
    assert 'type="password"' in form
    assert 'method="post" action="/login"' in form


def test_a_valid_token_goes_into_an_httponly_cookie_never_into_a_url(secured: TestClient) -> None:
    wrong = secured.post(
        "/login", data={"token": "not-the-token-at-all", "next": "/runs"}, follow_redirects=False
    )
    assert wrong.status_code == 401
    assert "That token is not valid" in wrong.text
    assert "set-cookie" not in wrong.headers
    right = secured.post(
        "/login", data={"token": TOKEN, "next": "/runs?status=failure"}, follow_redirects=False
    )
    assert right.status_code == 303
    assert right.headers["location"] == "/runs?status=failure"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(f"agent_exporter_read={TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert TOKEN not in right.headers["location"]
    html = page(secured, "/runs?status=failure")
    assert "2 runs</strong> match" in html
    assert TOKEN not in html
    assert secured.get("/api/v1/runs.csv").status_code == 200  # the downloads go with the cookie
    out = secured.post("/logout", follow_redirects=False)
    assert out.headers["location"] == "/login"
    assert 'agent_exporter_read=""' in out.headers["set-cookie"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", ""])
def test_the_token_form_only_returns_to_a_page_of_this_site(secured: TestClient, target: str) -> None:
    response = secured.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_without_read_tokens_the_form_says_none_is_needed(web: TestClient) -> None:
    assert "needs no read token" in page(web, "/login?next=/runs")


# --- charts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("top", "unit", "expected"),
    [
        (0.0, "count", [0.0, 1.0]),
        (7.0, "count", [0.0, 2.0, 4.0, 6.0, 8.0]),
        (1232.0, "count", [0.0, 500.0, 1000.0, 1500.0]),
        (0.37, "usd", [0.0, 0.1, 0.2, 0.3, 0.4]),
        (5400.0, "seconds", [0.0, 1800.0, 3600.0, 5400.0]),
        (0.5, "ratio", [0.0, 0.25, 0.5, 0.75, 1.0]),
    ],
)
def test_axes_have_round_ticks_from_zero(top: float, unit: charts.Unit, expected: list[float]) -> None:
    assert [round(t, 9) for t in charts.y_ticks(top, unit)[1]] == expected


@pytest.mark.parametrize(
    ("value", "unit", "top", "label"),
    [
        (1800.0, "seconds", 5400.0, "30m"),
        (7200.0, "seconds", 9000.0, "2h"),
        (45.0, "seconds", 60.0, "45s"),
        (2500.0, "usd", 5000.0, "$2.5k"),
        (0.25, "usd", 1.0, "$0.25"),
        (1_500_000.0, "tokens", 2e6, "1.5M"),
        (0.75, "ratio", 1.0, "75%"),
    ],
)
def test_tick_labels_carry_their_unit(value: float, unit: charts.Unit, top: float, label: str) -> None:
    assert charts.tick_label(value, unit, top) == label


def test_a_chart_escapes_its_names_and_says_when_it_has_nothing() -> None:
    chart = charts.Chart(
        "Cost", "usd", "bars", [0.0, 86400.0], [charts.Series(MARKUP, [1.0, 2.0], "c1")], 86400.0
    )
    svg = str(charts.render(chart))
    assert "<img" not in svg
    assert "&lt;img src=x" in svg
    assert 'role="img"' in svg
    assert "highest $2.00" in svg
    empty = charts.Chart("Cost", "usd", "bars", [0.0], [charts.Series("m", [0.0], "c1")], 86400.0)
    assert "no data in this range" in str(charts.render(empty))


def test_a_line_at_zero_is_drawn_not_called_empty() -> None:
    # every run of the day failed: a success rate of 0 % is the figure that matters most
    zero = charts.Series("successes / attempts", [None, 0.0], "ok")
    svg = str(charts.render(charts.Chart("Success rate", "ratio", "lines", [0.0, 86400.0], [zero], 86400.0)))
    assert "no data in this range" not in svg
    assert re.findall(r'<circle class="dot ok" cx="[\d.]+" cy="([\d.]+)"', svg) == [
        str(charts.TOP + charts.PLOT_H)
    ]
    nothing = charts.Series("successes / attempts", [None, None], "ok")
    svg = str(
        charts.render(charts.Chart("Success rate", "ratio", "lines", [0.0, 86400.0], [nothing], 86400.0))
    )
    assert "no data in this range" in svg


def test_time_ticks_fall_on_round_utc_times() -> None:
    day = 86400.0
    assert charts.time_ticks(20 * day + 5, 27 * day) == [22 * day, 24 * day, 26 * day]
    assert charts.time_ticks(20 * day + 5, 20 * day + 5 * 3600) == [20 * day + h * 3600 for h in range(1, 6)]


def test_a_store_that_does_not_answer_is_a_503_page(tmp_path: Path, registry: CollectorRegistry) -> None:
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    with make_client(url, registry) as client:
        post(client, ten_runs())
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE runs"))
        engine.dispose()
        for path in ("/", "/runs", "/report", "/health"):
            html = page(client, path, 503)
            assert "The store did not answer" in html, path
            assert "the store did not answer (no such table: runs)" in html, path


def test_the_health_page_says_when_retention_deleted_the_failed_runs_it_counts(web: TestClient) -> None:
    store = web.app.state.service.store  # type: ignore[attr-defined]
    while store.delete_ended_before(time.time(), batch=100):
        pass
    start, end = (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) for t in (MONDAY - 3600, MONDAY + 5 * 86400)
    )
    html = page(web, f"/health?from={start}&to={end}")
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "None stored: retention deleted the failed runs counted below." in text
    assert "No failed run." not in text
    # the four failed runs still counted by error type, each group without an example
    assert text.count("(deleted by retention)") == 3  # crash, tests_failed and (none): r09 timed out


def figure(html: str, title: str) -> str:
    """The `<figure>` of the chart titled `title`."""
    found = re.search(
        rf'<figure class="chart-box"><figcaption><span class="chart-title">{title}</span>.*?</figure>',
        html,
        re.S,
    )
    assert found, f"no chart {title}"
    return found[0]


def test_calls_nobody_reported_are_no_data_and_reported_ones_are_drawn(
    web: TestClient, tmp_path: Path
) -> None:
    # the ten fixture runs report their LLM and tool calls: the lines are drawn
    assert "no data in this range" not in figure(page(web, "/?from=60d"), "LLM and tool calls")
    with make_client(f"sqlite:///{tmp_path / 'silent.db'}", CollectorRegistry()) as client:  # its own metrics
        post(client, [record("quiet-1", status="failure")])  # no llm_calls, no tool_calls
        html = page(client, "/")
    assert "no data in this range" in figure(html, "LLM and tool calls")  # unknown, not a line at zero
    assert "no data in this range" not in figure(html, "Success rate")  # 0 % is drawn
