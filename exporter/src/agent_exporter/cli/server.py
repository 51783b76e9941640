"""The commands that run the server or open its database: serve, db upgrade, db current.

They import the configuration, the store and the app inside the command, so that the commands that
only talk to a running exporter (remote.py) start without loading SQLAlchemy, alembic or FastAPI.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import DEFAULT_PORT
from .render import err

if TYPE_CHECKING:
    from ..config import Settings

db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="AGENT_EXPORTER_CONFIG", help="YAML configuration file."),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="sqlite:///path.db or postgresql://user@host/db [env: AGENT_EXPORTER_DATABASE_URL]",
        show_default=False,
    ),
]


def _settings(config: Path | None, **overrides: object) -> Settings:
    from ..config import ConfigError, load_settings

    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc


def serve(
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind [env: AGENT_EXPORTER_HOST] (default 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help=f"Port [env: AGENT_EXPORTER_PORT] (default {DEFAULT_PORT})")
    ] = None,
    database_url: DatabaseOption = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error")] = None,
) -> None:
    """Serve the ingest API and /metrics (migrates an empty database first)."""
    import uvicorn

    from .. import migrations
    from ..api.app import create_app
    from ..store import Store, StoreError, StoreSettings

    settings = _settings(config, host=host, port=port, database_url=database_url, log_level=log_level)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        # fail here, with a plain message, rather than inside the server's start-up
        with Store(StoreSettings(settings.database_url, settings.sqlite_synchronous)) as store:
            migrations.prepare(store)
    except (migrations.SchemaOutdatedError, StoreError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=30,
    )


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Apply every pending migration."""
    from .. import migrations
    from ..store import Store, StoreSettings, describe_url

    settings = _settings(config, database_url=database_url)
    with Store(StoreSettings(settings.database_url, settings.sqlite_synchronous)) as store:
        before = migrations.current_revision(store)
        migrations.upgrade(store, progress=lambda message: typer.echo(message, err=True))
        after = migrations.current_revision(store)
    where = describe_url(settings.database_url)
    if before == after:
        typer.echo(f"{where}: already at migration {after}")
    else:
        typer.echo(f"{where}: migrated from {before or 'empty'} to {after}")


@db_app.command("current")
def db_current(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Show the database's migration and the newest this version ships."""
    from .. import migrations
    from ..store import Store, StoreSettings, describe_url

    settings = _settings(config, database_url=database_url)
    with Store(StoreSettings(settings.database_url, settings.sqlite_synchronous)) as store:
        current = migrations.current_revision(store)
    head = migrations.head_revision()
    state = "up to date" if current == head else "behind: run `agent-exporter db upgrade`"
    typer.echo(f"{describe_url(settings.database_url)}: at {current or 'none'}, newest {head} ({state})")


def register(app: typer.Typer) -> None:
    """Add `serve` and `db` to the `agent-exporter` application."""
    app.command()(serve)
    app.add_typer(db_app, name="db")
