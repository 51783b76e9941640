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
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, Strict, ValidationError

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

    def body_hash(self) -> str:
        """A digest of the score as sent (absent and null alike): sent twice, it hashes the same."""
        return hashlib.sha256(self.__pydantic_serializer__.to_json(self, exclude_none=True)).hexdigest()

    def key(self) -> str:
        """The score's idempotency key within its run: `score_id`, or, without one, a digest of the
        score itself, so that a score re-sent as it was is one score."""
        return self.score_id if self.score_id is not None else "sha256:" + self.body_hash()[:40]


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


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason a record was rejected: which field, which rule, and a sentence for a human."""

    field: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The JSON shape of the error in API responses."""
        return {"field": self.field, "rule": self.rule, "message": self.message}


# Pydantic's error types, mapped to the rule names clients (and the rejected-records counter) see.
# The set of rule names is closed, so it is safe as a metric label.
PYDANTIC_RULES: Final[Mapping[str, str]] = {
    "missing": "required",
    "string_too_short": "min_length",
    "string_too_long": "max_length",
    "too_long": "max_items",
    "greater_than_equal": "minimum",
    "greater_than": "minimum",
    "less_than_equal": "maximum",
    "less_than": "maximum",
    "finite_number": "finite",
    "int_type": "integer",
    "int_parsing": "integer",
    "int_from_float": "integer",
    "number_type": "number",
    "float_type": "number",
    "float_parsing": "number",
    "string_type": "string",
    "enum": "enum",
    "timezone_aware": "timezone_required",
    "datetime_type": "rfc3339",
    "datetime_parsing": "rfc3339",
    "datetime_from_date_parsing": "rfc3339",
    "datetime_object_invalid": "rfc3339",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
    "list_type": "array",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
    "control_characters": "control_characters",
    "blank": "not_blank",
}


def _location(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(record)"


def _describe(value: Any) -> str:
    if isinstance(value, str | list | dict) and len(value) > 40:
        kind = {str: "a string of {} characters", list: "an array of {} items", dict: "an object of {} keys"}
        return kind[type(value)].format(len(value))
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _rule_and_sentence(kind: str, value: Any, msg: str) -> tuple[str, str]:
    """The rule and the sentence for one pydantic error, in this API's words."""
    if kind == "string_pattern_mismatch":
        if isinstance(value, str) and value and not CONTROL_CHARACTERS.search(value):
            return "not_blank", "must not be empty or blank"
        return "control_characters", "must not contain control characters"
    if kind in {"int_type", "float_type"} and isinstance(value, bool | str):
        return "number", f"must be a JSON number, not a {'boolean' if isinstance(value, bool) else 'string'}"
    if kind == "int_type" and isinstance(value, float):
        return "integer", "must be an integer"
    if kind in {"finite_number", "float_type"} and isinstance(value, float) and not math.isfinite(value):
        return "finite", "must be a finite number"
    return PYDANTIC_RULES.get(kind, "invalid"), msg[0].lower() + msg[1:]


def field_errors(exc: ValidationError, prefix: str) -> list[FieldError]:
    """Each error of a pydantic validation as a `FieldError`: the field (after `prefix`), the rule."""
    errors = []
    for err in exc.errors(include_url=False):
        field_name = prefix + _location(err["loc"])
        rule, sentence = _rule_and_sentence(err["type"], err.get("input"), err["msg"])
        message = f"{field_name}: {sentence}"
        if err["type"] != "missing":
            message += f" (got {_describe(err['input'])})"
        errors.append(FieldError(field_name, rule, message))
    return errors


def parse_score(obj: object, prefix: str) -> Score | list[FieldError]:
    """Validate one decoded JSON value as a `Score`, or every field error found (after `prefix`)."""
    if not isinstance(obj, dict):
        where = prefix.rstrip(".") or "(score)"
        return [FieldError(where, "object", f"{where}: must be a JSON object")]
    try:
        score: Score = _VALIDATE_SCORE(obj)
    except ValidationError as exc:
        return field_errors(exc, prefix)
    return score


_VALIDATE_SCORE: Final = Score.__pydantic_validator__.validate_python
