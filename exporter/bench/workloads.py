"""The records the benchmarks send: the shared dataset's real runs, with fresh ids and phases."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_exporter.demo import swebench

from .harness import SHARED_DATA

PHASES = (("plan", 0.08), ("edit", 0.45), ("test", 0.35), ("review", 0.12))


def realistic(
    prefix: str, count: int, *, agents: int = 3, span: tuple[float, float] | None = None
) -> Iterator[dict[str, Any]]:
    """`count` records shaped like the dataset's runs (tools, tokens, cost) plus a phase breakdown.

    With `span` (start, end in Unix seconds) the runs end at evenly spread times across it, in order,
    as a fleet's history does; otherwise they end when they are received.
    """
    base = list(swebench.records(SHARED_DATA))
    for i, record in zip(range(count), itertools.cycle(base), strict=False):
        out = dict(record)
        out["run_id"] = f"{prefix}-{i}"
        out["agent"] = f"agent-{i % agents}"
        duration = out["duration_seconds"]
        out["phases"] = [{"name": n, "duration_seconds": round(duration * share, 3)} for n, share in PHASES]
        if span is not None:
            ended = span[0] + (span[1] - span[0]) * i / count
            out["ended_at"] = datetime.fromtimestamp(ended, UTC).isoformat()
        yield out


MINIMAL = {
    "run_id": "__ID__",
    "agent": "fixer",
    "status": "success",
    "duration_seconds": 42.5,
    "model": "claude-sonnet-4-5",
    "input_tokens": 120_000,
    "output_tokens": 4_000,
    "cost_usd": 0.5,
}


def lua_single_post(path: Path, prefix: str, *, minimal: bool = False) -> Path:
    """A wrk script that POSTs one record per request, each with a new run_id.

    The record is a realistic one (the dataset's tools, four phases) or, with `minimal`, a small
    one (status, duration, tokens, cost): the HTTP and validation overhead alone.
    """
    template = dict(MINIMAL) if minimal else next(realistic("X", 1))
    template["run_id"] = "__ID__"
    body = json.dumps(template, separators=(",", ":")).replace("%", "%%").replace("__ID__", "%s")
    path.write_text(
        f"""
local counter = 0
local threads = {{}}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  prefix = "{prefix}-" .. tid .. "-"
end
request = function()
  counter = counter + 1
  local body = string.format([[{body}]], prefix .. counter)
  return wrk.format("POST", "/api/v1/runs", {{["Content-Type"] = "application/json"}}, body)
end
"""
    )
    return path


def lua_pushgateway(path: Path, prefix: str) -> Path:
    """A wrk script that pushes one run's metrics to a Pushgateway group of its own per request.

    This is how a team would record runs with the Pushgateway: a group per run, since a push
    replaces a group's values and the Pushgateway cannot add to a counter.
    """
    metrics = (
        "# TYPE agent_run_duration_seconds gauge\\n"
        'agent_run_duration_seconds{model=\\"claude-sonnet-4-5\\",status=\\"success\\"} 42.5\\n'
        "# TYPE agent_run_tokens gauge\\n"
        'agent_run_tokens{token_type=\\"input\\"} 120000\\n'
        'agent_run_tokens{token_type=\\"output\\"} 4000\\n'
        "# TYPE agent_run_cost_usd gauge\\n"
        "agent_run_cost_usd 0.5\\n"
        "# TYPE agent_run_llm_calls gauge\\n"
        "agent_run_llm_calls 12\\n"
        "# TYPE agent_run_tool_calls gauge\\n"
        "agent_run_tool_calls 30\\n"
    )
    path.write_text(
        f"""
local counter = 0
local threads = {{}}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  prefix = "{prefix}-" .. tid .. "-"
end
request = function()
  counter = counter + 1
  local path = "/metrics/job/fixer/run_id/" .. prefix .. counter
  return wrk.format("PUT", path, {{["Content-Type"] = "text/plain"}}, "{metrics}")
end
"""
    )
    return path
