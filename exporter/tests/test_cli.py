"""The `agent-exporter` command: serve on loopback, migrations, configuration."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from agent_exporter import migrations
from agent_exporter.cli import app
from agent_exporter.config import ConfigError, load_settings

from .support import exporter, record

runner = CliRunner()


def test_serve_takes_a_run_and_exposes_it_on_metrics(tmp_path: Path) -> None:
    with exporter(tmp_path) as server:
        response = httpx.post(
            f"{server.url}/api/v1/runs",
            json=record(
                "r-1", input_tokens=1_000_000, cache_read_tokens=200_000, output_tokens=100_000, llm_calls=7
            ),
        )
        assert response.status_code == 201
        scrape = httpx.get(f"{server.url}/metrics").text
    runs = (
        'agent_runs_total{agent="fixer",issue_type="complexity",model="claude-sonnet-4-5",status="success"}'
    )
    assert f"{runs} 1.0" in scrape.splitlines()
    assert (
        'agent_cost_usd_total{agent="fixer",cost_source="estimated",model="claude-sonnet-4-5",'
        'status="success"} 3.96' in scrape
    )
    assert 'agent_llm_calls_total{agent="fixer",model="claude-sonnet-4-5"} 7.0' in scrape


def test_serve_stops_cleanly_on_sigterm_and_keeps_what_it_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    with exporter(tmp_path, database_url=url) as server:
        assert httpx.post(f"{server.url}/api/v1/runs", json=record("kept")).status_code == 201
        # uvicorn drains in-flight requests, runs the shutdown (the writer commits what is queued),
        # then re-raises the signal so that a supervisor sees why the process ended
        assert server.stop(signal.SIGTERM) == -signal.SIGTERM
        assert "Application shutdown complete" in server.log()
    with exporter(tmp_path, database_url=url) as again:
        assert httpx.post(f"{again.url}/api/v1/runs", json=record("kept")).status_code == 200  # a duplicate


def test_serve_refuses_a_database_behind_the_migrations(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE runs (run_id TEXT PRIMARY KEY)"))
    engine.dispose()
    result = subprocess.run(
        [sys.executable, "-m", "agent_exporter", "serve", "--port", "1", "--database-url", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    head = migrations.head_revision()
    assert (
        f"is at migration none, this version needs {head}: run `agent-exporter db upgrade` first"
        in " ".join(result.stderr.split())
    )


def test_db_upgrade_then_current(store_url: str) -> None:
    upgraded = runner.invoke(app, ["db", "upgrade", "--database-url", store_url])
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.output.strip().endswith(f"migrated from empty to {migrations.head_revision()}")
    again = runner.invoke(app, ["db", "upgrade", "--database-url", store_url])
    assert again.output.strip().endswith(f"already at migration {migrations.head_revision()}")
    current = runner.invoke(app, ["db", "current", "--database-url", store_url])
    head = migrations.head_revision()
    assert current.output.strip().endswith(f"at {head}, newest {head} (up to date)")


def test_an_invalid_config_file_stops_the_command_with_the_key_named(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"port": "eighty", "limits": {"max_batch_records": 0}, "colour": "red"}))
    result = runner.invoke(app, ["db", "current", "--config", str(config)])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "port: Input should be a valid integer" in output
    assert "limits.max_batch_records: Input should be greater than or equal to 1" in output
    assert "colour: Extra inputs are not permitted" in output


def test_flags_beat_the_environment_which_beats_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump({"port": 1111, "host": "127.0.0.2", "limits": {"max_batch_records": 10}})
    )
    monkeypatch.setenv("AGENT_EXPORTER_PORT", "2222")
    monkeypatch.setenv("AGENT_EXPORTER_LIMITS__MAX_BATCH_RECORDS", "20")
    settings = load_settings(config, port=3333)
    assert (settings.port, settings.host, settings.limits.max_batch_records) == (3333, "127.0.0.2", 20)
    assert load_settings(config).port == 2222


def test_defaults_bind_to_loopback() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.database_url) == (
        "127.0.0.1",
        9477,
        "sqlite:///agent-exporter.db",
    )


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"drop_labels": ["status"]}, "'status': only issue_type, model can be dropped"),
        (
            {"extra_labels": ["prompt"]},
            "'prompt': extra labels are agent_version, environment, project, provider, team",
        ),
        ({"extra_labels": ["labels.model"]}, "'labels.model': label 'model' is already used"),
        ({"extra_labels": ["labels.9x"]}, "'labels.9x': '9x' is not a valid Prometheus label name"),
    ],
)
def test_label_configuration_is_validated(metrics: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(metrics=metrics)
    assert message in str(info.value)


def test_a_missing_price_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"price_file .* does not exist"):
        load_settings(price_file=tmp_path / "none.yaml")
