"""The web pages in a real browser: Debian's Chromium, driven by Playwright, against a real exporter
fed the shared SWE-Bench Pro runs and two weeks of demo traffic (tests/webstack.py).

One exporter and one browser serve the whole module; the empty store and the read token get an
exporter of their own. The dataset is told apart from the demo traffic by its project,
`swe-bench-pro`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .support import ExporterProcess, exporter
from .webstack import (
    DATASET_COST,
    DATASET_RUNS,
    DATASET_SUCCESSES,
    MARKUP,
    MARKUP_RUN,
    Fed,
    chromium,
    fed_exporter,
)

pytestmark = pytest.mark.slow
TOKEN = "web-read-token-0123456789"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ExporterProcess, Fed]]:
    """The fed exporter."""
    with fed_exporter(tmp_path_factory.mktemp("web")) as fed:
        yield fed


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module."""
    with chromium() as b:
        yield b


class Watched:
    """A page whose console errors, uncaught exceptions and failed requests are collected."""

    def __init__(self, browser: Any, base: str, **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.base = base
        self.problems: list[str] = []
        self.responses: list[Any] = []
        self.page.on(
            "console",
            lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)

    def _failed(self, request: Any) -> None:
        # a request cut short by the next navigation (the icon of a page left at once) is no fault
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status} {response.url}")
        self.responses.append(response)

    def goto(self, path: str) -> Any:
        self.responses = []
        self.page.goto(self.base + path, wait_until="load")
        return self.page

    def weight(self) -> int:
        """Bytes of the current page and everything it loaded.

        A response of the page left behind (its icon, arriving after the next navigation began) has
        no body any more: it belongs to that page, not this one."""
        from playwright.sync_api import Error as PlaywrightError

        total = 0
        for response in self.responses:
            if response.status >= 300:
                continue
            try:
                total += len(response.body())
            except PlaywrightError as exc:
                if "navigated away" not in str(exc):
                    raise
        return total

    def tile(self, key: str) -> str:
        return str(self.page.locator(f'[data-tile="{key}"] .value').inner_text())

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def web(stack: tuple[ExporterProcess, Fed], browser: Any) -> Iterator[Watched]:
    """A fresh browser context on the fed exporter, at 1280x800."""
    watched = Watched(browser, stack[0].url, viewport={"width": 1280, "height": 800})
    yield watched
    watched.close()


def test_the_overview_over_all_time_shows_the_datasets_runs_successes_and_cost(web: Watched) -> None:
    web.goto("/?from=2000-01-01&project=swe-bench-pro")
    assert web.tile("runs") == f"{DATASET_RUNS:,}"
    assert f"{DATASET_SUCCESSES} succeeded" in web.page.locator('[data-tile="success_rate"]').inner_text()
    assert web.tile("cost") == DATASET_COST
    assert web.page.get_by_label("Project").input_value() == "swe-bench-pro"
    assert web.problems == []


def test_changing_a_filter_changes_the_tiles_the_table_and_the_url_and_a_reload_restores_it(
    web: Watched, stack: tuple[ExporterProcess, Fed]
) -> None:
    fed = stack[1]
    page = web.goto("/?from=2000-01-01")
    assert web.tile("runs") == f"{len(fed.dataset) + len(fed.demo):,}"
    page.get_by_label("Agent").select_option("swe-agent")  # the form applies itself
    page.wait_for_url(re.compile(r"agent=swe-agent"))
    assert page.url.endswith("/?from=2000-01-01&agent=swe-agent")
    assert web.tile("runs") == f"{DATASET_RUNS:,}"
    agents = page.locator("table tbody tr td:nth-child(3)").all_inner_texts()
    assert agents
    assert set(agents) == {"swe-agent"}
    page.reload()
    assert web.tile("runs") == f"{DATASET_RUNS:,}"
    assert page.get_by_label("Agent").input_value() == "swe-agent"

    page = web.goto("/runs?from=2000-01-01&agent=fixer")
    before = page.locator("[data-total]").get_attribute("data-total")
    page.get_by_label("Status").select_option("timeout")
    page.wait_for_url(re.compile(r"status=timeout"))
    timeouts = sum(1 for r in fed.demo if r["agent"] == "fixer" and r["status"] == "timeout")
    assert page.locator("[data-total]").get_attribute("data-total") == str(timeouts) != before
    statuses = page.locator("table tbody tr td:nth-child(6)").all_inner_texts()
    assert statuses
    assert set(statuses) == {"◔ timeout"}
    page.reload()
    assert page.get_by_label("Status").input_value() == "timeout"
    assert page.locator("[data-total]").get_attribute("data-total") == str(timeouts)
    assert web.problems == []


def test_clicking_a_failed_run_opens_its_page_with_its_error_summary_and_phases(
    web: Watched, stack: tuple[ExporterProcess, Fed]
) -> None:
    page = web.goto("/runs?from=2000-01-01&agent=fixer&status=failure&project=payments-api")
    link = page.locator("table tbody tr td.id a").first
    run_id = link.inner_text()
    link.click()
    page.wait_for_url(re.compile(r"/runs/"))
    sent = next(r for r in stack[1].demo if r["run_id"] == run_id)
    assert page.locator("h1").inner_text() == f"Run {run_id}"
    assert page.locator(".error-summary").inner_text() == sent["error_summary"]
    assert page.locator("#error-h code").inner_text() == sent["error_type"]
    phases = page.locator("section[aria-labelledby=phases-h] tbody td:first-child").all_inner_texts()
    assert phases == [p["name"] for p in sent["phases"]]
    assert page.locator("svg.timeline rect").count() == len(sent["phases"])
    assert web.problems == []


def test_markup_in_a_record_stays_text_and_never_runs(web: Watched) -> None:
    page = web.goto(f"/runs/{quote(MARKUP_RUN, safe='')}")
    assert page.title() == f"Run {MARKUP_RUN} · agent-exporter"
    assert page.locator(".error-summary").inner_text() == MARKUP + "\nsecond line of the summary"
    assert page.locator("h1").inner_text() == f"Run {MARKUP_RUN}"
    for path in (
        "/runs?from=2000-01-01&project=web-frontend&status=failure",
        "/health",
        "/?from=24h&bucket=run",
    ):
        page = web.goto(path)
        assert "pwned" not in page.title()
        assert page.locator("main img, main script, main b").count() == 0
    assert web.problems == []


def test_no_page_logs_a_console_error(web: Watched, stack: tuple[ExporterProcess, Fed]) -> None:
    failed = next(r["run_id"] for r in stack[1].demo if r["status"] == "error")
    for path in (
        "/",
        "/?from=1h",
        "/?from=2000-01-01&bucket=week",
        "/?from=7d&bucket=hour&model=gpt-5",
        "/runs",
        "/runs?sort=-cost_usd&page=2",
        f"/runs/{quote(failed, safe='')}",
        "/report",
        "/health",
        "/login",
    ):
        web.goto(path)
        assert web.problems == [], path


def test_the_filters_work_from_the_keyboard(web: Watched) -> None:
    page = web.goto("/runs?from=2000-01-01")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "status":
            break
    else:
        pytest.fail("the status filter cannot be reached with Tab")
    page.keyboard.press("ArrowDown")  # the first status after "all": success
    page.wait_for_url(re.compile(r"status=success"))
    assert set(page.locator("table tbody tr td:nth-child(6)").all_inner_texts()) == {"✓ success"}


def test_every_page_fits_a_phone_and_weighs_under_300_kb(
    stack: tuple[ExporterProcess, Fed], browser: Any
) -> None:
    phone = Watched(
        browser, stack[0].url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        for path in ("/", "/?from=1h", "/runs", f"/runs/{quote(MARKUP_RUN, safe='')}", "/report", "/health"):
            page = phone.goto(path)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than the screen"
            weight = phone.weight()
            assert weight < 300_000, f"{path} weighs {weight:,} bytes"
        assert phone.problems == []
    finally:
        phone.close()


def test_an_empty_store_shows_how_to_send_the_first_run(tmp_path: Path, browser: Any) -> None:
    with exporter(tmp_path) as server:
        watched = Watched(browser, server.url)
        try:
            page = watched.goto("/")
            assert page.locator("h2").first.inner_text() == "No runs yet: send the first one"
            assert f"curl -X POST {server.url}/api/v1/runs" in page.locator("pre").inner_text()
            assert page.locator("svg.chart").count() == 0
            assert watched.problems == []
        finally:
            watched.close()


def test_with_a_read_token_the_page_asks_for_it_and_keeps_it_out_of_every_url(
    tmp_path: Path, browser: Any
) -> None:
    with exporter(tmp_path, config={"security": {"read_tokens": [TOKEN]}}) as server:
        watched = Watched(browser, server.url)
        urls: list[str] = []
        watched.page.on("request", lambda r: urls.append(r.url))
        try:
            page = watched.goto("/runs?status=failure")
            assert page.url == f"{server.url}/login?next=%2Fruns%3Fstatus%3Dfailure"
            page.get_by_label("Token").fill("not-the-right-token-at-all")
            page.get_by_role("button", name="Show the runs").click()
            assert "That token is not valid for reading" in page.locator("[role=alert]").inner_text()
            watched.problems.clear()  # the refusal is a 401, on purpose
            page.get_by_label("Token").fill(TOKEN)
            page.get_by_role("button", name="Show the runs").click()
            page.wait_for_url(f"{server.url}/runs?status=failure")
            assert page.locator("h1").inner_text() == "Runs"
            [cookie] = watched.context.cookies()
            assert cookie["httpOnly"]
            assert cookie["sameSite"] == "Lax"
            assert cookie["value"] == TOKEN
            assert page.evaluate("document.cookie") == ""  # no script can read it
            assert all(TOKEN not in url for url in urls)
            page.get_by_role("button", name="Forget token").click()
            page.wait_for_url(f"{server.url}/login")
            watched.goto("/")
            assert page.url.startswith(f"{server.url}/login?next=")
            assert watched.problems == []
        finally:
            watched.close()
