"""The runbooks and the operations checklist name what the generator renders: dashboards by their
titles and uids, panels by their titles on those dashboards, and the failure-rate alert's windows
as alerts/config.yaml sets them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from agent_exporter.mixin.config import format_duration, load_config
from agent_exporter.mixin.generate import CONFIG_PATH, DASHBOARDS

from .doc_examples import prose_lines, table
from .support import REPO

GUIDES = ("docs/runbooks.md", "docs/operations.md")
#: italics of the guides that are not panel titles
NOT_PANELS = {"Status → Targets"}  # a page of Prometheus's own UI


def _panels(panels: list[dict[str, Any]]) -> Iterator[str]:
    for panel in panels:
        yield panel["title"]
        yield from _panels(panel.get("panels", []))


def dashboards() -> dict[str, tuple[str, set[str]]]:
    """title -> (uid, panel titles) of every generated dashboard."""
    out = {}
    for path in (REPO / DASHBOARDS).glob("*.json"):
        dashboard = json.loads(path.read_text())
        out[dashboard["title"]] = (dashboard["uid"], set(_panels(dashboard["panels"])))
    return out


def chunks(doc: str) -> list[str]:
    """The paragraphs and list items of `doc`, each on one line."""
    out: list[list[str]] = [[]]
    for _, line in prose_lines(doc):
        if not line.strip() or re.match(r"^\s*(\d+\.|[-*])\s", line):
            out.append([])
        out[-1].append(line.strip())
    return [" ".join(chunk) for chunk in out if chunk]


@pytest.mark.parametrize("doc", GUIDES)
def test_every_dashboard_named_is_generated_with_the_uid_given(doc: str) -> None:
    known = dashboards()
    text = " ".join(line for _, line in prose_lines(doc))
    named = re.findall(r"\*\*([^*]+)\*\* \(`/d/([\w-]+)`\)", text)
    assert named, "the guide gives no dashboard with its uid"
    assert [(title, uid) for title, uid in named if known.get(title, ("",))[0] != uid] == []


@pytest.mark.parametrize("doc", GUIDES)
def test_every_panel_named_is_on_the_dashboards_its_paragraph_names(doc: str) -> None:
    known = dashboards()
    wrong = []
    for chunk in chunks(doc):
        boards = [title for title in re.findall(r"\*\*([^*]+)\*\*", chunk) if title in known]
        panels = set().union(*(known[title][1] for title in boards or known))
        for italic in re.findall(r"(?<![*\w])\*([^*]+)\*(?![*\w])", chunk):
            if italic not in panels and italic not in NOT_PANELS:
                wrong.append(f"{italic!r} (on {', '.join(boards) or 'any dashboard'})")
    assert wrong == []


def test_the_runbooks_burn_rate_table_is_the_configurations() -> None:
    failure_rate = load_config(REPO / CONFIG_PATH).failure_rate
    documented = table(
        "docs/runbooks.md", ["severity", "long / short window", "burn rate", "failure ratio above", "for"]
    )
    configured = [
        [
            w.severity,
            f"{format_duration(w.long)} / {format_duration(w.short)}",
            f"{w.burn_rate:g}",
            f"{w.burn_rate * failure_rate.budget:.0%}",
            format_duration(w.for_),
        ]
        for w in failure_rate.windows
    ]
    assert documented == configured


def test_the_runbooks_state_the_objective_and_the_minimum_runs_configured() -> None:
    failure_rate = load_config(REPO / CONFIG_PATH).failure_rate
    text = " ".join(line for _, line in prose_lines("docs/runbooks.md"))
    objective = f"({failure_rate.objective:.0%} over {failure_rate.period // 86400} days)"
    assert objective in text
    assert f"error budget ({failure_rate.budget:.0%})" in text
    assert f"at least {failure_rate.min_runs} non-cancelled runs" in text
