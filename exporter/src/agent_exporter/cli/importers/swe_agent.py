"""SWE-agent trajectories: one `<instance_id>.traj` (JSON) a run.

`info.model_stats` has the run's totals (`tokens_sent`, `tokens_received`, `api_calls`,
`instance_cost`), `info.exit_status` how it ended (`submitted` is a success; `exit_cost`,
`exit_context`, `exit_format` and the like ran out of something: a failure; anything with `error`
crashed), and each step of `trajectory` is one action (a tool call) with its `execution_time`.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from . import Converted, Format, Problem, count, rfc3339


def _default_dirs() -> list[Path]:
    return [Path("trajectories")]  # SWE-agent writes into ./trajectories/ of where it ran


def _status(exit_status: str) -> str:
    lowered = exit_status.lower()
    if lowered.startswith("submitted"):
        return "success"
    if "error" in lowered:
        return "error"
    if "timeout" in lowered:
        return "timeout"
    return "failure"


def _model(data: dict[str, Any]) -> str | None:
    # the run's configuration, kept beside the trajectory as a JSON string
    replay = data.get("replay_config")
    if isinstance(replay, str):
        try:
            replay = orjson.loads(replay)
        except orjson.JSONDecodeError:
            return None
    if isinstance(replay, dict):
        model = (replay.get("agent") or {}).get("model") or {}
        name = model.get("name") if isinstance(model, dict) else None
        return name if isinstance(name, str) and name else None
    return None


def convert(path: Path) -> Converted:
    """The run of one trajectory file."""
    out = Converted()
    try:
        raw = path.read_bytes()
        data = orjson.loads(raw)
    except (OSError, orjson.JSONDecodeError) as exc:
        out.problems.append(Problem(path, 0, f"not a SWE-agent trajectory (JSON): {exc}"))
        return out
    info = data.get("info") if isinstance(data, dict) else None
    stats = info.get("model_stats") if isinstance(info, dict) else None
    if (
        not isinstance(info, dict)
        or not isinstance(stats, dict)
        or not isinstance(info.get("exit_status"), str)
    ):
        out.problems.append(
            Problem(path, 0, "not a SWE-agent trajectory: no info.model_stats and info.exit_status")
        )
        return out
    steps = [s for s in data.get("trajectory") or [] if isinstance(s, dict)]
    tools = Counter(
        str(s.get("action", "")).split(maxsplit=1)[0] or "action" for s in steps if s.get("action")
    )
    seconds = sum(
        float(s["execution_time"]) for s in steps if isinstance(s.get("execution_time"), (int, float))
    )
    exit_status = info["exit_status"]
    record: dict[str, Any] = {
        # the instance and the file's digest: the same file again is a duplicate, another run of the
        # same instance is another run
        "run_id": f"swe-agent-{path.stem[:80]}-{hashlib.sha256(raw).hexdigest()[:12]}",
        "agent": "swe-agent",
        "status": _status(exit_status),
        "issue_type": "swe-bench",
        "duration_seconds": max(0.0, seconds),
        "ended_at": rfc3339(os.stat(path).st_mtime),
        "input_tokens": count(stats.get("tokens_sent")),
        "output_tokens": count(stats.get("tokens_received")),
        "llm_calls": count(stats.get("api_calls")),
        "tools": [{"name": name[:128], "calls": calls} for name, calls in tools.most_common(256)],
        "labels": {"instance_id": path.stem[:256], "exit_status": exit_status[:256]},
    }
    cost = stats.get("instance_cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0:
        record["cost_usd"] = float(cost)
    if (model := _model(data)) is not None:
        record["model"] = model[:128]
    if record["status"] != "success":
        record["error_type"] = exit_status[:64]
    out.records.append(record)
    return out


FORMAT = Format("swe-agent", "**/*.traj", _default_dirs, convert)
