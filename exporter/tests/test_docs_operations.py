"""docs/operations.md's checklist, run as written: inspecting the latest failure and checking spend
against the fleet of tests/doc_stack.py (a real exporter and Prometheus), and adding a price,
importing history, upgrading and backing up against exporters of their own."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from agent_exporter import migrations

from .doc_examples import Block, Done, Shell, block_of, blocks_in
from .doc_stack import HAIKU, LATEST_FAILURE, SONNET, DocsStack
from .support import exporter, record, unavailable

OPERATIONS = "docs/operations.md"
INSPECT = block_of(OPERATIONS, "agent-exporter health")
SPEND = block_of(OPERATIONS, "agent-exporter summary --from 24h")
[PRICES] = blocks_in(OPERATIONS, "Add a new model's price", lang="yaml")
REPRICE = block_of(OPERATIONS, "agent-exporter reprice --model internal-coder-v3 --dry-run")
IMPORT = block_of(OPERATIONS, "agent-exporter import runs.jsonl --backfill")
UPGRADE = block_of(OPERATIONS, "agent-exporter db current")
BACKUP = block_of(OPERATIONS, "sqlite3 data/agent-exporter.db")
#: the blocks this module runs, for test_docs_inventory
BLOCKS: tuple[Block, ...] = (INSPECT, SPEND, PRICES, REPRICE, IMPORT, UPGRADE, BACKUP)
DOCUMENTED_DATABASE = "postgresql://agents@db.internal/agents"


def lines_with(out: str, text: str) -> list[str]:
    return [line for line in out.splitlines() if text in line]


# -- inspect the most recent failed run ------------------------------------------------------------


@pytest.mark.prometheus
def test_health_names_the_most_recent_failed_run_and_why(docs_stack: DocsStack) -> None:
    health, _, _ = INSPECT.commands
    out = docs_stack.shell.run(health).ok().stdout
    assert re.search(
        r"Most recent failure: run fixer-fail-3 \(fixer\), .* ago, tests_failed: 3 tests still fail in "
        r"tests/test_invoice.py\.",
        out,
    ), out
    assert "fixer has failed its last 3 runs" in out


@pytest.mark.prometheus
def test_runs_lists_the_failed_runs_newest_first(docs_stack: DocsStack) -> None:
    _, runs, _ = INSPECT.commands
    out = docs_stack.shell.run(runs).ok().stdout
    assert out.startswith("3 runs, newest first")
    ids = re.findall(r"^\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+(\S+)", out, re.M)
    assert ids == ["fixer-fail-3", "fixer-fail-2", "fixer-fail-1"]


@pytest.mark.prometheus
def test_show_prints_the_failed_runs_phases_tools_usage_and_error(docs_stack: DocsStack) -> None:
    _, _, show = INSPECT.commands
    assert "RUN_ID" in show
    out = docs_stack.shell.run(show.replace("RUN_ID", LATEST_FAILURE)).ok().stdout
    assert f"run {LATEST_FAILURE}" in out
    assert lines_with(out, "tests_failed")
    assert lines_with(out, "3 tests still fail in tests/test_invoice.py")
    for phase in ("plan", "edit", "test"):
        assert lines_with(out, f" {phase} "), phase
    assert lines_with(out, " bash ")
    assert lines_with(out, " edit ")
    assert len(lines_with(out, SONNET)) == 2  # the run's model, and its usage line


# -- check spend against the budget ----------------------------------------------------------------


@pytest.mark.prometheus
def test_summary_gives_the_days_cost_per_run_and_per_success(docs_stack: DocsStack) -> None:
    summary, _, _ = SPEND.commands
    out = docs_stack.shell.run(summary).ok().stdout
    [all_runs] = lines_with(out, " all ")
    # 16 runs, 3 failed; USD 11.16 in all, per run and per success
    cells = all_runs.split()
    assert cells[1:5] == ["16", "0", "3", "81.2%"]
    assert [c for c in cells if c.startswith("$")] == ["$11.16", "$0.70", "$0.86"]


@pytest.mark.prometheus
def test_the_summary_api_gives_each_models_spend(docs_stack: DocsStack) -> None:
    _, api, _ = SPEND.commands
    body = docs_stack.shell.run(api).ok().json()
    spend = {g["group"]: (g["runs"], g["cost_usd"]) for g in body["groups"]}
    assert spend == {SONNET: (11, 10.0), "gpt-5": (4, 1.15), HAIKU: (1, 0.01)}
    assert body["summary"]["runs_without_cost"] == 0


@pytest.mark.prometheus
def test_prometheus_gives_the_days_spend_from_the_counters(docs_stack: DocsStack) -> None:
    _, _, query = SPEND.commands
    body = docs_stack.shell.run(query).ok().json()
    [sample] = body["data"]["result"]
    # the runs of the second scrape cost 6.25 USD, all of them 11.16; increase() extrapolates a little
    assert sample["metric"] == {}
    assert 6.25 <= float(sample["value"][1]) < 2 * 11.16


@pytest.mark.prometheus
def test_a_backup_taken_while_the_exporter_runs_holds_every_run(docs_stack: DocsStack) -> None:
    if shutil.which("sqlite3") is None:
        unavailable("the sqlite3 command is not installed (apt-get install sqlite3)")
    [backup] = BACKUP.commands
    docs_stack.shell.run(backup).ok()
    with sqlite3.connect(docs_stack.checkout / "data" / "backup.db") as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (16,)


# -- add a new model's price -----------------------------------------------------------------------


@dataclass
class Repriced:
    """A run of a model nobody priced, stored before the price file existed, through the checklist."""

    new_run: dict[str, Any]
    dry_run: Done
    after_dry_run: dict[str, Any]
    reprice: Done
    after_reprice: dict[str, Any]
    after_the_file_changed: dict[str, Any]


# 1M input tokens, 200k of them cache reads, and 100k output at the checklist's prices
CODER_COST = 0.8 * 0.40 + 0.2 * 0.04 + 0.1 * 1.60


def coder_run(run_id: str) -> dict[str, Any]:
    return record(
        run_id,
        model="internal-coder-v3",
        provider="internal",
        input_tokens=1_000_000,
        cache_read_tokens=200_000,
        output_tokens=100_000,
    )


@pytest.fixture(scope="module")
def repriced(tmp_path_factory: pytest.TempPathFactory) -> Repriced:
    """Steps 1-3: an exporter without the price file stores a run of internal-coder-v3; the price
    file is written as documented and the exporter restarted with it; a new run comes in; then
    `reprice --dry-run` and `reprice`. Then the file's prices double, `reprice` again, and a run
    comes in without a restart."""
    tmp = tmp_path_factory.mktemp("reprice")
    database = f"sqlite:///{tmp / 'store.db'}"
    with exporter(tmp, database_url=database) as server:
        httpx.post(f"{server.url}/api/v1/runs", json=coder_run("coder-before"), timeout=5).raise_for_status()
    prices = tmp / "prices.yaml"
    prices.write_text(PRICES.text)
    with exporter(tmp, database_url=database, config={"price_file": str(prices)}) as server:
        httpx.post(f"{server.url}/api/v1/runs", json=coder_run("coder-after"), timeout=5).raise_for_status()
        shell = Shell(tmp, server.url)

        def stored(run_id: str) -> dict[str, Any]:
            body: dict[str, Any] = httpx.get(f"{server.url}/api/v1/runs/{run_id}", timeout=5).json()
            return body

        new_run = stored("coder-after")
        dry, real = REPRICE.commands
        dry_run = shell.run(dry).ok()
        after_dry_run = stored("coder-before")
        reprice = shell.run(real).ok()
        before = stored("coder-before")
        prices.write_text(PRICES.text.replace("0.40", "0.80").replace("1.60", "3.20").replace("0.04", "0.08"))
        shell.run(real).ok()
        httpx.post(f"{server.url}/api/v1/runs", json=coder_run("coder-later"), timeout=5).raise_for_status()
        return Repriced(new_run, dry_run, after_dry_run, reprice, before, stored("coder-later"))


def reprice_figures(out: str) -> list[str]:
    """runs examined, runs (would) change, became known, became unknown, cost before, after, delta:
    the two runs whose cost is not reported, one of them unknown until now (the other was priced
    with the new file already: USD 0.49 before and after)"""
    [figures] = [line for line in out.splitlines() if re.match(r"^\s+\d+\s+\d+\s+\d+\s+\d+\s+\$", line)]
    return figures.split()


def test_the_price_file_prices_new_runs_after_the_restart(repriced: Repriced) -> None:
    run = repriced.new_run
    assert (run["cost_source"], run["cost_usd"]) == ("estimated", pytest.approx(CODER_COST))


def test_a_dry_run_reprice_reports_the_change_and_stores_nothing(repriced: Repriced) -> None:
    assert repriced.dry_run.stdout.startswith("reprice (dry run; prices: ")
    assert reprice_figures(repriced.dry_run.stdout) == ["2", "1", "1", "0", "$0.49", "$0.98", "+$0.49"]
    assert (repriced.after_dry_run["cost_source"], repriced.after_dry_run["cost_usd"]) == ("unknown", None)


def test_reprice_prices_the_run_stored_before_the_price_existed(repriced: Repriced) -> None:
    assert reprice_figures(repriced.reprice.stdout) == ["2", "1", "1", "0", "$0.49", "$0.98", "+$0.49"]
    after = repriced.after_reprice
    assert (after["cost_source"], after["cost_usd"]) == ("estimated", pytest.approx(CODER_COST))


def test_reprice_rereads_the_price_file_for_the_runs_that_follow(repriced: Repriced) -> None:
    later = repriced.after_the_file_changed
    assert (later["cost_source"], later["cost_usd"]) == ("estimated", pytest.approx(2 * CODER_COST))


# -- import history --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Shell, str, Done, Done]]:
    """The import, run twice (the second time as if after an interruption), of three runs of a
    `historian` agent; yields the shell, the exporter's URL and both outputs."""
    tmp = tmp_path_factory.mktemp("import")
    (tmp / "runs.jsonl").write_text(
        "".join(
            json.dumps(record(f"old-{i}", agent="historian", ended_at=f"2025-06-0{i + 1}T12:00:00Z")) + "\n"
            for i in range(3)
        )
    )
    with exporter(tmp) as server:
        shell = Shell(tmp, server.url)
        [command] = IMPORT.commands
        first = shell.run(command).ok()
        yield shell, server.url, first, shell.run(command).ok()


def test_import_stores_the_history_without_counting_it(imported: tuple[Shell, str, Done, Done]) -> None:
    shell, url, first, _ = imported
    assert re.search(r"^\s*3\s+3\s+0\s+0\s+0\s+0\s*$", first.stdout, re.M), first.stdout
    assert len(httpx.get(f"{url}/api/v1/runs", params={"agent": "historian"}, timeout=5).json()["runs"]) == 3
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    assert 'agent="historian"' not in metrics
    # the records are counted as received; their lateness is not history's
    assert 'agent_exporter_records_total{outcome="accepted"} 3.0' in metrics
    assert "agent_exporter_ingest_lag_seconds_count 0.0" in metrics
    assert (shell.cwd / "runs.jsonl.checkpoint").is_file()


def test_rerunning_the_import_continues_after_the_last_acknowledged_line(
    imported: tuple[Shell, str, Done, Done],
) -> None:
    _, _, _, again = imported
    assert again.stdout.startswith("imported runs.jsonl from line 4")
    assert "resuming after line 3" in again.stderr


# -- upgrade ---------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_db_current_then_upgrade_migrate_an_empty_postgresql(pg_url: str, tmp_path: Path) -> None:
    current, upgrade = UPGRADE.commands
    assert DOCUMENTED_DATABASE in current
    assert DOCUMENTED_DATABASE in upgrade
    # the documented form of the URL (postgresql://, psycopg 3), pointing at the test's database
    url = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    shell = Shell(tmp_path, "http://127.0.0.1:9")
    head = migrations.head_revision()
    before = shell.run(current.replace(DOCUMENTED_DATABASE, url)).ok().stdout
    assert before.rstrip().endswith(f": at none, newest {head} (behind: run `agent-exporter db upgrade`)")
    migrated = shell.run(upgrade.replace(DOCUMENTED_DATABASE, url)).ok().stdout
    assert migrated.rstrip().endswith(f": migrated from empty to {head}")
