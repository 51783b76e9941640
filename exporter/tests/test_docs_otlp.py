"""docs/otlp.md's one setting, run as written: with `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` exported and
nothing else, the OpenTelemetry SDK's own OTLP/HTTP exporter sends an instrumented agent's spans to a
real exporter, which stores them as a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from .doc_examples import Shell, block_of
from .support import exporter, wait_until

OTLP = "docs/otlp.md"
ENDPOINT = block_of(OTLP, "export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=")
#: the blocks this module runs, for test_docs_inventory
BLOCKS = (ENDPOINT,)

# An agent instrumented by hand as the GenAI conventions have it: an invoke_agent span with one
# model call under it. The exporter is built without an endpoint: the variable names it.
AGENT = """
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

provider = TracerProvider(resource=Resource.create({"service.name": "docs-agents"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
tracer = provider.get_tracer("docs")
with tracer.start_as_current_span("invoke_agent docs-otel") as agent:
    agent.set_attribute("gen_ai.operation.name", "invoke_agent")
    agent.set_attribute("gen_ai.agent.name", "docs-otel")
    with tracer.start_as_current_span("chat claude-sonnet-4-5") as chat:
        chat.set_attribute("gen_ai.operation.name", "chat")
        chat.set_attribute("gen_ai.provider.name", "anthropic")
        chat.set_attribute("gen_ai.request.model", "claude-sonnet-4-5")
        chat.set_attribute("gen_ai.usage.input_tokens", 1200)
        chat.set_attribute("gen_ai.usage.output_tokens", 80)
provider.shutdown()
"""


def test_the_documented_variable_sends_an_agents_spans_as_a_run(tmp_path: Path) -> None:
    [command] = ENDPOINT.commands
    (tmp_path / "agent.py").write_text(AGENT)
    with exporter(tmp_path) as server:
        done = Shell(tmp_path, server.url).run(f"{command}\npython agent.py", timeout=30)
        assert (done.ok().stdout, done.stderr) == ("", "")

        def stored() -> list[dict[str, Any]]:
            runs: list[dict[str, Any]] = (
                httpx.get(f"{server.url}/api/v1/runs", params={"agent": "docs-otel"}, timeout=5)
                .raise_for_status()
                .json()["runs"]
            )
            return runs

        wait_until(stored, timeout=15, what="the run of the exported trace")
        [listed] = stored()
        run = httpx.get(f"{server.url}/api/v1/runs/{listed['run_id']}", timeout=5).json()
    assert run["run_id"].startswith("otlp-")
    assert (run["agent"], run["status"], run["model"]) == ("docs-otel", "success", "claude-sonnet-4-5")
    assert (run["input_tokens"], run["output_tokens"], run["llm_calls"]) == (1200, 80, 1)
    assert run["cost_source"] == "estimated"
    assert run["cost_usd"] == pytest.approx(1200 * 3e-6 + 80 * 15e-6)
