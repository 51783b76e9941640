"""Run records from the SWE-Bench Pro dataset (`shared/data/swe-bench-pro-runs.json`).

1,232 real coding-agent runs: SWE-agent on 616 tasks, once with GPT-5 and once with Claude Sonnet 4.5.
They are realistic fixtures, demo material and the evidence behind the histogram buckets.

The dataset has no timestamps and no wall-clock duration; `duration_seconds` is the time the run
spent inside tools (`tool_time.total_seconds`), a lower bound of its wall time. Output tokens are the
recount that includes tool-call arguments (`output_tokens.total`), as the dataset's README advises.
A run's id is `<model key>/<instance id>` without the `instance_` prefix: at most 118 characters,
so that it fits in an exemplar (128 characters for label names and values together).

    python -m agent_exporter.demo.swebench shared/data/swe-bench-pro-runs.json > runs.jsonl
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

AGENT: Final = "swe-agent"
#: dataset key -> (model, provider)
MODELS: Final = {"gpt5": ("gpt-5", "openai"), "claude": ("claude-sonnet-4-5", "anthropic")}


def to_record(task: dict[str, Any], key: str) -> dict[str, Any]:
    """The run record of one task's run with the model under `key` (`gpt5` or `claude`)."""
    run = task[key]
    model, provider = MODELS[key]
    stats = run["model_stats"]
    output = run["output_tokens"]
    tools = [{"name": name, "calls": calls} for name, calls in sorted(run["actions"].items()) if calls > 0]
    return {
        "run_id": f"{key}/{task['instance_id'].removeprefix('instance_')}",
        "agent": AGENT,
        "model": model,
        "provider": provider,
        "issue_type": task["repo"],
        "project": "swe-bench-pro",
        "status": "success" if run["resolved"] else "failure",
        "duration_seconds": round(run["tool_time"]["total_seconds"], 6),
        "input_tokens": stats["tokens_sent"],
        "output_tokens": output["total"],
        "reasoning_tokens": output.get("thought", 0),
        "cost_usd": stats["instance_cost"],
        "llm_calls": stats["api_calls"],
        "tool_calls": sum(t["calls"] for t in tools),
        "tools": tools,
    }


def records(path: Path) -> Iterator[dict[str, Any]]:
    """Every run of the dataset at `path` as a record: each task's GPT-5 run, then its Sonnet run."""
    tasks = json.loads(path.read_text(encoding="utf-8"))
    for task in tasks:
        for key in MODELS:
            if key in task:
                yield to_record(task, key)


def main(argv: list[str] | None = None) -> int:
    """Print the dataset as JSON lines of run records."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m agent_exporter.demo.swebench PATH/swe-bench-pro-runs.json", file=sys.stderr)
        return 2
    for record in records(Path(args[0])):
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
