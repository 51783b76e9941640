"""Graceful shutdown: SIGTERM stops accepting, finishes the request in flight, commits, exits."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, text

from .pgcluster import fresh_database
from .support import record, start_exporter, wait_until


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.postgres
def test_sigterm_finishes_the_batch_in_flight_commits_it_and_exits(tmp_path: Path) -> None:
    body = orjson.dumps({"runs": [record(f"late-{i}") for i in range(100)]})
    with fresh_database() as url:
        server = start_exporter(tmp_path, database_url=url)
        try:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(
                b"POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
            )
            # uvicorn answers 100 Continue when the handler first asks for the body: the request
            # is now in flight, half-way through
            assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
            server.process.send_signal(signal.SIGTERM)
            wait_until(lambda: "Shutting down" in server.log(), 10, "the shutdown to begin")
            wait_until(lambda: _refuses_connections(server.port), 10, "the listener to close")
            assert server.process.poll() is None  # still running: the request is not finished
            sock.sendall(body)
            status, answer = _read_response(sock)
            sock.close()
            exit_code = server.process.wait(30)
        finally:
            server.stop()
        engine = create_engine(url)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM runs WHERE run_id LIKE 'late-%'")).scalar_one()
        engine.dispose()

    assert status == 200
    assert orjson.loads(answer)["accepted"] == 100
    assert stored == 100
    assert exit_code == -signal.SIGTERM  # uvicorn re-raises the signal after a graceful shutdown
    assert "Application shutdown complete" in server.log()
