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


#: under `make mutate`, a test that runs this long (set-up and tear-down included) is taken as hung (a
#: writer loop made endless, a future never settled) and fails: 2 s plus 10 times the time mutmut measured
#: for it (its call alone; the selected tests take half a second at most), 5 s for a test it did not
#: measure. mutmut's own wall-clock limit, 15 times the estimated time of all the mutant's tests, would
#: hold a worker for a minute or more per such mutant.
MUTANT_TEST_BASE_SECONDS = 2.0
MUTANT_TEST_FACTOR = 10
MUTANT_TEST_UNMEASURED_SECONDS = 5.0
#: then each tear-down that hangs too (a thread joined that will never end) is cut after this long
MUTANT_TEARDOWN_SECONDS = 1.0
#: the call times mutmut measured, by test id (read from its stats under mutmut only)
_measured: dict[str, float] = {}


class MutantHungError(Exception):
    """A test ran over its time under a mutant."""


def _mutant() -> str:
    """The mutant under test (mutmut sets MUTANT_UNDER_TEST in each of its workers), or ''."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    return mutant if "__mutmut_" in mutant else ""


@pytest.fixture(autouse=True)
def _a_hung_mutant_fails_fast(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under mutmut, a timer fails the test, its fixtures' set-up and tear-down included, once it runs
    over its time (above), and whatever hangs after that every MUTANT_TEARDOWN_SECONDS; elsewhere
    nothing."""
    mutant = _mutant()
    if not mutant:
        yield
        return
    measured = _measured.get(request.node.nodeid)
    seconds = (
        MUTANT_TEST_UNMEASURED_SECONDS
        if measured is None
        else MUTANT_TEST_BASE_SECONDS + MUTANT_TEST_FACTOR * measured
    )

    def hung(signum: int, frame: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, MUTANT_TEARDOWN_SECONDS)
        raise MutantHungError(f"over {seconds:.1f} s under {mutant}")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutmut, the tests of the mutated module first (test_metrics*.py for a mutant of
    metrics.py), then the rest, each group fastest first by the times mutmut measured: mutmut stops
    at the first failure, so a mutant only one test kills costs that test, not the hundred before it."""
    mutant = _mutant()
    if not mutant:
        return
    module = mutant.split(".")[1].removesuffix("s")
    try:  # mutmut runs the tests from its mutants/ directory, where it keeps its stats
        with open("mutmut-stats.json", encoding="utf-8") as stats:
            _measured.update(json.load(stats)["duration_by_test"])
    except (OSError, ValueError, KeyError):
        pass
    items.sort(key=lambda item: (module not in item.path.name, _measured.get(item.nodeid, 0.0)))


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
