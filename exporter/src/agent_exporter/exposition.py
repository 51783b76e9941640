"""Counters, gauges and histograms for the agent metrics, with a cached exposition.

prometheus_client builds a Metric and a Sample object for every series at every scrape and then
formats them: about 10 µs a series, half a second at 50k series. The agent metrics are many series
that change a few at a time, so each child here keeps its rendered lines and renders them again only
after it changed. A scrape joins cached strings; the cost is proportional to what changed since the
previous scrape, not to what exists.

The families also implement the Collector protocol, so a `CollectorRegistry` (and tests using
`registry.get_sample_value`) sees them like any other metric.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

Key = tuple[str, ...]

_INF: Final = float("inf")


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(names: Sequence[str], values: Key) -> str:
    """`name="value",...` sorted by name (as prometheus_client writes them), without braces."""
    return ",".join(f'{n}="{_escape(v)}"' for n, v in sorted(zip(names, values, strict=True)))


def _braced(inner: str) -> str:
    return "{" + inner + "}" if inner else ""


class Family:
    """A metric family: its children keyed by label values, and their cached lines."""

    kind = "untyped"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        # rendered lines per child, (text, openmetrics); None until (re)rendered
        self._cache: dict[Key, tuple[str, str] | None] = {}
        self._label_cache: dict[Key, str] = {}

    def _label_text(self, key: Key) -> str:
        text = self._label_cache.get(key)
        if text is None:
            text = self._label_cache[key] = _labels(self.labelnames, key)
        return text

    def _header(self, openmetrics: bool) -> str:
        name = self.name if openmetrics or self.kind != "counter" else self.name + "_total"
        doc = (
            _escape(self.documentation)
            if openmetrics
            else self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        )
        return f"# HELP {name} {doc}\n# TYPE {name} {self.kind}\n"

    def render(self, openmetrics: bool) -> str:
        """The family in the text format (0.0.4) or in OpenMetrics; call with the lock held."""
        index = 1 if openmetrics else 0
        parts = [self._header(openmetrics)]
        for key, cached in self._cache.items():
            lines = cached if cached is not None else self._rerender(key)
            parts.append(lines[index])
        return "".join(parts)

    def _rerender(self, key: Key) -> tuple[str, str]:
        lines = self._cache[key] = self._render_child(key)
        return lines

    def _render_child(self, key: Key) -> tuple[str, str]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._cache)


class CounterFamily(Family):
    """Monotonic counters."""

    kind = "counter"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, documentation, labelnames)
        self._values: dict[Key, float] = {}

    def inc(self, key: Key, amount: float = 1.0) -> None:
        """Add `amount` (≥ 0) to the child `key`; call with the lock held."""
        self._values[key] = self._values.get(key, 0.0) + amount
        self._cache[key] = None

    def touch(self, key: Key) -> None:
        """Create the child `key` at zero if it does not exist (pre-initialised series)."""
        if key not in self._values:
            self._values[key] = 0.0
            self._cache[key] = None

    def _render_child(self, key: Key) -> tuple[str, str]:
        line = f"{self.name}_total{_braced(self._label_text(key))} {floatToGoString(self._values[key])}\n"
        return line, line

    def collect(self) -> Metric:
        """The family as prometheus_client sees it."""
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, value in self._values.items():
            family.add_metric(key, value)
        return family


class GaugeFamily(Family):
    """Values that go up and down."""

    kind = "gauge"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, documentation, labelnames)
        self._values: dict[Key, float] = {}

    def set(self, key: Key, value: float) -> None:
        """Set the child `key` to `value`; call with the lock held."""
        self._values[key] = value
        self._cache[key] = None

    def get(self, key: Key) -> float | None:
        """The child's value, or None if it does not exist."""
        return self._values.get(key)

    def _render_child(self, key: Key) -> tuple[str, str]:
        line = f"{self.name}{_braced(self._label_text(key))} {floatToGoString(self._values[key])}\n"
        return line, line

    def collect(self) -> Metric:
        """The family as prometheus_client sees it."""
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, value in self._values.items():
            family.add_metric(key, value)
        return family


@dataclass(slots=True)
class _Histogram:
    counts: list[int]  # per bucket, not cumulative; the last is +Inf
    total: float = 0.0
    exemplars: list[tuple[str, float, float] | None] = field(default_factory=list)  # (run_id, value, time)


class HistogramFamily(Family):
    """Histograms with cumulative buckets and, in OpenMetrics, one exemplar per bucket (the latest)."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        super().__init__(name, documentation, labelnames)
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(f"{name}: buckets must be strictly increasing")
        if not bounds or bounds[-1] != _INF:
            bounds.append(_INF)
        self.bounds = tuple(bounds)
        self._le = tuple(floatToGoString(b) for b in bounds)
        self._children: dict[Key, _Histogram] = {}

    def observe(self, key: Key, value: float, run_id: str | None = None, at: float | None = None) -> None:
        """Count `value` in the child `key`, with `run_id` as the bucket's exemplar (observed at
        `at`, Unix seconds, or now); lock held."""
        child = self._children.get(key)
        if child is None:
            n = len(self.bounds)
            child = self._children[key] = _Histogram([0] * n, 0.0, [None] * n)
        i = bisect_left(self.bounds, value)  # the first bucket whose bound is >= value
        child.counts[i] += 1
        if run_id is not None:
            child.exemplars[i] = (run_id, value, time.time() if at is None else at)
        child.total += value
        self._cache[key] = None

    def _render_child(self, key: Key) -> tuple[str, str]:
        child = self._children[key]
        labels = self._label_text(key)
        # `le` takes its sorted place among the labels
        pairs = sorted(zip(self.labelnames, key, strict=True))
        before = "".join(f'{n}="{_escape(v)}",' for n, v in pairs if n < "le")
        after = "".join(f',{n}="{_escape(v)}"' for n, v in pairs if n > "le")
        text: list[str] = []
        om: list[str] = []
        cumulative = 0
        for le, count, exemplar in zip(self._le, child.counts, child.exemplars, strict=True):
            cumulative += count
            line = f'{self.name}_bucket{{{before}le="{le}"{after}}} {floatToGoString(cumulative)}'
            text.append(line + "\n")
            if exemplar is not None:
                run_id, value, ts = exemplar
                line += f' # {{run_id="{_escape(run_id)}"}} {floatToGoString(value)} {ts}'
            om.append(line + "\n")
        tail = (
            f"{self.name}_count{_braced(labels)} {floatToGoString(cumulative)}\n"
            f"{self.name}_sum{_braced(labels)} {floatToGoString(child.total)}\n"
        )
        return "".join(text) + tail, "".join(om) + tail

    def collect(self) -> Metric:
        """The family as prometheus_client sees it, exemplars included."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, child in self._children.items():
            buckets: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
            cumulative = 0
            for le, count, exemplar in zip(self._le, child.counts, child.exemplars, strict=True):
                cumulative += count
                if exemplar is None:
                    buckets.append((le, cumulative))
                else:
                    buckets.append(
                        (le, cumulative, Exemplar({"run_id": exemplar[0]}, exemplar[1], exemplar[2]))
                    )
            family.add_metric(key, buckets, child.total)
        return family


class FamilySet:
    """The agent metric families under one lock, registered with a registry as one collector."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.families: list[CounterFamily | GaugeFamily | HistogramFamily] = []

    def counter(self, name: str, documentation: str, labelnames: Sequence[str]) -> CounterFamily:
        """A new counter family; `name` without `_total`."""
        family = CounterFamily(name, documentation, labelnames)
        self.families.append(family)
        return family

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str]) -> GaugeFamily:
        """A new gauge family."""
        family = GaugeFamily(name, documentation, labelnames)
        self.families.append(family)
        return family

    def histogram(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> HistogramFamily:
        """A new histogram family."""
        family = HistogramFamily(name, documentation, labelnames, buckets)
        self.families.append(family)
        return family

    def render(self, openmetrics: bool) -> str:
        """Every family in one format (no `# EOF`: the caller ends the document)."""
        with self.lock:
            return "".join(f.render(openmetrics) for f in self.families)

    def collect(self) -> Iterator[Metric]:
        """Collector protocol: the families as prometheus_client metrics."""
        with self.lock:
            metrics = [f.collect() for f in self.families]
        yield from metrics

    def describe(self) -> Iterator[Metric]:
        """Collector protocol: the families, empty, so the registry knows their names up front."""
        for f in self.families:
            if isinstance(f, CounterFamily):
                yield CounterMetricFamily(f.name, f.documentation, labels=f.labelnames)
            elif isinstance(f, GaugeFamily):
                yield GaugeMetricFamily(f.name, f.documentation, labels=f.labelnames)
            else:
                yield HistogramMetricFamily(f.name, f.documentation, labels=f.labelnames)
