"""Child processes that serve HTTP: started with their output in a log file, waited for until their
readiness URL answers 200, stopped with SIGTERM (SIGKILL after a grace period).

One supervisor for the demo's exporter (`agent-exporter demo --serve`), the native stack (the
exporter, Prometheus and Alertmanager) and the tests' real servers.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

READY_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 30.0
LOG_TAIL: Final = 3000  # characters of the log an error message quotes


class ProcessFailedError(RuntimeError):
    """A process exited, or did not become ready, when it should have been serving."""


@dataclass
class Supervised:
    """A child process, the file its output goes to, and the URL that answers 200 once it serves."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_url: str | None = None

    def log(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        """Whether the readiness URL answers 200 now; raises if the process has exited."""
        if self.process.poll() is not None:
            raise ProcessFailedError(
                f"{self.name} exited with {self.process.returncode}; the end of its log "
                f"({self.log_path}):\n{self.log()[-LOG_TAIL:]}"
            )
        if self.ready_url is None:
            return True
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(self.ready_url, timeout=1).status_code == 200
        return False

    def wait_ready(self, timeout: float = READY_TIMEOUT, interval: float = 0.1) -> None:
        """Poll the readiness URL until it answers 200; `ProcessFailedError` if the process exits first
        or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise ProcessFailedError(
                    f"{self.name} did not become ready within {timeout:g} s (log: {self.log_path})"
                )
            time.sleep(interval)

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` (SIGTERM: stop gracefully) unless the process has exited."""
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send `sig`, wait up to `timeout` seconds, then kill; the exit code."""
        self.terminate(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        return self.process.returncode


def start(
    name: str,
    args: Sequence[str],
    log_path: Path,
    *,
    ready_url: str | None = None,
    env: Mapping[str, str] | None = None,
    new_session: bool = False,
    append: bool = False,
) -> Supervised:
    """Start `args` with its output (both streams) in `log_path`.

    `new_session`: the process does not get the terminal's Ctrl-C, so that the parent decides when
    it stops (the demo flushes its client first). `append`: keep what earlier runs logged.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab" if append else "wb") as log:
        process = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=new_session,
        )
    return Supervised(name, process, log_path, ready_url)


def stop_all(processes: Sequence[Supervised], timeout: float = 15) -> None:
    """Stop every process: all are asked at once, then each is waited for (killed after `timeout`)."""
    for supervised in processes:
        supervised.terminate()
    for supervised in processes:
        supervised.stop(timeout=timeout)


@contextlib.contextmanager
def running(
    name: str,
    args: Sequence[str],
    log_path: Path,
    *,
    ready_url: str,
    timeout: float = READY_TIMEOUT,
    new_session: bool = False,
    append: bool = False,
) -> Iterator[Supervised]:
    """`start`, then wait until ready; always stopped afterwards."""
    supervised = start(name, args, log_path, ready_url=ready_url, new_session=new_session, append=append)
    try:
        supervised.wait_ready(timeout)
        yield supervised
    finally:
        supervised.stop()


def exporter_command(host: str, port: int, database_url: str, *options: str) -> list[str]:
    """`agent-exporter serve` on `host`:`port` with the store at `database_url`, in this interpreter."""
    return [
        sys.executable,
        "-m",
        "agent_exporter",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--database-url",
        database_url,
        *options,
    ]
