"""A real exporter fed the shared SWE-Bench Pro runs plus two weeks of demo traffic, and Debian's
Chromium driven by Playwright: what the web page tests and `make screenshots` look at.

The dataset's runs are sent unchanged: they carry no timestamps, so they end when received, and
they are the project `swe-bench-pro` of the agent `swe-agent`. The demo traffic (agents fixer,
reviewer and triager on six other projects) ends across the two weeks before; a filter on
`project=swe-bench-pro` separates the dataset from it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from agent_exporter.demo import swebench
from agent_exporter.demo.traffic import Incident, Traffic

from .support import SHARED_DATA, ExporterProcess, exporter, record, unavailable

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO_DAYS: Final = 14
DEMO_RATE: Final = 0.008  # runs per second: about 9,700 runs over two weeks
#: a run whose text fields are markup: the pages must show it as characters
MARKUP: Final = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
MARKUP_RUN: Final = "markup-<b>run</b>"
#: the dataset's totals (shared/data/README.md)
DATASET_RUNS: Final = 1232
DATASET_SUCCESSES: Final = 536
DATASET_COST: Final = "$8,191.10"


@dataclass
class Fed:
    """What was sent."""

    dataset: list[dict[str, Any]]
    demo: list[dict[str, Any]]


def demo_records(now: float) -> list[dict[str, Any]]:
    """Two weeks of demo traffic ending a minute ago, with a failure spike of the fixer three days ago."""
    start = now - DEMO_DAYS * 86400
    spike = Incident("failure-spike", agent="fixer", start=(DEMO_DAYS - 3) * 86400, duration=6 * 3600)
    traffic = Traffic(7, rate=DEMO_RATE, start=start, incidents=[spike])
    return [r for _, r in traffic.runs(until=DEMO_DAYS * 86400 - 60)]


def markup_record(now: float) -> dict[str, Any]:
    """A failed run whose id, error, label and tool are markup (and one multi-line summary)."""
    return record(
        MARKUP_RUN,
        agent="fixer",
        status="failure",
        ended_at=now - 3600,
        error_type="tests_failed",
        error_summary=MARKUP + "\nsecond line of the summary",
        labels={"note": MARKUP},
        tools=[{"name": "<b>bash</b>", "calls": 3, "errors": 1}],
        phases=[{"name": "plan", "duration_seconds": 5.0}, {"name": "test", "duration_seconds": 20.0}],
        project="web-frontend",
    )


def feed(server: ExporterProcess) -> Fed:
    """Send the dataset, the demo traffic and the markup run, asserting every record was stored."""
    if not SHARED_DATA.is_file():
        unavailable(f"the shared dataset is not at {SHARED_DATA}")
    now = time.time()
    dataset = list(swebench.records(SHARED_DATA))
    demo = [*demo_records(now), markup_record(now)]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for batch_of in (dataset, demo):
            for start in range(0, len(batch_of), 1000):
                chunk = batch_of[start : start + 1000]
                body = client.post("/api/v1/runs", json={"runs": chunk}).json()
                assert body["accepted"] == len(chunk), body
    return Fed(dataset, demo)


@contextlib.contextmanager
def fed_exporter(tmp_path: Path, **kwargs: Any) -> Iterator[tuple[ExporterProcess, Fed]]:
    """A real exporter, fed."""
    with exporter(tmp_path, **kwargs) as server:
        yield server, feed(server)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright (never a downloaded browser)."""
    if not CHROMIUM.is_file():
        unavailable(f"Chromium is not at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: make install")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
