"""Alembic migrations of the store, run programmatically (no alembic.ini needed).

`agent-exporter db upgrade` applies them; `serve` applies them itself to an empty database and
refuses to start on one that is behind, so that several replicas never race to migrate.

Migration 0004 notes the days of runs a store holds; `upgrade` then builds their rollups a day per
transaction (`build_rollups`), so that an interrupted upgrade resumes where it stopped. Migration
0007 marks the weeks that have day cells; `upgrade` then makes their week cells (`build_weeks`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .. import rollups
from ..store import Store, describe_url

log = logging.getLogger(__name__)


class SchemaOutdatedError(RuntimeError):
    """The database is behind this version's migrations; `agent-exporter db upgrade` fixes it."""


Progress = Callable[[str], None]


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


def upgrade(store: Store, revision: str = "head", progress: Progress | None = None) -> None:
    """Migrate the database to `revision` (the newest by default), then build the rollups of the
    runs stored before migration 0004, if that is not done yet, and the week cells not made yet."""
    command.upgrade(_config(store), revision)
    if revision == "head":
        build_rollups(store, progress)
        build_weeks(store, progress)


def note_stored_days(bind: Any) -> None:
    """For a migration (`bind` its connection): note the UTC days of the stored runs, for `upgrade`
    to rebuild all their cells from the runs (`build_rollups`), as migration 0004 does."""
    # probes of the ended_at index (min and max together would scan it)
    first = bind.execute(sa.text("SELECT ended_at FROM runs ORDER BY ended_at LIMIT 1")).scalar()
    last = bind.execute(sa.text("SELECT ended_at FROM runs ORDER BY ended_at DESC LIMIT 1")).scalar()
    if first is None or last is None:
        return
    bind.execute(sa.text("DELETE FROM rollup_state WHERE name LIKE 'backfill_%'"))
    bind.execute(
        sa.text(
            "INSERT INTO rollup_state (name, value) VALUES "
            "('backfill_next_day', :first), ('backfill_last_day', :last)"
        ),
        {"first": float(first // 86400), "last": float(last // 86400)},
    )


def rollups_pending(store: Store) -> bool:
    """Whether the rollups of runs stored before migration 0004 are still to be built."""
    with store.write_cursor() as cursor:
        return _state(cursor, "backfill_next_day") is not None


def _state(cursor: Any, name: str) -> float | None:
    cursor.execute(f"SELECT value FROM rollup_state WHERE name = {_mark(cursor)}", (name,))  # noqa: S608
    row = cursor.fetchone()
    return None if row is None else float(row[0])


def _mark(cursor: Any) -> str:
    return "?" if type(cursor).__module__.startswith("sqlite3") else "%s"


def build_rollups(store: Store, progress: Progress | None = None) -> int:
    """Build the rollups of the days migration 0004 noted, a day per transaction, from the first
    day not built yet; the runs read. Rebuilding a day replaces its cells: a day interrupted
    halfway is simply built again."""
    say = progress or (lambda _message: None)
    read = 0
    started = time.monotonic()
    first: float | None = None
    while True:
        with store.write_cursor() as cursor:
            day, last = _state(cursor, "backfill_next_day"), _state(cursor, "backfill_last_day")
            if day is None or last is None:
                return read
            first = day if first is None else first
            mark = _mark(cursor)
            read += rollups.rebuild_days(cursor, store.dialect, int(day), int(day))
            if day >= last:
                cursor.execute("DELETE FROM rollup_state WHERE name LIKE 'backfill_%'")
            else:
                cursor.execute(
                    f"UPDATE rollup_state SET value = {mark} WHERE name = 'backfill_next_day'",  # noqa: S608
                    (day + 1,),
                )
        say(
            f"rollups: {int(day - first) + 1:,} of {int(last - first) + 1:,} days built "
            f"({read:,} runs read, {time.monotonic() - started:.0f} s)"
        )


#: weeks made per transaction by `build_weeks`: a week of a busy fleet folds thousands of day cells
WEEKS_PER_TRANSACTION = 4


def build_weeks(store: Store, progress: Progress | None = None) -> int:
    """Make the week cells of every week that is over and marked for it (migration 0007, or days
    made since), a few weeks per transaction; the weeks made. Interrupted, the weeks not made yet
    stay marked (reads take them from their days meanwhile) and the next call, or the service's
    compaction, makes them."""
    say = progress or (lambda _message: None)
    with store.write_cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM rollup_dirty_weeks WHERE week < {rollups.current_week()}")  # noqa: S608
        marked = int(cursor.fetchone()[0])
    made = 0
    started = time.monotonic()
    while True:
        with store.write_cursor() as cursor:
            done = rollups.compact_weeks(cursor, store.dialect, limit=WEEKS_PER_TRANSACTION)
        if not done:
            return made
        made += done
        say(f"rollups: {made:,} of {marked:,} weeks made ({time.monotonic() - started:.0f} s)")


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
    if rollups_pending(store):
        raise SchemaOutdatedError(
            f"the rollups of the runs at {describe_url(store.url)} are not all built (an interrupted "
            "upgrade): run `agent-exporter db upgrade` to finish"
        )
