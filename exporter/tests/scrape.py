"""Reading a real server's /metrics back as numbers, the way Prometheus would."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    """One scrape's samples: (name, labels) to value."""

    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float]

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample of `name` whose labels include `labels` (0 when none)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def value(self, name: str, **labels: str) -> float | None:
        """The sample of `name` with exactly `labels`, or None."""
        return self.samples.get((name, frozenset(labels.items())))


def scrape(base_url: str, **kwargs: object) -> Scrape:
    """GET /metrics from `base_url` and parse the text exposition."""
    response = httpx.get(f"{base_url}/metrics", timeout=10, **kwargs)  # type: ignore[arg-type]
    response.raise_for_status()
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples)
