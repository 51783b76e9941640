"""Database URLs, and the SQLite engine with the settings every connection gets (WAL, synchronous,
foreign keys, a busy timeout, BEGIN IMMEDIATE for writers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

#: WAL pages after which a commit checkpoints by itself: SQLite's 1,000 by default; with
#: background checkpoints, a backstop that a running checkpoint thread never lets the WAL reach
BACKSTOP_CHECKPOINT_PAGES: Final = 20_000


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` and `postgres://` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def describe_url(url: str) -> str:
    """The URL with any password hidden, for logs and error messages."""
    return make_url(normalize_url(url)).render_as_string(hide_password=True)


def sqlite_engine(url: str, synchronous: str, *, background_checkpoints: bool = False) -> Engine:
    parsed = make_url(url)
    database = parsed.database
    in_memory = not database or database == ":memory:"
    if not in_memory:
        assert database is not None
        if parsed.query.get("uri") == "true":  # sqlite:///file:/path.db?mode=ro&uri=true
            database = database.removeprefix("file:")
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        connect_args={"check_same_thread": False, "timeout": 30},
        **({"poolclass": StaticPool} if in_memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (below) so that writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            if background_checkpoints:
                cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock at BEGIN: the duplicate check and the insert then see the
        # same database, and SQLite never has to abort a transaction that read first.
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
