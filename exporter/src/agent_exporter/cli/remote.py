"""CLI commands that talk to a running exporter through its HTTP API: runs, show, summary, report,
trends, health, reprice (and `import`, in importing.py). Tables for people (render.py), `--json`
(the API's own JSON) for machines.

The server is `--url`, or `AGENT_EXPORTER_URL`, or http://127.0.0.1:9477. These commands never
touch a database: they import neither the store nor SQLAlchemy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Final, NoReturn
from urllib.parse import quote

import httpx
import typer

from .. import DEFAULT_URL
from . import render
from .render import err, print_json

READ_TIMEOUT: Final = 120.0
REPRICE_TIMEOUT: Final = 3600.0

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="AGENT_EXPORTER_URL", help="Base URL of the running exporter."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]
FromOption = Annotated[
    str | None,
    typer.Option(
        "--from", "--since", help="Runs that ended at or after: RFC 3339, a date, or relative (7d, 24h)."
    ),
]
ToOption = Annotated[str | None, typer.Option("--to", "--until", help="Runs that ended before (same forms).")]
AgentOption = Annotated[list[str] | None, typer.Option("--agent", help="Only this agent (repeatable).")]
ModelOption = Annotated[list[str] | None, typer.Option("--model", help="Only this model (repeatable).")]
StatusOption = Annotated[
    list[str] | None,
    typer.Option("--status", help="success, failure, error, timeout or cancelled (repeatable)."),
]
IssueTypeOption = Annotated[
    list[str] | None, typer.Option("--issue-type", help="Only this issue type (repeatable).")
]
ProjectOption = Annotated[list[str] | None, typer.Option("--project", help="Only this project (repeatable).")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` as an error and exit with `code`."""
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@contextmanager
def connect(url: str, timeout: float = READ_TIMEOUT) -> Iterator[httpx.Client]:
    """An HTTP client of the exporter at `url`, with the bearer token of `AGENT_EXPORTER_TOKEN`."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        fail(f"--url {url!r}: give an http:// or https:// URL, such as {DEFAULT_URL}", 2)
    # the same variable as the client SDK's; with separate tokens, set it per command
    token = os.environ.get("AGENT_EXPORTER_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base, timeout=httpx.Timeout(timeout, connect=5.0), headers=headers) as client:
        yield client


def request(url: str, method: str, path: str, params: dict[str, Any], timeout: float = READ_TIMEOUT) -> Any:
    """The decoded JSON of a read-API call; a clear message and exit 1 on any failure."""
    with connect(url, timeout) as client:
        try:
            response = client.request(method, path, params={k: v for k, v in params.items() if v is not None})
        except httpx.TransportError as exc:
            fail(
                f"cannot reach the exporter at {client.base_url} ({exc}): is it running? "
                "Point --url or AGENT_EXPORTER_URL at it."
            )
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300] or response.reason_phrase
        if response.status_code == 401:
            message += " (set AGENT_EXPORTER_TOKEN to a token the exporter accepts)"
        fail(f"HTTP {response.status_code}: {message}", 2 if response.status_code == 422 else 1)
    return response.json()


def filters(
    *,
    since: str | None,
    until: str | None,
    agent: list[str] | None,
    model: list[str] | None,
    status: list[str] | None,
    issue_type: list[str] | None,
    project: list[str] | None,
) -> dict[str, Any]:
    """The query parameters of the filters every read command takes."""
    return {
        "from": since,
        "to": until,
        "agent": agent or None,
        "model": model or None,
        "status": status or None,
        "issue_type": issue_type or None,
        "project": project or None,
    }


# --- commands --------------------------------------------------------------------------------------


def runs(
    *,
    url: UrlOption = DEFAULT_URL,
    since: FromOption = None,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    status: StatusOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Runs to list.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first, with status, duration, tokens, cost and error."""
    params = {
        **filters(
            since=since,
            until=until,
            agent=agent,
            model=model,
            status=status,
            issue_type=issue_type,
            project=project,
        ),
        "limit": limit,
        "cursor": cursor,
    }
    body = request(url, "GET", "/api/v1/runs", params)
    if as_json:
        print_json(body)
    else:
        render.runs(body)


def show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    *,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Everything about one run: phases, per-model usage, tools, error, derived figures."""
    body = request(url, "GET", f"/api/v1/runs/{quote(run_id, safe='/')}", {})
    if as_json:
        print_json(body)
    else:
        render.show(body)


def summary(
    *,
    url: UrlOption = DEFAULT_URL,
    since: FromOption = None,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    status: StatusOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    group_by: Annotated[
        str | None,
        typer.Option(help="agent, model, provider, issue_type, status, project, team or environment."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Count, success rate, duration percentiles, tokens, cost and calls, overall and per group."""
    params = {
        **filters(
            since=since,
            until=until,
            agent=agent,
            model=model,
            status=status,
            issue_type=issue_type,
            project=project,
        ),
        "group_by": group_by,
    }
    body = request(url, "GET", "/api/v1/summary", params)
    if as_json:
        print_json(body)
    else:
        render.summary(body)


def report(
    *,
    url: UrlOption = DEFAULT_URL,
    since: FromOption = None,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    status: StatusOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    min_attempts: Annotated[int, typer.Option(min=1, help="Runs a candidate needs to be recommended.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """The performance report: by model, agent and issue type; best agent and model per issue type."""
    params = {
        **filters(
            since=since,
            until=until,
            agent=agent,
            model=model,
            status=status,
            issue_type=issue_type,
            project=project,
        ),
        "min_attempts": min_attempts,
    }
    body = request(url, "GET", "/api/v1/report", params)
    if as_json:
        print_json(body)
    else:
        render.report(body)


def trends(
    *,
    url: UrlOption = DEFAULT_URL,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    status: StatusOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    window: Annotated[
        list[int] | None, typer.Option(help="Window in days (repeatable; default 7, 30, 90).")
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Relative change over a window that counts as a trend.")
    ] = 0.1,
    as_json: JsonOption = False,
) -> None:
    """Rolling 7/30/90-day windows: level and Theil-Sen trend of success rate, duration, cost, tokens."""
    params = {
        **filters(
            since=None,
            until=until,
            agent=agent,
            model=model,
            status=status,
            issue_type=issue_type,
            project=project,
        ),
        "window": window or None,
        "threshold": threshold,
    }
    body = request(url, "GET", "/api/v1/trends", params)
    if as_json:
        print_json(body)
    else:
        render.trends(body)


def health(
    *,
    url: UrlOption = DEFAULT_URL,
    since: FromOption = None,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    window: Annotated[str, typer.Option(help="Recent period to look at (when --from is not given).")] = "24h",
    baseline: Annotated[str, typer.Option(help="Trailing period before the window to compare with.")] = "7d",
    as_json: JsonOption = False,
) -> None:
    """Operational digest: failures, streaks, error types, anomalies against the baseline."""
    params = {
        **filters(
            since=since,
            until=until,
            agent=agent,
            model=model,
            status=None,
            issue_type=issue_type,
            project=project,
        ),
        "window": window,
        "baseline": baseline,
    }
    body = request(url, "GET", "/api/v1/health", params)
    if as_json:
        print_json(body)
    else:
        render.health(body)


def reprice(
    *,
    url: UrlOption = DEFAULT_URL,
    since: FromOption = None,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    dry_run: Annotated[bool, typer.Option(help="Show what would change; store nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Recompute estimated costs with the server's current prices; reported costs are untouched."""
    params = {
        **filters(
            since=since,
            until=until,
            agent=agent,
            model=model,
            status=None,
            issue_type=issue_type,
            project=project,
        ),
        "dry_run": dry_run,
    }
    body = request(url, "POST", "/api/v1/reprice", params, timeout=REPRICE_TIMEOUT)
    if as_json:
        print_json(body)
    else:
        render.reprice(body)


def budget(*, url: UrlOption = DEFAULT_URL, as_json: JsonOption = False) -> None:
    """Each owner's budget: spend in the current day or month, and the projection to its end."""
    body = request(url, "GET", "/api/v1/budget", {})
    if as_json:
        print_json(body)
    else:
        render.budget(body)


def register(app: typer.Typer) -> None:
    """Add the commands to the `agent-exporter` application."""
    for command in (runs, show, summary, report, trends, health, reprice, budget):
        app.command()(command)
