"""The operator's view the operations checklist and the runbooks assume, on loopback: a real exporter
with its SQLite store at `data/agent-exporter.db` of a checkout (as `make run` keeps it), `/metrics`
behind basic auth, and a real Prometheus scraping it every second with docs/security.md's scrape config.

The fleet: a fixer that ran fine for an hour on two models and then failed three runs in a row, a
reviewer, a triager that went quiet three hours ago, and two rejected records. Prometheus scrapes the
runs before the failures and again after them, so that `increase()` over the docs' windows sees the
failures and their cost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from .doc_examples import Shell, block_of
from .support import ExporterProcess, exporter, free_port, record, serve, unavailable, wait_until

SONNET: Final = "claude-sonnet-4-5"
HAIKU: Final = "claude-haiku-4-5"
SCRAPE_CONFIG = block_of("docs/security.md", "scrape_configs:", lang="yaml")
PASSWORD_FILE: Final = "/etc/prometheus/agent-exporter.password"
DOCUMENTED_TARGET: Final = "agent-exporter:9477"
#: the failed runs, oldest first: (run id, status, minutes before the start, error type, summary)
FAILURES: Final = (
    ("fixer-fail-1", "timeout", 3, "timeout", "the run hit its 30-minute limit"),
    ("fixer-fail-2", "error", 2, "llm_api_error", "provider answered 529 overloaded"),
    ("fixer-fail-3", "failure", 1, "tests_failed", "3 tests still fail in tests/test_invoice.py"),
)
LATEST_FAILURE: Final = "fixer-fail-3"
TRIAGER_SILENT_SECONDS: Final = 3 * 3600


def _at(start: dt.datetime, minutes: float) -> str:
    return (start - dt.timedelta(minutes=minutes)).isoformat()


def _success(
    start: dt.datetime, run_id: str, agent: str, model: str, issue: str, minutes: float, **kw: Any
) -> Any:
    provider = "openai" if model.startswith("gpt") else "anthropic"
    return record(
        run_id,
        agent=agent,
        model=model,
        provider=provider,
        issue_type=issue,
        ended_at=_at(start, minutes),
        input_tokens=100_000,
        output_tokens=2_000,
        llm_calls=10,
        **kw,
    )


def before_the_failures(start: dt.datetime) -> list[dict[str, Any]]:
    """What the first scrape sees: 12 successful runs (USD 4.91) and a record from a skewed clock."""
    runs = [
        *[
            _success(
                start,
                f"fixer-ok-{i}",
                "fixer",
                SONNET,
                "complexity",
                40 + i,
                cost_usd=0.50,
                duration_seconds=300.0,
            )
            for i in range(6)
        ],
        _success(
            start, "fixer-gpt", "fixer", "gpt-5", "complexity", 39, cost_usd=0.40, duration_seconds=200.0
        ),
        *[
            _success(
                start,
                f"fixer-old-{i}",
                "fixer",
                SONNET,
                "complexity",
                120 + i,
                cost_usd=0.50,
                duration_seconds=100.0,
            )
            for i in range(2)
        ],
        *[
            _success(
                start,
                f"reviewer-{i}",
                "reviewer",
                "gpt-5",
                "security",
                30 + i,
                cost_usd=0.25,
                duration_seconds=40.0,
            )
            for i in range(2)
        ],
        _success(
            start,
            "triager-0",
            "triager",
            HAIKU,
            "dependency",
            TRIAGER_SILENT_SECONDS / 60,
            cost_usd=0.01,
            duration_seconds=5.0,
        ),
    ]
    skewed = record("skewed-clock", ended_at=(start + dt.timedelta(hours=1)).isoformat())
    return [*runs, skewed]


def after_the_failures(start: dt.datetime) -> list[dict[str, Any]]:
    """What the second scrape adds: the fixer's three failures (USD 6.00), a reviewer run (USD 0.25)
    and a record without a status."""
    failures = [
        record(
            run_id,
            agent="fixer",
            agent_version="1.4.2",
            model=SONNET,
            provider="anthropic",
            issue_type="complexity",
            status=status,
            ended_at=_at(start, minutes),
            duration_seconds=600.0,
            usage=[
                {
                    "model": SONNET,
                    "provider": "anthropic",
                    "input_tokens": 400_000,
                    "cache_read_tokens": 300_000,
                    "output_tokens": 8_000,
                    "cost_usd": 2.00,
                    "calls": 12,
                }
            ],
            tools=[{"name": "bash", "calls": 9, "errors": 3}, {"name": "edit", "calls": 4, "errors": 0}],
            phases=[
                {"name": "plan", "duration_seconds": 60.0, "status": "success"},
                {"name": "edit", "duration_seconds": 240.0, "status": "success"},
                {"name": "test", "duration_seconds": 300.0, "status": status},
            ],
            error_type=error_type,
            error_summary=summary,
        )
        for run_id, status, minutes, error_type, summary in FAILURES
    ]
    reviewer = _success(
        start, "reviewer-2", "reviewer", "gpt-5", "security", 0.5, cost_usd=0.25, duration_seconds=40.0
    )
    return [*failures, reviewer, {"run_id": "no-status", "agent": "fixer", "duration_seconds": 1.0}]


@dataclass
class DocsStack:
    """The exporter and Prometheus, and a shell in the checkout pointed at both."""

    exporter: ExporterProcess
    prometheus_url: str
    checkout: Path
    shell: Shell

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query."""
        body = httpx.post(f"{self.prometheus_url}/api/v1/query", data={"query": promql}, timeout=5).json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def prometheus_config(tmp: Path, exporter_port: int, password_file: Path) -> Path:
    """prometheus.yml: docs/security.md's scrape config with its password file and target made real,
    scraping every second."""
    text = SCRAPE_CONFIG.text
    assert PASSWORD_FILE in text
    assert DOCUMENTED_TARGET in text
    text = text.replace(PASSWORD_FILE, str(password_file)).replace(
        DOCUMENTED_TARGET, f"127.0.0.1:{exporter_port}"
    )
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, **yaml.safe_load(text)}
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def docs_stack(tmp: Path) -> Iterator[DocsStack]:
    """The stack, loaded and scraped before and after the failures."""
    if shutil.which("prometheus") is None:
        unavailable("prometheus is not installed (apt-get install prometheus)")
    if shutil.which("curl") is None:
        unavailable("curl is not installed (apt-get install curl)")
    checkout = tmp / "agent-exporter"
    (checkout / "data").mkdir(parents=True)
    users, password = tmp / "metrics-users", tmp / "prometheus.password"
    users.write_text("prometheus:scrape-secret-0123456789\n")
    password.write_text("scrape-secret-0123456789\n")
    with exporter(
        tmp,
        database_url=f"sqlite:///{checkout / 'data' / 'agent-exporter.db'}",
        config={"security": {"metrics_users_file": str(users)}},
    ) as server:
        port = free_port()
        (tmp / "tsdb").mkdir()
        log = tmp / "prometheus.log"
        args = [
            f"--config.file={prometheus_config(tmp, server.port, password)}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
        ]
        url = f"http://127.0.0.1:{port}"
        prometheus = serve(
            "Prometheus",
            ["prometheus", *args, f"--web.listen-address=127.0.0.1:{port}"],
            log,
            f"{url}/-/ready",
        )
        try:
            stack = DocsStack(server, url, checkout, Shell(checkout, server.url, url))
            start = dt.datetime.now(dt.UTC)
            for batch, accepted in ((before_the_failures(start), 12), (after_the_failures(start), 16)):
                httpx.post(f"{server.url}/api/v1/runs", json={"runs": batch}, timeout=10)

                def scraped(accepted: int = accepted) -> bool:
                    seen = stack.query('agent_exporter_records_total{outcome="accepted"}')
                    return [float(s["value"][1]) for s in seen] == [accepted]

                wait_until(scraped, 30, f"Prometheus to scrape {accepted} accepted runs")
            yield stack
        finally:
            prometheus.stop()
