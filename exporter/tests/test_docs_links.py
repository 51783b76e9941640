"""Every relative link of the documentation opens a file of the repository, and every #anchor a
heading of the page it names (GitHub's heading slugs)."""

from __future__ import annotations

import posixpath
from pathlib import PurePosixPath
from urllib.parse import urlparse

import pytest

from .doc_examples import DOCS, anchors, links, slug
from .support import REPO


def _relative(target: str) -> bool:
    return not urlparse(target).scheme and not target.startswith("//")


def test_slugs_follow_github() -> None:
    assert slug("Add a new model's price") == "add-a-new-models-price"
    assert slug("Read API with 1,000,000 runs") == "read-api-with-1000000-runs"
    assert slug("Rules, alerts and dashboards") == "rules-alerts-and-dashboards"
    assert slug("Counted at `ended_at`") == "counted-at-ended_at"


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_opens_a_file_of_the_repository(doc: str) -> None:
    here = PurePosixPath(doc).parent
    broken = []
    for line, target in links(doc):
        path = target.partition("#")[0]
        if _relative(target) and path and not (REPO / here / path).exists():
            broken.append(f"{doc}:{line}: {target}")
    assert broken == []


@pytest.mark.parametrize("doc", DOCS)
def test_every_anchor_is_a_heading_of_its_page(doc: str) -> None:
    here = PurePosixPath(doc).parent
    broken = []
    for line, target in links(doc):
        path, _, anchor = target.partition("#")
        if not _relative(target) or not anchor:
            continue
        page = posixpath.normpath(PurePosixPath(here, path).as_posix()) if path else doc
        if not page.endswith(".md") or anchor not in anchors(page):
            broken.append(f"{doc}:{line}: {target}")
    assert broken == []


def test_the_readme_links_every_other_document() -> None:
    linked = {target for _, target in links("README.md")}
    assert {doc for doc in DOCS if doc != "README.md"} <= linked


def test_every_page_of_docs_is_a_document_under_test() -> None:
    pages = {path.relative_to(REPO).as_posix() for path in (REPO / "docs").glob("*.md")}
    assert sorted(pages - set(DOCS)) == []
