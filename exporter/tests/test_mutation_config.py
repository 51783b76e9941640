"""`make mutate` stays consistent without running it: the Makefile's modules, [tool.mutmut] and
docs/quality.md name the same modules, the test selection exists, and the summary counts right."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from . import mutation_summary as summary
from .support import REPO

EXPORTER = REPO / "exporter"
MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")
MUTMUT = tomllib.loads((EXPORTER / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]
QUALITY = (REPO / "docs" / "quality.md").read_text(encoding="utf-8")
#: a row of docs/quality.md's kill-rate table (python -m tests.mutation_summary --markdown):
#: | module | mutants | killed | survived | equivalent | not run | kill rate |
RATE_ROW = re.compile(
    r"^\| `(\w+)` \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+\.\d)% \|$", re.MULTILINE
)


def makefile_modules() -> list[str]:
    match = re.search(r"^MODULES\s*\?=\s*(.+)$", MAKEFILE, re.MULTILINE)
    assert match is not None, "the Makefile sets no MODULES"
    return match.group(1).split()


def test_the_makefile_mutates_the_modules_the_config_names() -> None:
    assert makefile_modules() == summary.configured_modules()
    assert summary.configured_modules() == ["record", "pricing", "metrics", "ingest", "analytics", "reports"]
    assert all((EXPORTER / path).is_file() for path in MUTMUT["only_mutate"])


def test_mutate_is_a_target_of_its_own_and_not_part_of_make_test() -> None:
    test_line = re.search(r"^test:(.*)$", MAKEFILE, re.MULTILINE)
    assert test_line is not None
    assert test_line.group(1).split() == ["lint", "typecheck", "pytest"]
    recipe = MAKEFILE.split("\nmutate: install\n", 1)[1].split("\n\n", 1)[0]
    assert "nice -n 15 ../$(BIN)/mutmut run" in recipe
    assert "python -m tests.mutation_summary $(MODULES)" in recipe


def test_the_mutants_run_against_fast_unit_tests_that_exist() -> None:
    selection = MUTMUT["pytest_add_cli_args_test_selection"]
    assert all((EXPORTER / path).is_file() for path in selection), selection
    slow = {"test_web_browser.py", "test_promtool.py", "test_stack_live.py", "test_stack_native.py"}
    assert not slow & {Path(path).name for path in selection}
    assert "not postgres and not prometheus" in " ".join(MUTMUT["pytest_add_cli_args"])


def test_the_quality_page_gives_each_module_a_consistent_kill_rate() -> None:
    rows = {m.group(1): m.groups()[1:] for m in RATE_ROW.finditer(QUALITY)}
    assert list(rows) == summary.configured_modules()
    for module, (mutants, killed, survived, equivalent, not_run, rate) in rows.items():
        assert int(killed) + int(survived) + int(equivalent) + int(not_run) == int(mutants), module
        counted = summary.ModuleResult(
            module, int(mutants), int(killed), int(survived), int(equivalent), int(not_run)
        )
        assert f"{counted.rate:.1f}" == rate, module
    assert "make mutate" in QUALITY
    assert "make mutate MODULES=" in QUALITY


def test_every_equivalent_mutant_listed_belongs_to_a_mutated_module_and_says_why() -> None:
    listed = summary.equivalent_mutants(REPO / "docs" / "quality.md")
    modules = {name.split(".")[1] for name in listed}
    assert modules <= set(summary.configured_modules())
    rows = [line for line in QUALITY.splitlines() if summary.EQUIVALENT_ROW.match(line)]
    assert len(rows) == len(listed), "a mutant is listed twice"
    assert all(len(row.rstrip(" |").rsplit("|", 1)[1].strip()) > 10 for row in rows), "a reason is missing"


def test_the_summary_counts_kills_survivors_and_equivalents() -> None:
    codes: dict[str, int | None] = {
        "agent_exporter.m.x_f__mutmut_1": 1,  # killed
        "agent_exporter.m.x_f__mutmut_2": 36,  # timed out: killed
        "agent_exporter.m.x_f__mutmut_3": 0,  # survived
        "agent_exporter.m.x_f__mutmut_4": 33,  # no test reached it
        "agent_exporter.m.x_f__mutmut_5": 0,  # survived, but listed as equivalent
        "agent_exporter.m.x_f__mutmut_6": None,  # not run
    }
    result = summary.summarise("m", codes, {"agent_exporter.m.x_f__mutmut_5"})
    assert result == summary.ModuleResult("m", 6, killed=2, survived=2, equivalent=1, not_run=1)
    assert result.rate == 50.0
    assert summary.survivors(codes, {"agent_exporter.m.x_f__mutmut_5"}) == [
        "agent_exporter.m.x_f__mutmut_3",
        "agent_exporter.m.x_f__mutmut_4",
    ]
