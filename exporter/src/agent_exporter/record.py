"""The run record: one completed agent run, as an agent sends it.

A record is validated once, here, at the edge. `parse_record` turns a decoded JSON object into
either a `RunRecord` or a list of `FieldError`s that name the field and the rule; `RunRecord.resolve`
then derives what the client left out (duration, timestamps, totals from the per-model breakdown)
and returns a `Run`, the typed object the rest of the service trusts.

Token counts are inclusive, as in the OpenTelemetry GenAI conventions: `input_tokens` includes
cache reads and cache writes, `output_tokens` includes reasoning. The cache and reasoning counts
are subsets, and a subset larger than its total is a validation error.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, overload

from pydantic import (
    Field,
    ValidationError,
)

from .fields import (
    CONTROL_CHARACTERS,
    DURATION_TOLERANCE_SECONDS,
    EARLIEST_TIMESTAMP,
    ITEM_RULES,
    LABEL_KEY,
    MAX_BREAKDOWN_ITEMS,
    MAX_CALLS,
    MAX_COST_USD,
    MAX_DURATION_SECONDS,
    MAX_ERROR_SUMMARY_LENGTH,
    MAX_ERROR_TYPE_LENGTH,
    MAX_ID_LENGTH,
    MAX_LABEL_KEY_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MAX_NAME_LENGTH,
    MAX_TOKENS,
    MAX_VERSION_LENGTH,
    PYDANTIC_RULES,
    Calls,
    Count,
    DebuggingCycle,
    ErrorType,
    FieldError,
    Fraction,
    Id,
    Name,
    PipelineAttempt,
    PipelineStatus,
    Score,
    Seconds,
    Subagent,
    Text,
    Timestamp,
    Tokens,
    Usd,
    Version,
    WireModel,
    field_errors,
    item_errors,
)

# the wire primitives moved to fields.py; importers of record keep finding them here
__all__ = [
    "CONTROL_CHARACTERS",
    "DURATION_TOLERANCE_SECONDS",
    "EARLIEST_TIMESTAMP",
    "FAILED_STATUSES",
    "MAX_BREAKDOWN_ITEMS",
    "MAX_CALLS",
    "MAX_COST_USD",
    "MAX_DURATION_SECONDS",
    "MAX_ERROR_SUMMARY_LENGTH",
    "MAX_ERROR_TYPE_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_LABELS",
    "MAX_LABEL_KEY_LENGTH",
    "MAX_LABEL_VALUE_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_TOKENS",
    "MAX_VERSION_LENGTH",
    "RULES",
    "CostSource",
    "DebuggingCycle",
    "FieldError",
    "Phase",
    "PipelineAttempt",
    "PipelineStatus",
    "Run",
    "RunRecord",
    "Score",
    "Status",
    "Subagent",
    "ToolUsage",
    "UsageEntry",
    "UsageLine",
    "name_problem",
    "parse_record",
    "total_tokens",
    "unknown_fields",
]


class Status(enum.StrEnum):
    """How a run ended."""

    SUCCESS = "success"  # achieved its goal
    FAILURE = "failure"  # ran to the end, did not achieve the goal
    ERROR = "error"  # crashed
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


#: What a failed run is, everywhere (read API, rules, alerts, dashboards, demo): `failure`, `error`
#: or `timeout`. A `cancelled` run (someone stopped it) is neither a success nor a failure and is
#: left out of success rates, failure counts and minimum-run guards (docs/record.md, "What counts
#: as a failure").
FAILED_STATUSES: Final = (Status.FAILURE, Status.ERROR, Status.TIMEOUT)


class CostSource(enum.StrEnum):
    """Where a run's cost comes from."""

    REPORTED = "reported"  # the agent sent cost_usd
    ESTIMATED = "estimated"  # computed from tokens and a price table
    UNKNOWN = "unknown"  # no cost sent and no price known: never counted as zero


_Model = WireModel


class UsageEntry(_Model):
    """One model's share of a run that used several."""

    model: Name
    provider: Name | None = None
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    cache_read_tokens: Tokens | None = None
    cache_write_tokens: Tokens | None = None
    reasoning_tokens: Tokens | None = None
    cost_usd: Usd | None = None
    calls: Calls | None = None


class ToolUsage(_Model):
    """Calls to one tool during a run."""

    name: Name
    calls: Calls = 0
    errors: Calls = 0
    duration_seconds: Seconds | None = None


class Phase(_Model):
    """A step of a run: plan, edit, test, review, a pipeline attempt, ..."""

    name: Name
    duration_seconds: Seconds
    status: Status | None = None


class RunRecord(_Model):
    """One completed agent run as the agent reports it (the wire format)."""

    run_id: Id
    agent: Name
    status: Status
    agent_version: Version | None = None
    model: Name | None = None
    provider: Name | None = None
    issue_type: Name | None = None
    project: Name | None = None
    team: Name | None = None
    environment: Name | None = None
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    duration_seconds: Seconds | None = None
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    cache_read_tokens: Tokens | None = None
    cache_write_tokens: Tokens | None = None
    reasoning_tokens: Tokens | None = None
    cost_usd: Usd | None = None
    llm_calls: Calls | None = None
    tool_calls: Calls | None = None
    retries: Calls | None = None
    usage: list[UsageEntry] = Field(default_factory=list, max_length=MAX_BREAKDOWN_ITEMS)
    tools: list[ToolUsage] = Field(default_factory=list, max_length=MAX_BREAKDOWN_ITEMS)
    phases: list[Phase] = Field(default_factory=list, max_length=MAX_BREAKDOWN_ITEMS)
    quality_score: Fraction | None = None
    confidence: Fraction | None = None
    error_type: ErrorType | None = None
    error_summary: Text | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    # the seeds' fields (fields.py); declared last, so that records without them hash as before
    session_id: Id | None = None
    parent_run_id: Id | None = None
    counts: dict[str, Count] = Field(default_factory=dict)
    subagents: list[Subagent] = Field(default_factory=list, max_length=MAX_BREAKDOWN_ITEMS)
    pipeline_attempts: list[PipelineAttempt] = Field(default_factory=list, max_length=MAX_BREAKDOWN_ITEMS)
    debugging_cycles: list[DebuggingCycle] = Field(default_factory=list, max_length=MAX_BREAKDOWN_ITEMS)

    def body_hash(self) -> str:
        """A digest of what the client sent, normalised: the same run sent twice hashes the same.

        Absent and null fields are equivalent, and so are 5 and 5.0 or two spellings of one instant.
        """
        # fields serialise in declaration order, so the JSON is canonical without sorting; the
        # serializer itself, not model_dump_json, which costs a tenth more for its keywords
        return hashlib.sha256(
            self.__pydantic_serializer__.to_json(self, exclude_none=True, exclude_defaults=True)
        ).hexdigest()

    def resolve(self, received_at: float) -> Run:
        """Derive what the client left out and return the typed run the service stores and counts.

        `received_at` is the receipt time (Unix seconds); it is the default `ended_at`.
        Cost is left as reported; `pricing.PriceBook.price` fills in estimates.
        """
        ended = self.ended_at.timestamp() if self.ended_at else None
        started = self.started_at.timestamp() if self.started_at else None
        if self.duration_seconds is not None:
            duration = self.duration_seconds
            if ended is None:
                ended = started + duration if started is not None else received_at
            if started is None:
                started = ended - duration
        else:
            # parse_record guarantees both timestamps when duration_seconds is absent
            assert started is not None
            assert ended is not None
            duration = ended - started

        if self.usage:
            usage = [
                UsageLine(
                    model=u.model,
                    provider=u.provider,
                    input_tokens=u.input_tokens,
                    output_tokens=u.output_tokens,
                    cache_read_tokens=u.cache_read_tokens,
                    cache_write_tokens=u.cache_write_tokens,
                    reasoning_tokens=u.reasoning_tokens,
                    cost_usd=u.cost_usd,
                    cost_source=CostSource.REPORTED if u.cost_usd is not None else CostSource.UNKNOWN,
                    calls=u.calls,
                )
                for u in self.usage
            ]

            def total(name: str) -> int | None:
                own: int | None = getattr(self, name)
                return own if own is not None else _sum_present(getattr(u, name) for u in self.usage)

            input_tokens, output_tokens = total("input_tokens"), total("output_tokens")
            cache_read, cache_write = total("cache_read_tokens"), total("cache_write_tokens")
            reasoning = total("reasoning_tokens")
            model = self.model or _primary_model(self.usage)
            provider = self.provider
            if provider is None and self.model is None:
                provider = next((u.provider for u in self.usage if u.model == model), None)
            llm_calls = self.llm_calls
            if llm_calls is None:
                llm_calls = _sum_present(u.calls for u in self.usage)
        else:  # the common case: the run's own figures are its totals
            usage = []
            input_tokens, output_tokens = self.input_tokens, self.output_tokens
            cache_read, cache_write = self.cache_read_tokens, self.cache_write_tokens
            reasoning = self.reasoning_tokens
            model, provider, llm_calls = self.model, self.provider, self.llm_calls
        tool_calls = self.tool_calls
        if tool_calls is None and self.tools:
            tool_calls = sum(t.calls for t in self.tools)

        return Run(
            run_id=self.run_id,
            agent=self.agent,
            agent_version=self.agent_version,
            model=model,
            provider=provider,
            issue_type=self.issue_type,
            project=self.project,
            team=self.team,
            environment=self.environment,
            status=self.status,
            started_at=started,
            ended_at=ended,
            ended_at_reported=self.ended_at is not None,
            duration_seconds=duration,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
            cost_usd=self.cost_usd,
            cost_source=CostSource.REPORTED if self.cost_usd is not None else CostSource.UNKNOWN,
            llm_calls=llm_calls,
            tool_calls=tool_calls,
            retries=self.retries,
            quality_score=self.quality_score,
            confidence=self.confidence,
            error_type=self.error_type,
            error_summary=self.error_summary,
            labels=dict(self.labels),
            usage=usage,
            # the validated entries themselves (frozen), not copies
            tools=self.tools,
            phases=self.phases,
            session_id=self.session_id,
            parent_run_id=self.parent_run_id,
            counts=dict(self.counts),
            subagents=self.subagents,
            pipeline_attempts=self.pipeline_attempts,
            debugging_cycles=self.debugging_cycles,
            received_at=received_at,
            body_hash=self.body_hash(),
        )


def _sum_present(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _primary_model(usage: Sequence[UsageEntry]) -> str | None:
    """The model that carried most tokens; the first listed wins a tie."""
    best: str | None = None
    best_tokens = -1
    for u in usage:
        tokens = (u.input_tokens or 0) + (u.output_tokens or 0)
        if tokens > best_tokens:
            best, best_tokens = u.model, tokens
    return best


@dataclass(slots=True)
class UsageLine:
    """One model's share of a run, resolved."""

    model: str
    provider: str | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    cost_source: CostSource
    calls: int | None


@dataclass(slots=True)
class Run:
    """A validated run with everything derived: what the store keeps and the metrics count.

    Timestamps are Unix seconds (UTC).
    """

    run_id: str
    agent: str
    status: Status
    started_at: float
    ended_at: float
    duration_seconds: float
    received_at: float
    body_hash: str
    agent_version: str | None = None
    model: str | None = None
    provider: str | None = None
    issue_type: str | None = None
    project: str | None = None
    team: str | None = None
    environment: str | None = None
    ended_at_reported: bool = True
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    cost_source: CostSource = CostSource.UNKNOWN
    llm_calls: int | None = None
    tool_calls: int | None = None
    retries: int | None = None
    quality_score: float | None = None
    confidence: float | None = None
    error_type: str | None = None
    error_summary: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    usage: list[UsageLine] = field(default_factory=list)
    tools: Sequence[ToolUsage] = field(default_factory=list)  # validated entries are frozen
    phases: Sequence[Phase] = field(default_factory=list)
    session_id: str | None = None
    parent_run_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    subagents: Sequence[Subagent] = field(default_factory=list)
    pipeline_attempts: Sequence[PipelineAttempt] = field(default_factory=list)
    debugging_cycles: Sequence[DebuggingCycle] = field(default_factory=list)

    # Stored beside the lists, as columns the rollups fold (schema.ROLLUP_FACTS): None when the
    # run did not report the list, so that sums and "runs that report it" skip it.
    @property
    def pipeline_attempt_count(self) -> int | None:
        """How many pipeline attempts the run reported, or None when it reported none."""
        return len(self.pipeline_attempts) or None

    @property
    def pipeline_first_pass(self) -> int | None:
        """1 when the run's first pipeline attempt succeeded, 0 when it did not, None without any."""
        if not self.pipeline_attempts:
            return None
        return int(self.pipeline_attempts[0].status is PipelineStatus.SUCCESS)

    @property
    def debugging_cycle_count(self) -> int | None:
        """How many debugging cycles the run reported: None when it reported neither cycles nor
        pipeline attempts, 0 when it reported attempts and no cycle (it tracked its workflow)."""
        if not self.debugging_cycles and not self.pipeline_attempts:
            return None
        return len(self.debugging_cycles)

    @property
    def total_tokens(self) -> int | None:
        """Input plus output tokens, or None when neither was reported."""
        return total_tokens(self.input_tokens, self.output_tokens)


@overload
def total_tokens(input_tokens: int, output_tokens: int) -> int: ...
@overload
def total_tokens(input_tokens: int | None, output_tokens: int | None) -> int | None: ...
def total_tokens(input_tokens: int | None, output_tokens: int | None) -> int | None:
    """A run's total tokens: input plus output (both inclusive, so cache and reasoning tokens are in
    it once), or None when neither was reported."""
    if input_tokens is None and output_tokens is None:
        return None
    return (input_tokens or 0) + (output_tokens or 0)


def name_problem(value: str) -> str | None:
    """Why `value` is not a name as runs carry them (agent, model, issue type, team ...), or None.

    The rule of the record's name fields, for names that arrive elsewhere (query parameters): 1 to
    `MAX_NAME_LENGTH` characters, no control characters, not blank.
    """
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters (got {len(value)})"
    if CONTROL_CHARACTERS.search(value):
        return "must not contain control characters"
    if not value.strip():
        return "must not be empty or blank"
    return None


RULES: Final = frozenset(
    {
        *PYDANTIC_RULES.values(),
        "invalid",
        "subset_exceeds_total",
        "future_timestamp",
        "ancient_timestamp",
        "ended_before_started",
        "inconsistent_duration",
        "duration_or_timestamps",
        "label_key",
        "max_labels",
        *ITEM_RULES,
    }
)


def parse_record(
    obj: object, *, now: float, max_future_skew: float, prefix: str = ""
) -> RunRecord | list[FieldError]:
    """Validate one decoded JSON value as a run record.

    Returns the record, or every field error found (each naming the field and the rule).
    `now` is the receipt time in Unix seconds; timestamps later than `now + max_future_skew` are rejected.
    """
    if not isinstance(obj, dict):
        where = prefix.rstrip(".") or "(record)"
        return [FieldError(where, "object", f"{where}: must be a JSON object, not {_json_kind(obj)}")]
    try:
        record = _VALIDATE(obj)  # RunRecord.model_validate without its Python-level wrapper
    except ValidationError as exc:
        return field_errors(exc, prefix)
    errors = list(_cross_field_errors(record, now=now, max_future_skew=max_future_skew, prefix=prefix))
    return errors or record


_FIELD_NAMES: Final = frozenset(RunRecord.model_fields)
_VALIDATE: Final = RunRecord.__pydantic_validator__.validate_python


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else type(value).__name__


def unknown_fields(obj: Mapping[str, Any]) -> list[str]:
    """Top-level keys that the record model ignores, reported back to the client as a warning."""
    if _FIELD_NAMES.issuperset(obj):  # the common case, without a loop in Python
        return []
    return sorted(k for k in obj if k not in _FIELD_NAMES)


def _cross_field_errors(
    record: RunRecord, *, now: float, max_future_skew: float, prefix: str
) -> Iterable[FieldError]:
    def err(name: str, rule: str, sentence: str) -> FieldError:
        return FieldError(prefix + name, rule, f"{prefix + name}: {sentence}")

    yield from _subset_errors(record, "", err)
    yield from item_errors(record, err)  # type: ignore[misc]
    for i, u in enumerate(record.usage):
        yield from _subset_errors(u, f"usage[{i}].", err)
    for i, t in enumerate(record.tools):
        if t.errors > t.calls:
            yield err(
                f"tools[{i}].errors",
                "subset_exceeds_total",
                f"errors ({t.errors}) must not exceed calls ({t.calls})",
            )

    for key in record.labels:
        if not LABEL_KEY.match(key) or len(key) > MAX_LABEL_KEY_LENGTH:
            yield err(
                f"labels.{key[:MAX_LABEL_KEY_LENGTH]}",
                "label_key",
                "label keys must match [A-Za-z_][A-Za-z0-9_]* "
                f"and be at most {MAX_LABEL_KEY_LENGTH} characters",
            )
    if len(record.labels) > MAX_LABELS:
        yield err(
            "labels", "max_labels", f"at most {MAX_LABELS} labels are allowed (got {len(record.labels)})"
        )
    for key, value in record.labels.items():
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            yield err(f"labels.{key}", "max_length", f"must be at most {MAX_LABEL_VALUE_LENGTH} characters")
        elif CONTROL_CHARACTERS.search(value):
            yield err(f"labels.{key}", "control_characters", "must not contain control characters")

    latest = now + max_future_skew
    for name in ("started_at", "ended_at"):
        ts: datetime | None = getattr(record, name)
        if ts is None:
            continue
        if ts.timestamp() > latest:
            yield err(
                name,
                "future_timestamp",
                f"{ts.isoformat()} is more than {max_future_skew:g} s in the future; check the agent's clock",
            )
        elif ts < EARLIEST_TIMESTAMP:
            yield err(name, "ancient_timestamp", f"{ts.isoformat()} is before 2000-01-01; check the units")

    started, ended, duration = record.started_at, record.ended_at, record.duration_seconds
    if duration is None and (started is None or ended is None):
        yield err(
            "duration_seconds",
            "duration_or_timestamps",
            "send duration_seconds, or both started_at and ended_at",
        )
    if started is not None and ended is not None:
        span = (ended - started).total_seconds()
        if span < 0:
            yield err("ended_at", "ended_before_started", f"{ended.isoformat()} is before started_at")
        elif duration is not None and abs(span - duration) > max(DURATION_TOLERANCE_SECONDS, 0.01 * span):
            yield err(
                "duration_seconds",
                "inconsistent_duration",
                f"{duration:g} s disagrees with ended_at - started_at ({span:g} s)",
            )
    elif started is not None and duration is not None and started.timestamp() + duration > latest:
        yield err(
            "started_at",
            "future_timestamp",
            "started_at + duration_seconds ends in the future; check the agent's clock",
        )


def _subset_errors(part: RunRecord | UsageEntry, where: str, err: Any) -> Iterable[FieldError]:
    input_tokens, output_tokens = part.input_tokens, part.output_tokens
    cache_read, cache_write = part.cache_read_tokens, part.cache_write_tokens
    reasoning = part.reasoning_tokens
    # totals derived from the usage breakdown are checked entry by entry instead
    own_input = input_tokens is not None or cache_read is not None or cache_write is not None
    own_output = output_tokens is not None or reasoning is not None
    if isinstance(part, RunRecord) and part.usage:
        usage = part.usage
        if input_tokens is None:
            input_tokens = _sum_present(u.input_tokens for u in usage)
        if output_tokens is None:
            output_tokens = _sum_present(u.output_tokens for u in usage)
        if cache_read is None:
            cache_read = _sum_present(u.cache_read_tokens for u in usage)
        if cache_write is None:
            cache_write = _sum_present(u.cache_write_tokens for u in usage)
        if reasoning is None:
            reasoning = _sum_present(u.reasoning_tokens for u in usage)
    cache = (cache_read or 0) + (cache_write or 0)
    if input_tokens is not None and cache > input_tokens and own_input:
        if cache_read and cache_write:
            yield err(
                where + "cache_read_tokens",
                "subset_exceeds_total",
                f"cache_read_tokens + cache_write_tokens ({cache}) exceed input_tokens ({input_tokens}); "
                "input_tokens is inclusive of cached tokens",
            )
        else:
            name = "cache_read_tokens" if cache_read else "cache_write_tokens"
            yield err(
                where + name,
                "subset_exceeds_total",
                f"{cache} exceeds input_tokens ({input_tokens}); input_tokens is inclusive of cached tokens",
            )
    if output_tokens is not None and reasoning is not None and reasoning > output_tokens and own_output:
        yield err(
            where + "reasoning_tokens",
            "subset_exceeds_total",
            f"{reasoning} exceeds output_tokens ({output_tokens}); "
            "output_tokens is inclusive of reasoning tokens",
        )
