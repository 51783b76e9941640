"""The client SDK's recording API: what a run, a decorated call and record_run send.

Records are sent over real HTTP to a stub server on loopback and read back from its requests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent_exporter import client as sdk
from agent_exporter.client import Client, current_run

from .stub_server import StubServer
from .support import FAST


def sent(c: Client, stub: StubServer) -> list[dict[str, Any]]:
    """Flush `c` and return every record the stub received."""
    assert c.flush(5)
    return stub.records()


def test_a_run_sends_its_timing_llm_calls_tools_and_phases(agent_client: Client, stub: StubServer) -> None:
    with agent_client.run("fixer", model="claude-sonnet-4-5", issue_type="complexity", project="web") as run:
        run.llm_call(input_tokens=1000, output_tokens=200, cache_read_tokens=600, cost_usd=0.25)
        run.llm_call(input_tokens=3000, output_tokens=100, cost_usd=0.5)
        run.llm_call("claude-haiku-4-5", provider="anthropic", input_tokens=50, output_tokens=5)
        run.tool_call("bash", duration_seconds=1.5)
        run.tool_call("bash", duration_seconds=0.5, error=True)
        run.tool_call("edit")
        with run.phase("plan"):
            pass
        with run.phase("pipeline") as attempt:
            attempt.fail()
        run.add_phase("pipeline", 30.0, "success")
        run.retry()
    [record] = sent(agent_client, stub)
    assert record["run_id"] == run.run_id
    assert (record["agent"], record["status"], record["issue_type"], record["project"]) == (
        "fixer",
        "success",
        "complexity",
        "web",
    )
    assert record["usage"] == [
        {
            "model": "claude-sonnet-4-5",
            "calls": 2,
            "input_tokens": 4000,
            "output_tokens": 300,
            "cache_read_tokens": 600,
            "cost_usd": 0.75,
        },
        {
            "model": "claude-haiku-4-5",
            "calls": 1,
            "input_tokens": 50,
            "output_tokens": 5,
            "provider": "anthropic",
        },
    ]
    assert record["tools"] == [
        {"name": "bash", "calls": 2, "errors": 1, "duration_seconds": 2.0},
        {"name": "edit", "calls": 1, "errors": 0},
    ]
    assert [(p["name"], p["status"]) for p in record["phases"]] == [
        ("plan", "success"),
        ("pipeline", "failure"),
        ("pipeline", "success"),
    ]
    assert record["retries"] == 1
    assert "error_type" not in record
    assert 0 <= record["duration_seconds"] < 5


def test_a_runs_timestamps_are_rfc3339_and_agree_with_its_duration(
    agent_client: Client, stub: StubServer
) -> None:
    from datetime import datetime

    with agent_client.run("fixer"):
        pass
    [record] = sent(agent_client, stub)
    started = datetime.fromisoformat(record["started_at"])
    ended = datetime.fromisoformat(record["ended_at"])
    assert started.utcoffset() is not None
    assert abs((ended - started).total_seconds() - record["duration_seconds"]) < 1e-5


def test_an_exception_marks_the_run_error_and_passes_through_unchanged(
    agent_client: Client, stub: StubServer
) -> None:
    boom = ValueError("no patch applies")
    with pytest.raises(ValueError, match="no patch applies") as raised, agent_client.run("fixer"):
        raise boom
    assert raised.value is boom
    [record] = sent(agent_client, stub)
    assert (record["status"], record["error_type"], record["error_summary"]) == (
        "error",
        "ValueError",
        "ValueError: no patch applies",
    )


def test_keyboard_interrupt_marks_the_run_cancelled(agent_client: Client, stub: StubServer) -> None:
    with pytest.raises(KeyboardInterrupt), agent_client.run("fixer"):
        raise KeyboardInterrupt
    [record] = sent(agent_client, stub)
    assert (record["status"], record["error_type"]) == ("cancelled", "KeyboardInterrupt")


def test_an_explicit_status_wins_over_success_and_over_an_exception(
    agent_client: Client, stub: StubServer
) -> None:
    with agent_client.run("fixer") as run:
        run.fail("3 tests still fail", error_type="tests_failed")

    def give_up() -> None:
        with agent_client.run("fixer") as run:
            run.timeout("gave up after 3600 s")
            raise TimeoutError

    with pytest.raises(TimeoutError):
        give_up()
    with agent_client.run("fixer") as run:
        run.cancel("superseded by a newer commit")
    records = sent(agent_client, stub)
    assert [(r["status"], r.get("error_type"), r["error_summary"]) for r in records] == [
        ("failure", "tests_failed", "3 tests still fail"),
        ("timeout", "timeout", "gave up after 3600 s"),
        ("cancelled", None, "superseded by a newer commit"),
    ]


def test_error_summaries_lose_control_characters_and_are_cut_to_the_servers_limit(
    agent_client: Client, stub: StubServer
) -> None:
    with pytest.raises(RuntimeError), agent_client.run("fixer"):
        raise RuntimeError("\x1b[31mred\x1b[0m\n" + "x" * 5000)
    [record] = sent(agent_client, stub)
    summary = record["error_summary"]
    assert summary.startswith("RuntimeError: ?[31mred?[0m\nxxx")
    assert len(summary) == 4096
    assert summary.endswith("…")


def test_the_decorator_records_one_run_per_call_and_exposes_it_as_current_run(
    agent_client: Client, stub: StubServer
) -> None:
    @agent_client.run("triager", issue_type="security")
    def triage(tokens: int) -> str:
        run = current_run()
        assert run is not None
        run.llm_call("claude-haiku-4-5", input_tokens=tokens, output_tokens=1)
        return run.run_id

    first, second = triage(10), triage(20)
    assert current_run() is None
    records = sent(agent_client, stub)
    assert [(r["run_id"], r["usage"][0]["input_tokens"]) for r in records] == [(first, 10), (second, 20)]
    assert first != second


def test_the_decorator_records_coroutines(agent_client: Client, stub: StubServer) -> None:
    @agent_client.run("reviewer")
    async def review() -> None:
        await asyncio.sleep(0)
        raise LookupError("no diff")

    with pytest.raises(LookupError):
        asyncio.run(review())
    [record] = sent(agent_client, stub)
    assert (record["agent"], record["status"], record["error_type"]) == ("reviewer", "error", "LookupError")


def test_record_run_sends_the_given_fields_and_returns_the_run_id(
    agent_client: Client, stub: StubServer
) -> None:
    run_id = agent_client.record_run(
        "reviewer", status="failure", duration_seconds=12.5, model="gpt-5", started_at=1_700_000_000.25
    )
    [record] = sent(agent_client, stub)
    assert record == {
        "agent": "reviewer",
        "run_id": run_id,
        "status": "failure",
        "duration_seconds": 12.5,
        "model": "gpt-5",
        "started_at": "2023-11-14T22:13:20.250000+00:00",
    }


def test_defaults_apply_to_every_run_and_labels_are_not_shared(stub: StubServer, tmp_path: Path) -> None:
    with Client(
        stub.url,
        spool=tmp_path / "spool",
        defaults={"agent": "fixer", "team": "payments", "labels": {"region": "eu"}},
        **FAST,
    ) as c:
        with c.run() as run:
            run.label("trigger", "ci")
        with c.run(team="web"):
            pass
        records = sent(c, stub)
    assert [(r["agent"], r["team"], r["labels"]) for r in records] == [
        ("fixer", "payments", {"region": "eu", "trigger": "ci"}),
        ("fixer", "web", {"region": "eu"}),
    ]


def test_bad_arguments_never_raise_into_the_agent_and_are_counted(
    agent_client: Client, stub: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    with agent_client.run("fixer") as run:
        run.llm_call(input_tokens="many")  # type: ignore[arg-type]
        run.retry("twice")  # type: ignore[arg-type]
    [record] = sent(agent_client, stub)
    assert record["status"] == "success"
    assert agent_client.stats().errors == 2
    assert "error in Run.llm_call" in caplog.text


def test_a_record_that_is_not_json_is_dropped_and_counted_not_raised(
    agent_client: Client, stub: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    agent_client.record_run("fixer", duration_seconds=1.0, cost_usd=float("nan"))
    agent_client.record_run("fixer", duration_seconds=1.0)
    records = sent(agent_client, stub)
    assert len(records) == 1
    stats = agent_client.stats()
    assert (stats.dropped, stats.delivered) == (1, 1)
    assert "cannot be encoded as JSON" in caplog.text


def test_runs_recorded_together_go_in_one_batch(stub: StubServer, tmp_path: Path) -> None:
    with Client(stub.url, spool=tmp_path / "spool", flush_interval=60) as c:
        for i in range(5):
            c.record_run("fixer", run_id=f"batch-{i}", duration_seconds=1.0)
        assert c.flush(5)
    assert [r.run_ids for r in stub.requests] == [[f"batch-{i}" for i in range(5)]]


def test_a_batch_is_sent_as_soon_as_batch_size_runs_are_queued(stub: StubServer, tmp_path: Path) -> None:
    with Client(stub.url, spool=tmp_path / "spool", flush_interval=60, batch_size=3) as c:
        for i in range(3):
            c.record_run("fixer", run_id=f"full-{i}", duration_seconds=1.0)
        from .support import wait_until

        wait_until(lambda: len(stub.requests) == 1, 5, "a full batch to be sent without a flush")
    assert stub.requests[0].run_ids == ["full-0", "full-1", "full-2"]


def test_the_bearer_token_and_url_come_from_the_environment(
    stub: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_EXPORTER_URL", stub.url + "/")
    monkeypatch.setenv("AGENT_EXPORTER_TOKEN", "s3cret")
    monkeypatch.setenv("AGENT_EXPORTER_SPOOL", str(tmp_path / "env-spool"))
    with Client(**FAST) as c:
        assert c.settings.spool_dir == tmp_path / "env-spool"
        c.record_run("fixer", duration_seconds=1.0)
        assert c.flush(5)
    [request] = stub.requests
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["User-Agent"].startswith("agent-exporter-client/")


def test_without_a_token_no_authorization_header_is_sent(agent_client: Client, stub: StubServer) -> None:
    agent_client.record_run("fixer", duration_seconds=1.0)
    sent(agent_client, stub)
    assert "Authorization" not in stub.requests[0].headers


def test_an_invalid_url_is_refused_when_the_client_is_made() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        Client("127.0.0.1:9477")


def test_the_module_level_api_uses_a_configurable_default_client(
    stub: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sdk, "_default", None)  # restored afterwards: other tests see no default client
    c = sdk.configure(stub.url, spool=tmp_path / "spool", defaults={"environment": "ci"}, **FAST)
    try:
        assert sdk.get_client() is c
        with sdk.run("fixer"):
            pass
        sdk.record_run("triager", duration_seconds=2.0)
        assert sdk.flush(5)
    finally:
        c.close()
    assert [(r["agent"], r["environment"]) for r in stub.records()] == [("fixer", "ci"), ("triager", "ci")]
