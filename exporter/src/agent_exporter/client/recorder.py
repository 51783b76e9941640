"""`Run`: what an agent holds while a run is under way, and turns into one record when it ends.

    with client.run("fixer", model="claude-sonnet-4-5", issue_type="complexity") as run:
        run.llm_call("claude-sonnet-4-5", input_tokens=12_000, output_tokens=800, cost_usd=0.05)
        with run.phase("test"):
            run.tool_call("bash", duration_seconds=3.2)
        if not fixed:
            run.fail("3 tests still fail", error_type="tests_failed")

Every method returns in microseconds and never raises (a bad argument is counted and logged, the run
is still recorded). An exception leaving the block marks the run `error` (KeyboardInterrupt, SystemExit
and asyncio's CancelledError mark it `cancelled`) and is re-raised unchanged; a status set explicitly
with `fail`, `timeout` or `cancel` wins over it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import os
import re
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from .delivery import Delivery

F = TypeVar("F", bound=Callable[..., Any])

MAX_ERROR_SUMMARY = 4096  # the server's limit: longer summaries are cut, not rejected
MAX_ERROR_TYPE = 64
#: control characters the server refuses in free text (error_summary keeps tabs and line breaks) ...
TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: ... and in names (error_type), which keep none
NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_current: contextvars.ContextVar[Run | None] = contextvars.ContextVar("agent_exporter_run", default=None)
_CANCELLED_NAMES = frozenset({"KeyboardInterrupt", "SystemExit", "CancelledError", "GeneratorExit"})


class _RunIds:
    """Run ids `<64 random bits>-<counter>`: unique across processes, cheaper than a uuid per run."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)  # next() is atomic: threads never get the same number


_ids = _RunIds()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.reset)  # a forked child must not repeat the parent's ids


def new_run_id() -> str:
    """A new globally unique run id."""
    return f"{_ids.prefix}-{next(_ids.counter):x}"


def current_run() -> Run | None:
    """The innermost run being recorded in this thread or task, if any."""
    return _current.get()


def clean_text(text: str, limit: int, control: re.Pattern[str] = TEXT_CONTROL) -> str:
    """Text the server accepts: `control` characters replaced, cut to `limit` characters."""
    text = control.sub("?", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Run:
    """One run being recorded: a context manager, and a decorator that records one run per call."""

    __slots__ = (
        "_counts",
        "_cycles",
        "_delivery",
        "_ended",
        "_error_summary",
        "_error_type",
        "_fields",
        "_perf",
        "_phases",
        "_pipelines",
        "_retries",
        "_started",
        "_status",
        "_subagents",
        "_token",
        "_tools",
        "_usage",
        "run_id",
    )

    def __init__(self, delivery: Delivery, fields: dict[str, Any], run_id: str | None = None) -> None:
        self._delivery = delivery
        self._fields = fields
        self.run_id = run_id or new_run_id()
        self._usage: dict[tuple[str, str | None], list[Any]] | None = None
        self._tools: dict[str, list[Any]] | None = None
        self._phases: list[dict[str, Any]] | None = None
        self._subagents: dict[str, list[Any]] | None = None
        self._pipelines: list[dict[str, Any]] | None = None
        self._cycles: list[dict[str, Any]] | None = None
        self._counts: dict[str, int] | None = None
        self._retries = 0
        self._status: str | None = None
        self._error_type: str | None = None
        self._error_summary: str | None = None
        self._started = 0.0
        self._perf = 0.0
        self._ended = False
        self._token: contextvars.Token[Run | None] | None = None

    # timing -------------------------------------------------------------------------------------

    def __enter__(self) -> Run:
        self._started = time.time()
        self._perf = time.perf_counter()
        self._token = _current.set(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        duration = time.perf_counter() - self._perf
        if self._token is not None:
            # exited in another context (a generator, a callback): harmless
            with contextlib.suppress(ValueError):
                _current.reset(self._token)
            self._token = None
        if exc is not None:
            self._record_exception(exc)
        self._finish(duration)

    def __call__(self, func: F) -> F:
        """Use the run as a decorator: every call of `func` is recorded as a run of its own."""
        delivery, fields = self._delivery, self._fields
        if _is_coroutine_function(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with Run(delivery, dict(fields)):
                    return await func(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(func)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            with Run(delivery, dict(fields)):
                return func(*args, **kwargs)

        return cast(F, run_sync)

    # what happened during the run --------------------------------------------------------------

    def llm_call(
        self,
        model: str | None = None,
        *,
        provider: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        cost_usd: float | None = None,
        calls: int = 1,
    ) -> None:
        """Add one LLM call (or `calls` of them). Tokens are inclusive, as on the record:
        `input_tokens` includes cache reads and writes, `output_tokens` includes reasoning.
        Cost is summed when every call of a model reports it; otherwise the server estimates it."""
        try:
            model = model or self._fields.get("model") or "unknown"
            key = (model, provider or self._fields.get("provider"))
            usage = self._usage
            if usage is None:
                usage = self._usage = {}
            line = usage.get(key)
            if line is None:
                # calls, input, output, cache read, cache write, reasoning, cost (None once unknown)
                line = usage[key] = [0, 0, 0, 0, 0, 0, 0.0]
            line[0] += calls
            line[1] += input_tokens
            line[2] += output_tokens
            line[3] += cache_read_tokens
            line[4] += cache_write_tokens
            line[5] += reasoning_tokens
            line[6] = None if cost_usd is None or line[6] is None else line[6] + cost_usd
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.llm_call", exc)

    def tool_call(
        self, name: str, *, duration_seconds: float | None = None, error: bool = False, calls: int = 1
    ) -> None:
        """Add a call (or `calls` calls) of tool `name`; `error=True` counts them as failed."""
        try:
            tools = self._tools
            if tools is None:
                tools = self._tools = {}
            line = tools.get(name)
            if line is None:
                line = tools[name] = [0, 0, None]
            line[0] += calls
            if error:
                line[1] += calls
            if duration_seconds is not None:
                line[2] = (line[2] or 0.0) + duration_seconds
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.tool_call", exc)

    def phase(self, name: str) -> Phase:
        """A context manager that times one phase (plan, edit, test, a pipeline attempt, ...)."""
        return Phase(self, name)

    def add_phase(self, name: str, duration_seconds: float, status: str | None = None) -> None:
        """Add a phase timed by the agent itself."""
        try:
            phase: dict[str, Any] = {"name": name, "duration_seconds": duration_seconds}
            if status is not None:
                phase["status"] = str(status)
            if self._phases is None:
                self._phases = []
            self._phases.append(phase)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.add_phase", exc)

    def child(self, agent: str, *, run_id: str | None = None, **fields: Any) -> Run:
        """A sub-run of this one (a sub-agent's own run): its `parent_run_id` is this run's id, and it
        keeps this run's session, project, team and environment unless `fields` say otherwise."""
        try:
            inherited = {
                k: self._fields[k]
                for k in ("session_id", "project", "team", "environment")
                if self._fields.get(k) is not None
            }
            record = {**inherited, **fields, "agent": agent, "parent_run_id": self.run_id}
            return Run(self._delivery, record, run_id)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.child", exc)
            return Run(self._delivery, {"agent": agent}, run_id)

    def subagent(
        self,
        name: str,
        *,
        attempts: int = 1,
        successes: int = 0,
        failures: int = 0,
        retries: int = 0,
        duration_seconds: float | None = None,
    ) -> None:
        """Count work of one sub-agent (coding, testing, review, ...) inside this run; calls for the
        same name add up into one entry of the record's `subagents`."""
        try:
            if self._subagents is None:
                self._subagents = {}
            old = self._subagents.get(str(name), [0, 0, 0, 0, None])
            new = [old[0] + attempts, old[1] + successes, old[2] + failures, old[3] + retries, old[4]]
            if duration_seconds is not None:
                new[4] = (old[4] or 0.0) + duration_seconds
            self._subagents[str(name)] = new  # whole, so that a bad argument changes nothing
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.subagent", exc)

    def pipeline_attempt(
        self,
        status: str,
        *,
        id: str | None = None,
        commit: str | None = None,
        duration_seconds: float | None = None,
    ) -> None:
        """Add one pipeline (CI) attempt, in the order they ran: `success`, `failure`, `error` or
        `cancelled`. The first one tells whether the pipeline passed on the first attempt."""
        try:
            attempt: dict[str, Any] = {"status": str(status)}
            for key, value in (("id", id), ("commit", commit), ("duration_seconds", duration_seconds)):
                if value is not None:
                    attempt[key] = value
            if self._pipelines is None:
                self._pipelines = []
            self._pipelines.append(attempt)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.pipeline_attempt", exc)

    def debugging_cycle(
        self,
        *,
        agent: str | None = None,
        error_type: str | None = None,
        attempts: int = 1,
        resolved: bool = False,
        duration_seconds: float | None = None,
    ) -> None:
        """Add one debugging cycle: a failure (`error_type`) that `agent` reworked in `attempts`
        tries, `resolved` or not."""
        try:
            cycle: dict[str, Any] = {"attempts": attempts, "resolved": bool(resolved)}
            if agent is not None:
                cycle["agent"] = str(agent)
            if error_type is not None:
                cycle["error_type"] = clean_text(str(error_type), MAX_ERROR_TYPE)
            if duration_seconds is not None:
                cycle["duration_seconds"] = duration_seconds
            if self._cycles is None:
                self._cycles = []
            self._cycles.append(cycle)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.debugging_cycle", exc)

    def count(self, name: str, value: int = 1) -> None:
        """Add to one of the run's `counts` (domain objects it produced: candidates, scenarios, ...)."""
        try:
            if self._counts is None:
                self._counts = {}
            self._counts[str(name)] = self._counts.get(str(name), 0) + value
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.count", exc)

    def retry(self, count: int = 1) -> None:
        """Count retries (a repeated pipeline attempt, a re-asked LLM call, ...)."""
        try:
            self._retries += count
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.retry", exc)

    def fail(self, summary: str | None = None, *, error_type: str | None = None) -> None:
        """The run ended without achieving its goal (status `failure`)."""
        self._set_status("failure", summary, error_type)

    def timeout(self, summary: str | None = None, *, error_type: str | None = "timeout") -> None:
        """The run was stopped for taking too long (status `timeout`)."""
        self._set_status("timeout", summary, error_type)

    def cancel(self, summary: str | None = None, *, error_type: str | None = None) -> None:
        """The run was cancelled (status `cancelled`)."""
        self._set_status("cancelled", summary, error_type)

    def error(self, summary: str | None = None, *, error_type: str | None = None) -> None:
        """The run crashed, without an exception leaving the block (status `error`)."""
        self._set_status("error", summary, error_type)

    def set(self, **fields: Any) -> None:
        """Set record fields (quality_score, confidence, labels, issue_type, model, ...)."""
        try:
            self._fields.update(fields)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.set", exc)

    def label(self, key: str, value: str) -> None:
        """Set one free-form label (stored with the run; a metric label only if configured)."""
        try:
            # a copy: the dict may be the client's defaults, shared by every run
            labels = self._fields.get("labels")
            labels = self._fields["labels"] = dict(labels) if isinstance(labels, dict) else {}
            labels[key] = str(value)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run.label", exc)

    # ending -------------------------------------------------------------------------------------

    def _set_status(self, status: str, summary: str | None, error_type: str | None) -> None:
        try:
            self._status = status
            if summary is not None:
                self._error_summary = clean_text(str(summary), MAX_ERROR_SUMMARY)
            if error_type is not None:
                self._error_type = clean_text(str(error_type), MAX_ERROR_TYPE, NAME_CONTROL)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run status", exc)

    def _record_exception(self, exc: BaseException) -> None:
        try:
            name = type(exc).__name__
            if self._status is None:
                self._status = "cancelled" if name in _CANCELLED_NAMES else "error"
            if self._error_type is None:
                self._error_type = clean_text(name, MAX_ERROR_TYPE, NAME_CONTROL)
            if self._error_summary is None:
                text = str(exc)
                self._error_summary = clean_text(f"{name}: {text}" if text else name, MAX_ERROR_SUMMARY)
        except Exception as inner:  # noqa: BLE001 - a broken __str__ must not hide the agent's exception
            self._status = self._status or "error"
            self._delivery.internal_error("Run exception summary", inner)

    def _finish(self, duration: float) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            record = self._fields
            record["run_id"] = self.run_id
            record["status"] = self._status or "success"
            record["started_at"] = self._started
            record["ended_at"] = self._started + duration
            record["duration_seconds"] = duration
            if self._usage:
                record["usage"] = [_usage_entry(key, line) for key, line in self._usage.items()]
            if self._tools:
                record["tools"] = [_tool_entry(name, line) for name, line in self._tools.items()]
            if self._phases:
                record["phases"] = self._phases
            if self._retries:
                record["retries"] = self._retries
            if self._subagents:
                record["subagents"] = [_subagent_entry(n, line) for n, line in self._subagents.items()]
            if self._pipelines:
                record["pipeline_attempts"] = self._pipelines
            if self._cycles:
                record["debugging_cycles"] = self._cycles
            if self._counts:
                record["counts"] = {**record.get("counts", {}), **self._counts}
            if self._error_type is not None:
                record["error_type"] = self._error_type
            if self._error_summary is not None:
                record["error_summary"] = self._error_summary
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Run end", exc)
            return
        self._delivery.submit(record)


class Phase:
    """Times one phase of a run; an exception marks it `error` (and is re-raised unchanged)."""

    __slots__ = ("_perf", "_run", "name", "status")

    def __init__(self, run: Run, name: str) -> None:
        self._run = run
        self.name = name
        self.status: str | None = None
        self._perf = 0.0

    def __enter__(self) -> Phase:
        self._perf = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        duration = time.perf_counter() - self._perf
        status = self.status
        if status is None:
            status = "success" if exc is None else "error"
        self._run.add_phase(self.name, duration, status)

    def fail(self) -> None:
        """Mark the phase as failed (a red pipeline attempt) without raising."""
        self.status = "failure"


def _usage_entry(key: tuple[str, str | None], line: list[Any]) -> dict[str, Any]:
    model, provider = key
    entry: dict[str, Any] = {
        "model": model,
        "calls": line[0],
        "input_tokens": line[1],
        "output_tokens": line[2],
    }
    if provider:
        entry["provider"] = provider
    if line[3]:
        entry["cache_read_tokens"] = line[3]
    if line[4]:
        entry["cache_write_tokens"] = line[4]
    if line[5]:
        entry["reasoning_tokens"] = line[5]
    if line[6] is not None:
        entry["cost_usd"] = line[6]
    return entry


def _subagent_entry(name: str, line: list[Any]) -> dict[str, Any]:
    attempts, successes, failures, retries, duration = line
    entry: dict[str, Any] = {
        "name": name,
        "attempts": attempts,
        "successes": successes,
        "failures": failures,
        "retries": retries,
    }
    if duration is not None:
        entry["duration_seconds"] = duration
    return entry


def _tool_entry(name: str, line: list[Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "calls": line[0], "errors": line[1]}
    if line[2] is not None:
        entry["duration_seconds"] = line[2]
    return entry


def _is_coroutine_function(func: Callable[..., Any]) -> bool:
    import inspect  # only decorators pay for it, once per decorated function

    return inspect.iscoroutinefunction(func)


def merged(defaults: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """Client defaults overridden by a run's own fields (None means absent: dropped when encoded)."""
    return {**defaults, **fields} if defaults else dict(fields)
