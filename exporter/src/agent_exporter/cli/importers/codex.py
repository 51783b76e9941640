"""Codex CLI rollouts: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl` (`CODEX_HOME` defaults to
`~/.codex`), a run a session.

Each line is `{"timestamp", "type", "payload"}`. `session_meta` names the session (`id`,
`cli_version`, `cwd`), `turn_context` the model, and `event_msg` lines of payload type `token_count`
carry `info.total_token_usage`: totals *so far* (cumulative), so the run's tokens are the last
totals, not their sum, and each change of the totals is one model call. `input_tokens` includes
`cached_input_tokens`; reasoning counted beside the output is added to it. `response_item` lines of
type `function_call`, `custom_tool_call` or `local_shell_call` are tool calls.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import Converted, Format, Problem, count, instant, jsonl, rfc3339

TOOL_ITEMS = frozenset({"function_call", "custom_tool_call", "local_shell_call"})


def _default_dirs() -> list[Path]:
    home = os.environ.get("CODEX_HOME")
    return [(Path(home).expanduser() if home else Path.home() / ".codex") / "sessions"]


def convert(path: Path) -> Converted:
    """The run of one rollout file."""
    out = Converted()
    meta: dict[str, Any] = {}
    model: str | None = None
    times: list[float] = []
    totals: dict[str, Any] | None = None
    calls = 0
    tools: dict[str, int] = {}
    for _, line in jsonl(path, out):
        if (at := instant(line.get("timestamp"))) is not None:
            times.append(at)
        payload = line.get("payload")
        if not isinstance(payload, dict):
            continue
        kind = line.get("type")
        if kind == "session_meta":
            meta = payload
        elif kind == "turn_context" and isinstance(payload.get("model"), str):
            model = payload["model"]
        elif kind == "event_msg" and payload.get("type") == "token_count":
            info = payload.get("info")
            usage = info.get("total_token_usage") if isinstance(info, dict) else None
            if isinstance(usage, dict) and usage != totals:
                totals = usage
                calls += 1
        elif kind == "response_item" and payload.get("type") in TOOL_ITEMS:
            given = payload.get("name")
            name = (given if isinstance(given, str) and given else str(payload["type"]))[:128]
            tools[name] = tools.get(name, 0) + 1
    session = meta.get("id")
    if not isinstance(session, str) or not session or not times:
        out.problems.append(Problem(path, 0, "not a Codex rollout: no session_meta line with an id"))
        return out
    record: dict[str, Any] = {
        "run_id": f"codex-{session}"[:128],
        "agent": "codex",
        "status": "success",
        "provider": "openai",
        "started_at": rfc3339(min(times)),
        "ended_at": rfc3339(max(times)),
        "llm_calls": calls,
        "tools": [{"name": n, "calls": c} for n, c in sorted(tools.items())][:256],
        "session_id": session[:128],
    }
    if model:
        record["model"] = model[:128]
    if isinstance(meta.get("cli_version"), str):
        record["agent_version"] = meta["cli_version"][:64]
    if isinstance(meta.get("cwd"), str):
        record["project"] = (Path(meta["cwd"]).name or meta["cwd"])[:128]
    if totals is not None:
        input_tokens, output = count(totals.get("input_tokens")), count(totals.get("output_tokens"))
        cached, reasoning = (
            count(totals.get("cached_input_tokens")),
            count(totals.get("reasoning_output_tokens")),
        )
        record["input_tokens"] = max(input_tokens, cached)
        record["cache_read_tokens"] = cached
        record["output_tokens"] = output if output >= reasoning else output + reasoning
        record["reasoning_tokens"] = reasoning
    out.records.append(record)
    return out


FORMAT = Format("codex", "**/rollout-*.jsonl", _default_dirs, convert)
