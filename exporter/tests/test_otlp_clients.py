"""Real instrumentation libraries, driven offline, exported by the official OpenTelemetry SDK's
OTLP/HTTP exporter to a real exporter process: the runs equal what the frameworks report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic_ai import Agent
from pydantic_ai.capabilities.instrumentation import Instrumentation
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.test import TestModel

from .otlp_support import export, openai_stub, run_id_of, tracing, wait_for_run
from .scrape import scrape
from .support import ExporterProcess, exporter, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    with exporter(tmp_path_factory.mktemp("otlp"), config={"otlp": {"grace_seconds": 0.2}}) as process:
        yield process


def _agent(name: str, provider: TracerProvider, model: Any) -> Agent[None, str]:
    settings = InstrumentationSettings(tracer_provider=provider, include_content=False)
    agent: Agent[None, str] = Agent(model, name=name, capabilities=[Instrumentation(settings)])

    @agent.tool_plain
    def grep(pattern: str) -> str:
        """Search the code."""
        return f"3 matches for {pattern}"

    return agent


def _agent_span(memory: Any) -> Any:
    return next(s for s in memory.get_finished_spans() if s.name.startswith("invoke_agent"))


def test_a_pydantic_ai_run_is_stored_and_counted_as_the_framework_reports_it(server: ExporterProcess) -> None:
    with tracing() as (provider, memory):
        result = _agent("pai-fixer", provider, TestModel()).run_sync("fix the flaky test")
        spans = memory.get_finished_spans()
        export(server.url, spans)
    usage = result.usage
    run = wait_for_run(server.url, run_id_of(_agent_span(memory)))

    assert (run["agent"], run["status"], run["model"]) == ("pai-fixer", "success", "test")
    assert (run["input_tokens"], run["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert (run["llm_calls"], run["tool_calls"]) == (usage.requests, usage.tool_calls)
    assert [(t["name"], t["calls"], t["errors"]) for t in run["tools"]] == [("grep", 1, 0)]
    assert run["session_id"] == _agent_span(memory).attributes["gen_ai.conversation.id"]
    metrics = scrape(server.url)
    assert metrics.total("agent_runs_total", agent="pai-fixer", status="success") == 1
    assert metrics.total("agent_tokens_total", agent="pai-fixer", token_type="input") == usage.input_tokens
    assert metrics.total("agent_tokens_total", agent="pai-fixer", token_type="output") == usage.output_tokens
    assert metrics.total("agent_llm_calls_total", agent="pai-fixer") == usage.requests
    assert metrics.value("agent_tool_calls_total", agent="pai-fixer", tool="grep") == 1


def test_a_crashed_agent_is_a_failed_run(server: ExporterProcess) -> None:
    def crash(_messages: list[ModelMessage], _info: AgentInfo) -> ModelResponse:
        raise RuntimeError("the model backend went away")

    with tracing() as (provider, memory):
        with pytest.raises(RuntimeError):
            _agent("pai-crasher", provider, FunctionModel(crash)).run_sync("fix it")
        export(server.url, memory.get_finished_spans())
    run = wait_for_run(server.url, run_id_of(_agent_span(memory)))
    assert (run["agent"], run["status"], run["error_type"]) == ("pai-crasher", "error", "RuntimeError")
    assert scrape(server.url).total("agent_runs_total", agent="pai-crasher", status="error") == 1


def test_the_same_spans_sent_twice_count_once(server: ExporterProcess) -> None:
    with tracing() as (provider, memory):
        _agent("pai-twice", provider, TestModel()).run_sync("fix it")
        spans = memory.get_finished_spans()
    export(server.url, spans)
    wait_for_run(server.url, run_id_of(_agent_span(memory)))
    late_before = scrape(server.url).total("agent_exporter_otlp_spans_total", outcome="late")
    export(server.url, spans)
    wait_until(
        lambda: (
            scrape(server.url).total("agent_exporter_otlp_spans_total", outcome="late")
            == late_before + len(spans)
        ),
        10,
        "the spans sent again to be counted late",
    )
    runs = httpx.get(f"{server.url}/api/v1/runs", params={"agent": "pai-twice"}, timeout=5).json()["runs"]
    assert len(runs) == 1
    assert scrape(server.url).total("agent_runs_total", agent="pai-twice") == 1


def test_spans_split_over_requests_make_one_run(server: ExporterProcess, tmp_path: Path) -> None:
    with tracing() as (provider, memory):
        result = _agent("pai-split", provider, TestModel()).run_sync("fix it")
        spans = memory.get_finished_spans()
    root = _agent_span(memory)
    children = [s for s in spans if s is not root]
    for child in reversed(children):  # one request a span, in reverse order, the root last
        export(server.url, [child])
    export(server.url, [root])
    run = wait_for_run(server.url, run_id_of(root))
    assert (run["llm_calls"], run["tool_calls"]) == (result.usage.requests, result.usage.tool_calls)
    assert run["input_tokens"] == result.usage.input_tokens


def test_openai_sdk_calls_instrumented_by_openai_v2_are_one_run_of_the_service(
    server: ExporterProcess,
) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()  # type: ignore[no-untyped-call]
    with tracing("triage-bot") as (provider, memory), openai_stub() as base_url:
        instrumentor.instrument(tracer_provider=provider)
        try:
            client = openai.OpenAI(base_url=base_url, api_key="offline", max_retries=0)
            with provider.get_tracer("triage").start_as_current_span("triage ticket 42") as root:
                answers = [
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": q}]
                    )
                    for q in ("what broke?", "who owns it?")
                ]
        finally:
            instrumentor.uninstrument()
        export(server.url, memory.get_finished_spans())
    run = wait_for_run(server.url, run_id_of(root))
    usage = [a.usage for a in answers if a.usage is not None]
    assert (run["agent"], run["status"], run["model"], run["llm_calls"]) == (
        "triage-bot",
        "success",
        answers[0].model,
        len(answers),
    )
    assert run["input_tokens"] == sum(u.prompt_tokens for u in usage)
    assert run["output_tokens"] == sum(u.completion_tokens for u in usage)
    metrics = scrape(server.url)
    assert metrics.total("agent_llm_calls_total", agent="triage-bot") == len(answers)
    assert metrics.total("agent_tokens_total", agent="triage-bot", token_type="input") == run["input_tokens"]
