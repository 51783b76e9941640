"""The architecture's promises that import-linter cannot see: what a process actually loads.

import-linter (`make lint`, contracts in pyproject.toml) checks which of our modules import which.
These tests check the third-party side: the client SDK loads nothing beyond the standard library,
and the commands that talk to a running exporter start without the store's libraries.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

#: the store's and the server's libraries, which a remote command has no use for
SERVER_ONLY = ("sqlalchemy", "alembic", "fastapi", "uvicorn", "prometheus_client", "agent_exporter.store")


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys\nprint('\\nloaded:', ' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(result.stdout.rsplit("loaded:", 1)[1].split())


def test_the_client_sdk_loads_only_the_standard_library() -> None:
    code = (
        "import pkgutil, importlib, agent_exporter.client as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'agent_exporter.client.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    # what the interpreter loads before any code runs (site hooks of the environment) is no import of ours
    roots = {name.partition(".")[0] for name in loaded_after(code) - loaded_after("")}
    assert "agent_exporter" in roots
    assert sorted(roots - set(sys.stdlib_module_names) - {"agent_exporter"}) == []


@pytest.mark.parametrize("command", ["runs", "show", "report", "health", "import", "demo", "version"])
def test_a_remote_command_starts_without_the_store(command: str) -> None:
    code = (
        "from agent_exporter.cli import app\n"
        f"try:\n    app([{command!r}, '--help'])\n"
        "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
    )
    loaded = loaded_after(code)
    assert "agent_exporter.cli.remote" in loaded
    assert sorted(m for m in SERVER_ONLY if m in loaded) == []


def test_runs_help_imports_neither_sqlalchemy_nor_alembic_by_importtime() -> None:
    # the command as a user runs it, with the interpreter's own import log (-X importtime)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "agent_exporter", "runs", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Usage:" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[1].strip() for line in lines}
    assert "agent_exporter.cli.remote" in imported
    assert sorted(m for m in imported if m.partition(".")[0] in {"sqlalchemy", "alembic"}) == []
