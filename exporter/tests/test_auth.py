"""Access control: tokens for ingest and reads, basic auth for /metrics, CORS, loopback binding."""

from __future__ import annotations

import base64
import hmac
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from agent_exporter.api.auth import Access, AccessPolicy
from agent_exporter.config import ConfigError, SecuritySettings, load_settings

from .support import exporter, free_port, make_client, record, wait_until

RUNS = "/api/v1/runs"
INGEST_A = "ingest-token-aaaaaaaaaaaa"
INGEST_B = "ingest-token-bbbbbbbbbbbb"  # the rotation: both are valid at once
READ = "read-token-cccccccccccccc"
METRICS_PASSWORD = "scrape-secret-dddd"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def secured(tmp_path: Path, registry: CollectorRegistry) -> Iterator[TestClient]:
    security = {
        "ingest_tokens": [INGEST_A, INGEST_B],
        "read_tokens": [READ],
        "metrics_users": {"prometheus": METRICS_PASSWORD},
    }
    with make_client(f"sqlite:///{tmp_path / 'auth.db'}", registry, security=security) as c:
        yield c


def accepted(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("agent_exporter_records_total", {"outcome": "accepted"})


def test_ingest_without_a_token_is_refused_with_a_bearer_challenge(
    secured: TestClient, registry: CollectorRegistry
) -> None:
    response = secured.post(RUNS, json=record("r-1"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="agent-exporter"'
    assert response.json() == {
        "error": {
            "code": "unauthorized",
            "message": "ingest needs credentials: missing credentials: send Authorization: Bearer ...",
        }
    }
    assert accepted(registry) == 0


def test_a_wrong_token_or_a_read_token_cannot_ingest(
    secured: TestClient, registry: CollectorRegistry
) -> None:
    for token in ("not-a-valid-token-at-all", READ):
        response = secured.post(RUNS, json=record("r-1"), headers=bearer(token))
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="agent-exporter", error="invalid_token"'
        assert response.json()["error"]["message"] == (
            "ingest needs credentials: the token is not valid for ingest"
        )
    assert accepted(registry) == 0


def test_either_of_two_ingest_tokens_is_accepted_so_one_can_be_rotated(
    secured: TestClient, registry: CollectorRegistry
) -> None:
    assert secured.post(RUNS, json=record("r-1"), headers=bearer(INGEST_A)).status_code == 201
    assert secured.post(RUNS, json=record("r-2"), headers=bearer(INGEST_B)).status_code == 201
    assert accepted(registry) == 2


def test_the_scheme_must_be_bearer(secured: TestClient) -> None:
    response = secured.post(RUNS, json=record("r-1"), headers={"authorization": f"Token {INGEST_A}"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "ingest needs credentials: the Authorization header must use the Bearer scheme"
    )


def test_reads_need_a_read_token_and_routes_added_later_are_covered(secured: TestClient) -> None:
    # no read route exists on this branch: a 404 after the check proves the path-based rule
    # covers routes that other modules add under /api
    path = "/api/v1/no-such-endpoint"
    assert secured.get(path).status_code == 401
    assert secured.get(path, headers=bearer(INGEST_A)).status_code == 401
    assert secured.get(path, headers=bearer(READ)).status_code == 404


def test_reads_and_ingest_are_configured_separately(tmp_path: Path, registry: CollectorRegistry) -> None:
    with make_client(f"sqlite:///{tmp_path / 'r.db'}", registry, security={"read_tokens": [READ]}) as client:
        assert client.post(RUNS, json=record("r-1")).status_code == 201  # ingest stays open
        assert client.get("/api/v1/runs").status_code == 401
        assert client.get("/metrics").status_code == 200  # and so does /metrics


def test_metrics_needs_basic_auth_when_users_are_configured(secured: TestClient) -> None:
    response = secured.get("/metrics")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="agent-exporter", charset="UTF-8"'
    assert secured.get("/metrics", headers=basic("prometheus", "wrong-password")).status_code == 401
    assert secured.get("/metrics", headers=basic("grafana", METRICS_PASSWORD)).status_code == 401
    assert secured.get("/metrics", headers=bearer(READ)).status_code == 401
    assert secured.get("/metrics", headers={"authorization": "Basic %%%"}).status_code == 401
    response = secured.get("/metrics", headers=basic("prometheus", METRICS_PASSWORD))
    assert response.status_code == 200
    assert "agent_exporter_build_info" in response.text


def test_probes_and_the_api_contract_stay_open(secured: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert secured.get(path).status_code == 200, path


def test_the_openapi_document_declares_the_schemes_it_enforces(secured: TestClient) -> None:
    doc: dict[str, Any] = secured.get("/openapi.json").json()
    assert set(doc["components"]["securitySchemes"]) == {"ingestToken", "readToken", "metricsBasic"}
    post = doc["paths"]["/api/v1/runs"]["post"]
    assert post["security"] == [{"ingestToken": []}]
    assert "401" in post["responses"]
    assert doc["paths"]["/metrics"]["get"]["security"] == [{"metricsBasic": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]


def test_the_openapi_document_has_no_schemes_when_everything_is_open(client: TestClient) -> None:
    doc: dict[str, Any] = client.get("/openapi.json").json()
    assert "securitySchemes" not in doc["components"]
    assert "401" not in doc["paths"]["/api/v1/runs"]["post"]["responses"]


def test_tokens_load_from_files_the_environment_and_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "ingest-tokens"
    token_file.write_text(f"# rotated 2025-06-01\n{INGEST_A}\n\n{INGEST_B}\n")
    users_file = tmp_path / "metrics-users"
    users_file.write_text(f"prometheus:{METRICS_PASSWORD}\n")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"security": {"read_tokens": [READ]}}))
    monkeypatch.setenv("AGENT_EXPORTER_SECURITY__INGEST_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AGENT_EXPORTER_SECURITY__METRICS_USERS_FILE", str(users_file))
    policy = AccessPolicy.of(load_settings(config).security)
    assert policy.allows(Access.INGEST, f"Bearer {INGEST_A}")[0]
    assert policy.allows(Access.INGEST, f"Bearer {INGEST_B}")[0]
    assert policy.allows(Access.READ, f"Bearer {READ}")[0]
    assert policy.allows(Access.METRICS, basic("prometheus", METRICS_PASSWORD)["authorization"])[0]
    monkeypatch.setenv("AGENT_EXPORTER_SECURITY__READ_TOKENS", f'["{INGEST_B}"]')
    policy = AccessPolicy.of(load_settings(config).security)  # the environment beats the file
    assert (len(policy.ingest), len(policy.read), len(policy.metrics)) == (2, 1, 1)
    assert policy.allows(Access.READ, f"Bearer {INGEST_B}")[0]
    assert not policy.allows(Access.READ, f"Bearer {READ}")[0]


@pytest.mark.parametrize(
    ("security", "message"),
    [
        ({"ingest_tokens": ["short-token"]}, "security.ingest_tokens: Value error, tokens: a token must be"),
        ({"read_tokens": ["has a space in it, sixteen+"]}, "a token may hold letters, digits and"),
        ({"ingest_token_file": "/nonexistent/tokens"}, "cannot read token file /nonexistent/tokens"),
        ({"metrics_users": {"a:b": "pw"}}, "users need a name without ':' and a non-empty password"),
        ({"cors_allow_origins": ["example.com"]}, "'example.com': an origin is scheme://host[:port]"),
    ],
)
def test_bad_security_settings_stop_the_start_naming_the_key_not_the_secret(
    security: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(security=security)
    text = " ".join(str(info.value).split())
    assert message in text
    assert "short-token" not in text
    assert "has a space" not in text


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "tokens"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=f"token file {empty} holds no token"):
        load_settings(security={"ingest_token_file": str(empty)})


def test_every_token_is_compared_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return compare(a, b)

    policy = AccessPolicy.of(SecuritySettings.model_validate({"ingest_tokens": [INGEST_A, INGEST_B, READ]}))
    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert policy.allows(Access.INGEST, f"Bearer {INGEST_A}") == (True, "")
    assert len(calls) == 3  # a match on the first token does not end the loop early


def test_an_unconfigured_policy_leaves_everything_open() -> None:
    policy = AccessPolicy()
    for method, path in (("POST", RUNS), ("GET", "/api/v1/runs"), ("GET", "/metrics")):
        assert policy.needs(method, path) is Access.OPEN


def test_unknown_paths_and_methods_need_a_token_when_tokens_are_configured() -> None:
    policy = AccessPolicy(ingest=(b"x",), read=(b"y",))
    assert policy.needs("GET", "/anything") is Access.READ
    assert policy.needs("DELETE", "/api/v1/runs/x") is Access.INGEST
    assert policy.needs("POST", "/api/v1/reprice") is Access.INGEST
    assert policy.needs("GET", "/healthz") is Access.OPEN


def test_cors_is_off_by_default(client: TestClient) -> None:
    preflight = {"origin": "https://grafana.example", "access-control-request-method": "POST"}
    response = client.options(RUNS, headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    response = client.post(RUNS, json=record("r-1"), headers={"origin": "https://grafana.example"})
    assert response.status_code == 201
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_only_the_configured_origins(tmp_path: Path, registry: CollectorRegistry) -> None:
    security = {"cors_allow_origins": ["https://ops.example"], "ingest_tokens": [INGEST_A]}
    with make_client(f"sqlite:///{tmp_path / 'c.db'}", registry, security=security) as client:
        preflight = {
            "origin": "https://ops.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        }
        response = client.options(RUNS, headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://ops.example"
        response = client.options(RUNS, headers={**preflight, "origin": "https://evil.example"})
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers
        # a browser can read the 401 (and so tell its user why)
        response = client.post(RUNS, json=record("r-1"), headers={"origin": "https://ops.example"})
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == "https://ops.example"


def test_tokens_and_passwords_never_reach_the_log(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{INGEST_A}\n")
    wrong = "wrong-token-eeeeeeeeeeeeee"
    security = {"ingest_token_file": str(tokens), "metrics_users": {"prometheus": METRICS_PASSWORD}}
    # debug turns on uvicorn's access log, the likeliest place for a leak
    with exporter(tmp_path, config={"security": security, "log_level": "debug"}) as server:
        runs = f"{server.url}{RUNS}"
        assert httpx.post(runs, json=record("r-1"), headers=bearer(INGEST_A)).status_code == 201
        assert httpx.post(runs, json=record("r-2"), headers=bearer(wrong)).status_code == 401
        good, bad = basic("prometheus", METRICS_PASSWORD), basic("prometheus", wrong)
        assert httpx.get(f"{server.url}/metrics", headers=good).status_code == 200
        assert httpx.get(f"{server.url}/metrics", headers=bad).status_code == 401
        wait_until(lambda: "refused GET /metrics" in server.log(), 10, "the refusal to be logged")
    log = server.log()
    assert "refused POST /api/v1/runs from 127.0.0.1: the token is not valid for ingest" in log
    assert "access control: 1 ingest token(s), 0 read token(s), 1 /metrics user(s)" in log
    assert '"POST /api/v1/runs HTTP/1.1" 201' in log  # the access log was on
    for secret in (INGEST_A, wrong, METRICS_PASSWORD, good["authorization"][6:], bad["authorization"][6:]):
        assert secret not in log


def test_serve_binds_to_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_EXPORTER_")}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_exporter", "serve", "--port", str(port),
             "--database-url", f"sqlite:///{tmp_path / 'bind.db'}"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200, 30, "serve"
        )
        listening = _listening_addresses(port)
    finally:
        process.terminate()
        process.wait(30)
    assert listening == {"127.0.0.1"}
    assert f"Uvicorn running on http://127.0.0.1:{port}" in log_path.read_text()


def _listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.add(re.sub("(.{4})", r"\1:", address).rstrip(":"))
    return found
