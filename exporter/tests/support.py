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

from agent_exporter.demo import supervisor
from agent_exporter.demo.supervisor import ProcessFailedError, Supervised

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data" / "swe-bench-pro-runs.json"
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


def ready(server: Supervised, timeout: float = 30) -> None:
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
