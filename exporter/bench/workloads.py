"""The records the benchmarks send: the shared dataset's real runs, with fresh ids and phases."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent_exporter import swebench

from .harness import SHARED_DATA

PHASES = (("plan", 0.08), ("edit", 0.45), ("test", 0.35), ("review", 0.12))


def realistic(prefix: str, count: int, *, agents: int = 3) -> Iterator[dict[str, Any]]:
    """`count` records shaped like the dataset's runs (tools, tokens, cost) plus a phase breakdown."""
    base = list(swebench.records(SHARED_DATA))
    for i, record in zip(range(count), itertools.cycle(base), strict=False):
        out = dict(record)
        out["run_id"] = f"{prefix}-{i}"
        out["agent"] = f"agent-{i % agents}"
        duration = out["duration_seconds"]
        out["phases"] = [{"name": n, "duration_seconds": round(duration * share, 3)} for n, share in PHASES]
        yield out


def lua_single_post(path: Path, prefix: str) -> Path:
    """A wrk script that POSTs one realistic record per request, each with a new run_id."""
    template = next(realistic("X", 1))
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
