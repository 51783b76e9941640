"""The client SDK's limits against the server's: the SDK copies them (it imports only the standard
library, so it cannot read `config` or `record`), and these tests fail when either side moves alone."""

from __future__ import annotations

import time
from pathlib import Path

from agent_exporter import record
from agent_exporter.client import Client, recorder
from agent_exporter.client.settings import ClientSettings
from agent_exporter.config import LimitSettings

from .stub_server import stub_server


def test_a_default_client_batch_fits_the_default_server_limits() -> None:
    client, server = ClientSettings("http://127.0.0.1:1/api/v1/runs", None, None), LimitSettings()
    assert client.batch_size <= server.max_batch_records
    assert client.max_batch_bytes <= server.max_body_bytes


def test_the_sdks_text_limits_are_the_records() -> None:
    assert recorder.MAX_ERROR_SUMMARY == record.MAX_ERROR_SUMMARY_LENGTH
    assert recorder.MAX_ERROR_TYPE == record.MAX_ERROR_TYPE_LENGTH
    assert recorder.NAME_CONTROL.pattern == record.CONTROL_CHARACTERS.pattern


def test_what_the_sdk_sends_for_overlong_and_control_laden_text_is_accepted(tmp_path: Path) -> None:
    every_control = "".join(map(chr, range(0x00, 0xA0)))
    with stub_server() as stub:
        client = Client(stub.url, spool=tmp_path / "spool", flush_interval=0.02)
        try:
            with client.run("fixer", model="m") as run:
                run.fail(every_control + "x" * 10_000, error_type=every_control + "E" * 100)
            assert client.flush(5)
        finally:
            client.close(timeout=2)
        [sent] = stub.records()
    parsed = record.parse_record(sent, now=time.time(), max_future_skew=300.0, prefix="")
    assert not isinstance(parsed, list), parsed
    printable = "".join(map(chr, range(0x20, 0x7F)))
    # the summary keeps tabs and line breaks; cut texts end in an ellipsis, at the server's length
    summary = "?" * 9 + "\t\n??\r" + "?" * 18 + printable + "?" * 33 + "x" * 10_000
    assert sent["error_summary"] == summary[: record.MAX_ERROR_SUMMARY_LENGTH - 1] + "…"
    assert sent["error_type"] == "?" * 32 + printable[:31] + "…"
    assert len(sent["error_type"]) == record.MAX_ERROR_TYPE_LENGTH
    assert len(sent["run_id"]) <= record.MAX_ID_LENGTH
