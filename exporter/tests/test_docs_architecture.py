"""docs/architecture.md against the code: its table of layers is the import-linter contract of
exporter/pyproject.toml, its diagram names every module of those layers, and its map of concerns
names every module of the package (or the package it belongs to), so that a new module, or a module
moved to another layer, fails here until the page says so."""

from __future__ import annotations

import re
import tomllib

from .doc_examples import block_of, code_spans, table
from .support import REPO

ARCHITECTURE = "docs/architecture.md"
PACKAGE = REPO / "exporter/src/agent_exporter"


def contract_layers() -> list[tuple[list[str], str]]:
    """(modules, separator) of each layer of the import-linter contract, top first."""
    config = tomllib.loads((REPO / "exporter/pyproject.toml").read_text())
    [contract] = config["tool"]["importlinter"]["contracts"]
    out = []
    for layer in contract["layers"]:
        separator = "|" if "|" in layer else ":" if ":" in layer else ""
        out.append(([m.strip() for m in re.split(r"[|:]", layer)], separator))
    return out


def test_the_layers_table_is_the_import_linter_contract() -> None:
    meaning = {"": "", "|": "no", ":": "yes"}
    contract = [(modules, meaning[sep]) for modules, sep in contract_layers()]
    documented = [
        (code_spans(modules), allowed.partition(":")[0])
        for _, modules, allowed in table(ARCHITECTURE, ["layer", "modules", "may import each other"])
    ]
    assert documented == contract


def test_the_layers_diagram_names_every_module_of_the_contract() -> None:
    diagram = block_of(ARCHITECTURE, "flowchart TD", lang="mermaid").text
    named = set(re.findall(r"[\w/]+", diagram))
    missing = [
        m for modules, _ in contract_layers() for m in modules if m not in named and f"{m}/" not in named
    ]
    assert missing == []


def test_the_map_of_concerns_names_every_module_of_the_package() -> None:
    spans = [
        span for _, modules in table(ARCHITECTURE, ["concern", "module"]) for span in code_spans(modules)
    ]
    modules = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "versions" not in path.parts and not (path.name == "__init__.py" and path.parent != PACKAGE)
    ]
    unnamed = [
        module
        for module in sorted(modules)
        if module not in spans and not any(s.endswith("/") and module.startswith(s) for s in spans)
    ]
    assert unnamed == []
    stale = [s for s in spans if s.endswith((".py", "/")) and not (PACKAGE / s).exists()]
    assert stale == []
