"""Alembic migrations of the store, run programmatically (no alembic.ini needed).

`agent-exporter db upgrade` applies them; `serve` applies them itself to an empty database and
refuses to start on one that is behind, so that several replicas never race to migrate.
"""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..store import Store, describe_url

log = logging.getLogger(__name__)


class SchemaOutdatedError(RuntimeError):
    """The database is behind this version's migrations; `agent-exporter db upgrade` fixes it."""


def _config(store: Store) -> Config:
    config = Config()
    config.set_main_option("script_location", "agent_exporter:migrations")
    config.set_main_option("sqlalchemy.url", store.url.replace("%", "%%"))
    config.attributes["engine"] = store.engine
    return config


def head_revision() -> str:
    """The newest migration this version of the code ships."""
    config = Config()
    config.set_main_option("script_location", "agent_exporter:migrations")
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(store: Store) -> str | None:
    """The migration the database is at, or None for a database never migrated."""
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(store: Store, revision: str = "head") -> None:
    """Migrate the database to `revision` (the newest by default)."""
    command.upgrade(_config(store), revision)


def prepare(store: Store) -> None:
    """The policy of `serve`: migrate an empty database, refuse one that is behind (replicas must not
    race to migrate); `SchemaOutdatedError` says which command catches it up."""
    if store.is_empty():
        log.info("empty database at %s: creating the schema", describe_url(store.url))
        upgrade(store)
        return
    current, head = current_revision(store), head_revision()
    if current != head:
        raise SchemaOutdatedError(
            f"the database at {describe_url(store.url)} is at migration {current or 'none'}, this version "
            f"needs {head}: run `agent-exporter db upgrade` first"
        )
