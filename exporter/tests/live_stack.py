"""Prometheus and Alertmanager on loopback for the live tests, with the shipped configuration.

Prometheus runs the shipped prometheus.yml (rendered with loopback targets and 1 s intervals) and
rules rendered from the shipped alerts/config.yaml with every window `scale` times shorter;
Alertmanager runs the shipped alertmanager.yml with its webhook URLs pointed at an HTTP receiver of
the test and 1 s group timers.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from agent_exporter.demo.stack import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_CONFIG,
    alertmanager_command,
    prometheus_command,
    render_prometheus_config,
)
from agent_exporter.demo.supervisor import Supervised
from agent_exporter.mixin.config import load_config
from agent_exporter.mixin.generate import ALERT_RULES, CONFIG_PATH, RECORDING_RULES, render

from .support import REPO, free_port, serve

# -- the HTTP receiver Alertmanager's webhooks post to ----------------------------------------------


@dataclass
class Receiver:
    """Collects Alertmanager's webhook notifications: (path, payload)."""

    notifications: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[tuple[str, dict[str, Any]]]:
        """A copy of what arrived so far."""
        with self.lock:
            return list(self.notifications)


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[Receiver, str]]:
    """A webhook receiver on a free loopback port; yields it and its base URL."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.notifications.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- processes ---------------------------------------------------------------------------------


def alertmanager_config(webhook: str, tmp_path: Path) -> Path:
    """The shipped alertmanager.yml with its receivers posting to `webhook` and short group timers."""
    config = yaml.safe_load((REPO / ALERTMANAGER_CONFIG).read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{webhook}/{receiver['name']}"
    config["route"].update(group_wait="1s", group_interval="1s")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_alertmanager(config: Path, tmp_path: Path) -> tuple[Supervised, str]:
    """Alertmanager with `config` on a free port; waits until it is ready."""
    port = free_port()
    data = tmp_path / f"alertmanager-{port}"
    data.mkdir()
    log = tmp_path / f"alertmanager-{port}.log"
    url = f"http://127.0.0.1:{port}"
    return serve("Alertmanager", alertmanager_command(config, data, port), log, f"{url}/-/ready"), url


def start_prometheus(
    tmp_path: Path, *, exporter_port: int, alertmanager_url: str, scale: int
) -> tuple[Supervised, str]:
    """Prometheus scraping the exporter every second, with the shipped rules `scale` times shorter,
    alerting `alertmanager_url`; waits until it is ready."""
    cfg = load_config(REPO / CONFIG_PATH).scaled(scale)
    files = render(cfg)
    rules = []
    for rel in (RECORDING_RULES, ALERT_RULES):
        path = tmp_path / rel.name
        path.write_text(files[rel])
        rules.append(path)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        render_prometheus_config(
            REPO / PROMETHEUS_CONFIG,
            targets={"agent-exporter": [f"127.0.0.1:{exporter_port}"], "prometheus": [f"127.0.0.1:{port}"]},
            alertmanagers=[alertmanager_url.removeprefix("http://")],
            rule_files=rules,
            scrape_interval="1s",
            evaluation_interval="1s",
        )
    )
    (tmp_path / "tsdb").mkdir()
    log = tmp_path / "prometheus.log"
    url = f"http://127.0.0.1:{port}"
    return serve(
        "Prometheus", prometheus_command(config, tmp_path / "tsdb", port), log, f"{url}/-/ready"
    ), url
