"""Schemathesis against the served OpenAPI document: no input gets a 5xx, every 4xx says why.

The real server runs on loopback on the real PostgreSQL. Every operation of the document is
fuzzed, with examples that fit the schema and examples that break it; the operations are read
from the application itself, so routes that other modules add are fuzzed without a line here.
The runs are bounded (`MAX_EXAMPLES` per operation and mode) and derandomized, so that a failure
reproduces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error

from agent_exporter.api.app import create_app
from agent_exporter.config import load_settings

from .support import ExporterProcess, start_exporter

MAX_EXAMPLES = 100  # per operation and mode: enough to reach every rule, few enough for seconds


def _cases() -> list[Any]:
    """(method, path, mode) for every operation; inputs that break the schema where it has inputs."""
    doc = create_app(load_settings(database_url="sqlite://")).openapi()
    cases = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            has_inputs = bool(operation.get("parameters") or operation.get("requestBody"))
            modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if has_inputs else [])
            cases += [
                pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode}")
                for mode in modes
            ]
    return cases


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[ExporterProcess]:
    server = start_exporter(tmp_path_factory.mktemp("fuzz"), database_url=pg_server_url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: ExporterProcess) -> Any:
    return schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")


def useful_client_error(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A 4xx carries JSON saying what was wrong: a coded message, or field errors per record."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    if "error" in body:
        assert body["error"]["code"], body
        assert len(body["error"]["message"]) > 10, body
        return True
    refused = [r for r in body["results"] if r["outcome"] in {"rejected", "conflict"}]
    assert refused, body
    for result in refused:
        assert result["errors"], result
        for error in result["errors"]:
            # the message leads with the field it is about: "runs[3].input_tokens: ..."
            assert error["message"].startswith(error["field"]), error
    return True


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_no_input_gets_a_server_error_and_every_refusal_says_why(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    sent: list[int] = []

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Case[Any]) -> None:
        response = case.call(timeout=10)
        sent.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error, useful_client_error])

    fuzz()
    print(f"{method} {path} {mode}: {len(sent)} requests, statuses {sorted(set(sent))}")
    assert sent


json_text = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
).map(lambda value: json.dumps(value).encode())  # big ints, NaN, Infinity too
bodies = (
    st.binary(max_size=300)
    | json_text
    | json_text.flatmap(
        lambda text: st.integers(0, max(len(text) - 1, 0)).map(lambda cut: text[:cut])  # truncated
    )
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded"]
) | st.just("")


@hypothesis.settings(max_examples=200, derandomize=True, database=None, deadline=None)
@hypothesis.given(body=bodies, content_type=content_types)
def test_arbitrary_bytes_never_get_a_server_error(
    fuzzed_server: ExporterProcess, body: bytes, content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = httpx.post(f"{fuzzed_server.url}/api/v1/runs", content=body, headers=headers, timeout=10)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        payload = response.json()
        assert payload.get("error", {}).get("message") or payload["results"][0]["errors"], payload
