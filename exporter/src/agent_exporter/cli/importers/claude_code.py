"""Claude Code session transcripts: `~/.claude/projects/<project>/<session>.jsonl` (or under
`$CLAUDE_CONFIG_DIR/projects`), a run a session; a subagent's transcript
(`<session>/subagents/agent-*.jsonl`) is a run of its own whose parent is the session's.

Only `assistant` lines carry usage (`message.usage`). Claude Code writes one line per content block
of a response, each with the response's whole usage, so usage counts once per message id and request
id. Anthropic reports cache reads and cache writes beside `input_tokens`; the run record's input is
inclusive, so they are added to it. Each `tool_use` block is a tool call; a `tool_result` block with
`is_error` marks its call failed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import Converted, Format, Problem, count, instant, jsonl, rfc3339


def _default_dirs() -> list[Path]:
    base = os.environ.get("CLAUDE_CONFIG_DIR")
    return [Path(base).expanduser() / "projects" if base else Path.home() / ".claude" / "projects"]


def convert(path: Path) -> Converted:
    """The run of one session transcript."""
    out = Converted()
    session: str | None = None
    version: str | None = None
    cwd: str | None = None
    times: list[float] = []
    seen: set[tuple[str, str]] = set()
    usage: dict[str, dict[str, Any]] = {}
    tool_names: dict[str, str] = {}  # tool_use id -> name
    tools: dict[str, dict[str, Any]] = {}
    for _, line in jsonl(path, out):
        session = session or (line.get("sessionId") if isinstance(line.get("sessionId"), str) else None)
        version = version or (line.get("version") if isinstance(line.get("version"), str) else None)
        cwd = cwd or (line.get("cwd") if isinstance(line.get("cwd"), str) else None)
        if (at := instant(line.get("timestamp"))) is not None:
            times.append(at)
        message = line.get("message")
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        if line.get("type") == "assistant":
            for block in blocks:
                if block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                    name = block["name"][:128] or "unknown"
                    tool_names[str(block.get("id"))] = name
                    tools.setdefault(name, {"name": name, "calls": 0, "errors": 0})["calls"] += 1
            key = (str(message.get("id")), str(line.get("requestId")))
            if key in seen or not isinstance(message.get("usage"), dict):
                continue
            seen.add(key)
            _add_usage(usage, message)
        elif line.get("type") == "user":
            for block in blocks:
                if block.get("type") == "tool_result" and block.get("is_error") is True:
                    name = tool_names.get(str(block.get("tool_use_id")))
                    if name is not None:
                        tools[name]["errors"] += 1
    if not times or session is None:
        out.problems.append(
            Problem(path, 0, "not a Claude Code transcript: no line with a sessionId and a timestamp")
        )
        return out
    subagent = path.parent.name == "subagents"
    record: dict[str, Any] = {
        "run_id": (f"claude-code-{session}-{path.stem}" if subagent else f"claude-code-{session}")[:128],
        "agent": "claude-code-subagent" if subagent else "claude-code",
        "status": "success",
        "started_at": rfc3339(min(times)),
        "ended_at": rfc3339(max(times)),
        "usage": list(usage.values())[:256],
        "tools": list(tools.values())[:256],
        "session_id": session[:128],
    }
    if subagent:
        record["parent_run_id"] = f"claude-code-{session}"[:128]
    if version:
        record["agent_version"] = version[:64]
    if cwd:
        record["project"] = (Path(cwd).name or cwd)[:128]
    out.records.append(record)
    return out


def _add_usage(usage: dict[str, dict[str, Any]], message: dict[str, Any]) -> None:
    u = message["usage"]
    given = message.get("model")
    model = given[:128] if isinstance(given, str) and given else "unknown"
    if model == "<synthetic>":  # Claude Code's own placeholder messages: no model call
        return
    line = usage.setdefault(model, {"model": model, "provider": "anthropic", "calls": 0})
    read, write = count(u.get("cache_read_input_tokens")), count(u.get("cache_creation_input_tokens"))
    line["calls"] += 1
    line["input_tokens"] = line.get("input_tokens", 0) + count(u.get("input_tokens")) + read + write
    line["output_tokens"] = line.get("output_tokens", 0) + count(u.get("output_tokens"))
    line["cache_read_tokens"] = line.get("cache_read_tokens", 0) + read
    line["cache_write_tokens"] = line.get("cache_write_tokens", 0) + write


FORMAT = Format("claude-code", "**/*.jsonl", _default_dirs, convert)
