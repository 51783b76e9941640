"""Fixtures: stores on SQLite and on the machine's real PostgreSQL, and the app in-process."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from agent_exporter import migrations
from agent_exporter.client import Client
from agent_exporter.store import Store, StoreSettings

from .stub_server import StubServer, stub_server
from .support import FAST, PG_ADMIN_URL, make_client, unavailable

if TYPE_CHECKING:
    from .doc_stack import DocsStack


#: under `make mutate`, a test that runs this long is taken as hung (a writer loop made endless, a future
#: never settled) and fails: the tests mutmut runs take under a second each, and mutmut's own wall-clock
#: limit, 15 times the tests' estimated time, would hold a worker for a minute or more per such mutant
MUTANT_TEST_SECONDS = 10


class MutantHungError(Exception):
    """A test ran over MUTANT_TEST_SECONDS under a mutant."""


@pytest.fixture(autouse=True)
def _a_hung_mutant_fails_fast() -> Iterator[None]:
    """Under mutmut (a mutant's name in MUTANT_UNDER_TEST), an alarm fails the test, its fixtures'
    set-up and tear-down included, after MUTANT_TEST_SECONDS; elsewhere nothing."""
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        yield
        return

    def hung(signum: int, frame: object) -> None:
        raise MutantHungError(f"over {MUTANT_TEST_SECONDS} s under {os.environ['MUTANT_UNDER_TEST']}")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(MUTANT_TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutmut, the tests of the mutated module first (test_metrics*.py for a mutant of
    metrics.py), then the rest, each group fastest first by the times mutmut measured: mutmut stops
    at the first failure, so a mutant only one test kills costs that test, not the hundred before it."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if "__mutmut_" not in mutant:
        return
    module = mutant.split(".")[1].removesuffix("s")
    try:  # mutmut runs the tests from its mutants/ directory, where it keeps its stats
        with open("mutmut-stats.json", encoding="utf-8") as stats:
            seconds: dict[str, float] = json.load(stats)["duration_by_test"]
    except (OSError, ValueError, KeyError):
        seconds = {}
    items.sort(key=lambda item: (module not in item.path.name, seconds.get(item.nodeid, 0.0)))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a database created for this test session on 127.0.0.1:5432, dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"agent_exporter_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL is not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: {exc.orig}")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_server_url: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    engine = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return pg_server_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, then the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store on each backend."""
    with Store(StoreSettings(store_url)) as s:
        migrations.upgrade(s)
        yield s


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh registry per test: values read back with `get_sample_value`."""
    return CollectorRegistry()


@pytest.fixture
def client(tmp_path: Path, registry: CollectorRegistry) -> Iterator[TestClient]:
    """The app in-process on a SQLite file."""
    with make_client(f"sqlite:///{tmp_path / 'app.db'}", registry) as c:
        yield c


@pytest.fixture(scope="session")
def docs_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsStack]:
    """The exporter and Prometheus the operations checklist and the runbooks assume, loaded with a
    fleet whose fixer just failed three runs in a row (tests/doc_stack.py, imported here so that a
    change to the docs it reads fails the docs tests, not the whole session)."""
    from .doc_stack import docs_stack as start_docs_stack

    with start_docs_stack(tmp_path_factory.mktemp("docs-stack")) as stack:
        yield stack


@pytest.fixture
def stub() -> Iterator[StubServer]:
    """A stub server that accepts everything."""
    with stub_server() as server:
        yield server


@pytest.fixture
def agent_client(stub: StubServer, tmp_path: Path) -> Iterator[Client]:
    """A client of the stub with short intervals."""
    c = Client(stub.url, spool=tmp_path / "spool", **FAST)
    try:
        yield c
    finally:
        c.close(timeout=2)
