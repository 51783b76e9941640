"""Named scores composed from evidence: `quality` and `collaboration`, each by a strategy.

A strategy is a Python protocol (`QualityScoringStrategy`, `CollaborationScoringStrategy`) with one
implementation each, layered: every layer is a piece of evidence with a weight, and the score is
the weighted mean of the layers that have evidence (the weights of the others are left out, not
counted as zero). The weights are configuration (`scoring.quality`, `scoring.collaboration`;
docs/scores.md). Another strategy (a learned model, a rubric) is another class with the same
method, chosen where `strategies` builds them.

Quality layers: a source of scores named `quality` (`review`, `evaluation`, `peer`, `human`, ...:
the mean of that source's quality scores) and `self`, the runs' own `quality_score`.
Collaboration layers: `peer`, the mean of scores named `collaboration` or `helpfulness` (any
source); `subagent_success`, sub-agent successes over attempts; `debugging_resolved`, debugging
cycles resolved over cycles: behavioural telemetry of the runs themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: the score names the collaboration strategy's `peer` layer reads
COLLABORATION_NAMES: Final = ("collaboration", "helpfulness")
SELF: Final = "self"
TELEMETRY_LAYERS: Final = ("peer", "subagent_success", "debugging_resolved")


def _weights(value: dict[str, float]) -> dict[str, float]:
    if not value:
        raise ValueError("give at least one layer a weight")
    for layer, weight in value.items():
        if not (weight >= 0):  # NaN fails too
            raise ValueError(f"{layer}: a weight must be a number >= 0 (got {weight})")
    if not any(value.values()):
        raise ValueError("at least one weight must be above 0")
    return value


class ScoringSettings(BaseModel):
    """The layers' weights of the named scores (configuration key `scoring`)."""

    model_config = ConfigDict(extra="forbid")

    quality: dict[str, float] = Field(
        default_factory=lambda: {"review": 0.4, "evaluation": 0.3, "peer": 0.1, "human": 0.1, SELF: 0.1},
        description="quality: a weight per source of `quality` scores, and `self` (the runs' quality_score)",
    )
    collaboration: dict[str, float] = Field(
        default_factory=lambda: {"peer": 0.5, "subagent_success": 0.25, "debugging_resolved": 0.25},
        description="collaboration: peer, subagent_success, debugging_resolved",
    )

    @field_validator("quality", "collaboration")
    @classmethod
    def _check(cls, value: dict[str, float]) -> dict[str, float]:
        return _weights(value)

    @field_validator("collaboration")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(TELEMETRY_LAYERS))
        if unknown:
            raise ValueError(f"unknown layers {unknown}; the layers are {list(TELEMETRY_LAYERS)}")
        return value


@dataclass(slots=True)
class Mean:
    """A sum and a count, folded as evidence arrives."""

    total: float = 0.0
    count: int = 0

    def add(self, total: float, count: int) -> None:
        """Fold `count` values summing to `total`."""
        self.total += total
        self.count += count

    @property
    def value(self) -> float | None:
        """The mean, or None without values."""
        return self.total / self.count if self.count else None


@dataclass(slots=True)
class Evidence:
    """What a group of runs (all runs, an agent, a team) offers the strategies."""

    scores: dict[tuple[str, str], Mean] = field(default_factory=dict)  # (name, source or '') -> mean
    self_quality: Mean = field(default_factory=Mean)  # the runs' own quality_score
    subagent_successes: int = 0
    subagent_attempts: int = 0
    cycles_resolved: int = 0
    cycles: int = 0

    def score(self, name: str, source: str | None = None) -> Mean:
        """The mean of the scores called `name` (from `source`, or from any source)."""
        out = Mean()
        for (n, s), mean in self.scores.items():
            if n == name and (source is None or s == source):
                out.add(mean.total, mean.count)
        return out


class QualityScoringStrategy(Protocol):
    """Composes the `quality` score of a group of runs from its evidence."""

    def quality(self, evidence: Evidence) -> float | None:
        """The quality (0..1), or None without evidence."""
        ...


class CollaborationScoringStrategy(Protocol):
    """Composes the `collaboration` score of a group of runs from its evidence."""

    def collaboration(self, evidence: Evidence) -> float | None:
        """The collaboration score (0..1), or None without evidence."""
        ...


def weighted(layers: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """The weighted mean of the layers that have a value; None when none has (or all weigh 0)."""
    present = [
        (weights[name], value) for name, value in layers.items() if value is not None and weights[name] > 0
    ]
    total = sum(w for w, _ in present)
    return sum(w * v for w, v in present) / total if total else None


class LayeredQuality:
    """Quality as the weighted mean of its sources' mean quality scores and the runs' own."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = dict(weights)

    def layers(self, evidence: Evidence) -> dict[str, float | None]:
        """Each layer's value (None: no evidence)."""
        return {
            layer: evidence.self_quality.value if layer == SELF else evidence.score("quality", layer).value
            for layer in self.weights
        }

    def quality(self, evidence: Evidence) -> float | None:
        """The weighted mean of the layers with evidence."""
        return weighted(self.layers(evidence), self.weights)


class LayeredCollaboration:
    """Collaboration as the weighted mean of peer feedback and the runs' behavioural telemetry."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = dict(weights)

    def layers(self, evidence: Evidence) -> dict[str, float | None]:
        """Each layer's value (None: no evidence)."""
        peer = Mean()
        for name in COLLABORATION_NAMES:
            mean = evidence.score(name)
            peer.add(mean.total, mean.count)
        values = {
            "peer": peer.value,
            "subagent_success": (
                evidence.subagent_successes / evidence.subagent_attempts
                if evidence.subagent_attempts
                else None
            ),
            "debugging_resolved": evidence.cycles_resolved / evidence.cycles if evidence.cycles else None,
        }
        return {layer: values[layer] for layer in self.weights}

    def collaboration(self, evidence: Evidence) -> float | None:
        """The weighted mean of the layers with evidence."""
        return weighted(self.layers(evidence), self.weights)


@dataclass(frozen=True, slots=True)
class Strategies:
    """The strategies in use (`strategies(settings)` builds the configured ones)."""

    quality: QualityScoringStrategy
    collaboration: CollaborationScoringStrategy


def strategies(settings: ScoringSettings) -> Strategies:
    """The layered strategies with the configured weights."""
    return Strategies(LayeredQuality(settings.quality), LayeredCollaboration(settings.collaboration))
