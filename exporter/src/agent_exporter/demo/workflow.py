"""The demo fixer's pipeline attempts, debugging cycles and sub-agents (the seeds' record fields),
read off its phases."""

from __future__ import annotations

from typing import Any, Final

#: a phase's status as a pipeline attempt's (a run that timed out stopped its pipeline with an error)
_PIPELINE_STATUS: Final = {"success": "success", "failure": "failure", "error": "error", "timeout": "error"}


def workflow(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """The fixer's pipeline attempts, debugging cycles and sub-agents, read off its phases (no random
    draw, so that every other field of a seed's runs stays as it was): an attempt before the last
    failed and was reworked by the testing sub-agent, resolved when a later attempt passed."""
    pipelines = [p for p in phases if p["name"] == "pipeline"]
    if not pipelines:
        return {}
    last = pipelines[-1]["status"]
    attempts = [
        {
            "status": "failure" if i < len(pipelines) - 1 else _PIPELINE_STATUS.get(last, "cancelled"),
            "duration_seconds": p["duration_seconds"],
        }
        for i, p in enumerate(pipelines)
    ]
    passed = attempts[-1]["status"] == "success"
    reworks = len(attempts) - 1
    durations = {p["name"]: p["duration_seconds"] for p in phases}
    return {
        "pipeline_attempts": attempts,
        "debugging_cycles": [
            {"agent": "testing", "error_type": "test_failure", "attempts": 1, "resolved": passed}
            for _ in range(reworks)
        ],
        "subagents": [
            {"name": "coding", "attempts": 1, "successes": 1, "duration_seconds": durations.get("edit", 0.0)},
            {
                "name": "testing",
                "attempts": len(attempts),
                "successes": int(passed),
                "failures": len(attempts) - int(passed),
                "retries": reworks,
                "duration_seconds": round(
                    durations.get("test", 0.0) + sum(a["duration_seconds"] for a in attempts), 3
                ),
            },
            {
                "name": "review",
                "attempts": 1,
                "successes": 1,
                "duration_seconds": durations.get("review", 0.0),
            },
        ],
    }
