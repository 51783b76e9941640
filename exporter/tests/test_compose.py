"""docker-compose.yml: valid against the Compose Specification, and wired to the repository's files."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator
from jsonschema.validators import validator_for

from .pgcluster import PrivateCluster
from .support import REPO, unavailable

SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = validator_for(schema, default=Draft201909Validator)(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_compose())
    ]
    assert errors == []


def test_the_schema_rejects_what_compose_rejects() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = validator_for(schema, default=Draft201909Validator)(schema)
    broken = _compose()
    broken["services"]["exporter"]["depends_on"]["postgres"]["condition"] = "service_ready"
    assert not validator.is_valid(broken)


def test_every_bind_mount_is_a_file_of_the_repository() -> None:
    sources = [
        volume.split(":")[0]
        for service in _compose()["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert sources, "no bind mounts found"
    assert [s for s in sources if not (REPO / s).exists()] == []


def test_prometheus_stores_exemplars() -> None:
    assert "--enable-feature=exemplar-storage" in _compose()["services"]["prometheus"]["command"]


def test_the_exporter_is_built_from_its_dockerfile() -> None:
    build = _compose()["services"]["exporter"]["build"]
    assert (REPO / build["context"] / build["dockerfile"]).is_file()


def test_demo_traffic_runs_only_in_the_demo_profile() -> None:
    demo = _compose()["services"]["demo"]
    assert demo["profiles"] == ["demo"]
    assert demo["command"] == ["demo", "--url", "http://exporter:9477"]
    assert [n for n, s in _compose()["services"].items() if s.get("profiles")] == ["demo"]


def test_published_ports_are_on_loopback_only() -> None:
    ports = [p for s in _compose()["services"].values() for p in s.get("ports", [])]
    assert sorted(ports) == [
        "127.0.0.1:3000:3000",
        "127.0.0.1:9090:9090",
        "127.0.0.1:9093:9093",
        "127.0.0.1:9477:9477",
    ]


def test_the_dockerfile_copies_files_that_exist_and_are_not_ignored() -> None:
    build = _compose()["services"]["exporter"]["build"]
    context = REPO / build["context"]
    copied = [
        source
        for line in (context / build["dockerfile"]).read_text().splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    ]
    assert copied == ["exporter/pyproject.toml", "exporter/constraints.txt", "exporter/src"]
    assert [s for s in copied if not (context / s).exists()] == []
    ignored = [p.strip() for p in (context / ".dockerignore").read_text().splitlines() if p and p[0] != "#"]
    assert [s for s in copied for p in ignored if s == p or s.startswith(p.rstrip("/") + "/")] == []


def test_grafana_is_the_maintained_image_on_a_pinned_12_release() -> None:
    image = _compose()["services"]["grafana"]["image"]
    name, tag = image.split(":")
    assert name == "grafana/grafana"  # grafana/grafana-oss gets no releases after 12.4
    assert tag.startswith("12.")
    assert tag.count(".") == 2


def _pg_isready(args: list[str], port: int) -> int:
    return subprocess.run(["pg_isready", *args, "-p", str(port)], capture_output=True, timeout=30).returncode


@pytest.mark.postgres
def test_the_postgres_health_check_waits_for_tcp_not_for_the_init_servers_socket() -> None:
    """The postgres image's first start runs the init scripts on a temporary server that listens on
    its socket only. The health check must not call that server ready: it checks over TCP."""
    test = _compose()["services"]["postgres"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    args = shlex.split(test[1])
    assert args[:3] == ["pg_isready", "-h", "127.0.0.1"]
    if shutil.which("pg_isready") is None:
        unavailable("pg_isready is not installed: apt-get install postgresql-client")
    cluster = PrivateCluster()
    try:
        # like the image's temporary server: no TCP listener, a socket in its own directory
        options = f"-p {cluster.port} -c listen_addresses= -k {cluster.root} -c fsync=off"
        cluster._run("pg_ctl", "-D", str(cluster.data), "-l", str(cluster.log), "-o", options, "-w", "start")
        assert _pg_isready(["-h", str(cluster.root)], cluster.port) == 0  # the socket answers
        assert _pg_isready(args[1:3], cluster.port) == 2  # the health check's TCP check does not
    finally:
        cluster.destroy()
