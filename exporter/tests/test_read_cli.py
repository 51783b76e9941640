"""The read CLI against a real `agent-exporter serve` on loopback: tables for people, JSON for machines,
and imports that report bad lines and resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner, Result

from agent_exporter.cli import app
from agent_exporter.cli.importing import Checkpoint, ImportAbortedError, Importer
from agent_exporter.demo import swebench

from .readfixtures import at
from .support import SHARED_DATA, ExporterProcess, exporter, free_port, record, start_exporter, unavailable


def cli(url: str, *args: str) -> Result:
    """Run `agent-exporter ARGS` in-process against the server at `url`, 200 columns wide."""
    return CliRunner().invoke(app, list(args), env={"AGENT_EXPORTER_URL": url, "COLUMNS": "200"})


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def failing_runs() -> list[dict[str, Any]]:
    """Two failed runs of a `fixer` agent with phases and tools, for show and health, and a cancelled
    one between them (neither a success nor a failure)."""
    cancelled = record(
        "fixer-cancelled",
        ended_at=at(20.05),
        status="cancelled",
        error_type="superseded",
        error_summary="a newer commit superseded the run",
    )
    return [cancelled] + [
        record(
            f"fixer-{i}",
            ended_at=at(20 + i / 10),
            status="failure",
            error_type="tests_failed",
            error_summary=f"{i + 2} tests failed in test_api.py",
            phases=[{"name": "edit", "duration_seconds": 12.0}, {"name": "test", "duration_seconds": 18.0}],
            tools=[{"name": "bash", "calls": 7, "errors": 2}],
        )
        for i in range(2)
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    """One real exporter for the module, loaded through `agent-exporter import` with the shared
    dataset, two failed fixer runs and a cancelled one."""
    if not SHARED_DATA.is_file():
        unavailable(f"the shared dataset is not at {SHARED_DATA}")
    tmp = tmp_path_factory.mktemp("cli")
    with exporter(tmp) as process:
        data = write_jsonl(tmp / "runs.jsonl", [*swebench.records(SHARED_DATA), *failing_runs()])
        result = cli(process.url, "import", str(data), "--batch-size", "400")
        assert result.exit_code == 0, result.output
        # lines, accepted, duplicates, conflicts, rejected, not JSON
        assert ["1235", "1235", "0", "0", "0", "0"] in [line.split() for line in result.output.splitlines()]
        yield process


def test_runs_prints_a_table_of_the_newest(server: ExporterProcess) -> None:
    result = cli(server.url, "runs", "--agent", "fixer", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "1 run, newest first" in result.output
    assert "fixer-1" in result.output
    assert "tests_failed: 3 tests failed in test_api.py" in result.output
    assert "more: --cursor" in result.output


def test_runs_json_parses_and_filters(server: ExporterProcess) -> None:
    result = cli(server.url, "runs", "--model", "gpt-5", "--status", "success", "-n", "1000", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert len(body["runs"]) == 262
    assert {r["model"] for r in body["runs"]} == {"gpt-5"}


def test_show_prints_one_run(server: ExporterProcess) -> None:
    result = cli(server.url, "show", "fixer-0")
    assert result.exit_code == 0, result.output
    for expected in ("run fixer-0", "failure", "tests_failed", "2 tests failed", "phases", "edit", "bash"):
        assert expected in result.output


def test_show_finds_run_ids_with_slashes(server: ExporterProcess) -> None:
    run_id = "gpt5/NodeBB__NodeBB-04998908ba6721d64eba79ae3b65a351dcfbc5b5-vnan"
    body = json.loads(cli(server.url, "show", run_id, "--json").stdout)
    assert (body["run_id"], body["model"], body["cost_source"]) == (run_id, "gpt-5", "reported")


def test_show_of_an_unknown_run_says_so(server: ExporterProcess) -> None:
    result = cli(server.url, "show", "nope")
    assert result.exit_code == 1
    assert "HTTP 404: no run with run_id 'nope'" in result.output


def test_summary_groups_by_model(server: ExporterProcess) -> None:
    result = cli(server.url, "summary", "--group-by", "model", "--project", "swe-bench-pro")
    assert result.exit_code == 0, result.output
    assert "summary by model" in result.output
    assert "$1,217.90" in result.output
    assert "$6,973.20" in result.output
    body = json.loads(cli(server.url, "summary", "--json").stdout)
    assert body["summary"]["runs"] == 1235


def test_summary_shows_cancelled_runs_apart_from_failed_ones(server: ExporterProcess) -> None:
    result = cli(server.url, "summary", "--agent", "fixer", "--from", at(19), "--to", at(21))
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "cancelled" in line)
    assert header.split()[:4] == ["runs", "cancelled", "failed", "success"]
    row = next(line for line in result.output.splitlines() if line.strip().startswith("all"))
    assert row.split()[1:5] == ["3", "1", "2", "0.0%"]  # 0 of 2 attempts: the cancelled run aside


def test_report_shows_the_shared_dataset_per_model(server: ExporterProcess) -> None:
    result = cli(server.url, "report", "--project", "swe-bench-pro")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    gpt = next(line for line in lines if line.strip().startswith("gpt-5 "))
    sonnet = next(line for line in lines if line.strip().startswith("claude-sonnet-4-5 "))
    # runs, cancelled, successes, failed, success rate
    assert gpt.split()[:6] == ["gpt-5", "616", "0", "262", "354", "42.5%"]
    assert "$1,217.90" in gpt
    assert sonnet.split()[:6] == ["claude-sonnet-4-5", "616", "0", "274", "342", "44.5%"]
    assert "$6,973.20" in sonnet
    assert "1,232 runs, 536 successful, 696 failed (43.5% success)" in result.output
    assert "recommendations" in result.output
    assert "model comparison" in result.output


def test_report_json_parses(server: ExporterProcess) -> None:
    body = json.loads(cli(server.url, "report", "--json", "--project", "swe-bench-pro").stdout)
    by_model = {m["model"]: (m["runs"], m["successes"], round(m["cost_usd"], 2)) for m in body["by_model"]}
    assert by_model == {"gpt-5": (616, 262, 1217.90), "claude-sonnet-4-5": (616, 274, 6973.20)}


def test_trends_prints_every_window(server: ExporterProcess) -> None:
    result = cli(server.url, "trends")
    assert result.exit_code == 0, result.output
    for expected in ("7d (1232 runs)", "30d", "90d", "success rate", "insufficient data"):
        assert expected in result.output
    body = json.loads(cli(server.url, "trends", "--json", "--window", "14").stdout)
    assert [w["days"] for w in body["windows"]] == [14]


def test_health_prints_the_digest(server: ExporterProcess) -> None:
    result = cli(server.url, "health", "--to", at(21), "--window", "2d")
    assert result.exit_code == 0, result.output
    assert (
        "Last 2d: 3 runs (1 cancelled, left out of the rate), 0% succeeded (0 of 2), 2 failed."
        in result.output
    )
    assert "failed runs by error type" in result.output
    body = json.loads(cli(server.url, "health", "--json").stdout)
    # the last day holds the dataset (imported now): no streak of 3 failures, nothing to compare with
    assert (body["status"], body["findings"][0]) == (
        "ok",
        "Last 24h: 1232 runs, 44% succeeded (536 of 1232), 696 failed, USD 8,191.10.",
    )
    # the newest failure: the last batch of 400 ended together, so the greatest run_id of its failures
    last_batch = list(swebench.records(SHARED_DATA))[1200:]
    newest = max(r["run_id"] for r in last_batch if r["status"] == "failure")
    failure = body["most_recent_failure"]
    assert (failure["run_id"], failure["agent"], failure["status"]) == (newest, "swe-agent", "failure")


def test_reprice_dry_run_prints_what_would_change(server: ExporterProcess) -> None:
    result = cli(server.url, "reprice", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "runs would change" in result.output
    body = json.loads(cli(server.url, "reprice", "--dry-run", "--json").stdout)
    assert body["dry_run"] is True
    # the dataset reports its costs; the three fixer runs have no tokens: nothing to price
    assert (body["runs_examined"], body["runs_changed"]) == (3, 0)


def test_a_bad_parameter_exits_2_with_the_servers_message(server: ExporterProcess) -> None:
    result = cli(server.url, "runs", "--from", "yesterday")
    assert result.exit_code == 2
    assert "from: 'yesterday' is not a time" in result.output


def test_an_unreachable_server_is_explained() -> None:
    result = cli(f"http://127.0.0.1:{free_port()}", "runs")
    assert result.exit_code == 1
    assert "cannot reach the exporter at http://127.0.0.1:" in result.output


def test_import_reports_bad_lines_by_number(server: ExporterProcess, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps(record("mixed-1", ended_at=at(22)))
        + "\n{not json\n"
        + json.dumps(record("mixed-bad", ended_at=at(22), duration_seconds=-1))
        + "\n\n"
        + json.dumps(record("mixed-2", ended_at=at(22)))
        + "\n"
    )
    result = cli(server.url, "import", str(path))
    assert result.exit_code == 1
    assert "line 2: not valid JSON" in result.output
    assert "line 3 (mixed-bad): duration_seconds: " in result.output
    body = json.loads(cli(server.url, "import", str(path), "--restart", "--json").stdout)
    assert (body["lines"], body["accepted"], body["duplicates"], body["rejected"], body["invalid"]) == (
        5,
        0,
        2,
        1,
        1,
    )
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(2, ""), (3, "duration_seconds")]


def test_a_rerun_continues_after_the_checkpoint(server: ExporterProcess, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "growing.jsonl", [record(f"grow-{i}", ended_at=at(23)) for i in range(3)])
    assert cli(server.url, "import", str(path)).exit_code == 0
    assert Checkpoint.load(tmp_path / "growing.jsonl.checkpoint") is not None
    with path.open("a") as f:
        f.writelines(json.dumps(record(f"grow-{i}", ended_at=at(23))) + "\n" for i in range(3, 5))
    result = cli(server.url, "import", str(path), "--json")
    body = json.loads(result.stdout)
    assert (body["resumed_at_line"], body["lines"], body["accepted"], body["duplicates"]) == (3, 2, 2, 0)


def test_a_changed_file_is_imported_from_the_start(server: ExporterProcess, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "changed.jsonl", [record(f"chg-{i}", ended_at=at(23)) for i in range(2)])
    assert cli(server.url, "import", str(path)).exit_code == 0
    write_jsonl(path, [record(f"chg-new-{i}", ended_at=at(23)) for i in range(2)])
    body = json.loads(cli(server.url, "import", str(path), "--json").stdout)
    assert (body["resumed_at_line"], body["accepted"]) == (0, 2)


def test_an_interrupted_import_resumes_where_the_server_stopped(tmp_path: Path) -> None:
    lines = [json.dumps(record(f"int-{i}", ended_at=at(24))) + "\n" for i in range(6)]
    path = tmp_path / "interrupted.jsonl"
    path.write_text("".join(lines))
    marker = tmp_path / "interrupted.checkpoint"
    database = f"sqlite:///{tmp_path / 'resume.db'}"
    first = start_exporter(tmp_path, database_url=database)

    def stop_after_first_batch(offset: int, line: int) -> None:
        Checkpoint(offset, line, Checkpoint.fingerprint(path, offset)).save(marker, path)
        first.stop()

    try:
        with httpx.Client(base_url=first.url) as client, path.open("rb") as stream:
            importer = Importer(client, batch_size=2, sleep=lambda _: None)
            with pytest.raises(ImportAbortedError, match="batch starting at line 3"):
                importer.run(stream, on_batch_done=stop_after_first_batch)
    finally:
        first.stop()
    saved = Checkpoint.load(marker)
    assert saved is not None
    assert (saved.line, saved.offset) == (2, len(lines[0]) + len(lines[1]))
    with exporter(tmp_path, database_url=database) as second:
        with httpx.Client(base_url=second.url) as client, path.open("rb") as stream:
            stream.seek(saved.offset)
            result = Importer(client, batch_size=2).run(
                stream, start_line=saved.line, start_offset=saved.offset
            )
        total = httpx.get(f"{second.url}/api/v1/summary").json()["summary"]["runs"]
    assert (result.lines, result.accepted, result.duplicates) == (4, 4, 0)
    assert total == 6


def counted_runs(url: str) -> float:
    """agent_runs_total summed over its series, as the exporter exposes it."""
    text = httpx.get(f"{url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "agent_runs_total"
    )


def test_a_backfill_import_is_stored_but_not_counted(server: ExporterProcess, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "history.jsonl", [record(f"hist-{i}", ended_at=at(5)) for i in range(3)])
    before = counted_runs(server.url)
    result = cli(server.url, "import", str(path), "--backfill", "--json")
    assert json.loads(result.stdout)["accepted"] == 3
    assert counted_runs(server.url) == before
    stored = json.loads(cli(server.url, "runs", "--from", at(5), "--to", at(5.01), "--json").stdout)
    assert sorted(r["run_id"] for r in stored["runs"]) == ["hist-0", "hist-1", "hist-2"]


def test_an_import_without_backfill_is_counted(server: ExporterProcess, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "live.jsonl", [record(f"live-{i}", ended_at=at(5)) for i in range(2)])
    before = counted_runs(server.url)
    assert cli(server.url, "import", str(path)).exit_code == 0
    assert counted_runs(server.url) == before + 2


def test_the_cli_sends_agent_exporter_token_to_a_protected_exporter(tmp_path: Path) -> None:
    token = "read-token-0123456789abcdef"
    with exporter(tmp_path, config={"security": {"read_tokens": [token]}}) as protected:
        refused = cli(protected.url, "runs")
        allowed = CliRunner().invoke(
            app, ["runs", "--json"], env={"AGENT_EXPORTER_URL": protected.url, "AGENT_EXPORTER_TOKEN": token}
        )
    assert refused.exit_code == 1
    assert "HTTP 401" in refused.output
    assert "set AGENT_EXPORTER_TOKEN to a token the exporter accepts" in " ".join(refused.output.split())
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.output) == {"runs": [], "next_cursor": None}
