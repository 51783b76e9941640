"""No example of the documentation goes untested unnoticed: every fenced block of every document is
run or loaded by a test (test_docs_readme, test_docs_operations, test_docs_runbooks, test_docs_otlp,
test_docs_reference, tests/doc_stack.py), or each of its commands is listed below with the reason no
test runs it. A new block, or a new command in a block no test runs, fails here until it gets one or
the other."""

from __future__ import annotations

from .doc_examples import DOCS, Block, block_of, command_key, fenced_blocks
from .doc_stack import SCRAPE_CONFIG
from .test_docs_operations import BLOCKS as OPERATIONS_BLOCKS
from .test_docs_otlp import BLOCKS as OTLP_BLOCKS
from .test_docs_readme import BLOCKS as README_BLOCKS
from .test_docs_reference import CONFIG, PRICES, REMOTE_WRITE
from .test_docs_runbooks import BLOCKS as RUNBOOKS_BLOCKS

#: run by a test, or loaded by one (the YAML examples)
TESTED: frozenset[Block] = frozenset(
    {
        *README_BLOCKS,
        *OPERATIONS_BLOCKS,
        *RUNBOOKS_BLOCKS,
        *OTLP_BLOCKS,
        CONFIG,
        PRICES,
        REMOTE_WRITE,
        SCRAPE_CONFIG,
    }
)
_BY_HAND = "run by hand on 2026-12-01 for issue 8"
_STACK = (
    "runs Prometheus and Alertmanager in the foreground until Ctrl-C on fixed ports; "
    "test_stack_native.py runs what it runs (python -m agent_exporter.demo.stack) on free ports, "
    f"test_stack_live.py the same configuration live; {_BY_HAND} (PORT=19613 PROM_PORT=19614 AM_PORT=19615)"
)
_DEMO = (
    "an exporter and traffic until Ctrl-C; test_demo.py runs what it runs (agent-exporter demo --serve) "
    f"and stops it with SIGINT; {_BY_HAND} (PORT, DB and a spool of its own)"
)
_INCIDENT_DEMO = (
    "traffic until Ctrl-C beside make stack, alerts after 20 minutes or more; test_demo_alerts.py replays "
    "each incident through a real exporter and promtool on a simulated clock, test_traffic.py checks "
    "each incident's effect on the runs"
)
_IMPORTERS = (
    "reads the tool's files on the machine it runs on; test_importers.py runs the same command on "
    "files written in each tool's format, with the default directories set through CLAUDE_CONFIG_DIR "
    "and CODEX_HOME"
)
#: commands of the docs that no test runs as written, and why
NOT_RUN: dict[str, str] = {
    "make run": (
        "serves on the fixed port 9477 until Ctrl-C; test_cli.py runs what it runs (agent-exporter serve) "
        f"on a free port; {_BY_HAND} (PORT=19611, 100 demo runs sent to it, Ctrl-C exits 0)"
    ),
    "make test": "the test suite itself (ruff, mypy, pytest); .ci/run runs it",
    "make demo": _DEMO,
    'make demo DEMO_ARGS="--incident failure-spike:start=600"': f"{_DEMO}; with the incident, as below",
    "make stack": _STACK,
    "make stack PORT=19477 PROM_PORT=19090 AM_PORT=19093": _STACK,
    "make stack STACK_DB=postgresql://postgres@127.0.0.1/agents": (
        f"{_STACK}; on PostgreSQL, as test_stack_live.py runs the exporter, with a database named agents"
    ),
    "docker compose up": (
        "needs a Docker daemon and image builds, which the test machines lack; test_compose.py validates "
        "docker-compose.yml against the Compose Specification and the repository's files; not run by hand "
        "for issue 8 (no Docker daemon)"
    ),
    "make bench": (
        "about 40 minutes of load, written to docs/BENCHMARKS.md, whose header says when it last ran; "
        "not run by hand for issue 8"
    ),
    "make mutate": (
        "mutation testing, 20 minutes and more on 2 cores; test_mutation_config.py holds the target, "
        "[tool.mutmut] and docs/quality.md to one list of modules; run by hand for issue 12 (docs/quality.md)"
    ),
    'make mutate MODULES="pricing analytics"': (
        "a part of make mutate, as above; run by hand for issue 12 with the modules one or two at a time"
    ),
    "make soak": (
        "minutes of steady load on SQLite and PostgreSQL (pytest -m soak); not run by hand for issue 8"
    ),
    "make generate": (
        "rewrites the committed rules and dashboards; test_mixin_generated.py checks that the committed "
        "files are what it renders, test_stack_native.py runs the generator into a directory of its own"
    ),
    ".venv/bin/agent-exporter demo --seed 1 --incident failure-spike:start=600": _INCIDENT_DEMO,
    (
        "agent-exporter demo --url http://127.0.0.1:9477 --rate 5 --duration 3600 --seed 42 "
        "--incident latency-regression:agent=fixer,magnitude=4,start=1800,duration=600 "
        "--incident agent-silent:agent=triager,start=2400"
    ): f"an hour of traffic; {_INCIDENT_DEMO}",
    "agent-exporter demo --count 100 --json": (
        "100 runs at the default 2 runs/s take 50 s; test_demo.py runs short demos with --json and checks "
        f"the summary against the store; {_BY_HAND} (100 sent, 100 delivered)"
    ),
    "agent-exporter import --format claude-code": _IMPORTERS,
    "agent-exporter import --format codex --backfill": _IMPORTERS,
    "agent-exporter import --format swe-agent trajectories/ --json": _IMPORTERS,
}
#: fenced blocks that are not examples
NOT_CODE: dict[Block, str] = {
    block_of("docs/architecture.md", " agents ──", lang=""): "the architecture diagram",
    block_of("docs/architecture.md", "flowchart TD", lang="mermaid"): (
        "the layers diagram; test_docs_architecture.py compares it with the import-linter contract"
    ),
}


def test_every_shell_command_is_run_by_a_test_or_excluded_with_a_reason() -> None:
    untested = [
        f"{block}: {command_key(command)}"
        for doc in DOCS
        for block in fenced_blocks(doc)
        if block.lang == "sh" and block not in TESTED
        for command in block.commands
        if command_key(command) not in NOT_RUN
    ]
    assert untested == []


def test_every_other_block_is_loaded_by_a_test_or_is_not_an_example() -> None:
    unchecked = [
        f"{block} ({block.lang or 'no language'})"
        for doc in DOCS
        for block in fenced_blocks(doc)
        if block.lang != "sh" and block not in TESTED and block not in NOT_CODE
    ]
    assert unchecked == []


def test_every_exclusion_names_a_command_of_the_docs_and_no_tested_one() -> None:
    commands = {
        command_key(command): block in TESTED
        for doc in DOCS
        for block in fenced_blocks(doc)
        if block.lang == "sh"
        for command in block.commands
    }
    assert sorted(key for key in NOT_RUN if key not in commands) == []
    assert sorted(key for key in NOT_RUN if commands.get(key)) == []


def test_every_tested_block_is_a_block_of_the_docs() -> None:
    blocks = {block for doc in DOCS for block in fenced_blocks(doc)}
    assert sorted(str(b) for b in TESTED - blocks) == []
