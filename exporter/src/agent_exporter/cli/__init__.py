"""The `agent-exporter` command: serve and migrate (server.py), read the run history of a running
exporter (remote.py, render.py), import run records (importing.py), and send demo traffic (demo/).
"""

from __future__ import annotations

import typer

from .. import __version__
from ..demo.command import command as demo_command
from . import importing, remote, server

app = typer.Typer(
    name="agent-exporter",
    help="Prometheus exporter for AI-agent executions.",
    no_args_is_help=True,
    add_completion=False,
)
server.register(app)  # serve, db upgrade, db current
app.command("demo")(demo_command)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


remote.register(app)  # runs, show, summary, report, trends, health, reprice, budget
app.command("import")(importing.import_runs)


def main() -> None:
    """Entry point of the `agent-exporter` command."""
    app()
