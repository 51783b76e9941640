"""The wire format's field types, and the record fields that describe a run's inside.

The primitives every record field is built of (names, ids, counts, seconds, fractions, with their
bounds) live here, as do the fields the seeds asked for: a run's `counts` (domain objects it made),
its `subagents` (coding, testing, review, ... inside one run), its `pipeline_attempts` in order and
its `debugging_cycles` (a failure the agent had to rework), and the `Score` that arrives after the
run (`POST /api/v1/runs/{run_id}/scores`). `record.py` composes them into the run record; the rules
that span several fields of these items are `item_errors` here, each with a named rule.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Final, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, Strict

MAX_ID_LENGTH: Final = 128
MAX_NAME_LENGTH: Final = 128
MAX_VERSION_LENGTH: Final = 64
MAX_ERROR_TYPE_LENGTH: Final = 64
MAX_ERROR_SUMMARY_LENGTH: Final = 4096
MAX_LABELS: Final = 32
MAX_LABEL_KEY_LENGTH: Final = 64
MAX_LABEL_VALUE_LENGTH: Final = 256
MAX_BREAKDOWN_ITEMS: Final = 256
MAX_TOKENS: Final = 10**12  # a trillion tokens in one run is a unit error, not a run
MAX_CALLS: Final = 10**7
MAX_COST_USD: Final = 1_000_000.0
MAX_DURATION_SECONDS: Final = 7 * 24 * 3600  # a week: longer is almost always milliseconds sent as seconds
EARLIEST_TIMESTAMP: Final = datetime(2000, 1, 1, tzinfo=UTC)
DURATION_TOLERANCE_SECONDS: Final = 1.0  # slack between duration_seconds and ended_at - started_at

# C0 controls, DEL and C1 controls. Free text may keep tab, newline and carriage return.
CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
LABEL_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# The checks below run inside pydantic-core (Rust): a pattern, not a Python callback, per string,
# and strict numbers. `_field_errors` turns their generic messages into ones naming the rule.
_PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"
_PRINTABLE_NOT_BLANK = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=_PRINTABLE_NOT_BLANK)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=_PRINTABLE_NOT_BLANK)]
Version = Annotated[str, Field(min_length=1, max_length=MAX_VERSION_LENGTH, pattern=_PRINTABLE)]
ErrorType = Annotated[str, Field(min_length=1, max_length=MAX_ERROR_TYPE_LENGTH, pattern=_PRINTABLE)]
Text = Annotated[str, Field(max_length=MAX_ERROR_SUMMARY_LENGTH, pattern=_TEXT)]
# Strict: a count sent as "12", 12.0 or true is a client bug, not a number to guess at.
Tokens = Annotated[int, Strict(), Field(ge=0, le=MAX_TOKENS)]
Calls = Annotated[int, Strict(), Field(ge=0, le=MAX_CALLS)]
Seconds = Annotated[float, Strict(), Field(ge=0, le=MAX_DURATION_SECONDS, allow_inf_nan=False)]
Usd = Annotated[float, Strict(), Field(ge=0, le=MAX_COST_USD, allow_inf_nan=False)]
Fraction = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
# Timestamps are hashed as instants, so two spellings of one moment are the same body.
Timestamp = Annotated[AwareDatetime, PlainSerializer(lambda d: d.timestamp(), return_type=float)]


class WireModel(BaseModel):
    """The base of every wire object: unknown fields ignored, values frozen."""

    # Unknown fields are ignored (and reported back to the client), so that a newer client never
    # loses a run against an older server.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)


MAX_COUNT_KEYS: Final = 32
MAX_COUNT: Final = 10**12
MAX_SCORES: Final = 256
MAX_COMMENT_LENGTH: Final = 4096
COUNT_KEY: Final = LABEL_KEY  # the same rule as label keys: they may become metric labels one day

#: a count of domain objects a run produced (candidates, scenarios, evaluations, ...)
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]


class PipelineStatus(enum.StrEnum):
    """How one pipeline (CI) attempt ended."""

    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"
    CANCELLED = "cancelled"


class Subagent(WireModel):
    """One sub-agent (coding, testing, review, ...) inside a run: its attempts and their outcomes."""

    name: Name
    attempts: Calls = 0
    successes: Calls = 0
    failures: Calls = 0
    retries: Calls = 0
    duration_seconds: Seconds | None = None


class PipelineAttempt(WireModel):
    """One pipeline (CI) attempt of a run, in the order they ran."""

    status: PipelineStatus
    id: Id | None = None
    commit: Id | None = None
    duration_seconds: Seconds | None = None


class DebuggingCycle(WireModel):
    """A failure the agent had to rework: who reworked it, what failed, how many tries, solved?"""

    agent: Name | None = None
    error_type: ErrorType | None = None
    attempts: Calls = 1
    resolved: Annotated[bool, Strict()] = False
    duration_seconds: Seconds | None = None


class Score(WireModel):
    """A score given to a run after it ended: a code review, an evaluation, peer feedback, a person."""

    name: Name
    value: Fraction
    source: Name | None = None
    score_id: Id | None = None
    comment: Text | None = None
    author: Name | None = None


class _HasItems(Protocol):
    @property
    def run_id(self) -> str: ...
    @property
    def parent_run_id(self) -> str | None: ...
    @property
    def counts(self) -> Mapping[str, int]: ...
    @property
    def subagents(self) -> Sequence[Subagent]: ...


#: err(field, rule, sentence) -> the caller's error object
ErrorMaker = Callable[[str, str, str], object]


def item_errors(record: _HasItems, err: ErrorMaker) -> Iterable[object]:
    """The rules across the fields of `counts`, `subagents` and `parent_run_id`, each named."""
    if record.parent_run_id is not None and record.parent_run_id == record.run_id:
        yield err("parent_run_id", "parent_is_self", "a run cannot be its own parent (equals run_id)")
    for key in record.counts:
        if not COUNT_KEY.match(key) or len(key) > MAX_LABEL_KEY_LENGTH:
            yield err(
                f"counts.{key[:MAX_LABEL_KEY_LENGTH]}",
                "count_key",
                "count keys must match [A-Za-z_][A-Za-z0-9_]* "
                f"and be at most {MAX_LABEL_KEY_LENGTH} characters",
            )
    if len(record.counts) > MAX_COUNT_KEYS:
        yield err(
            "counts", "max_keys", f"at most {MAX_COUNT_KEYS} counts are allowed (got {len(record.counts)})"
        )
    for i, s in enumerate(record.subagents):
        if s.successes + s.failures > s.attempts:
            yield err(
                f"subagents[{i}].attempts",
                "subset_exceeds_total",
                f"successes + failures ({s.successes + s.failures}) must not exceed attempts ({s.attempts})",
            )


#: the rule names `item_errors` gives (record.RULES includes them)
ITEM_RULES: Final = frozenset({"parent_is_self", "count_key", "max_keys", "subset_exceeds_total"})
