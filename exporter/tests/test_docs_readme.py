"""The README's shell and Python examples, and those of the pages it sends a newcomer to next
(docs/api.md, docs/history.md, docs/web.md), run as written against a real exporter on loopback,
print what the docs say they print.

The shell runs in a directory laid out as the docs assume (the repository, with `shared/` beside
it); `doc_examples.Shell` says what it substitutes (the port) and nothing else. The README's other
commands (`make run`, `docker compose up`, ...) are listed in test_docs_inventory.py with the reason
no test runs them.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .doc_examples import EXPORTER_URL, Block, Done, Shell, block_of
from .support import SHARED_DATA, ExporterProcess, exporter, unavailable

README = "README.md"
API = "docs/api.md"
HISTORY_DOC = "docs/history.md"
SEND = block_of(README, "curl -s http://127.0.0.1:9477/api/v1/runs -H")
CLIENT = block_of(README, "from agent_exporter import client as exporter", lang="python")
ANSWER = block_of(API, '{"accepted": 1', lang="json")
EXECUTION = block_of(API, "curl -s 'http://127.0.0.1:9477/api/v1/executions?agent=fixer'")
HISTORY = block_of(HISTORY_DOC, "agent-exporter runs --status failure --from 24h")
IMPORT = block_of(HISTORY_DOC, "python -m agent_exporter.demo.swebench")
DOWNLOAD = block_of("docs/web.md", "curl -s 'http://127.0.0.1:9477/api/v1/runs.csv?status=failure")
#: the blocks this module runs or loads, for test_docs_inventory
BLOCKS: tuple[Block, ...] = (SEND, CLIENT, ANSWER, EXECUTION, HISTORY, IMPORT, DOWNLOAD)

DATASET_RUN = "gpt5/NodeBB__NodeBB-04998908ba6721d64eba79ae3b65a351dcfbc5b5-vnan"
# the dataset (1,232 runs, USD 8,191.10) and fix-4711 (USD 3.96)
REPORT_HEADLINE = (
    "1,233 runs, 537 successful, 696 failed (43.6% success), $8,195.06 ($15.26 per success); "
    "2 agents, 2 models, 12 issue types"
)


@dataclass
class Readme:
    """A real exporter after the README's "send a run" and import blocks, and what they printed."""

    server: ExporterProcess
    shell: Shell
    checkout: Path
    first_post: Done
    second_post: Done
    scrape: Done
    run: Done
    convert: Done
    load: Done


@pytest.fixture(scope="module")
def readme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Readme]:
    """The README's first example (the POST twice, as its prose does), then its import of the shared
    dataset, run in a checkout with `shared/` beside it."""
    if not SHARED_DATA.is_file():
        unavailable(f"the shared dataset is not at {SHARED_DATA}")
    tmp = tmp_path_factory.mktemp("readme")
    checkout = tmp / "agent-exporter"
    checkout.mkdir()
    (tmp / "shared").symlink_to(SHARED_DATA.parent.parent)
    with exporter(tmp) as server:
        shell = Shell(checkout, server.url)
        post, scrape, get = SEND.commands
        first = shell.run(post, http_status=True).ok()
        second = shell.run(post, http_status=True).ok()
        scraped = shell.run(scrape).ok()
        run = shell.run(get).ok()
        convert, load = IMPORT.commands
        yield Readme(
            server,
            shell,
            checkout,
            first,
            second,
            scraped,
            run,
            shell.run(convert).ok(),
            shell.run(load, timeout=120).ok(),
        )


# -- send a run ------------------------------------------------------------------------------------


def test_the_post_answers_201_with_the_run_accepted(readme: Readme) -> None:
    assert readme.first_post.http() == (
        201,
        {
            "accepted": 1,
            "duplicates": 0,
            "conflicts": 0,
            "rejected": 0,
            "results": [{"index": 0, "outcome": "accepted", "run_id": "fix-4711"}],
        },
    )


def test_the_answer_docs_api_shows_is_the_first_posts(readme: Readme) -> None:
    assert json.loads(ANSWER.text) == readme.first_post.http()[1]


def test_sending_it_again_answers_200_duplicate(readme: Readme) -> None:
    status, body = readme.second_post.http()
    assert (status, body["duplicates"], body["results"]) == (
        200,
        1,
        [{"index": 0, "outcome": "duplicate", "run_id": "fix-4711"}],
    )


def test_the_metrics_count_the_run_once_with_every_other_status_at_zero(readme: Readme) -> None:
    lines = readme.scrape.stdout.splitlines()
    counted = {}
    for line in lines:
        status = re.search(r'status="(\w+)"', line)
        assert status is not None, line
        counted[status[1]] = float(line.rsplit(" ", 1)[1])
    assert counted == {"success": 1.0, "failure": 0.0, "error": 0.0, "timeout": 0.0, "cancelled": 0.0}
    assert all('agent="fixer",issue_type="complexity",model="claude-sonnet-4-5"' in line for line in lines)


def test_the_run_costs_usd_3_96_estimated_from_its_tokens(readme: Readme) -> None:
    run = readme.run.json()
    assert (run["run_id"], run["cost_usd"], run["cost_source"]) == ("fix-4711", 3.96, "estimated")
    assert run["tools"] == [{"name": "bash", "calls": 12, "errors": 1, "duration_seconds": None}]


def test_an_execution_of_the_fixer_agent_is_stored_as_a_run(readme: Readme) -> None:
    post, get = EXECUTION.commands
    status, body = readme.shell.run(post, http_status=True).ok().http()
    assert (status, body["results"]) == (201, [{"index": 0, "outcome": "accepted", "run_id": "inv-8812"}])
    run = readme.shell.run(get).ok().json()
    # input is inclusive of the prompt cache: 12,000 + 88,000
    assert (run["agent"], run["status"], run["duration_seconds"]) == ("fixer", "failure", 250.0)
    assert (run["input_tokens"], run["cache_read_tokens"], run["output_tokens"]) == (100_000, 88_000, 2_500)
    assert (run["llm_calls"], run["error_summary"]) == (14, "2 tests still fail")
    assert run["labels"] == {"modified_files": "2"}


# -- importing the shared dataset ------------------------------------------------------------------


def test_the_dataset_converts_to_1232_run_records(readme: Readme) -> None:
    assert readme.convert.stdout == ""
    assert len((readme.checkout / "runs.jsonl").read_text().splitlines()) == 1232


def test_the_import_stores_every_record_of_the_dataset(readme: Readme) -> None:
    # lines, accepted, duplicates, conflicts, rejected, not JSON
    assert re.search(r"^\s*1232\s+1232\s+0\s+0\s+0\s+0\s*$", readme.load.stdout, re.M), readme.load.stdout


def test_the_report_after_the_import_counts_the_dataset_and_the_first_run(readme: Readme) -> None:
    assert REPORT_HEADLINE in readme.load.stdout


def test_a_backfilled_import_is_stored_but_not_counted_in_the_metrics(readme: Readme) -> None:
    metrics = httpx.get(f"{readme.server.url}/metrics", timeout=5).text
    assert 'agent="swe-agent"' not in metrics
    assert 'agent="fixer"' in metrics


# -- run history, reports and trends ---------------------------------------------------------------


def history(readme: Readme, start: str) -> Done:
    [command] = [c for c in HISTORY.commands if c.startswith(start)]
    return readme.shell.run(command).ok()


def test_runs_lists_the_newest_failed_runs_of_the_last_day(readme: Readme) -> None:
    out = history(readme, "agent-exporter runs").stdout
    assert out.startswith("20 runs, newest first")
    rows = [line for line in out.splitlines() if re.match(r"\s+\d{4}-\d\d-\d\d \d\d:\d\d\s", line)]
    statuses = [re.findall(r"\s(success|failure|error|timeout|cancelled)\s", row) for row in rows]
    assert statuses == [["failure"]] * 20
    assert "more: --cursor" in out


def test_show_prints_one_dataset_run(readme: Readme) -> None:
    out = history(readme, "agent-exporter show").stdout
    assert f"run {DATASET_RUN}" in out
    for line in ("status        failure", "model         gpt-5 (openai)", "cost          $1.06 (reported)"):
        assert line in out
    assert "calls         40 LLM, 40 tool (0 tool errors)" in out


def test_report_ranks_only_issue_types_with_enough_attempts(readme: Readme) -> None:
    out = history(readme, "agent-exporter report").stdout
    assert out.startswith(REPORT_HEADLINE)
    [complexity] = [
        line for line in out.splitlines() if line.strip().startswith("complexity") and "attempts" in line
    ]
    assert complexity.split()[1:] == ["not", "enough", "attempts"] * 3


def test_trends_of_the_fixer_need_more_days(readme: Readme) -> None:
    out = history(readme, "agent-exporter trends").stdout
    assert "7d (1 run)" in out
    assert out.count("insufficient data") == 12  # 4 metrics in 3 windows


def test_health_json_digests_the_last_day_for_an_ai_operator(readme: Readme) -> None:
    body = history(readme, "agent-exporter health").json()
    assert (body["status"], body["totals"]["runs"]) == ("ok", 1233)
    assert (
        body["findings"][0] == "Last 24h: 1233 runs, 44% succeeded (537 of 1233), 696 failed, USD 8,195.06."
    )


def test_the_summary_by_model_counts_each_models_runs(readme: Readme) -> None:
    body = history(readme, "curl").json()
    runs = {group["group"]: group["runs"] for group in body["groups"]}
    assert runs == {"claude-sonnet-4-5": 617, "gpt-5": 616}


# -- the web pages' downloads ----------------------------------------------------------------------


def test_the_download_of_last_weeks_failed_runs_is_a_csv_sorted_by_cost(readme: Readme) -> None:
    [command] = DOWNLOAD.commands
    readme.shell.run(command).ok()
    rows = list(csv.DictReader((readme.checkout / "failed.csv").read_text().splitlines()))
    listed = httpx.get(
        f"{readme.server.url}/api/v1/summary", params={"status": "failure", "from": "7d"}, timeout=5
    ).json()
    assert len(rows) == listed["summary"]["runs"] > 0
    assert {row["status"] for row in rows} == {"failure"}
    costs = [float(row["cost_usd"]) for row in rows]
    assert costs == sorted(costs, reverse=True)


# -- the client SDK --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Done, list[dict[str, Any]]]]:
    """The README's client example, run as a script against a fresh exporter: what it printed and the
    runs stored, oldest first."""
    tmp = tmp_path_factory.mktemp("client")
    with exporter(tmp) as server:
        script = tmp / "example.py"
        assert EXPORTER_URL in CLIENT.text
        script.write_text(CLIENT.text.replace(EXPORTER_URL, server.url))
        done = Shell(tmp, server.url).run(f"python {script}", timeout=30)
        runs = httpx.get(f"{server.url}/api/v1/runs", timeout=5).json()["runs"]
        yield (
            done,
            [httpx.get(f"{server.url}/api/v1/runs/{r['run_id']}", timeout=5).json() for r in runs[::-1]],
        )


def test_the_client_example_exits_quietly_having_sent_three_runs(
    client_example: tuple[Done, list[dict[str, Any]]],
) -> None:
    done, runs = client_example
    assert (done.ok().stdout, done.stderr) == ("", "")
    assert [(r["agent"], r["status"]) for r in runs] == [
        ("fixer", "failure"),
        ("triager", "success"),
        ("reviewer", "success"),
    ]


def test_the_client_examples_failed_run_carries_its_call_tool_phase_and_error(
    client_example: tuple[Done, list[dict[str, Any]]],
) -> None:
    fixer = client_example[1][0]
    assert {k: fixer[k] for k in ("model", "issue_type", "project", "error_type", "error_summary")} == {
        "model": "claude-sonnet-4-5",
        "issue_type": "complexity",
        "project": "payments-api",
        "error_type": "tests_failed",
        "error_summary": "3 tests still fail in tests/test_invoice.py",
    }
    assert (fixer["input_tokens"], fixer["cache_read_tokens"], fixer["output_tokens"]) == (
        41_000,
        30_000,
        900,
    )
    assert (fixer["llm_calls"], fixer["cost_usd"], fixer["cost_source"]) == (1, 0.05, "reported")
    assert [(t["name"], t["calls"], t["duration_seconds"]) for t in fixer["tools"]] == [("bash", 1, 12.5)]
    assert [p["name"] for p in fixer["phases"]] == ["test"]


def test_the_client_examples_record_run_sends_what_it_was_given(
    client_example: tuple[Done, list[dict[str, Any]]],
) -> None:
    reviewer = client_example[1][2]
    assert (reviewer["model"], reviewer["duration_seconds"]) == ("gpt-5", 42.0)
