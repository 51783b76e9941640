"""`agent-exporter import --format swe-agent|claude-code|codex` against a real exporter, on files
written in each tool's documented format, broken lines and files included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from agent_exporter.cli import app

from .support import ExporterProcess, exporter


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    with exporter(tmp_path_factory.mktemp("importers")) as process:
        yield process


def cli(url: str, tmp_path: Path, *args: str, **env: str) -> Result:
    variables = {
        "AGENT_EXPORTER_URL": url,
        "COLUMNS": "200",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        **env,
    }
    return CliRunner().invoke(app, ["import", *args], env=variables)


def run(url: str, run_id: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/v1/runs/{run_id}", timeout=5)
    assert response.status_code == 200, run_id
    found: dict[str, Any] = response.json()
    return found


def jsonl(path: Path, lines: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


# -- SWE-agent ------------------------------------------------------------------------------------


def trajectory(exit_status: str, sent: int, received: int, calls: int, cost: float) -> dict[str, Any]:
    """A trajectory as SWE-agent writes it: steps with actions, and info with model_stats."""
    return {
        "trajectory": [
            {"action": "find_file fields.py", "observation": "...", "execution_time": 0.5},
            {"action": "edit 1474:1474\n...", "observation": "...", "execution_time": 1.25},
            {"action": "python reproduce.py", "observation": "...", "execution_time": 2.0},
            {"action": "submit", "observation": "...", "execution_time": 0.25},
        ],
        "history": [],
        "info": {
            "exit_status": exit_status,
            "submission": "diff --git ...",
            "model_stats": {
                "instance_cost": cost,
                "tokens_sent": sent,
                "tokens_received": received,
                "api_calls": calls,
            },
        },
        "replay_config": json.dumps({"agent": {"model": {"name": "claude-sonnet-4-5"}}}),
    }


def test_swe_agent_trajectories_are_runs_and_broken_files_are_reported(
    server: ExporterProcess, tmp_path: Path
) -> None:
    trajs = tmp_path / "trajectories" / "run-1"
    trajs.mkdir(parents=True)
    (trajs / "marshmallow__1359.traj").write_text(
        json.dumps(trajectory("submitted", 91_000, 2_300, 17, 0.42))
    )
    (trajs / "astropy__12907.traj").write_text(json.dumps(trajectory("exit_cost", 400_000, 9_000, 60, 3.1)))
    (trajs / "broken.traj").write_text('{"trajectory": [')
    (trajs / "other.traj").write_text(json.dumps({"trajectory": []}))
    result = cli(server.url, tmp_path, "--format", "swe-agent", str(tmp_path / "trajectories"), "--json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert (body["files"], body["accepted"], body["rejected"]) == (4, 2, 0)
    assert sorted((Path(p["path"]).name, p["line"]) for p in body["problems"]) == [
        ("broken.traj", 0),
        ("other.traj", 0),
    ]
    assert any("no info.model_stats" in p["message"] for p in body["problems"])
    runs = httpx.get(f"{server.url}/api/v1/runs", params={"agent": "swe-agent"}, timeout=5).json()["runs"]
    by_instance = {r["run_id"].rsplit("-", 1)[0]: run(server.url, r["run_id"]) for r in runs}
    done = by_instance["swe-agent-marshmallow__1359"]
    assert (done["status"], done["input_tokens"], done["output_tokens"], done["llm_calls"]) == (
        "success",
        91_000,
        2_300,
        17,
    )
    assert (done["cost_usd"], done["cost_source"], done["model"], done["tool_calls"]) == (
        0.42,
        "reported",
        "claude-sonnet-4-5",
        4,
    )
    assert done["duration_seconds"] == 4.0
    over = by_instance["swe-agent-astropy__12907"]
    assert (over["status"], over["error_type"], over["input_tokens"]) == ("failure", "exit_cost", 400_000)


# -- Claude Code ----------------------------------------------------------------------------------

SESSION = "4de9291e-061e-414a-85cb-de615826aded"


def assistant(
    message_id: str, request: str, at: str, block: dict[str, Any], usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "parentUuid": None,
        "isSidechain": False,
        "type": "assistant",
        "sessionId": SESSION,
        "version": "2.1.63",
        "cwd": "/home/dev/shop",
        "requestId": request,
        "uuid": f"u-{message_id}-{block['type']}",
        "timestamp": at,
        "message": {
            "model": "claude-sonnet-4-5",
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "content": [block],
            "usage": usage,
        },
    }


USAGE_1 = {
    "input_tokens": 3,
    "cache_creation_input_tokens": 5139,
    "cache_read_input_tokens": 9631,
    "output_tokens": 14,
}
USAGE_2 = {
    "input_tokens": 5,
    "cache_creation_input_tokens": 200,
    "cache_read_input_tokens": 14770,
    "output_tokens": 80,
}


def claude_session(projects: Path) -> Path:
    lines: list[Any] = [
        {"type": "user", "sessionId": SESSION, "timestamp": "2026-11-30T10:00:00Z",
         "message": {"role": "user", "content": "fix the failing test"}},
        # one response written as two lines (a text block, then a tool call), each with its usage
        assistant("msg_01", "req_01", "2026-11-30T10:00:05Z",
                  {"type": "text", "text": "Let me look."}, USAGE_1),
        assistant("msg_01", "req_01", "2026-11-30T10:00:05Z",
                  {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}, USAGE_1),
        {"type": "user", "sessionId": SESSION, "timestamp": "2026-11-30T10:00:09Z",
         "message": {"role": "user", "content": [
             {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": "exit 1"}]}},
        "{this line was cut off",
        assistant("msg_02", "req_02", "2026-11-30T10:01:00Z",
                  {"type": "tool_use", "id": "toolu_2", "name": "Edit", "input": {}}, USAGE_2),
        {"type": "system", "sessionId": SESSION, "timestamp": "2026-11-30T10:02:30Z", "content": "stop"},
    ]  # fmt: skip
    return jsonl(projects / "-home-dev-shop" / f"{SESSION}.jsonl", lines)


def test_a_claude_code_session_is_a_run_with_usage_counted_once_and_cache_inclusive(
    server: ExporterProcess, tmp_path: Path
) -> None:
    config = tmp_path / "claude"
    session = claude_session(config / "projects")
    result = cli(server.url, tmp_path, "--format", "claude-code", CLAUDE_CONFIG_DIR=str(config))
    assert result.exit_code == 1  # the cut-off line
    assert f"{session}:5: not valid JSON" in result.output
    got = run(server.url, f"claude-code-{SESSION}")
    first, second = (
        sum(USAGE_1.values()) - USAGE_1["output_tokens"],
        sum(USAGE_2.values()) - USAGE_2["output_tokens"],
    )
    assert (got["input_tokens"], got["output_tokens"], got["llm_calls"]) == (first + second, 14 + 80, 2)
    assert (got["cache_read_tokens"], got["cache_write_tokens"]) == (9631 + 14770, 5139 + 200)
    assert (got["started_at"], got["ended_at"], got["duration_seconds"]) == (
        "2026-11-30T10:00:00Z",
        "2026-11-30T10:02:30Z",
        150.0,
    )
    assert sorted((t["name"], t["calls"], t["errors"]) for t in got["tools"]) == [
        ("Bash", 1, 1),
        ("Edit", 1, 0),
    ]
    assert (got["agent"], got["agent_version"], got["project"]) == ("claude-code", "2.1.63", "shop")
    assert got["session_id"] == SESSION


def test_an_import_resumes_past_the_files_done_and_a_restart_finds_duplicates(
    server: ExporterProcess, tmp_path: Path
) -> None:
    config = tmp_path / "claude"
    claude_session(config / "projects")
    env = {"CLAUDE_CONFIG_DIR": str(config)}
    cli(server.url, tmp_path, "--format", "claude-code", **env)
    again = json.loads(cli(server.url, tmp_path, "--format", "claude-code", "--json", **env).stdout)
    assert (again["files"], again["unchanged"], again["accepted"], again["duplicates"]) == (1, 1, 0, 0)
    restart = json.loads(
        cli(server.url, tmp_path, "--format", "claude-code", "--restart", "--json", **env).stdout
    )
    assert (restart["unchanged"], restart["accepted"], restart["duplicates"]) == (0, 0, 1)


# -- Codex ----------------------------------------------------------------------------------------

CODEX_SESSION = "019a9776-0a34-7842-8627-112b63d66e90"


def token_count(at: str, input_tokens: int, cached: int, output: int, reasoning: int) -> dict[str, Any]:
    total = {
        "input_tokens": input_tokens,
        "cached_input_tokens": cached,
        "output_tokens": output,
        "reasoning_output_tokens": reasoning,
        "total_tokens": input_tokens + output,
    }
    info = {"total_token_usage": total, "last_token_usage": total}
    return {"timestamp": at, "type": "event_msg", "payload": {"type": "token_count", "info": info}}


def test_a_codex_rollout_is_a_run_with_its_last_cumulative_totals(
    server: ExporterProcess, tmp_path: Path
) -> None:
    home = tmp_path / "codex"
    rollout = jsonl(
        home / "sessions" / "2026" / "11" / "30" / f"rollout-2026-11-30T09-00-00-{CODEX_SESSION}.jsonl",
        [
            {"timestamp": "2026-11-30T09:00:00.000Z", "type": "session_meta",
             "payload": {"id": CODEX_SESSION, "cwd": "/home/dev/api", "cli_version": "0.58.0"}},
            {"timestamp": "2026-11-30T09:00:01.000Z", "type": "turn_context",
             "payload": {"model": "gpt-5-codex"}},
            token_count("2026-11-30T09:00:10.000Z", 12_000, 0, 500, 200),
            {"timestamp": "2026-11-30T09:00:11.000Z", "type": "response_item",
             "payload": {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"}},
            token_count("2026-11-30T09:00:11.500Z", 12_000, 0, 500, 200),  # the same totals again
            "not json at all",
            {"timestamp": "2026-11-30T09:00:30.000Z", "type": "response_item",
             "payload": {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c2"}},
            token_count("2026-11-30T09:01:00.000Z", 30_000, 11_000, 1_400, 600),
        ],
    )  # fmt: skip
    result = cli(server.url, tmp_path, "--format", "codex", "--json", CODEX_HOME=str(home))
    body = json.loads(result.stdout)
    assert [(Path(p["path"]), p["line"]) for p in body["problems"]] == [(rollout, 6)]
    got = run(server.url, f"codex-{CODEX_SESSION}")
    assert (got["input_tokens"], got["cache_read_tokens"], got["output_tokens"], got["reasoning_tokens"]) == (
        30_000,
        11_000,
        1_400,
        600,
    )
    assert (got["llm_calls"], got["tool_calls"], got["model"], got["duration_seconds"]) == (
        2,
        2,
        "gpt-5-codex",
        60.0,
    )


def test_a_claude_code_subagent_transcript_is_a_sub_run_of_its_session(
    server: ExporterProcess, tmp_path: Path
) -> None:
    config = tmp_path / "claude"
    session = claude_session(config / "projects")
    jsonl(
        session.with_suffix("") / "subagents" / "agent-aed1da92.jsonl",
        [
            assistant("msg_s1", "req_s1", "2026-11-30T10:00:20Z",
                      {"type": "tool_use", "id": "toolu_s1", "name": "Grep", "input": {}}, USAGE_2),
            assistant("msg_s2", "req_s2", "2026-11-30T10:00:50Z",
                      {"type": "text", "text": "found it"}, USAGE_1),
        ],
    )  # fmt: skip
    cli(server.url, tmp_path, "--format", "claude-code", str(config / "projects"))
    sub = run(server.url, f"claude-code-{SESSION}-agent-aed1da92")
    assert (sub["agent"], sub["parent_run_id"], sub["session_id"]) == (
        "claude-code-subagent",
        f"claude-code-{SESSION}",
        SESSION,
    )
    assert (sub["llm_calls"], sub["duration_seconds"], [t["name"] for t in sub["tools"]]) == (
        2,
        30.0,
        ["Grep"],
    )
