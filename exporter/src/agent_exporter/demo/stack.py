"""The stack without Docker: the exporter, Prometheus and Alertmanager as local processes on 127.0.0.1
(`make stack`, or `python -m agent_exporter.demo.stack`).

It runs the same files as docker-compose.yml: `prometheus/prometheus.yml` rendered with loopback
targets and absolute rule paths, the generated rule files, and `alerts/alertmanager.yml` as it is.
The integration test builds its Prometheus and Alertmanager command lines here too.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from .. import DEFAULT_PORT
from .supervisor import ProcessFailedError, Supervised, exporter_command, start, stop_all

PROMETHEUS_CONFIG: Final = Path("prometheus/prometheus.yml")
ALERTMANAGER_CONFIG: Final = Path("alerts/alertmanager.yml")
ALERTMANAGER_BINARIES: Final = ("prometheus-alertmanager", "alertmanager")  # Debian's name first


def render_prometheus_config(
    source: Path,
    *,
    targets: Mapping[str, Sequence[str]],
    alertmanagers: Sequence[str],
    rule_files: Sequence[Path] | None = None,
    scrape_interval: str | None = None,
    evaluation_interval: str | None = None,
) -> str:
    """`source` (prometheus.yml) with the static targets of the jobs in `targets` replaced.

    Rule files become absolute paths (relative ones are resolved against `source`'s directory, as
    Prometheus does) unless `rule_files` replaces them.
    """
    config: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    config.setdefault("global", {})
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
    if evaluation_interval:
        config["global"]["evaluation_interval"] = evaluation_interval
    files = (
        rule_files if rule_files is not None else [source.parent / f for f in config.get("rule_files", [])]
    )
    config["rule_files"] = [str(Path(f).resolve()) for f in files]
    config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    unknown = set(targets) - set(jobs)
    if unknown:
        raise ValueError(f"{source} has no scrape job {', '.join(sorted(unknown))}")
    for name, job in jobs.items():
        if name in targets:
            job["static_configs"] = [{"targets": list(targets[name])}]
    config["scrape_configs"] = [job for name, job in jobs.items() if name in targets]
    text: str = yaml.safe_dump(config, sort_keys=False)
    return text


def prometheus_command(config: Path, data_dir: Path, port: int) -> list[str]:
    """Prometheus on 127.0.0.1:`port` with exemplar storage (exemplars link outliers to runs)."""
    return [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
        "--web.enable-lifecycle",
    ]


def alertmanager_binary() -> str | None:
    """The Alertmanager executable on this machine, if any."""
    for name in ALERTMANAGER_BINARIES:
        if shutil.which(name):
            return name
    return None


def alertmanager_command(config: Path, data_dir: Path, port: int) -> list[str]:
    """Alertmanager on 127.0.0.1:`port`, without clustering (it would listen on *:9094)."""
    return [
        alertmanager_binary() or ALERTMANAGER_BINARIES[0],
        f"--config.file={config}",
        f"--storage.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]


@dataclass(frozen=True)
class Ports:
    """Where the stack listens on 127.0.0.1."""

    exporter: int = DEFAULT_PORT
    prometheus: int = 9090
    alertmanager: int = 9093


def port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:`port` already."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_stack(root: Path, state_dir: Path, ports: Ports, database_url: str | None) -> int:
    """Start the exporter, Prometheus and Alertmanager; stop them all on Ctrl-C or when one exits."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    missing = [b for b in ("prometheus",) if not shutil.which(b)]
    if alertmanager_binary() is None:
        missing.append("prometheus-alertmanager")
    if missing:
        console.print(
            f"[red]error:[/red] not installed: {', '.join(missing)} (apt-get install {' '.join(missing)})"
        )
        return 1
    busy = [f"{name} port {port}" for name, port in vars(ports).items() if port_in_use(port)]
    if busy:
        console.print(
            f"[red]error:[/red] in use on 127.0.0.1: {', '.join(busy)}; choose others (`make help`)"
        )
        return 1
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "prometheus").mkdir(exist_ok=True)
    (state_dir / "alertmanager").mkdir(exist_ok=True)
    config = state_dir / "prometheus.yml"
    config.write_text(
        render_prometheus_config(
            root / PROMETHEUS_CONFIG,
            targets={
                "agent-exporter": [f"127.0.0.1:{ports.exporter}"],
                "prometheus": [f"127.0.0.1:{ports.prometheus}"],
                "alertmanager": [f"127.0.0.1:{ports.alertmanager}"],
            },
            alertmanagers=[f"127.0.0.1:{ports.alertmanager}"],
        ),
        encoding="utf-8",
    )
    url = database_url or f"sqlite:///{(state_dir / 'agent-exporter.db').resolve()}"
    services: list[Supervised] = []
    # `kill <pid>` stops the children too: SystemExit runs the `finally` below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        services.append(
            start(
                "exporter",
                exporter_command("127.0.0.1", ports.exporter, url),
                state_dir / "exporter.log",
                ready_url=f"http://127.0.0.1:{ports.exporter}/readyz",
            )
        )
        services.append(
            start(
                "prometheus",
                prometheus_command(config.resolve(), (state_dir / "prometheus").resolve(), ports.prometheus),
                state_dir / "prometheus.log",
                ready_url=f"http://127.0.0.1:{ports.prometheus}/-/ready",
            )
        )
        services.append(
            start(
                "alertmanager",
                alertmanager_command(
                    (root / ALERTMANAGER_CONFIG).resolve(),
                    (state_dir / "alertmanager").resolve(),
                    ports.alertmanager,
                ),
                state_dir / "alertmanager.log",
                ready_url=f"http://127.0.0.1:{ports.alertmanager}/-/ready",
            )
        )
        with console.status("starting the exporter, Prometheus and Alertmanager"):
            for service in services:
                service.wait_ready()
        table = Table(title="agent-exporter stack on 127.0.0.1 (Ctrl-C stops it)")
        for column in ("service", "URL", "log"):
            table.add_column(column)
        table.add_row("exporter", f"http://127.0.0.1:{ports.exporter}", str(services[0].log_path))
        table.add_row("Prometheus", f"http://127.0.0.1:{ports.prometheus}", str(services[1].log_path))
        table.add_row("Alertmanager", f"http://127.0.0.1:{ports.alertmanager}", str(services[2].log_path))
        console.print(table)
        console.print(f"store: {url}")
        while all(s.process.poll() is None for s in services):
            time.sleep(0.5)
        exited = next(s for s in services if s.process.poll() is not None)
        console.print(
            f"[red]{exited.name} exited with {exited.process.returncode}[/red]; see {exited.log_path}"
        )
        return 1
    except KeyboardInterrupt:
        console.print("stopping")
        return 0
    except ProcessFailedError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    finally:
        stop_all(services)


def main(argv: list[str] | None = None) -> int:
    """`python -m agent_exporter.demo.stack`: run the stack until Ctrl-C; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m agent_exporter.demo.stack", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: .)")
    parser.add_argument("--exporter-port", type=int, default=Ports.exporter)
    parser.add_argument("--prometheus-port", type=int, default=Ports.prometheus)
    parser.add_argument("--alertmanager-port", type=int, default=Ports.alertmanager)
    parser.add_argument(
        "--database-url", default=None, help="default: SQLite in <state-dir>/agent-exporter.db"
    )
    parser.add_argument("--state-dir", type=Path, default=Path("data/stack"))
    args = parser.parse_args(argv)
    ports = Ports(args.exporter_port, args.prometheus_port, args.alertmanager_port)
    return run_stack(args.root, args.root / args.state_dir, ports, args.database_url)


if __name__ == "__main__":
    sys.exit(main())
