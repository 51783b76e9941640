"""Every metric the exporter exposes, defined in one place against an injected registry.

Names follow one rule: `agent_` for what the agents did, `agent_exporter_` for the service itself,
base units in the name (`_seconds`, `_usd`, `_tokens`), `_total` on counters. Runs are counted when
they are stored (the time Prometheus sees), never with explicit sample timestamps.

Label values come from bounded sets. Every label has a cap on distinct values (configurable); past
it, values become `other` and the overflow is counted in `agent_exporter_label_overflow_total`.
`run_id` is never a label: it travels as an exemplar on the histograms (OpenMetrics exposition),
so a dashboard can jump from an outlier to the run.
"""

from __future__ import annotations

import math
import platform
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client import generate_latest as text_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .exposition import FamilySet, Key
from .outcome import Outcome
from .record import CostSource, PipelineStatus, Run, Status

_C = TypeVar("_C", bound=Collector)

# `_created` series double the exposition and Prometheus does not use them in the text format.
disable_created_metrics()

UNKNOWN: Final = "unknown"  # label value of a dimension the run did not report
OTHER: Final = "other"  # label value past a label's cap

# Durations of agent runs: seconds to two hours (OpenTelemetry's GenAI boundaries, extended).
DURATION_BUCKETS: Final = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200)
# Phases are steps of a run: sub-second to an hour.
PHASE_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Tokens per run by powers of 4 up to 64M (runs reach several million input tokens).
TOKEN_BUCKETS: Final = tuple(4**k for k in range(4, 14))  # 256 .. 67,108,864
# Cost per run, USD: a cent to a hundred dollars.
COST_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100)
# LLM and tool calls per run: 1 to 512.
CALL_BUCKETS: Final = tuple(2**k for k in range(10))  # 1 .. 512
# Scores given to runs after they ended: 0..1 in tenths.
SCORE_BUCKETS: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: how a debugging cycle ended
RESOLUTIONS: Final = ("resolved", "unresolved")
# Receipt time minus ended_at: agents post on completion, clients retry for minutes, backfills run late.
LAG_BUCKETS: Final = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 21600, 86400)
# Runs per store transaction (group commit).
GROUP_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
# The exporter's own HTTP handlers and store writes.
HTTP_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

EXEMPLAR_MAX_RUNES: Final = 128  # OpenMetrics limit on an exemplar's label names and values together

#: what became of an OTLP span
OTLP_SPAN_OUTCOMES: Final = ("accepted", "rejected", "dropped", "late", "ignored")
_STATUS_VALUES: Final = {status: status.value for status in Status}
_PIPELINE_VALUES: Final = tuple(status.value for status in PipelineStatus)

#: labels an operator may drop from the agent metrics (agent and status carry the alerts)
DROPPABLE: Final = frozenset({"model", "issue_type"})
#: run fields an operator may add as labels, besides `labels.<key>`
PROMOTABLE: Final = frozenset({"project", "team", "environment", "provider", "agent_version"})


@dataclass(frozen=True)
class LabelConfig:
    """Which labels the agent metrics carry, and how many distinct values each may take."""

    extra: Sequence[str] = ()  # run fields (PROMOTABLE) or `labels.<key>`
    drop: Sequence[str] = ()  # members of DROPPABLE
    limits: Mapping[str, int] = field(default_factory=dict)
    default_limit: int = 100

    def label_name(self, source: str) -> str:
        """The Prometheus label name for an extra label source (`labels.tier` becomes `tier`)."""
        return source.removeprefix("labels.")


class LabelLimiter:
    """Caps the distinct values of each label; values past the cap become `other`."""

    def __init__(self, limits: Mapping[str, int], default_limit: int, overflow: Counter) -> None:
        self._limits = dict(limits)
        self._default = default_limit
        self._seen: dict[str, set[str]] = {}
        self._overflow = overflow
        self._lock = threading.Lock()

    def __call__(self, label: str, value: str | None) -> str:
        """The label value to use for `value` of `label`."""
        if value is None or value == "":
            return UNKNOWN
        seen = self._seen.get(label)
        if seen is not None and value in seen:  # the common case, without the lock
            return value
        with self._lock:
            seen = self._seen.setdefault(label, set())
            if value in seen:
                return value
            if len(seen) >= self._limits.get(label, self._default):
                self._overflow.labels(label).inc()
                return OTHER
            seen.add(value)
            return value

    def seen(self, label: str) -> set[str]:
        """The values of `label` admitted so far (live: it grows as values are admitted).

        `value in limiter.seen(label)` means `limiter(label, value) == value`, without the call.
        """
        seen = self._seen.get(label)
        if seen is None:
            with self._lock:
                seen = self._seen.setdefault(label, set())
        return seen


class Metrics:
    """The exporter's metrics, all registered on one registry (tests build their own).

    The agent metrics live in cached families (`exposition.FamilySet`); the service's own metrics
    are prometheus_client objects. `render` produces the scrape from both.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        labels: LabelConfig | None = None,
        *,
        version: str = "0.0.0",
        process_collectors: bool = True,
    ) -> None:
        self.registry = registry
        self.config = labels or LabelConfig()
        cfg = self.config
        self._extra_sources = list(cfg.extra)
        extra = [cfg.label_name(s) for s in cfg.extra]

        self._run_base = [n for n in ("agent", "model", "issue_type") if n not in cfg.drop]
        self._model_base = [n for n in ("agent", "model") if n not in cfg.drop]
        run_dims = self._run_base + extra
        model_dims = self._model_base + extra
        self._last_run: dict[str, float] = {}
        self._seen_run_keys: set[Key] = set()
        self._seen_cost_keys: set[Key] = set()

        # the service's own metrics: rendered by prometheus_client from a registry of their own
        self._service = CollectorRegistry(auto_describe=True)
        self.label_overflow = self._own(
            Counter(
                "agent_exporter_label_overflow",
                "Label values replaced by 'other' because the label reached its cap of distinct values.",
                ["label"],
                registry=None,
            )
        )
        self.limit = LabelLimiter(cfg.limits, cfg.default_limit, self.label_overflow)
        for label in (*self._run_base, "tool", "phase", "subagent", "score_name", "score_source", *extra):
            # a zero before the first overflow, so increase() and the overflow alert see the first one
            self.label_overflow.labels(label)

        f = self.families = FamilySet()
        self.runs = f.counter("agent_runs", "Completed agent runs, by outcome.", [*run_dims, "status"])
        self.unpriced_runs = f.counter(
            "agent_runs_unpriced",
            "Runs without a reported cost whose model has no known price "
            "(their cost is not in agent_cost_usd_total).",
            model_dims,
        )
        self.tokens = f.counter(
            "agent_tokens",
            "Tokens used by runs; input includes cache reads and writes, output includes reasoning.",
            [*model_dims, "token_type"],
        )
        self.cache_read_tokens = f.counter(
            "agent_cache_read_tokens", "Input tokens read from the prompt cache.", model_dims
        )
        self.cache_write_tokens = f.counter(
            "agent_cache_write_tokens", "Input tokens written to the prompt cache.", model_dims
        )
        self.reasoning_tokens = f.counter(
            "agent_reasoning_tokens", "Output tokens spent on reasoning.", model_dims
        )
        self.cost = f.counter(
            "agent_cost_usd",
            "Cost of runs in US dollars, reported by the agent or estimated from tokens, by the run's "
            "status (what failed runs cost).",
            [*model_dims, "cost_source", "status"],
        )
        self.llm_calls = f.counter("agent_llm_calls", "LLM calls made by runs.", model_dims)
        self.tool_calls = f.counter("agent_tool_calls", "Tool calls made by runs.", ["agent", "tool"])
        self.tool_errors = f.counter("agent_tool_errors", "Tool calls that failed.", ["agent", "tool"])
        self.run_duration = f.histogram(
            "agent_run_duration_seconds",
            "Wall-clock duration of runs.",
            [*model_dims, "status"],
            DURATION_BUCKETS,
        )
        self.run_tokens = f.histogram(
            "agent_run_tokens", "Tokens (input plus output) per run.", model_dims, TOKEN_BUCKETS
        )
        self.run_cost = f.histogram(
            "agent_run_cost_usd",
            "Cost per run in US dollars (runs with a known cost).",
            model_dims,
            COST_BUCKETS,
        )
        self.run_llm_calls = f.histogram(
            "agent_run_llm_calls", "LLM calls per run.", model_dims, CALL_BUCKETS
        )
        self.run_tool_calls = f.histogram(
            "agent_run_tool_calls", "Tool calls per run.", model_dims, CALL_BUCKETS
        )
        self.phase_duration = f.histogram(
            "agent_phase_duration_seconds",
            "Duration of run phases (plan, edit, test, review, pipeline attempts, ...).",
            ["agent", "phase"],
            PHASE_BUCKETS,
        )
        self.pipeline_attempts = f.counter(
            "agent_pipeline_attempts",
            "Pipeline (CI) attempts reported by runs, by status; first_attempt says whether it was a "
            "run's first.",
            ["agent", "status", "first_attempt"],
        )
        self.debugging_cycles = f.counter(
            "agent_debugging_cycles",
            "Debugging cycles reported by runs (a failure the agent had to rework), by resolution.",
            ["agent", "resolution"],
        )
        self.subagent_retries = f.counter(
            "agent_subagent_retries",
            "Retries of the sub-agents inside runs (coding, testing, review, ...).",
            ["agent", "subagent"],
        )
        self.run_score = f.histogram(
            "agent_run_score",
            "Scores given to runs after they ended (0..1), counted when the score arrives.",
            ["agent", "name", "source"],
            SCORE_BUCKETS,
        )
        self.last_run = f.gauge(
            "agent_last_run_timestamp_seconds",
            "End time (Unix seconds) of the newest run stored for the agent.",
            ["agent"],
        )
        registry.register(f)

        self.records = self._own(
            Counter(
                "agent_exporter_records",
                "Records received, by outcome: accepted, duplicate (stored already, counted once), "
                "conflict (stored already with a different body), rejected (invalid).",
                ["outcome"],
                registry=None,
            )
        )
        self.rejected = self._own(
            Counter(
                "agent_exporter_records_rejected",
                "Records (or whole requests that could not be split into records) rejected, by rule.",
                ["reason"],
                registry=None,
            )
        )
        self.ingest_lag = self._own(
            Histogram(
                "agent_exporter_ingest_lag_seconds",
                "Receipt time minus the run's reported ended_at.",
                buckets=LAG_BUCKETS,
                registry=None,
            )
        )
        self.store_errors = self._own(
            Counter(
                "agent_exporter_store_errors",
                "Store operations that failed, by operation (write, read, ping).",
                ["operation"],
                registry=None,
            )
        )
        self.write_duration = self._own(
            Histogram(
                "agent_exporter_store_write_duration_seconds",
                "Time to store one group of runs (one transaction, committed).",
                buckets=HTTP_BUCKETS,
                registry=None,
            )
        )
        self.write_size = self._own(
            Histogram(
                "agent_exporter_store_write_runs",
                "Runs stored per transaction: requests that arrive together share one commit.",
                buckets=GROUP_BUCKETS,
                registry=None,
            )
        )
        self.http_duration = self._own(
            Histogram(
                "agent_exporter_http_request_duration_seconds",
                "Time to answer HTTP requests, by route template, method and status code.",
                ["handler", "method", "code"],
                buckets=HTTP_BUCKETS,
                registry=None,
            )
        )
        self.otlp_spans = self._own(
            Counter(
                "agent_exporter_otlp_spans",
                "OTLP spans received, by outcome: accepted (held for their trace), rejected (invalid), "
                "dropped (over the pending bounds), late (their trace's runs were written already: the runs "
                "are unchanged), ignored (no GenAI meaning).",
                ["outcome"],
                registry=None,
            )
        )
        self.otlp_pending = self._own(
            Gauge(
                "agent_exporter_otlp_spans_pending",
                "OTLP spans held in the store until their trace is assembled.",
                registry=None,
            )
        )
        self.build_info = self._own(
            Gauge(
                "agent_exporter_build_info",
                "Always 1; the labels say which version is running.",
                ["version", "python_version"],
                registry=None,
            )
        )
        self.build_info.labels(version, platform.python_version()).set(1)
        self._outcome_children = {outcome: self.records.labels(outcome.value) for outcome in Outcome}
        self._http_children: dict[tuple[str, str, int], Any] = {}
        for operation in ("write", "read", "ping"):
            self.store_errors.labels(operation)
        for outcome in OTLP_SPAN_OUTCOMES:
            self.otlp_spans.labels(outcome)
        if process_collectors:
            for collector in (
                ProcessCollector(registry=self._service),
                PlatformCollector(registry=self._service),
                GCCollector(registry=self._service),
            ):
                registry.register(collector)

    def _own(self, collector: _C) -> _C:
        self._service.register(collector)
        self.registry.register(collector)
        return collector

    def render(self, openmetrics: bool) -> bytes:
        """The scrape: the agent families from their caches, then the service's own metrics."""
        agent = self.families.render(openmetrics).encode()
        service: bytes = openmetrics_latest(self._service) if openmetrics else text_latest(self._service)
        return agent + service  # OpenMetrics: the service part ends the document with "# EOF"

    # -- counting runs -------------------------------------------------------------------------

    def _extra_values(self, run: Run) -> tuple[str, ...]:
        values = []
        for source in self._extra_sources:
            raw = (
                run.labels.get(source[len("labels.") :])
                if source.startswith("labels.")
                else getattr(run, source)
            )
            values.append(self.limit(self.config.label_name(source), raw))
        return tuple(values)

    def observe_run(self, run: Run) -> None:
        """Count one run that the store has just committed.

        This runs once per stored run, under the families' lock: the common case (no per-model
        breakdown, label values seen before) is kept to dictionary look-ups and tuple building.
        """
        # each label value is resolved once per run, so an overflow counts once per run and label
        limit = self.limit
        agent = limit("agent", run.agent)
        models = {run.model: limit("model", run.model)}
        for line in run.usage:
            if line.model not in models:
                models[line.model] = limit("model", line.model)
        values = {
            "agent": agent,
            "model": models[run.model],
            "issue_type": limit("issue_type", run.issue_type),
        }
        extra = self._extra_values(run) if self._extra_sources else ()
        # a value seen before is its own label value: the limiter's set says so without a call
        tool_seen, phase_seen = limit.seen("tool"), limit.seen("phase")
        tools = [(t.name if t.name in tool_seen else limit("tool", t.name), t) for t in run.tools]
        phases = [(p.name if p.name in phase_seen else limit("phase", p.name), p) for p in run.phases]
        model_base = self._model_base

        def model_key(model: str | None) -> tuple[str, ...]:
            return (*[agent if n == "agent" else models[model] for n in model_base], *extra)

        run_key = (*[values[n] for n in self._run_base], *extra)
        primary = model_key(run.model)
        status = _STATUS_VALUES[run.status]
        exemplar = run.run_id if len("run_id") + len(run.run_id) <= EXEMPLAR_MAX_RUNES else None
        now = time.time()  # the exemplars' timestamp
        with self.families.lock:  # one run is one consistent update of every family
            if run_key not in self._seen_run_keys:
                # failure series exist before the first failure, so ratios and alerts see a zero
                self._seen_run_keys.add(run_key)
                for value in _STATUS_VALUES.values():
                    self.runs.touch((*run_key, value))
            self.runs.inc((*run_key, status))

            if run.usage:
                for model, part in _per_model_parts(run).items():
                    self._count_part(model_key(model), part, status)
            else:
                self._count_own(primary, run, status)
            if run.pipeline_attempts or run.debugging_cycles or run.subagents:
                self._count_workflow(agent, run)

            self.run_duration.observe((*primary, status), run.duration_seconds, exemplar, now)
            if (tokens := run.total_tokens) is not None:
                self.run_tokens.observe(primary, tokens, exemplar, now)
            if run.cost_usd is not None:
                self.run_cost.observe(primary, run.cost_usd, exemplar, now)
            if run.llm_calls is not None:
                self.run_llm_calls.observe(primary, run.llm_calls, exemplar, now)
            if run.tool_calls is not None:
                self.run_tool_calls.observe(primary, run.tool_calls, exemplar, now)
            for name, tool in tools:
                if tool.calls:
                    self.tool_calls.inc((agent, name), tool.calls)
                if tool.errors:
                    self.tool_errors.inc((agent, name), tool.errors)
            phase_duration = self.phase_duration
            for name, phase in phases:
                phase_duration.observe((agent, name), phase.duration_seconds, exemplar, now)
            if run.ended_at > self._last_run.get(agent, 0.0):
                # late records must not move an agent's last-seen time backwards
                self._last_run[agent] = run.ended_at
                self.last_run.set((agent,), run.ended_at)
        if run.ended_at_reported:
            self.ingest_lag.observe(max(0.0, run.received_at - run.ended_at))

    def _count_own(self, key: tuple[str, ...], run: Run, status: str) -> None:
        """The counters of a run without a per-model breakdown: all of it goes to its model."""
        self._count_tokens(key, run)
        if run.cost_usd is None:
            self.unpriced_runs.inc(key)
        else:
            self._count_cost((*key, run.cost_source.value), status, run.cost_usd)

    def _count_part(self, key: tuple[str, ...], part: _Part, status: str) -> None:
        """The counters of one model's share of a run."""
        self._count_tokens(key, part)
        if part.unpriced:
            self.unpriced_runs.inc(key)
        if part.cost_usd is not None and part.cost_source is not None:
            self._count_cost((*key, part.cost_source.value), status, part.cost_usd)

    def _count_cost(self, key: tuple[str, ...], status: str, usd: float) -> None:
        """Cost by status. Every status of a new (agent, model, cost_source) starts at zero, so that
        increase() sees the first failed run's cost: a series born mid-range loses its first value."""
        if key not in self._seen_cost_keys:
            self._seen_cost_keys.add(key)
            for value in _STATUS_VALUES.values():
                self.cost.touch((*key, value))
        self.cost.inc((*key, status), usd)

    def _count_workflow(self, agent: str, run: Run) -> None:
        """Pipeline attempts, debugging cycles and sub-agent retries (under the families' lock)."""
        if run.pipeline_attempts:
            for value in _PIPELINE_VALUES:  # a failed first attempt is a zero before it happens
                for first in ("true", "false"):
                    self.pipeline_attempts.touch((agent, value, first))
            for i, attempt in enumerate(run.pipeline_attempts):
                self.pipeline_attempts.inc((agent, attempt.status.value, "true" if i == 0 else "false"))
        if run.debugging_cycles:
            for resolution in RESOLUTIONS:
                self.debugging_cycles.touch((agent, resolution))
            for cycle in run.debugging_cycles:
                self.debugging_cycles.inc((agent, RESOLUTIONS[0] if cycle.resolved else RESOLUTIONS[1]))
        for sub in run.subagents:
            if sub.retries:
                self.subagent_retries.inc((agent, self.limit("subagent", sub.name)), sub.retries)

    def observe_score(self, agent: str, name: str, source: str | None, value: float, run_id: str) -> None:
        """Count one score that the store has just committed (a score sent again counts nothing)."""
        key = (self.limit("agent", agent), self.limit("score_name", name), self.limit("score_source", source))
        exemplar = run_id if len("run_id") + len(run_id) <= EXEMPLAR_MAX_RUNES else None
        with self.families.lock:
            self.run_score.observe(key, value, exemplar, time.time())

    def _count_tokens(self, key: tuple[str, ...], usage: Run | _Part) -> None:
        """The token and LLM-call counters of `usage` (a whole run, or one model's share of it)."""
        if usage.input_tokens:
            self.tokens.inc((*key, "input"), usage.input_tokens)
        if usage.output_tokens:
            self.tokens.inc((*key, "output"), usage.output_tokens)
        if usage.cache_read_tokens:
            self.cache_read_tokens.inc(key, usage.cache_read_tokens)
        if usage.cache_write_tokens:
            self.cache_write_tokens.inc(key, usage.cache_write_tokens)
        if usage.reasoning_tokens:
            self.reasoning_tokens.inc(key, usage.reasoning_tokens)
        if usage.llm_calls:
            self.llm_calls.inc(key, usage.llm_calls)

    def observe_http(self, handler: str, method: str, status: int, seconds: float) -> None:
        """Time one HTTP request (its route template, method and status code)."""
        key = (handler, method, status)
        child = self._http_children.get(key)
        if child is None:  # labels() validates and locks: once per key, not once per request
            child = self._http_children[key] = self.http_duration.labels(handler, method, str(status))
        child.observe(seconds)

    def observe_outcome(self, outcome: Outcome) -> None:
        """Count one record stored (accepted), found stored (duplicate) or in conflict."""
        self._outcome_children[outcome].inc()

    def observe_rejection(self, reason: str, count: int = 1) -> None:
        """Count `count` rejected records (or requests) for `reason` (a closed set of rule names)."""
        self._outcome_children[Outcome.REJECTED].inc(count)
        self.rejected.labels(reason).inc(count)


@dataclass(slots=True)
class _Part:
    """What one model contributed to a run's counters."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    llm_calls: int = 0
    cost_usd: float | None = None
    cost_source: CostSource | None = None
    unpriced: bool = False


_SPLIT_FIELDS: Final = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_tokens", "cache_read_tokens"),
    ("cache_write_tokens", "cache_write_tokens"),
    ("reasoning_tokens", "reasoning_tokens"),
    ("llm_calls", "calls"),
)


def _per_model_parts(run: Run) -> dict[str | None, _Part]:
    """Split a run's counts by model.

    A total that is the sum of the run's per-model breakdown is counted per model; a total the
    agent reported on its own (one the breakdown does not add up to) goes to the run's model.
    """
    parts: dict[str | None, _Part] = {}
    lines = run.usage

    def part(model: str | None) -> _Part:
        return parts.setdefault(model, _Part())

    for run_field, line_field in _SPLIT_FIELDS:
        total: int | None = getattr(run, run_field)
        if total is None:
            continue
        if lines and total == sum(getattr(u, line_field) or 0 for u in lines):
            for u in lines:
                p = part(u.model)
                setattr(p, run_field, getattr(p, run_field) + (getattr(u, line_field) or 0))
        else:
            p = part(run.model)
            setattr(p, run_field, getattr(p, run_field) + total)

    if run.cost_usd is None:
        part(run.model).unpriced = True
    elif (
        lines
        and all(u.cost_usd is not None for u in lines)
        and math.isclose(run.cost_usd, sum(u.cost_usd or 0.0 for u in lines), rel_tol=1e-9, abs_tol=1e-12)
    ):
        for u in lines:
            p = part(u.model)
            p.cost_usd = (p.cost_usd or 0.0) + (u.cost_usd or 0.0)
            if p.cost_source is not CostSource.ESTIMATED:
                p.cost_source = u.cost_source
    else:
        p = part(run.model)
        p.cost_usd, p.cost_source = run.cost_usd, run.cost_source
    return parts
