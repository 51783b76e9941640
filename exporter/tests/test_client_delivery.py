"""The client SDK's delivery: retries, backoff, Retry-After, the spool, exit flush, and no lost runs.

Against the real exporter on loopback (started and stopped as a subprocess), with a stub HTTP server
in front of it where a test needs scripted failures. Intervals are shortened through the client's
tuning arguments.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from agent_exporter.client import Client
from agent_exporter.client.spool import Spool

from .exporter_reads import records_total, stored_run_ids
from .stub_server import Answer, stub_server
from .support import FAST, exporter, free_port, wait_until


def spooled_run_ids(spool: Path) -> list[str]:
    """Run ids in every segment of a spool directory."""
    ids = []
    for path in sorted(spool.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            ids.append(json.loads(line)["run_id"])
    return ids


def agent_process(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python process running `code` (an agent using the SDK) with `args` as sys.argv[1:]."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# spooling and replay ---------------------------------------------------------------------------


def test_a_run_recorded_while_the_server_is_down_is_spooled_and_arrives_once_when_it_returns(
    tmp_path: Path,
) -> None:
    port = free_port()
    spool = tmp_path / "spool"
    c = Client(f"http://127.0.0.1:{port}", spool=spool, spool_after_attempts=2, **FAST)
    try:
        c.record_run("fixer", run_id="while-down", duration_seconds=3.0)
        wait_until(lambda: c.stats().spooled == 1, 10, "the run to be spooled")
        assert c.stats().unreachable
        assert spooled_run_ids(spool) == ["while-down"]
        with exporter(tmp_path, port=port) as server:
            wait_until(lambda: c.stats().delivered == 1, 20, "the spooled run to be delivered")
            assert stored_run_ids(tmp_path) == ["while-down"]
            assert records_total(server) == {"accepted": 1, "duplicate": 0, "conflict": 0, "rejected": 0}
        stats = c.stats()
        assert (stats.replayed, stats.accepted, stats.duplicates, stats.unreachable) == (1, 1, 0, False)
        assert list(spool.glob("*.jsonl")) == []
    finally:
        c.close(timeout=1)


AGENT_THAT_SPOOLS_AND_HANGS = """
    import sys, time
    from agent_exporter.client import Client
    c = Client(sys.argv[1], spool=sys.argv[2], spool_after_attempts=1,
               flush_interval=0.02, backoff_base=0.01, backoff_max=0.05)
    c.record_run("fixer", run_id="killed-agent", duration_seconds=5.0)
    while c.stats().spooled < 1:
        time.sleep(0.01)
    print("spooled", flush=True)
    time.sleep(120)
"""

AGENT_THAT_RECORDS_ONE_RUN = """
    import sys
    from agent_exporter.client import Client
    c = Client(sys.argv[1], spool=sys.argv[2], flush_interval=0.02)
    c.record_run("fixer", run_id=sys.argv[3], duration_seconds=1.0)
    # no close(): the interpreter's exit flushes
"""


def test_a_run_spooled_by_an_agent_killed_with_sigkill_is_delivered_by_its_next_start(tmp_path: Path) -> None:
    port = free_port()
    url, spool = f"http://127.0.0.1:{port}", str(tmp_path / "spool")
    first = agent_process(AGENT_THAT_SPOOLS_AND_HANGS, url, spool)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "spooled"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    assert spooled_run_ids(tmp_path / "spool") == ["killed-agent"]
    with exporter(tmp_path, port=port) as server:
        second = agent_process(AGENT_THAT_RECORDS_ONE_RUN, url, spool, "second-life")
        _, stderr = second.communicate(timeout=30)
        assert second.returncode == 0, stderr
        assert stored_run_ids(tmp_path) == ["killed-agent", "second-life"]
        assert records_total(server)["accepted"] == 2
    assert spooled_run_ids(tmp_path / "spool") == []


def test_an_agent_exiting_while_the_server_is_down_spools_its_runs_at_once(tmp_path: Path) -> None:
    url, spool = f"http://127.0.0.1:{free_port()}", str(tmp_path / "spool")
    started = time.monotonic()
    agent = agent_process(AGENT_THAT_RECORDS_ONE_RUN, url, spool, "exit-while-down")
    _, stderr = agent.communicate(timeout=30)
    assert agent.returncode == 0, stderr
    assert time.monotonic() - started < 5  # the exit flush does not wait out a dead server
    assert spooled_run_ids(tmp_path / "spool") == ["exit-while-down"]


def test_queued_runs_are_delivered_by_the_exit_flush(tmp_path: Path) -> None:
    with exporter(tmp_path) as server:
        code = AGENT_THAT_RECORDS_ONE_RUN.replace("flush_interval=0.02", "flush_interval=600")
        agent = agent_process(code, server.url, str(tmp_path / "spool"), "flushed-at-exit")
        _, stderr = agent.communicate(timeout=30)
        assert agent.returncode == 0, stderr
        assert stored_run_ids(tmp_path) == ["flushed-at-exit"]


def test_a_torn_spool_line_is_skipped_and_the_rest_is_replayed(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    good = [
        json.dumps({"run_id": f"ok-{i}", "agent": "fixer", "status": "success", "duration_seconds": 1})
        for i in range(2)
    ]
    (spool / "00000000000000000001-1-aaaaaaaa.jsonl").write_text(
        good[0] + "\n" + good[1] + '\n{"run_id": "torn", "ag'
    )
    with stub_server() as stub, Client(stub.url, spool=spool, **FAST) as c:
        wait_until(lambda: c.stats().replayed == 2, 10, "the spool to be replayed")
        assert stub.run_ids() == ["ok-0", "ok-1"]
        assert c.stats().corrupt_lines == 1
    assert list(spool.glob("*.jsonl")) == []


# retries ---------------------------------------------------------------------------------------


def test_a_server_answering_500_twice_then_200_stores_the_run_once(tmp_path: Path) -> None:
    with (
        exporter(tmp_path) as server,
        stub_server([Answer(500), Answer(500)], upstream=server.url) as proxy,
        Client(proxy.url, spool=tmp_path / "spool", **FAST) as c,
    ):
        c.record_run("fixer", run_id="flaky", duration_seconds=1.0)
        wait_until(lambda: c.stats().delivered == 1, 10, "the run to be delivered")
        assert proxy.run_ids() == ["flaky", "flaky", "flaky"]
        assert stored_run_ids(tmp_path) == ["flaky"]
        assert records_total(server)["accepted"] == 1
        stats = c.stats()
        assert (stats.failures, stats.spooled, stats.accepted, stats.requests) == (2, 0, 1, 3)


def test_an_answer_lost_after_the_server_stored_the_run_is_a_duplicate_not_a_second_run(
    tmp_path: Path,
) -> None:
    with (
        exporter(tmp_path) as server,
        stub_server([Answer(502, forward=True)], upstream=server.url) as proxy,
        Client(proxy.url, spool=tmp_path / "spool", **FAST) as c,
    ):
        c.record_run("fixer", run_id="answer-lost", duration_seconds=1.0)
        wait_until(lambda: c.stats().delivered == 1, 10, "the retry to be acknowledged")
        assert (c.stats().accepted, c.stats().duplicates) == (0, 1)
        assert stored_run_ids(tmp_path) == ["answer-lost"]
        assert records_total(server) == {"accepted": 1, "duplicate": 1, "conflict": 0, "rejected": 0}


def test_a_record_failing_validation_is_logged_and_never_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "agent_exporter.client")
    with (
        exporter(tmp_path) as server,
        stub_server(upstream=server.url) as proxy,
        Client(proxy.url, spool=tmp_path / "spool", **FAST) as c,
    ):
        c.record_run("fixer", run_id="bad", duration_seconds=1.0, input_tokens=-5)
        c.record_run("fixer", run_id="good", duration_seconds=1.0)
        assert c.flush(5)
        time.sleep(10 * FAST["flush_interval"])  # ten more chances to retry: none is taken
        assert c.flush(5)
        assert [r.run_ids for r in proxy.requests] == [["bad", "good"]]
        assert stored_run_ids(tmp_path) == ["good"]
        stats = c.stats()
        assert (stats.rejected, stats.accepted, stats.failures, stats.spooled) == (1, 1, 0, 0)
    assert "run 'bad' rejected by the server (not retried): runs[0].input_tokens" in caplog.text


@pytest.mark.parametrize("status", [400, 422])
def test_a_batch_refused_with_a_client_error_is_dropped_after_one_attempt(
    status: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        stub_server([Answer(status)]) as stub,
        Client(stub.url, spool=tmp_path / "spool", **FAST) as c,
    ):
        c.record_run("fixer", run_id="refused", duration_seconds=1.0)
        assert c.flush(5)
        time.sleep(10 * FAST["flush_interval"])
        assert len(stub.requests) == 1
        assert (c.stats().rejected, c.stats().failures) == (1, 0)
    assert f"1 run(s) rejected with HTTP {status} and not retried: a scripted failure" in caplog.text


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(status: int, tmp_path: Path) -> None:
    with (
        stub_server([Answer(status, {"Retry-After": "1"})]) as stub,
        Client(stub.url, spool=tmp_path / "spool", **FAST) as c,
    ):
        c.record_run("fixer", run_id="later", duration_seconds=1.0)
        wait_until(lambda: c.stats().delivered == 1, 10, "the retry to be delivered")
        first, second = stub.requests
        assert second.at - first.at >= 1.0  # the backoff alone would wait at most 0.01 s


def test_retries_back_off_exponentially(tmp_path: Path) -> None:
    with (
        stub_server([Answer(500)] * 4) as stub,
        Client(
            stub.url,
            spool=tmp_path / "spool",
            flush_interval=0.02,
            backoff_base=0.05,
            backoff_max=10,
            spool_after_attempts=10,
        ) as c,
    ):
        c.record_run("fixer", run_id="backoff", duration_seconds=1.0)
        wait_until(lambda: c.stats().delivered == 1, 10, "the run to be delivered")
        times = [r.at for r in stub.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # attempt n waits base * 2**(n-1), jittered down to half of it at most
    assert [round(g, 3) >= 0.05 * 2**n / 2 for n, g in enumerate(gaps)] == [True] * 4
    assert gaps[3] > gaps[0]


def test_a_wrong_token_is_logged_and_the_runs_are_kept_for_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        stub_server([Answer(401)]) as stub,
        Client(stub.url, token="wrong", spool=tmp_path / "spool", **FAST) as c,
    ):
        c.record_run("fixer", run_id="unauthorised", duration_seconds=1.0)
        wait_until(lambda: c.stats().delivered == 1, 10, "the run to be delivered")
        assert stub.run_ids() == ["unauthorised", "unauthorised"]
    assert "answered 401" in caplog.text
    assert "check AGENT_EXPORTER_URL and AGENT_EXPORTER_TOKEN" in caplog.text


def test_a_batch_over_the_servers_size_limit_is_split(tmp_path: Path) -> None:
    def at_most_two(body: Any) -> Answer | None:
        return Answer(413) if len(body["runs"]) > 2 else None

    with (
        stub_server(decide=at_most_two) as stub,
        Client(stub.url, spool=tmp_path / "spool", flush_interval=600) as c,
    ):
        for i in range(5):
            c.record_run("fixer", run_id=f"split-{i}", duration_seconds=1.0)
        assert c.flush(5)
        accepted = [r.run_ids for r in stub.requests if len(r.run_ids) <= 2]
        assert accepted == [["split-0", "split-1"], ["split-2"], ["split-3", "split-4"]]
        assert (c.stats().accepted, c.stats().rejected) == (5, 0)


# bounds ----------------------------------------------------------------------------------------


def test_recording_returns_at_once_while_the_server_hangs_and_nothing_is_lost(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with stub_server(decide=lambda body: Answer(200, hang=3.0)) as stub:
        c = Client(stub.url, spool=spool, flush_interval=0.01, batch_size=10, max_queue=50, timeout=30)
        slowest = 0.0
        longest_queue = 0
        for i in range(300):
            started = time.perf_counter()
            c.record_run("fixer", run_id=f"hang-{i}", duration_seconds=1.0)
            slowest = max(slowest, time.perf_counter() - started)
            longest_queue = max(longest_queue, len(c._delivery._queue))
        wait_until(lambda: len(stub.requests) >= 1, 5, "the sender to be stuck in a request")
        c.close(timeout=0.2)
    assert slowest < 0.05  # a write(2) to the spool at worst, never the 3 s of the stuck request
    assert longest_queue <= 50
    received = set(stub.run_ids()) | set(spooled_run_ids(spool))
    assert received == {f"hang-{i}" for i in range(300)}
    assert c.stats().dropped == 0


def test_a_full_spool_drops_runs_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = tmp_path / "spool"
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, spool=spool, max_spool_bytes=1000, spool_after_attempts=1, **FAST) as c:
        for i in range(30):
            c.record_run("fixer", run_id=f"full-{i:02d}", duration_seconds=1.0)
        wait_until(lambda: c.stats().spooled + c.stats().dropped == 30, 10, "every run to be placed")
        stats = c.stats()
    size = sum(p.stat().st_size for p in spool.glob("*.jsonl"))
    assert size <= 1000
    record = {"duration_seconds": 1.0, "agent": "fixer", "run_id": "full-00", "status": "success"}
    line = len(json.dumps(record, separators=(",", ":"))) + 1  # compact JSON and a newline
    assert stats.spooled == 1000 // line == 12
    assert stats.dropped == 30 - stats.spooled
    assert "run(s) lost: the server is unreachable and the spool" in caplog.text


def test_a_segment_held_by_a_live_writer_is_not_replayed_until_sealed(tmp_path: Path) -> None:
    writer = Spool(tmp_path, max_bytes=10_000)
    reader = Spool(tmp_path, max_bytes=10_000)
    assert writer.append([b'{"run_id":"a"}', b'{"run_id":"b"}']) == 2
    assert list(reader.claim()) == []
    writer.seal()
    [segment] = list(reader.claim())
    assert segment.read_lines() == [b'{"run_id":"a"}', b'{"run_id":"b"}']
    assert list(reader.claim()) == []  # claimed segments are locked against other replays
    reader.delete(segment)
    assert list(tmp_path.glob("*.jsonl")) == []


def test_a_replay_never_sees_a_segment_its_writer_has_not_locked_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A replay that listed the directory between the segment's creation and its lock used to claim
    # it, find it empty and delete it: the writer then wrote its records into an unlinked file.
    writer = Spool(tmp_path, max_bytes=10_000)
    reader = Spool(tmp_path, max_bytes=10_000)
    real_flock = fcntl.flock
    seen_by_replay: list[list[str]] = []

    def replay_right_before_the_writers_lock(fd: int, operation: int) -> None:
        if not seen_by_replay:
            seen_by_replay.append([])  # the replay's own locks come through here too
            for segment in reader.claim():
                seen_by_replay[0].append(segment.path.name)
                segment.release()
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", replay_right_before_the_writers_lock)
    assert writer.append([b'{"run_id":"a"}']) == 1
    assert seen_by_replay == [[]]
    writer.seal()
    [segment] = list(reader.claim())
    assert segment.read_lines() == [b'{"run_id":"a"}']
    segment.release()


def test_a_spool_segment_holds_at_most_segment_records(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000, segment_records=2)
    assert spool.append([b"1", b"2", b"3", b"4", b"5"]) == 5
    spool.seal()
    assert sorted(len(p.read_bytes().splitlines()) for p in tmp_path.glob("*.jsonl")) == [1, 2, 2]


AGENT_THAT_FORKS = """
    import os, sys
    from agent_exporter.client import Client
    c = Client(sys.argv[1], spool=sys.argv[2], flush_interval=600)
    c.record_run("fixer", run_id="parent-before-fork", duration_seconds=1.0)
    pid = os.fork()
    if pid == 0:
        c.record_run("fixer", run_id="child", duration_seconds=1.0)
        sys.exit(0)  # the child's exit flush sends its own run only
    _, status = os.waitpid(pid, 0)
    c.record_run("fixer", run_id="parent-after-fork", duration_seconds=1.0)
    sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_delivers_its_own_runs_and_the_parent_keeps_its_queue(tmp_path: Path) -> None:
    with stub_server() as stub:
        agent = agent_process(AGENT_THAT_FORKS, stub.url, str(tmp_path / "spool"))
        _, stderr = agent.communicate(timeout=30)
        assert agent.returncode == 0, stderr
        assert sorted(stub.run_ids()) == ["child", "parent-after-fork", "parent-before-fork"]


def test_runs_recorded_from_many_threads_arrive_once_each(tmp_path: Path) -> None:
    import threading

    with stub_server() as stub, Client(stub.url, spool=tmp_path / "spool", max_queue=200, **FAST) as c:

        def agent(k: int) -> None:
            for i in range(250):
                with c.run("fixer", run_id=f"t{k}-{i}"):
                    pass

        threads = [threading.Thread(target=agent, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_until(lambda: c.stats().delivered == 2000, 20, "every run to be delivered")
        assert sorted(stub.run_ids()) == sorted(f"t{k}-{i}" for k in range(8) for i in range(250))
        assert c.stats().submitted == 2000
