"""docs/dashboards.md names what the generator renders: dashboards with their uids, panels by their
titles, and links that open."""

from __future__ import annotations

import re

from .doc_examples import anchors, links, prose_lines, table
from .support import REPO
from .test_docs_alerting import dashboards

DOC = "docs/dashboards.md"


def test_the_table_of_dashboards_is_the_generated_dashboards() -> None:
    rows = {row[0]: row[1].strip("`") for row in table(DOC, ["dashboard", "uid", "reads"])}
    assert rows == {title: uid for title, (uid, _) in dashboards().items()}


def test_every_panel_named_is_on_a_dashboard() -> None:
    panels = set().union(*(titles for _, titles in dashboards().values()))
    text = " ".join(line for _, line in prose_lines(DOC))
    named = re.findall(r"(?<![*\w])\*([^*]+)\*(?![*\w])", text)
    assert len(named) >= 8
    assert [n for n in named if " ".join(n.split()) not in panels] == []


def test_every_link_opens_a_file_or_a_heading() -> None:
    broken = []
    for line, target in links(DOC):
        path, _, anchor = target.partition("#")
        if target.startswith("http"):
            continue
        if path and not (REPO / "docs" / path).exists():
            broken.append(f"{line}: {target}")
        if anchor and anchor not in anchors(f"docs/{path}" if path else DOC):
            broken.append(f"{line}: {target}")
    assert broken == []
