"""Helpers shared by the tests: real servers on loopback (run by the project's own process
supervisor, `agent_exporter.demo.supervisor`), and the CI rule for missing ones.

A test that needs a server this machine does not have skips with a message locally and fails under
CI (`CI=true`), where a skip would hide a missing install step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from agent_exporter.api.app import create_app
from agent_exporter.config import load_settings
from agent_exporter.demo import supervisor
from agent_exporter.demo.supervisor import ProcessFailedError, Supervised
from agent_exporter.pricing import PriceBook
from agent_exporter.record import Run, RunRecord, parse_record

REPO = Path(__file__).resolve().parents[2]
#: the checkout's sibling shared/ (the nearest one up: `make mutate` runs the tests from exporter/mutants/)
SHARED = next(
    (p / "shared" for p in REPO.parents if (p / "shared" / "data").is_dir()), REPO.parent / "shared"
)
SHARED_DATA = SHARED / "data" / "swe-bench-pro-runs.json"
#: the receipt time of the records the unit tests build (2026-11-18T08:26:40Z)
NOW = 1_795_000_000.0
PG_ADMIN_URL = os.environ.get(
    "AGENT_EXPORTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def in_ci() -> bool:
    """True under CI, where missing servers are failures, not skips."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(message: str) -> NoReturn:
    """Skip locally, fail under CI."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: required)")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `predicate` until it returns truthy, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


#: seconds a server may take to start: about 2 on a quiet machine, over 30 on one shared by many
#: test runs; the bound only decides how long a server that never starts is waited for
START_TIMEOUT = 120


def ready(server: Supervised, timeout: float = START_TIMEOUT) -> None:
    """Wait until `server` answers its readiness URL; fail the test (stopping it) if it does not."""
    try:
        server.wait_ready(timeout, interval=0.05)
    except ProcessFailedError as exc:
        server.stop()
        pytest.fail(str(exc))


def serve(name: str, args: Sequence[str], log_path: Path, ready_url: str) -> Supervised:
    """Start a server process and wait until it is ready (the test fails if it is not)."""
    server = supervisor.start(name, args, log_path, ready_url=ready_url)
    ready(server)
    return server


@dataclass
class ExporterProcess:
    """A real `agent-exporter serve` process on loopback."""

    supervised: Supervised
    port: int

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The process itself."""
        return self.supervised.process

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """What the server printed so far."""
        return self.supervised.log()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Stop the server with `sig` and return its exit code."""
        return self.supervised.stop(sig, timeout)


def start_exporter(
    tmp_path: Path,
    *,
    database_url: str | None = None,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    wait: bool = True,
) -> ExporterProcess:
    """Start `agent-exporter serve` as a subprocess and wait until /readyz answers 200."""
    import yaml

    port = port or free_port()
    options = []
    if config:
        config_path = tmp_path / f"config-{port}.yaml"
        config_path.write_text(yaml.safe_dump(dict(config)))
        options += ["--config", str(config_path)]
    args = supervisor.exporter_command(
        "127.0.0.1", port, database_url or f"sqlite:///{tmp_path / 'exporter.db'}", *options
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_EXPORTER_")}
    full_env.update(env or {})
    server = supervisor.start(
        "the exporter",
        args,
        tmp_path / f"exporter-{port}.log",
        ready_url=f"http://127.0.0.1:{port}/readyz",
        env=full_env,
    )
    if wait:
        ready(server)
    return ExporterProcess(server, port)


@contextlib.contextmanager
def exporter(tmp_path: Path, **kwargs: Any) -> Iterator[ExporterProcess]:
    """`start_exporter` as a context manager that always stops the process."""
    server = start_exporter(tmp_path, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def record(run_id: str, **fields: Any) -> dict[str, Any]:
    """A valid run record with sensible defaults; `fields` override them."""
    body: dict[str, Any] = {
        "run_id": run_id,
        "agent": "fixer",
        "status": "success",
        "duration_seconds": 30.0,
        "model": "claude-sonnet-4-5",
        "provider": "anthropic",
        "issue_type": "complexity",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def resolved(body: Mapping[str, Any], received_at: float = NOW) -> Run:
    """The run the ingest path makes of the valid record `body` received at `received_at`, unpriced."""
    parsed = parse_record(dict(body), now=received_at, max_future_skew=300)
    assert isinstance(parsed, RunRecord), parsed
    return parsed.resolve(received_at)


def priced(body: Mapping[str, Any], prices: PriceBook | None = None, received_at: float = NOW) -> Run:
    """`resolved`, then priced as ingest prices it (by `prices`, default the bundled genai-prices)."""
    run = resolved(body, received_at)
    (prices or PriceBook()).price(run)
    return run


def make_client(database_url: str, registry: CollectorRegistry, **settings: Any) -> TestClient:
    """The app in-process on `database_url`, with `settings` overriding the defaults."""
    app = create_app(load_settings(database_url=database_url, **settings), registry=registry)
    return TestClient(app, base_url="http://127.0.0.1")


#: client delivery settings with short intervals, for tests of the client SDK
FAST: dict[str, Any] = {"flush_interval": 0.02, "backoff_base": 0.01, "backoff_max": 0.05}
