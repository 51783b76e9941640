"""Run fixtures for the read API tests, on a fixed calendar a few weeks in the past.

Times are relative to `MONDAY`, the Monday 00:00 UTC five weeks before this week's, so that day and
week buckets fall on known boundaries and every fixture (the latest is 24 days after `MONDAY`) is at
least 11 days in the past and older than a 7-day window, whatever the day of the week the tests run.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from .support import record

DAY = 86400
WEEK = 7 * DAY
_MONDAY_EPOCH = 4 * DAY  # 1970-01-05 was a Monday
MONDAY = math.floor((time.time() - _MONDAY_EPOCH) / WEEK) * WEEK + _MONDAY_EPOCH - 5 * WEEK


def at(days: float) -> str:
    """RFC 3339 of `days` after MONDAY."""
    return datetime.fromtimestamp(MONDAY + days * DAY, UTC).isoformat().replace("+00:00", "Z")


def post(client: TestClient, records: list[dict[str, Any]]) -> None:
    """Store `records`, asserting every one was accepted."""
    for start in range(0, len(records), 1000):
        response = client.post("/api/v1/runs", json={"runs": records[start : start + 1000]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["accepted"] == len(records[start : start + 1000]), body


def ten_runs() -> list[dict[str, Any]]:
    """Ten runs, r01..r10, half a day apart from MONDAY 00:00 (two a day, Monday to Friday).

    Run i lasts i seconds, has 1000·i input, 100·i output and 100·i cache-read tokens, i LLM and 2·i
    tool calls and costs 0.1·i USD, except r10, which reports neither tokens nor cost (unknown).
    fixer ran the odd ones, reviewer the even ones; claude-sonnet-4-5 r01-r06, gpt-5 r07-r10;
    complexity r01-r05, security r06-r10; project alpha r01-r08, beta r09-r10.
    Statuses: success r01-r05 and r07; failure r06 and r10 (tests_failed); error r08 (crash);
    timeout r09.
    """
    statuses = {6: "failure", 8: "error", 9: "timeout", 10: "failure"}
    error_types = {8: "crash", 10: "tests_failed"}
    runs = []
    for i in range(1, 11):
        runs.append(
            record(
                f"r{i:02d}",
                agent="fixer" if i % 2 else "reviewer",
                model="claude-sonnet-4-5" if i <= 6 else "gpt-5",
                provider="anthropic" if i <= 6 else "openai",
                issue_type="complexity" if i <= 5 else "security",
                project="alpha" if i <= 8 else "beta",
                status=statuses.get(i, "success"),
                ended_at=at((i - 1) * 0.5),
                duration_seconds=float(i),
                input_tokens=1000 * i if i < 10 else None,
                output_tokens=100 * i if i < 10 else None,
                cache_read_tokens=100 * i if i < 10 else None,
                cost_usd=round(0.1 * i, 10) if i < 10 else None,
                llm_calls=i,
                tool_calls=2 * i,
                error_type=error_types.get(i),
                error_summary=f"run {i} went wrong" if i in statuses else None,
            )
        )
    return runs
