"""A PostgreSQL store as Grafana's "Run store" datasource sees it: the read-only role of
grafana/store-reader.sql, tables made by the exporter's migrations, runs written by its store.

The runs are a fixed month before END (2026-11-18 15:30 UTC): three a day at 01:00, 09:00 and
17:00 UTC, over three agents, models and issue types (one of each with a quote in its name, one
run without a model or issue type), every status, known costs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from agent_exporter import migrations
from agent_exporter.store import Store, StoreSettings

from .pgcluster import fresh_database
from .support import PG_ADMIN_URL, REPO, record, resolved

END: Final = 1_795_015_800  # 2026-11-18T15:30:00Z
DAY: Final = 86400
DAYS: Final = 40
HOURS: Final = (1, 9, 17)
AGENTS: Final = ("fixer", "reviewer", "o'brien's agent")
MODELS: Final = ("claude-sonnet-4-5", "m'odel", None)
ISSUE_TYPES: Final = ("complexity", "it's", None)
STATUSES: Final = ("success", "success", "failure", "success", "error", "timeout", "success", "cancelled")
QUOTED_RUN: Final = 'run\'with "quotes" and a \\ backslash'


@dataclass(frozen=True)
class SeedRun:
    """What a seeded run is, as the tests compute their expectations."""

    run_id: str
    agent: str
    model: str  # `unknown` for none, as the dashboards show it
    issue_type: str
    status: str
    ended_at: int
    cost: float


def seed_runs() -> list[SeedRun]:
    """The seeded runs, oldest first."""
    runs = []
    first_day = END // DAY * DAY - (DAYS - 1) * DAY
    i = 0
    for day in range(DAYS):
        for hour in HOURS:
            ended = first_day + day * DAY + hour * 3600
            if ended > END:
                continue
            runs.append(
                SeedRun(
                    run_id=QUOTED_RUN if i == 5 else f"run-{i:04d}",
                    agent=AGENTS[i % 3],
                    model=MODELS[(i // 3) % 3] or "unknown",
                    issue_type=ISSUE_TYPES[(i // 2) % 3] or "unknown",
                    status=STATUSES[i % len(STATUSES)],
                    ended_at=ended,
                    cost=round(0.25 * (1 + i % 7), 2),
                )
            )
            i += 1
    return runs


def _record(run: SeedRun) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "agent": run.agent,
        "model": None if run.model == "unknown" else run.model,
        "provider": None if run.model == "unknown" else "anthropic",
        "issue_type": None if run.issue_type == "unknown" else run.issue_type,
        "status": run.status,
        "duration_seconds": 60.0,
        "ended_at": dt.datetime.fromtimestamp(run.ended_at, dt.UTC).isoformat(),
        "cost_usd": run.cost,
    }
    if run.run_id == QUOTED_RUN:
        fields["phases"] = [
            {"name": "plan", "duration_seconds": 10.0},
            {"name": "edit", "duration_seconds": 30.0},
            {"name": "test", "duration_seconds": 20.0},
        ]
        fields["labels"] = {"team": "o'hara"}
    return record(run.run_id, **fields)


def _reader_script(role: str, database: str, owner: str) -> list[str]:
    """grafana/store-reader.sql's statements for `role` on `database`, the tables owned by `owner`."""
    script = (REPO / "grafana" / "store-reader.sql").read_text()
    statements = []
    for part in re.sub(r"^(--|\\).*$", "", script, flags=re.M).split(";"):
        statement = part.strip()
        if not statement:
            continue
        statement = statement.replace("grafana_reader", role).replace(":'reader_password'", "'reader'")
        statement = statement.replace("DATABASE agent_exporter", f'DATABASE "{database}"')
        statements.append(statement.replace("FOR ROLE agent ", f'FOR ROLE "{owner}" '))
    return statements


@contextlib.contextmanager
def reader_store(*, seeded: bool) -> Iterator[str]:
    """A fresh store (the seeded runs in it, or none), yielding the read-only role's URL."""
    role = f"grafana_reader_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with fresh_database() as url:
            owner = make_url(url).username or "postgres"
            database = make_url(url).database or ""
            engine = create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                for statement in _reader_script(role, database, owner):
                    conn.execute(text(statement))
            engine.dispose()
            with Store(StoreSettings(url)) as store:
                migrations.upgrade(store)
                if seeded:
                    received = END + 60.0
                    store.insert_runs([resolved(_record(r), received) for r in seed_runs()])
            yield make_url(url).set(username=role, password="reader").render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def options(conn: Connection, query: str) -> list[str]:
    """What a store variable's query lists."""
    return [str(row[0]) for row in conn.execute(text(query))]
