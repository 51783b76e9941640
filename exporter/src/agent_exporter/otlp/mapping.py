"""OpenTelemetry GenAI spans of one trace -> run records (docs/otlp.md has the table).

An `invoke_agent` span is a run; a nested one is a sub-run whose parent is the nearest enclosing
run. A trace with model spans but no `invoke_agent` span is one run: its root span's. Each span
belongs to the nearest run above it: model spans (`chat`, `text_completion`, `generate_content`,
`embeddings`, or any span with `gen_ai.request.model`) are its LLM calls and per-model usage,
`execute_tool` spans its tools, and its other direct children its phases. Spans under no run, and
deeper spans with no GenAI meaning, are ignored (and counted).

Both the current attribute names and the previous ones are read (`gen_ai.provider.name` and
`gen_ai.system`, `gen_ai.usage.input_tokens` and `gen_ai.usage.prompt_tokens`, ...). Tokens are
made inclusive as the run record has them: cache reads and writes inside input, reasoning inside
output; an instrumentation that reports them beside the total (a cache count larger than the
input, as Anthropic's API does) is added up first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from .codec import Scalar, Span

RUN_ID_PREFIX: Final = "otlp-"
MODEL_OPERATIONS: Final = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
MAX_NAME: Final = 128
MAX_ERROR_TYPE: Final = 64
MAX_PHASES: Final = 256
UNKNOWN_AGENT: Final = "unknown"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# (current name, previous names...)
_PROVIDER: Final = ("gen_ai.provider.name", "gen_ai.system")
_INPUT: Final = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
_OUTPUT: Final = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
_CACHE_READ: Final = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cache_read_tokens",
)
_CACHE_WRITE: Final = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.cache_write_tokens",
)
_REASONING: Final = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.usage.output_tokens_details.reasoning_tokens",
)
_MODEL: Final = ("gen_ai.response.model", "gen_ai.request.model")


def run_id(trace_id: str, span_id: str) -> str:
    """The run id of the run that span `span_id` of trace `trace_id` is: stable, so re-sent spans
    make the same run."""
    return f"{RUN_ID_PREFIX}{trace_id}-{span_id}"


@dataclass(slots=True)
class Mapped:
    """The run records made from one trace, and how many of its spans meant nothing to them."""

    records: list[dict[str, Any]]
    ignored: int


def _operation(span: Span) -> str:
    op = span.attributes.get("gen_ai.operation.name")
    if isinstance(op, str):
        return op
    return span.name.split(" ", 1)[0]


AGENT, TOOL, MODEL, OTHER = "agent", "tool", "model", "other"


def kind(span: Span) -> str:
    """`AGENT` (an `invoke_agent` span), `TOOL`, `MODEL` (a model call) or `OTHER`."""
    op = _operation(span)
    if op == "invoke_agent":
        return AGENT
    if op == "execute_tool":
        return TOOL
    if op in MODEL_OPERATIONS or "gen_ai.request.model" in span.attributes:
        return MODEL
    return OTHER


def _first(attributes: Mapping[str, Scalar], names: Sequence[str]) -> Scalar | None:
    for name in names:
        value = attributes.get(name)
        if value is not None and value != "":
            return value
    return None


def _count(attributes: Mapping[str, Scalar], names: Sequence[str]) -> int | None:
    value = _first(attributes, names)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not 0 <= value <= 10**12:  # NaN fails this too
        return None
    return int(value)


def _text(value: Scalar | None, limit: int = MAX_NAME) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    cleaned = _CONTROL.sub(" ", str(value)).strip()[:limit].strip()
    return cleaned or None


def _instant(nanos: int) -> str:
    return datetime.fromtimestamp(nanos / 1e9, UTC).isoformat()


def _tokens(span: Span) -> dict[str, int]:
    """The span's token counts, made inclusive."""
    a = span.attributes
    found = {
        "input_tokens": _count(a, _INPUT),
        "output_tokens": _count(a, _OUTPUT),
        "cache_read_tokens": _count(a, _CACHE_READ),
        "cache_write_tokens": _count(a, _CACHE_WRITE),
        "reasoning_tokens": _count(a, _REASONING),
    }
    out = {k: v for k, v in found.items() if v is not None}
    cache = out.get("cache_read_tokens", 0) + out.get("cache_write_tokens", 0)
    if cache and out.get("input_tokens", 0) < cache:  # reported beside the input, not inside it
        out["input_tokens"] = out.get("input_tokens", 0) + cache
    reasoning = out.get("reasoning_tokens", 0)
    if reasoning and out.get("output_tokens", 0) < reasoning:
        out["output_tokens"] = out.get("output_tokens", 0) + reasoning
    return out


def _status(span: Span) -> tuple[str, str | None, str | None]:
    """The run status, error_type and error_summary of a run span."""
    error_type = _text(
        span.attributes.get("error.type") or span.attributes.get("exception.type"), MAX_ERROR_TYPE
    )
    if not span.error and error_type is None:
        return "success", None, None
    lowered = (error_type or "").lower()
    if "timeout" in lowered:
        status = "timeout"
    elif "cancel" in lowered:
        status = "cancelled"
    else:
        status = "error"
    message = span.message or str(span.attributes.get("exception.message", ""))
    summary = _CONTROL.sub(" ", message).strip()[:4096] or None
    return status, error_type, summary


def map_trace(spans: Sequence[Span]) -> Mapped:
    """The run records of one trace's spans (distinct span ids)."""
    by_id = {s.span_id: s for s in spans}
    kinds = {s.span_id: kind(s) for s in spans}
    run_spans = {i for i, k in kinds.items() if k == AGENT}
    if not run_spans:
        # a trace with model calls and no agent span: the root above each model call is a run
        run_spans = {_root(s, by_id) for s in spans if kinds[s.span_id] == MODEL}
        if not run_spans:
            return Mapped([], len(spans))

    owner_cache: dict[str, str | None] = {}

    def owner(span_id: str) -> str | None:
        """The nearest run span strictly above `span_id` (None past a cycle of parents)."""
        path: list[str] = []
        current = by_id[span_id].parent_id
        found: str | None = None
        while current in by_id and len(path) <= len(by_id):
            if current in run_spans:
                found = current
                break
            if current in owner_cache:
                found = owner_cache[current]
                break
            path.append(current)
            current = by_id[current].parent_id
        for p in path:
            owner_cache[p] = found
        return found

    members: dict[str, _Members] = defaultdict(_Members)
    ignored = 0
    for span in spans:
        if span.span_id in run_spans:
            continue
        run = owner(span.span_id)
        k = kinds[span.span_id]
        if run is None:
            ignored += 1
        elif k == MODEL:
            members[run].models.append(span)
        elif k == TOOL:
            members[run].tools.append(span)
        elif k == OTHER and span.parent_id == run:
            members[run].phases.append(span)
        elif k != AGENT:
            ignored += 1
    records = []
    for run_span_id in sorted(run_spans):
        span = by_id[run_span_id]
        mine = members.get(run_span_id) or _Members()
        if not mine.models and kinds[run_span_id] == MODEL:
            mine.models.append(span)  # a model call that is its trace's root: the run is that one call
        records.append(_record(span, mine, owner(run_span_id)))
    return Mapped(records, ignored)


@dataclass(slots=True)
class _Members:
    models: list[Span] = field(default_factory=list)
    tools: list[Span] = field(default_factory=list)
    phases: list[Span] = field(default_factory=list)


def _root(span: Span, by_id: Mapping[str, Span]) -> str:
    """The topmost span above `span` among `by_id` (a cycle of parents stops the walk)."""
    steps = 0
    while span.parent_id in by_id and steps <= len(by_id):
        span = by_id[span.parent_id]
        steps += 1
    return span.span_id


def _record(span: Span, members: _Members, parent_run: str | None) -> dict[str, Any]:
    a = span.attributes
    is_run_agent = kind(span) == AGENT
    agent = (
        _text(a.get("gen_ai.agent.name"))
        or (_text(span.name.split(" ", 1)[1]) if is_run_agent and " " in span.name else None)
        or _text(a.get("service.name"))
        or UNKNOWN_AGENT
    )
    status, error_type, summary = _status(span)
    record: dict[str, Any] = {
        "run_id": run_id(span.trace_id, span.span_id),
        "agent": agent,
        "status": status,
        "started_at": _instant(span.start_ns),
        "ended_at": _instant(span.end_ns),
    }
    optional = {
        "agent_version": _text(a.get("gen_ai.agent.version") or a.get("service.version"), 64),
        "model": _text(a.get("gen_ai.request.model")) if is_run_agent else None,
        "provider": _text(_first(a, _PROVIDER)),
        "error_type": error_type,
        "error_summary": summary,
    }
    record.update({k: v for k, v in optional.items() if v is not None})
    record["labels"] = {"trace_id": span.trace_id}
    conversation = _text(a.get("gen_ai.conversation.id"))
    if conversation:
        record["session_id"] = conversation
    if parent_run is not None:
        record["parent_run_id"] = run_id(span.trace_id, parent_run)

    models = members.models
    if models:
        record["usage"] = _usage(models)
        record["llm_calls"] = len(models)
    else:
        record.update(_tokens(span))
        record["llm_calls"] = 0
    tools = members.tools
    record["tools"] = _tools(tools)
    record["tool_calls"] = len(tools)
    phases = sorted(members.phases, key=lambda m: (m.start_ns, m.span_id))[:MAX_PHASES]
    if phases:
        record["phases"] = [
            {
                "name": _text(p.name) or "unnamed",
                "duration_seconds": (p.end_ns - p.start_ns) / 1e9,
                "status": "error" if p.error else "success",
            }
            for p in phases
        ]
    return record


def _usage(models: list[Span]) -> list[dict[str, Any]]:
    lines: dict[tuple[str, str | None], dict[str, Any]] = {}
    for m in sorted(models, key=lambda s: (s.start_ns, s.span_id)):
        name = _text(_first(m.attributes, _MODEL)) or "unknown"
        provider = _text(_first(m.attributes, _PROVIDER))
        line = lines.setdefault((name, provider), {"model": name, "calls": 0})
        if provider is not None:
            line["provider"] = provider
        line["calls"] += 1
        for key, value in _tokens(m).items():
            line[key] = line.get(key, 0) + value
    return list(lines.values())[:MAX_PHASES]


def _tools(tools: list[Span]) -> list[dict[str, Any]]:
    by_name: dict[str, dict[str, Any]] = {}
    for t in sorted(tools, key=lambda s: (s.start_ns, s.span_id)):
        name = (
            _text(t.attributes.get("gen_ai.tool.name"))
            or (_text(t.name.split(" ", 1)[1]) if " " in t.name else None)
            or "unknown"
        )
        entry = by_name.setdefault(name, {"name": name, "calls": 0, "errors": 0, "duration_seconds": 0.0})
        entry["calls"] += 1
        if t.error or "error.type" in t.attributes:
            entry["errors"] += 1
        entry["duration_seconds"] += (t.end_ns - t.start_ns) / 1e9
    return list(by_name.values())[:MAX_PHASES]
