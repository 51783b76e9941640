"""`agent-exporter demo`: send `traffic` to an exporter through the client SDK, in real time.

Runs arrive at `--rate` per second (Poisson) and are recorded with `Client.record_run` when they end,
so the exporter sees what it would see from real agents, retries and spooling included. A live view
shows the last minute per agent (runs, failed share, cancelled runs, p95 duration, cost per run),
the incidents in force and the client's delivery counters. `--serve` starts an exporter for the demo
and stops it afterwards (`make demo`). Ctrl-C stops the traffic, flushes the client and stops the
server.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .. import DEFAULT_PORT, DEFAULT_URL
from .supervisor import Supervised, exporter_command, running
from .traffic import AGENTS, INCIDENT_KINDS, Incident, Traffic, list_cost, parse_incident

if TYPE_CHECKING:  # the client and the record model are imported when a demo runs, not for `--help`
    from ..client import Client, ClientStats

WINDOW_SECONDS = 60.0
DEFAULT_RATE = 2.0  # runs per second; docs/demo.md gives the alerts' timings at this rate


@dataclass
class DemoResult:
    """What a demo sent, and what the client made of it."""

    seed: int
    rate: float
    sent: int = 0
    elapsed: float = 0.0
    by_agent: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    incidents: list[str] = field(default_factory=list)
    interrupted: bool = False
    stats: ClientStats | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON summary (`--json`)."""
        return {
            "seed": self.seed,
            "rate": self.rate,
            "sent": self.sent,
            "elapsed_seconds": round(self.elapsed, 3),
            "by_agent": dict(sorted(self.by_agent.items())),
            "by_status": dict(sorted(self.by_status.items())),
            "incidents": self.incidents,
            "interrupted": self.interrupted,
            "client": self.stats._asdict() if self.stats else None,
        }


class Window:
    """The last minute of sent runs, per agent, for the live view."""

    def __init__(self, seconds: float = WINDOW_SECONDS) -> None:
        self.seconds = seconds
        self.runs: deque[tuple[float, str, str, float, float]] = deque()

    def add(self, offset: float, record: dict[str, Any]) -> None:
        """Count a sent record."""
        cost = record["cost_usd"] if "cost_usd" in record else list_cost(record)
        self.runs.append((offset, record["agent"], record["status"], record["duration_seconds"], cost))

    def rows(self, now: float) -> list[tuple[str, int, float, int, float, float]]:
        """(agent, runs, failed share, cancelled runs, p95 duration, mean cost) over the window ending
        at `now`.

        The failed share is the product's one definition, as the failure-rate alerts compute it:
        failure, error and timeout over the runs that were not cancelled (docs/record.md, "What counts as a
        failure"). 0 when every run was cancelled.
        """
        while self.runs and self.runs[0][0] < now - self.seconds:
            self.runs.popleft()
        from ..record import FAILED_STATUSES, Status

        failed_statuses = {s.value for s in FAILED_STATUSES}
        rows = []
        for agent in AGENTS:
            mine = [r for r in self.runs if r[1] == agent]
            if not mine:
                rows.append((agent, 0, 0.0, 0, 0.0, 0.0))
                continue
            failed = sum(1 for r in mine if r[2] in failed_statuses)
            cancelled = sum(1 for r in mine if r[2] == Status.CANCELLED.value)
            attempts = len(mine) - cancelled
            durations = sorted(r[3] for r in mine)
            p95 = durations[min(len(durations) - 1, int(0.95 * len(durations)))]
            share = failed / attempts if attempts else 0.0
            rows.append((agent, len(mine), share, cancelled, p95, sum(r[4] for r in mine) / len(mine)))
        return rows


def run_demo(
    client: Client,
    traffic: Traffic,
    *,
    duration: float | None,
    count: int | None,
    result: DemoResult,
    window: Window | None = None,
    on_progress: Any = None,
) -> DemoResult:
    """Send `traffic` through `client` in real time until `duration` seconds or `count` runs."""
    window = window or Window()
    began = time.monotonic()
    last_progress = 0.0
    try:
        for offset, record in traffic.runs(until=duration, limit=count):
            delay = began + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            client.record_run(**record)
            result.sent += 1
            result.by_agent[record["agent"]] += 1
            result.by_status[record["status"]] += 1
            window.add(offset, record)
            now = time.monotonic()
            if on_progress is not None and now - last_progress >= 0.25:
                last_progress = now
                on_progress(now - began, window, result)
        if duration is not None:  # the last arrival can come well before the end
            remaining = began + duration - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
    except KeyboardInterrupt:
        result.interrupted = True
    result.elapsed = time.monotonic() - began
    return result


def render(elapsed: float, window: Window, result: DemoResult, client: Client, traffic: Traffic) -> Group:
    """The live view."""
    stats = client.stats()
    head = Text.assemble(
        ("agent-exporter demo", "bold"),
        f"  seed {result.seed}  rate {result.rate:g}/s  {elapsed:,.0f} s  sent {result.sent:,}  ",
        (
            "server unreachable: spooling" if stats.unreachable else "delivering",
            "red" if stats.unreachable else "green",
        ),
        f"  delivered {stats.delivered:,}  spooled {stats.spooled:,}  queued {stats.queued:,}",
        f"  rejected {stats.rejected:,}" if stats.rejected else "",
    )
    table = Table(title=f"last {WINDOW_SECONDS:g} s", title_justify="left", expand=False)
    for name, justify in (
        ("agent", "left"),
        ("runs", "right"),
        ("failed", "right"),
        ("cancelled", "right"),
        ("p95 s", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("cost/run", justify="right")
    for agent, runs, failed, cancelled, p95, cost in window.rows(elapsed):
        style = "red" if runs and failed > 0.3 else None
        table.add_row(
            agent, f"{runs:,}", f"{failed:.0%}", f"{cancelled:,}", f"{p95:,.0f}", f"${cost:,.2f}", style=style
        )
    active = [
        i
        for i in traffic.incidents
        if i.start <= elapsed and (i.duration is None or elapsed < i.start + i.duration)
    ]
    lines = [
        Text(f"incident: {i.describe()}", style="bold red" if i in active else "dim")
        for i in traffic.incidents
    ]
    return Group(head, table, *lines)


@contextlib.contextmanager
def served(url: str, database_url: str, log_path: Path) -> Iterator[Supervised]:
    """An `agent-exporter serve` subprocess on `url`'s address, stopped (SIGTERM) afterwards.

    It runs in its own session: Ctrl-C reaches the demo only, which flushes before stopping it.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    args = exporter_command(host, port, database_url)
    with running(
        "the exporter", args, log_path, ready_url=f"{url}/readyz", timeout=60, new_session=True, append=True
    ) as exporter:
        yield exporter


def _incidents(specs: Sequence[str]) -> list[Incident]:
    try:
        return [parse_incident(spec) for spec in specs]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--incident") from exc


def command(
    *,
    url: Annotated[
        str, typer.Option(envvar="AGENT_EXPORTER_URL", help="The exporter to send to.")
    ] = DEFAULT_URL,
    rate: Annotated[
        float, typer.Option(min=0.001, help="Runs per second (Poisson arrivals).")
    ] = DEFAULT_RATE,
    duration: Annotated[
        float | None,
        typer.Option(min=0.001, help="Seconds to run (default: until Ctrl-C).", show_default=False),
    ] = None,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many runs.", show_default=False)
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed: the same seed sends the same runs (default: random).", show_default=False),
    ] = None,
    incident: Annotated[
        list[str] | None,
        typer.Option(
            help=(
                f"Scripted incident, repeatable: {', '.join(INCIDENT_KINDS)}, optionally with "
                "':agent=fixer,magnitude=X,start=SECONDS,duration=SECONDS' (see docs/demo.md)."
            ),
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="AGENT_EXPORTER_TOKEN", help="Bearer token.", show_default=False)
    ] = None,
    spool: Annotated[
        Path | None,
        typer.Option(envvar="AGENT_EXPORTER_SPOOL", help="The client's spool directory.", show_default=False),
    ] = None,
    serve: Annotated[
        bool, typer.Option(help="Start an exporter on --url for the demo, stop it afterwards.")
    ] = False,
    database_url: Annotated[
        str, typer.Option(help="The store of the exporter --serve starts.")
    ] = "sqlite:///data/agent-exporter.db",
    server_log: Annotated[Path, typer.Option(help="Where --serve writes the exporter's log.")] = Path(
        "data/demo-exporter.log"
    ),
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary, no live view.")] = False,
) -> None:
    """Send realistic Fixer Agent traffic through the client SDK, with scripted incidents."""
    incidents = _incidents(incident or [])
    _stop_on_sigterm()
    seed = seed if seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    console = Console(stderr=json_output)
    result = DemoResult(seed=seed, rate=rate, incidents=[i.describe() for i in incidents])
    with contextlib.ExitStack() as stack:
        if serve:
            try:
                stack.enter_context(served(url, database_url, server_log))
            except RuntimeError as exc:
                console.print(f"[red]error:[/red] {exc}", highlight=False)
                raise typer.Exit(1) from exc
            if not json_output:
                console.print(f"exporter on {url} (store {database_url}, log {server_log})", highlight=False)
        from ..client import Client

        client = Client(url, token=token, spool=spool, flush_interval=0.25)
        traffic = Traffic(seed, rate=rate, start=time.time(), incidents=incidents)
        if json_output:
            run_demo(client, traffic, duration=duration, count=count, result=result)
        else:
            window = Window()
            with Live(console=console, refresh_per_second=4, transient=False) as live:

                def progress(elapsed: float, window: Window, res: DemoResult) -> None:
                    live.update(render(elapsed, window, res, client, traffic))

                run_demo(
                    client,
                    traffic,
                    duration=duration,
                    count=count,
                    result=result,
                    window=window,
                    on_progress=progress,
                )
                live.update(render(result.elapsed, window, result, client, traffic))
        # Ctrl-C while flushing must not lose the queue: the client spools what it cannot send
        with _ignoring_sigint():
            client.close(timeout=15)
        result.stats = client.stats()
    if json_output:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        stats = result.stats
        console.line()
        console.print(
            f"sent {result.sent:,} runs in {result.elapsed:,.1f} s (seed {seed}): "
            f"delivered {stats.delivered:,}, spooled {stats.spooled:,}, rejected {stats.rejected:,}, "
            f"dropped {stats.dropped:,}",
            highlight=False,
        )


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    """SIGTERM (docker stop, kill) stops the demo like Ctrl-C: flush, stop the server, summarise."""
    import threading

    if os.name == "posix" and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


@contextlib.contextmanager
def _ignoring_sigint() -> Iterator[None]:
    import threading

    if os.name != "posix" or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
