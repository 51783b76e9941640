"""What every benchmark needs: a real server on loopback, wrk, statistics, the machine's description."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data" / "swe-bench-pro-runs.json"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def median(values: Sequence[float]) -> float:
    """The median (the figure every benchmark reports)."""
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Server:
    """A running `agent-exporter serve`."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        """Resident memory of the server process, in MB."""
        return rss_mb(self.process.pid)

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the server process has used so far."""
        return cpu_seconds(self.process.pid)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of `pid` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MB, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) / 1024


@contextlib.contextmanager
def server(database_url: str | None = None, config: dict[str, Any] | None = None) -> Iterator[Server]:
    """Start the exporter on a free loopback port (SQLite in a temporary directory unless told)."""
    workdir = Path(tempfile.mkdtemp(prefix="agent-exporter-bench-"))
    port = free_port()
    args = [sys.executable, "-m", "agent_exporter", "serve", "--port", str(port), "--log-level", "warning"]
    args += ["--database-url", database_url or f"sqlite:///{workdir / 'bench.db'}"]
    if config:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        args += ["--config", str(workdir / "config.yaml")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_EXPORTER_")}
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    running = Server(process, port, workdir)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the exporter exited: {(workdir / 'server.log').read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{running.url}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the exporter did not become ready in 60 s")
            time.sleep(0.1)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class WrkResult:
    """What wrk measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    server_cpu_us: float | None = None  # server CPU per request, when measured


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no {label} latency:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, script: Path, *, connections: int, seconds: float, threads: int | None = None) -> WrkResult:
    """Run wrk with a Lua script against `url` and parse its report."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    threads = threads or min(2, connections)
    out = subprocess.run(
        [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if rps is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=_latency_ms(out, "50%"),
        p99_ms=_latency_ms(out, "99%"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def machine() -> dict[str, str]:
    """The facts a reader needs to compare these numbers with theirs."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, AttributeError):
        match = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        mem_kb = int(match.group(1)) if match else 0
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def post_concurrently(
    srv: Server,
    path: str,
    bodies: Iterable[bytes],
    content_type: str,
    *,
    refusal: Callable[[httpx.Response], str | None],
    senders: int = 2,
) -> list[str]:
    """POST every body to `path`, `senders` at a time, and return after the last answer: what
    `refusal` said of each answer it did not accept (None: accepted)."""
    queue = iter(bodies)
    lock = threading.Lock()
    failures: list[str] = []

    def send() -> None:
        with httpx.Client(base_url=srv.url, timeout=120) as client:
            while True:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                response = client.post(path, content=body, headers={"content-type": content_type})
                problem = refusal(response)
                if problem is not None:
                    failures.append(problem)

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures
