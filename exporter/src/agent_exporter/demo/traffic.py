"""Realistic Fixer Agent traffic, with scripted incidents: the run records `agent-exporter demo` sends.

Three agents work on six projects: `fixer` (fixes findings: complexity, security, test failures,
dead code, formatting, dependencies), `reviewer` (reviews the fixer's patches) and `triager`
(classifies incoming findings). Each run has a primary model at list prices (per-model usage with
cache and reasoning tokens), phases (plan, edit, test, review, pipeline attempts), per-tool calls
with errors and time, retries, and an error type and summary when it did not succeed.

Shapes come from the SWE-Bench Pro dataset (`shared/data/`, 1,232 real runs of a coding agent):
a fixer run on Claude Sonnet 4.5 makes ~78 LLM calls (lognormal, sigma 0.31) of ~34k input and ~225
output tokens each; on GPT-5 ~59 calls (sigma 0.51) of ~40k and ~94; its tool mix is the dataset's
per model. Those are the medians of a `complexity` finding; easier findings scale the calls down
(formatting 0.25x) and harder ones up (security 1.3x). Unlike the dataset's harness, the agents use
prompt caching (55-85% of input tokens are cache reads), so a run costs less than there: the dataset's
cost per run reflects uncached prompts.

Success rates do not come from the dataset (its harness resolves 43% of hard benchmark tasks): the
demo is a healthy production fleet, inside the shipped success objective (95%, alerts/config.yaml),
so that its baseline burns no error budget and only an incident pages. The fixer's runs fail 3% of
the time on average (formatting findings 0.6%, security ones 6%), the reviewer's 1.5%, the triager's
1%: about a third of the budget.

Everything is drawn from `random.Random` streams seeded by strings derived from `seed` and the run's
index, so the same seed and start time give the same records, and an incident changes only the runs
it targets, and only in the documented way (`Incident`).
"""

# ruff: noqa: S311 - pseudo-random numbers for a simulation, seeded on purpose, not for security

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .workflow import workflow

# models and list prices (USD per million tokens), as in genai-prices at base tier -----------------


@dataclass(frozen=True)
class ModelSpec:
    """A model and its list prices in USD per million tokens."""

    name: str
    provider: str
    input: float
    output: float
    cache_read: float
    cache_write: float | None  # None: the provider does not bill cache writes
    reasoning_share: tuple[float, float] = (0.0, 0.0)  # part of output tokens spent reasoning
    cache_read_share: tuple[float, float] = (0.55, 0.85)  # part of input tokens read from the cache

    def cost(self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> float:
        """USD for tokens that are inclusive (input includes cache reads and writes)."""
        write_price = self.cache_write if self.cache_write is not None else self.input
        uncached = input_tokens - cache_read - cache_write
        usd = uncached * self.input + cache_read * self.cache_read + cache_write * write_price
        return (usd + output_tokens * self.output) / 1e6


MODELS: Final = {
    m.name: m
    for m in (
        ModelSpec("claude-sonnet-4-5", "anthropic", 3.0, 15.0, 0.30, 3.75),
        ModelSpec("claude-haiku-4-5", "anthropic", 1.0, 5.0, 0.10, 1.25),
        ModelSpec("gpt-5", "openai", 1.25, 10.0, 0.125, None, (0.4, 0.7), (0.5, 0.8)),
        ModelSpec("gpt-5-mini", "openai", 0.25, 2.0, 0.025, None, (0.4, 0.7), (0.5, 0.8)),
        ModelSpec("gemini-2.5-pro", "google", 1.25, 10.0, 0.125, None, (0.3, 0.6), (0.3, 0.6)),
    )
}


# agents ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """Lognormal (median, sigma) of LLM calls and of input/output tokens per call."""

    calls: tuple[float, float]
    input_per_call: tuple[float, float]
    output_per_call: tuple[float, float]


@dataclass(frozen=True)
class AgentSpec:
    """How one agent's runs look."""

    name: str
    version: str
    share: float  # of all runs
    models: tuple[tuple[str, float], ...]  # model, weight
    shapes: dict[str, Shape]  # by model
    tools: dict[str, tuple[tuple[str, float], ...]]  # by provider: tool, share of calls
    success: float  # chance of success on an average finding (the fixer: see ISSUE_TYPES, MODEL_FAILURE)
    outcomes: tuple[tuple[str, float], ...]  # how a run that does not succeed ends
    timeout_seconds: float
    reports_cost: bool = True
    slow_phase: str = "test"  # the phase a latency regression stretches


_SWE_AGENT_TOOLS_ANTHROPIC: Final = (
    ("bash", 0.422),
    ("view", 0.195),
    ("search_find", 0.174),
    ("edit", 0.104),
    ("create", 0.078),
    ("other", 0.015),
)
_SWE_AGENT_TOOLS_OPENAI: Final = (
    ("bash", 0.296),
    ("view", 0.319),
    ("search_find", 0.184),
    ("edit", 0.148),
    ("create", 0.021),
    ("other", 0.020),
)
_FAILURE_MIX: Final = (("failure", 0.75), ("error", 0.15), ("timeout", 0.07), ("cancelled", 0.03))

AGENTS: Final = {
    a.name: a
    for a in (
        AgentSpec(
            name="fixer",
            version="1.4.2",
            share=0.5,
            models=(("claude-sonnet-4-5", 0.5), ("gpt-5", 0.35), ("gemini-2.5-pro", 0.15)),
            shapes={
                # the dataset's medians and spreads (see the module docstring)
                "claude-sonnet-4-5": Shape((78, 0.31), (34_400, 0.29), (225, 0.31)),
                "gpt-5": Shape((59, 0.51), (39_800, 0.50), (94, 0.55)),
                "gemini-2.5-pro": Shape((66, 0.45), (36_000, 0.45), (140, 0.45)),
            },
            tools={
                "anthropic": _SWE_AGENT_TOOLS_ANTHROPIC,
                "openai": _SWE_AGENT_TOOLS_OPENAI,
                "google": _SWE_AGENT_TOOLS_OPENAI,
            },
            success=0.97,
            outcomes=_FAILURE_MIX,
            timeout_seconds=3600,
        ),
        AgentSpec(
            name="reviewer",
            version="0.9.1",
            share=0.3,
            models=(("claude-sonnet-4-5", 0.55), ("gpt-5", 0.45)),
            shapes={
                "claude-sonnet-4-5": Shape((12, 0.4), (18_000, 0.35), (350, 0.4)),
                "gpt-5": Shape((10, 0.45), (20_000, 0.4), (300, 0.45)),
            },
            tools=dict.fromkeys(
                ("anthropic", "openai"), (("view", 0.5), ("search_find", 0.3), ("comment", 0.2))
            ),
            success=0.985,
            outcomes=(("failure", 0.5), ("error", 0.35), ("timeout", 0.1), ("cancelled", 0.05)),
            timeout_seconds=900,
            reports_cost=False,  # the exporter estimates its cost from tokens
            slow_phase="analyse",
        ),
        AgentSpec(
            name="triager",
            version="2.0.0",
            share=0.2,
            models=(("claude-haiku-4-5", 0.7), ("gpt-5-mini", 0.3)),
            shapes={
                "claude-haiku-4-5": Shape((3, 0.35), (6_000, 0.4), (220, 0.4)),
                "gpt-5-mini": Shape((3, 0.35), (6_500, 0.4), (260, 0.4)),
            },
            tools=dict.fromkeys(("anthropic", "openai"), (("search_find", 0.6), ("label", 0.4))),
            success=0.99,
            outcomes=(("failure", 0.6), ("error", 0.3), ("timeout", 0.05), ("cancelled", 0.05)),
            timeout_seconds=120,
            slow_phase="classify",
        ),
    )
}

#: issue type -> (share of findings, how often the fixer fails on it against its average, scale of its
#: LLM calls). The failure factors average 1 over the shares: the fixer's `success` is its average.
ISSUE_TYPES: Final = {
    "formatting": (0.20, 0.2, 0.25),
    "dead_code": (0.15, 0.5, 0.45),
    "complexity": (0.25, 1.2, 1.0),
    "test_failure": (0.20, 1.5, 1.15),
    "security": (0.10, 2.0, 1.3),
    "dependency": (0.10, 0.8, 0.7),
}
#: model -> how often the fixer fails with it against Claude Sonnet 4.5 (the dataset resolves 42.5%
#: with GPT-5 against 44.5% with Sonnet 4.5: 57.5 / 55.5 unresolved)
MODEL_FAILURE: Final = {"gpt-5": 1.04, "gemini-2.5-pro": 1.25}

#: project -> (team, share, source directory used in error summaries)
PROJECTS: Final = {
    "payments-api": ("payments", 0.25, "src/payments"),
    "web-frontend": ("web", 0.20, "app/components"),
    "data-pipeline": ("data", 0.20, "pipelines/etl"),
    "auth-service": ("identity", 0.15, "internal/auth"),
    "mobile-app": ("mobile", 0.10, "ios/Sources"),
    "infra": ("platform", 0.10, "terraform/modules"),
}
_FILES: Final = ("service.py", "handlers.py", "models.py", "utils.py", "client.py", "views.py")
# mean seconds per tool call, chance a call fails
_TOOL_TIME: Final = {
    "bash": (1.5, 0.05),
    "view": (0.08, 0.005),
    "edit": (0.15, 0.03),
    "create": (0.1, 0.005),
    "search_find": (0.5, 0.01),
    "submit": (3.0, 0.005),
    "other": (0.2, 0.005),
    "comment": (0.6, 0.02),
    "label": (0.3, 0.01),
}


# incidents ------------------------------------------------------------------------------------

INCIDENT_KINDS: Final = ("failure-spike", "cost-spike", "latency-regression", "token-spike", "agent-silent")
DEFAULT_MAGNITUDE: Final = {
    "failure-spike": 0.9,  # share of the agent's runs made to fail, on top of the usual failures
    "cost-spike": 10.0,  # cost per run multiplied
    "latency-regression": 4.0,  # duration multiplied (the extra time is spent in the slow phase)
    "token-spike": 4.0,  # input tokens multiplied (the extra tokens are cache reads)
    "agent-silent": 1.0,  # unused: the agent sends nothing
}


@dataclass(frozen=True)
class Incident:
    """A scripted incident: `kind` hits `agent`'s runs from `start` for `duration` seconds (None: to
    the end of the demo), with strength `magnitude` (see DEFAULT_MAGNITUDE for what it means)."""

    kind: str
    agent: str = "fixer"
    start: float = 0.0
    duration: float | None = None
    magnitude: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident {self.kind!r}: use one of {', '.join(INCIDENT_KINDS)}")
        if self.agent not in AGENTS:
            raise ValueError(
                f"incident {self.kind}: unknown agent {self.agent!r} (one of {', '.join(AGENTS)})"
            )
        if self.magnitude == -1.0:
            object.__setattr__(self, "magnitude", DEFAULT_MAGNITUDE[self.kind])
        if self.start < 0 or (self.duration is not None and self.duration <= 0):
            raise ValueError(f"incident {self.kind}: start must be >= 0 and duration > 0")
        if self.kind == "failure-spike" and not 0 < self.magnitude <= 1:
            raise ValueError("failure-spike: magnitude is the share of runs that fail, in (0, 1]")
        if self.kind in ("cost-spike", "latency-regression", "token-spike") and self.magnitude <= 1:
            raise ValueError(f"{self.kind}: magnitude is a multiplier and must be > 1")

    def active(self, agent: str, offset: float) -> bool:
        """Whether a run of `agent` ending `offset` seconds into the demo is hit."""
        if agent != self.agent or offset < self.start:
            return False
        return self.duration is None or offset < self.start + self.duration

    def describe(self) -> str:
        """One line for humans."""
        until = "the end" if self.duration is None else f"{self.start + self.duration:g} s"
        strength = "" if self.kind == "agent-silent" else f" x{self.magnitude:g}"
        if self.kind == "failure-spike":
            strength = f" {self.magnitude:.0%} of runs fail"
        return f"{self.kind} on {self.agent}{strength}, from {self.start:g} s to {until}"


def parse_incident(spec: str) -> Incident:
    """`kind` or `kind:agent=NAME,magnitude=X,start=S,duration=D` (any subset of the keys)."""
    kind, _, params = spec.partition(":")
    values: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in params.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in ("agent", "magnitude", "start", "duration"):
            raise ValueError(f"{spec!r}: expected key=value with key agent, magnitude, start or duration")
        try:
            values[key] = value.strip() if key == "agent" else float(value)
        except ValueError:
            raise ValueError(f"{spec!r}: {key} must be a number (got {value!r})") from None
    return Incident(kind.strip(), **values)


# generation -----------------------------------------------------------------------------------


def _pick(rng: random.Random, weighted: Sequence[tuple[str, float]]) -> str:
    names = [n for n, _ in weighted]
    return rng.choices(names, weights=[w for _, w in weighted])[0]


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


class Traffic:
    """The demo's runs: arrivals at `rate` per second (Poisson), each a complete run record.

    `start` is the Unix time of offset 0; a run's `ended_at` is `start + offset` (when it reports).
    """

    def __init__(
        self, seed: int, *, rate: float, start: float, incidents: Sequence[Incident] = (), session: str = ""
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 runs per second")
        self.seed = seed
        self.rate = rate
        self.start = start
        self.incidents = tuple(incidents)
        # the start second and the seed: demos started together with different seeds share no run id
        self.session = session or f"{_base36(int(start))}-{seed}"

    def runs(
        self, until: float | None = None, limit: int | None = None
    ) -> Iterator[tuple[float, dict[str, Any]]]:
        """(offset in seconds, record) in time order, up to offset `until` and at most `limit` records.

        Arrivals of a silenced agent are skipped: they produce no record.
        """
        arrivals = random.Random(f"{self.seed}:arrivals")
        offset = 0.0
        index = 0
        emitted = 0
        while limit is None or emitted < limit:
            offset += arrivals.expovariate(self.rate)
            if until is not None and offset >= until:
                return
            record = self.run(index, offset)
            index += 1
            if record is not None:
                emitted += 1
                yield offset, record

    def run(self, index: int, offset: float) -> dict[str, Any] | None:
        """The record of arrival `index` at `offset`, incidents applied; None if its agent is silent."""
        rng = random.Random(f"{self.seed}:{index}")
        agent = AGENTS[_pick(rng, [(a.name, a.share) for a in AGENTS.values()])]
        hits = [i for i in self.incidents if i.active(agent.name, offset)]
        if any(i.kind == "agent-silent" for i in hits):
            return None
        record = _baseline(rng, agent, f"{agent.name}-{self.session}-{index:07d}", self.start + offset)
        for incident in hits:
            _apply(incident, record, agent, random.Random(f"{self.seed}:{index}:{incident.kind}"))
        return record


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _baseline(rng: random.Random, agent: AgentSpec, run_id: str, ended_at: float) -> dict[str, Any]:
    issue_type = _pick(rng, [(name, share) for name, (share, _, _) in ISSUE_TYPES.items()])
    _, difficulty, scale = ISSUE_TYPES[issue_type]
    project = _pick(rng, [(name, share) for name, (_, share, _) in PROJECTS.items()])
    team, _, root = PROJECTS[project]
    model = MODELS[_pick(rng, agent.models)]
    shape = agent.shapes[model.name]

    # status first: it decides how far the run got
    p_failure = 1.0 - agent.success
    if agent.name == "fixer":
        p_failure *= difficulty * MODEL_FAILURE.get(model.name, 1.0)
    status = "success" if rng.random() >= p_failure else _pick(rng, agent.outcomes)

    calls_scale = scale if agent.name == "fixer" else 1.0
    calls = max(1, round(_lognormal(rng, shape.calls[0] * calls_scale, shape.calls[1])))
    input_tokens = round(calls * _lognormal(rng, *shape.input_per_call))
    output_tokens = round(calls * _lognormal(rng, *shape.output_per_call))
    cache_read = round(input_tokens * rng.uniform(*model.cache_read_share))
    cache_write = round(input_tokens * rng.uniform(0.03, 0.08)) if model.cache_write is not None else 0
    reasoning = round(output_tokens * rng.uniform(*model.reasoning_share))
    usage = [
        _usage(
            model,
            calls=calls,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read=cache_read,
            cache_write=cache_write,
            reasoning=reasoning,
        )
    ]
    if agent.name == "fixer" and model.provider == "anthropic" and rng.random() < 0.6:
        # context compaction on a small model
        small = MODELS["claude-haiku-4-5"]
        c = rng.randint(1, 4)
        i = round(c * _lognormal(rng, 30_000, 0.3))
        o = round(c * _lognormal(rng, 800, 0.3))
        cached = round(i * rng.uniform(0.3, 0.6))
        usage.append(
            _usage(
                small, calls=c, input_tokens=i, output_tokens=o, cache_read=cached, cache_write=0, reasoning=0
            )
        )

    phases, retries, failed_at = _phases(rng, agent, status, calls)
    duration = sum(p["duration_seconds"] for p in phases)
    if status == "timeout":
        overshoot = rng.uniform(0.0, 5.0)
        phases[-1]["duration_seconds"] += agent.timeout_seconds + overshoot - duration
        duration = agent.timeout_seconds + overshoot
    tools = _tools(rng, agent, model.provider, calls, status)

    record: dict[str, Any] = {
        "run_id": run_id,
        "agent": agent.name,
        "agent_version": agent.version,
        "model": model.name,
        "provider": model.provider,
        "issue_type": issue_type,
        "project": project,
        "team": team,
        "environment": "production" if rng.random() < 0.85 else "staging",
        "status": status,
        "started_at": round(ended_at - duration, 6),
        "ended_at": round(ended_at, 6),
        "duration_seconds": round(duration, 6),
        "input_tokens": sum(u["input_tokens"] for u in usage),
        "output_tokens": sum(u["output_tokens"] for u in usage),
        "cache_read_tokens": sum(u.get("cache_read_tokens", 0) for u in usage),
        "cache_write_tokens": sum(u.get("cache_write_tokens", 0) for u in usage),
        "reasoning_tokens": sum(u.get("reasoning_tokens", 0) for u in usage),
        "llm_calls": sum(u["calls"] for u in usage),
        "tool_calls": sum(t["calls"] for t in tools),
        "retries": retries,
        "usage": usage,
        "tools": tools,
        "phases": phases,
        "labels": {"trigger": _pick(rng, (("ci", 0.7), ("schedule", 0.2), ("manual", 0.1)))},
    }
    record.update(workflow(phases))
    if agent.reports_cost:
        record["cost_usd"] = round(sum(u["cost_usd"] for u in usage), 6)
    else:
        for u in usage:
            del u["cost_usd"]
    if status == "success":
        record["quality_score"] = round(rng.uniform(0.72, 0.99), 3)
        record["confidence"] = round(rng.uniform(0.6, 0.95), 3)
    else:
        if status == "failure":
            record["quality_score"] = round(rng.uniform(0.1, 0.5), 3)
            record["confidence"] = round(rng.uniform(0.2, 0.6), 3)
        attempts = sum(1 for p in phases if p["name"] == "pipeline")
        error_type, summary = _error(
            rng, agent, status, issue_type=issue_type, root=root, phase=failed_at, attempts=attempts
        )
        record["error_type"] = error_type
        record["error_summary"] = summary
    return record


def _usage(
    model: ModelSpec,
    *,
    calls: int,
    input_tokens: int,
    output_tokens: int,
    cache_read: int,
    cache_write: int,
    reasoning: int,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model": model.name,
        "provider": model.provider,
        "calls": calls,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": round(model.cost(input_tokens, output_tokens, cache_read, cache_write), 6),
    }
    if cache_read:
        entry["cache_read_tokens"] = cache_read
    if cache_write:
        entry["cache_write_tokens"] = cache_write
    if reasoning:
        entry["reasoning_tokens"] = reasoning
    return entry


def _phases(
    rng: random.Random, agent: AgentSpec, status: str, calls: int
) -> tuple[list[dict[str, Any]], int, str]:
    """The run's phases, its retries, and the phase where it stopped (if it did not succeed)."""
    per_call = _lognormal(rng, 2.5 if agent.name == "fixer" else 1.5, 0.3)  # LLM latency plus tool time
    if agent.name == "fixer":
        attempts = 1
        while attempts < 3 and rng.random() < 0.2:
            attempts += 1
        if status == "failure":
            attempts = rng.randint(2, 4)
        plan = [
            ("plan", _lognormal(rng, 25, 0.5)),
            ("edit", calls * per_call),
            ("test", _lognormal(rng, 90, 0.5)),
            ("review", _lognormal(rng, 30, 0.5)),
        ] + [("pipeline", _lognormal(rng, 150, 0.4)) for _ in range(attempts)]
        retries = attempts - 1 + (1 if rng.random() < 0.1 else 0)
    elif agent.name == "reviewer":
        plan = [
            ("fetch", _lognormal(rng, 4, 0.4)),
            ("analyse", calls * per_call),
            ("comment", _lognormal(rng, 6, 0.4)),
        ]
        retries = 1 if rng.random() < 0.05 else 0
    else:
        plan = [("classify", calls * per_call), ("route", _lognormal(rng, 1.0, 0.4))]
        retries = 1 if rng.random() < 0.03 else 0

    stop = len(plan)
    if status in ("error", "timeout", "cancelled"):
        stop = rng.randint(1, len(plan))  # it ended during this phase
    phases = []
    for n, (name, seconds) in enumerate(plan[:stop]):
        last = n == stop - 1
        phase_status = "success"
        if name == "pipeline" and status == "failure" and not last:
            phase_status = "failure"  # attempts before the last one failed; the last one too, below
        if last and status != "success":
            phase_status = status
        phases.append({"name": name, "duration_seconds": round(seconds, 3), "status": phase_status})
    return phases, retries, plan[stop - 1][0]


def _tools(
    rng: random.Random, agent: AgentSpec, provider: str, calls: int, status: str
) -> list[dict[str, Any]]:
    mix = agent.tools[provider]
    names = [n for n, _ in mix]
    counts = Counter(rng.choices(names, weights=[w for _, w in mix], k=max(0, calls - 1)))
    if agent.name == "fixer" and status == "success":
        counts["submit"] += 1
    tools = []
    for name in sorted(counts):
        n = counts[name]
        mean, p_error = _TOOL_TIME[name]
        errors = sum(1 for _ in range(n) if rng.random() < p_error)
        seconds = n * mean * math.exp(rng.gauss(0.0, 0.3))
        tools.append({"name": name, "calls": n, "errors": errors, "duration_seconds": round(seconds, 3)})
    return tools


def _error(
    rng: random.Random,
    agent: AgentSpec,
    status: str,
    *,
    issue_type: str,
    root: str,
    phase: str,
    attempts: int,
) -> tuple[str, str]:
    path = f"{root}/{rng.choice(_FILES)}"
    if status == "timeout":
        return "timeout", f"run exceeded the {agent.timeout_seconds:g} s limit during the {phase} phase"
    if status == "cancelled":
        return "superseded", f"cancelled: a newer commit on the branch superseded the run during {phase}"
    if status == "error":
        kind = rng.choice(("llm_api_error", "tool_crash", "context_window_exceeded"))
        summary = {
            "llm_api_error": f"provider returned 529 overloaded after 5 retries during {phase}",
            "tool_crash": f"bash tool was killed by signal 9 (out of memory) while running tests for {path}",
            "context_window_exceeded": (
                f"prompt of {rng.randint(200_001, 260_000)} tokens exceeds the 200000-token context window"
            ),
        }[kind]
        return kind, summary
    if agent.name == "reviewer":
        return "review_incomplete", f"could not map {rng.randint(1, 4)} review comments to lines of {path}"
    if agent.name == "triager":
        return "unclassifiable", f"finding in {path} matches no known {issue_type} rule"
    kind = rng.choice(("tests_still_failing", "patch_rejected", "could_not_reproduce", "lint_failed"))
    summary = {
        "tests_still_failing": (
            f"{rng.randint(1, 6)} tests still fail in {path} after {attempts} pipeline attempts"
        ),
        "patch_rejected": f"reviewer rejected the {issue_type} patch for {path}: untested behaviour change",
        "could_not_reproduce": f"could not reproduce the {issue_type} finding in {path}",
        "lint_failed": f"ruff reports {rng.randint(1, 9)} new violations in {path}",
    }[kind]
    return kind, summary


def _apply(incident: Incident, record: dict[str, Any], agent: AgentSpec, rng: random.Random) -> None:
    """Change `record` as `incident` says (see DEFAULT_MAGNITUDE); marks it with a label."""
    m = incident.magnitude
    record["labels"]["demo_incident"] = incident.kind
    if incident.kind == "failure-spike":
        if rng.random() >= m:
            return
        if rng.random() < 0.7:
            record["status"] = "failure"
            record["error_type"] = "pipeline_failed"
            record["error_summary"] = (
                "pipeline failed: the test runner image ci/python:3.12 cannot start (ImagePullBackOff)"
            )
        else:
            record["status"] = "error"
            record["error_type"] = "llm_api_error"
            record["error_summary"] = "provider returned 529 overloaded after 5 retries"
        record["retries"] = record["retries"] + 2
        record["phases"][-1]["status"] = record["status"]
        for key in ("quality_score", "confidence"):
            record.pop(key, None)
    elif incident.kind == "cost-spike":
        for u in record["usage"]:
            if "cost_usd" in u:
                u["cost_usd"] = round(u["cost_usd"] * m, 6)
        if "cost_usd" in record:
            record["cost_usd"] = round(record["cost_usd"] * m, 6)
        else:  # an agent that lets the exporter estimate: report the spiked cost instead
            record["cost_usd"] = round(list_cost(record) * m, 6)
    elif incident.kind == "latency-regression":
        extra = record["duration_seconds"] * (m - 1)
        slow = next((p for p in record["phases"] if p["name"] == agent.slow_phase), record["phases"][-1])
        slow["duration_seconds"] = round(slow["duration_seconds"] + extra, 3)
        record["duration_seconds"] = round(record["duration_seconds"] + extra, 6)
        record["started_at"] = round(record["ended_at"] - record["duration_seconds"], 6)
    elif incident.kind == "token-spike":
        main = record["usage"][0]
        extra = round(main["input_tokens"] * (m - 1))
        main["input_tokens"] += extra
        main["cache_read_tokens"] = main.get("cache_read_tokens", 0) + extra
        model = MODELS[main["model"]]
        new_cost = model.cost(
            main["input_tokens"],
            main["output_tokens"],
            main["cache_read_tokens"],
            main.get("cache_write_tokens", 0),
        )
        if "cost_usd" in main:
            delta = round(new_cost, 6) - main["cost_usd"]
            main["cost_usd"] = round(new_cost, 6)
            record["cost_usd"] = round(record["cost_usd"] + delta, 6)
        record["input_tokens"] += extra
        record["cache_read_tokens"] += extra


def list_cost(record: dict[str, Any]) -> float:
    """A record's cost at list prices (what the exporter estimates for an agent that reports none)."""
    return sum(
        MODELS[u["model"]].cost(
            u["input_tokens"],
            u["output_tokens"],
            u.get("cache_read_tokens", 0),
            u.get("cache_write_tokens", 0),
        )
        for u in record["usage"]
    )
