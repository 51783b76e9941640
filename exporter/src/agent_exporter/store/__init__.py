"""The durable store of runs: SQLite (WAL) in a local file by default, PostgreSQL by URL.

Writes go through `Store.insert_runs`, which stores a batch of runs in one transaction and says,
for each, whether it was new, a duplicate (same `run_id`, same body) or a conflict (same `run_id`,
different body: reported, never overwritten). The `run_id` primary key is what deduplicates across
replicas sharing one PostgreSQL.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, bindparam, create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .. import rollups, schema
from ..outcome import Outcome
from ..record import CostSource, Run
from .engine import BACKSTOP_CHECKPOINT_PAGES, describe_url, normalize_url, sqlite_engine
from .errors import StoreError, classify, database_errors
from .pending import PendingSpans
from .rows import (
    IN_CHUNK,
    StoredRunsError,
    child_rows,
    copy_rows,
    insert_postgres,
    run_values,
    write_sqlite_transaction,
)
from .scores import RunScores

__all__ = [
    "BACKSTOP_CHECKPOINT_PAGES",
    "CostChange",
    "Store",
    "StoreError",
    "StoreSettings",
    "classify",
    "describe_url",
    "normalize_url",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """How to open the store."""

    url: str
    sqlite_synchronous: str = "FULL"
    pool_size: int = 5
    #: SQLite: checkpoint the WAL from a thread of its own (`Store.start_checkpoints`), not inside
    #: the commit that happens to fill it (the service does; tools and tests keep SQLite's default)
    sqlite_background_checkpoints: bool = False


CHECKPOINT_INTERVAL_SECONDS: Final = 0.5
COMPACTION_INTERVAL_SECONDS: Final = 5.0
#: retention: runs deleted per transaction, the pause between two, and how often to look
#: below this much free space on a SQLite file's filesystem the store is full: a batch would fail
MIN_FREE_BYTES: Final = 1 << 20
RETENTION_BATCH: Final = 500
RETENTION_PAUSE_SECONDS: Final = 0.05
RETENTION_INTERVAL_SECONDS: Final = 300.0


@dataclass(frozen=True, slots=True)
class CostChange:
    """A new price for a stored run's cost (`position` None) or one of its usage lines' costs."""

    run_id: str
    cost_usd: float | None
    cost_source: CostSource
    position: int | None = None


class Store:
    """Runs in a SQL database."""

    def __init__(self, settings: StoreSettings) -> None:
        url = normalize_url(settings.url)
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            if settings.sqlite_synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
                raise ValueError("sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA")
            self.engine = sqlite_engine(
                url,
                settings.sqlite_synchronous.upper(),
                background_checkpoints=settings.sqlite_background_checkpoints,
            )
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                url, pool_size=settings.pool_size, pool_pre_ping=True, pool_recycle=1800
            )
        else:
            raise ValueError(f"database URL {describe_url(url)}: only sqlite and postgresql are supported")
        self._checkpoints: threading.Thread | None = None
        self._maintenance: threading.Thread | None = None
        self._stopping = threading.Event()
        self.pending = PendingSpans(self)  # OTLP spans waiting for the rest of their trace
        self.scores = RunScores(self)  # scores given to runs after they ended

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the checkpoint thread (if any) and release every pooled connection.

        `with Store(settings) as store:` closes it on leaving the block."""
        self._stopping.set()
        for thread in (self._checkpoints, self._maintenance):
            if thread is not None:
                thread.join(30)
        self.engine.dispose()

    def start_checkpoints(self, interval: float = CHECKPOINT_INTERVAL_SECONDS) -> None:
        """SQLite: checkpoint the WAL into the database every `interval` seconds from a thread.

        By default the commit that fills the WAL past 1,000 pages copies them into the database
        and fsyncs it: a pause of a hundred milliseconds and more for every request waiting on
        that commit. A passive checkpoint from another connection does the same work beside the
        writer (SQLite allows one checkpointer next to one writer, and the interpreter lock is
        released meanwhile); commits stay durable as they were, by the WAL's own fsync. Under
        unbroken writes the WAL restarts only once a checkpoint has caught up with it, which the
        commits' own backstop (`BACKSTOP_CHECKPOINT_PAGES`, about 80 MB) makes sure of.
        """
        database = make_url(self.url).database
        if (
            self.dialect != "sqlite"
            or not database
            or database == ":memory:"
            or self._checkpoints is not None
        ):
            return  # PostgreSQL checkpoints by itself; an in-memory database has no WAL
        self._checkpoints = threading.Thread(
            target=self._checkpoint_loop, args=(interval,), name="agent-exporter-checkpoints", daemon=True
        )
        self._checkpoints.start()

    def start_maintenance(self, retention_days: int | None = None) -> None:
        """Keep the rollups compact and, with `retention_days`, delete old runs, from a thread of
        its own: every `COMPACTION_INTERVAL_SECONDS`, the day cells of the days written to since
        they were made (`compact_rollups`); every `RETENTION_INTERVAL_SECONDS`, the runs that ended more
        than `retention_days` whole UTC days ago, `RETENTION_BATCH` per transaction with a pause
        between two, so that ingest never waits for more than one batch. The rollups stay."""
        if self._maintenance is not None:
            return
        self._maintenance = threading.Thread(
            target=self._maintenance_loop,
            args=(retention_days,),
            name="agent-exporter-maintenance",
            daemon=True,
        )
        self._maintenance.start()

    def compact_rollups(self, limit: int = 10) -> int:
        """Make the day cells of up to `limit` days written to since (`rollups.compact`); how many."""
        with self.write_cursor() as cursor:
            return rollups.compact(cursor, self.dialect, limit=limit)

    def _maintenance_loop(self, retention_days: int | None) -> None:
        next_retention = 0.0
        while not self._stopping.wait(COMPACTION_INTERVAL_SECONDS):
            try:
                while self.compact_rollups() and not self._stopping.is_set():
                    pass
                if retention_days is None or time.monotonic() < next_retention:
                    continue
                next_retention = time.monotonic() + RETENTION_INTERVAL_SECONDS
                cutoff = (math.floor(time.time() / 86400) - retention_days) * 86400.0
                while self.delete_ended_before(cutoff, batch=RETENTION_BATCH) == RETENTION_BATCH:
                    if self._stopping.wait(RETENTION_PAUSE_SECONDS):
                        return
            except StoreError as exc:  # busy, read-only: the next round tries again
                log.warning("rollup compaction or retention failed: %s", exc)

    def _checkpoint_loop(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            try:
                raw = self.engine.raw_connection()
                try:
                    cursor = raw.cursor()
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    cursor.fetchall()
                    cursor.close()
                finally:
                    raw.close()
            except (SQLAlchemyError, sqlite3.Error) as exc:  # read-only, busy: the backstop remains
                log.debug("WAL checkpoint failed: %s", exc)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self.engine.connect() as plain:
            conn = plain.execution_options(sqlite_immediate=True) if self.dialect == "sqlite" else plain
            with conn.begin():
                yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads; a database error raises `StoreError` (see `classify`)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise classify(exc) from exc

    def ping(self) -> None:
        """Raise `StoreError` unless the store answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise classify(exc) from exc

    def check_writable(self) -> None:
        """Raise `StoreError` unless the store takes writes: a read-only file or database fails here.

        On SQLite the probe rewrites the migration version with itself, which changes nothing but
        dirties a page, so that the commit has to reach the disk (and a full one fails); since that
        page may land in space the write-ahead log already holds, it also asks the filesystem for
        `MIN_FREE_BYTES`, without which a batch of runs would fail. On PostgreSQL it asks whether
        transactions are read-only (a standby, or a database set so), which needs no privilege
        beyond connecting. It runs at start-up and after a failed write.
        """
        if self.dialect == "sqlite":
            self._check_free_space()
        try:
            with self._writing() as conn:
                if self.dialect == "sqlite":
                    conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
                elif conn.execute(text("SHOW transaction_read_only")).scalar_one() == "on":
                    raise StoreError(
                        "the database is read-only (transaction_read_only is on: a standby, or "
                        "default_transaction_read_only); point database_url at a writable primary",
                        code="store_read_only",
                    )
        except SQLAlchemyError as exc:
            raise classify(exc) from exc

    def _check_free_space(self) -> None:
        """Raise `StoreError` (`store_full`) when the SQLite file's filesystem has less than
        `MIN_FREE_BYTES` left."""
        database = self.engine.url.database
        if not database or database == ":memory:":
            return
        try:
            free = shutil.disk_usage(os.path.dirname(os.path.abspath(database))).free
        except OSError:
            return  # the write probe says what is wrong with the directory
        if free < MIN_FREE_BYTES:
            detail = f"{free:,} bytes free, a batch needs {MIN_FREE_BYTES:,}"
            raise StoreError(
                f"the disk is full ({detail}); free space or move the database",
                code="store_full",
                detail=detail,
            )

    def is_empty(self) -> bool:
        """True when the database has none of our tables (a fresh file or schema)."""
        try:
            with self.engine.connect() as conn:
                names = set(inspect(conn).get_table_names())
        except SQLAlchemyError as exc:
            raise classify(exc) from exc
        return not names & set(schema.metadata.tables)

    def insert_runs(self, runs: Sequence[Run]) -> list[Outcome]:
        """Store new runs in one transaction; return one outcome per run, in order.

        Within the batch the first occurrence of a `run_id` counts; a later one with the same body
        is a duplicate, with a different body a conflict. Raises `StoreError` if nothing was stored.
        """
        outcomes: list[Outcome | None] = [None] * len(runs)
        first: dict[str, int] = {}
        for i, run in enumerate(runs):
            j = first.setdefault(run.run_id, i)
            if j != i:
                same = runs[j].body_hash == run.body_hash
                outcomes[i] = Outcome.DUPLICATE if same else Outcome.CONFLICT
        candidates = [runs[i] for i in first.values()]
        if self.dialect == "sqlite":
            inserted, stored = self._write_sqlite(candidates)
        else:
            try:
                with self._writing() as conn:
                    # insert first: the common case (new runs) costs one statement, not a lookup too
                    inserted = self._insert(conn, candidates)
                    known = [r.run_id for r in candidates if r.run_id not in inserted]
                    stored = self._stored_hashes(conn, known) if known else {}
            except database_errors() as exc:  # COPY and the rollups go through psycopg's cursor
                raise classify(exc) from exc
        for i in first.values():
            run = runs[i]
            if run.run_id in inserted:
                outcomes[i] = Outcome.ACCEPTED
            elif stored.get(run.run_id) == run.body_hash:
                outcomes[i] = Outcome.DUPLICATE
            else:
                outcomes[i] = Outcome.CONFLICT
        return [o for o in outcomes if o is not None]

    def change_costs(self, changes: Sequence[CostChange]) -> None:
        """Store new costs of runs and usage lines in one transaction, and move the runs' cost from
        their old cells of the rollups to their new ones (read as stored, in that transaction).
        A run deleted meanwhile is skipped. Raises `StoreError` if nothing was stored."""
        runs = {c.run_id: c for c in changes if c.position is None}
        lines = [c for c in changes if c.position is not None]
        r, u = schema.runs, schema.run_usage
        try:
            with self._writing() as conn:
                before: list[dict[str, Any]] = []
                ids = list(runs)
                for start in range(0, len(ids), IN_CHUNK):
                    query = select(r.c.run_id, *(r.c[name] for name in rollups.INPUTS)).where(
                        r.c.run_id.in_(ids[start : start + IN_CHUNK])
                    )
                    before.extend(dict(row) for row in conn.execute(query).mappings())
                if runs:
                    conn.execute(
                        r.update()
                        .where(r.c.run_id == bindparam("b_run_id"))
                        .values(cost_usd=bindparam("b_cost"), cost_source=bindparam("b_source")),
                        [_cost_params(c) for c in runs.values()],
                    )
                if lines:
                    conn.execute(
                        u.update()
                        .where(u.c.run_id == bindparam("b_run_id"), u.c.position == bindparam("b_position"))
                        .values(cost_usd=bindparam("b_cost"), cost_source=bindparam("b_source")),
                        [{**_cost_params(c), "b_position": c.position} for c in lines],
                    )
                if before:
                    after = [
                        {
                            **row,
                            "cost_usd": runs[row["run_id"]].cost_usd,
                            "cost_source": runs[row["run_id"]].cost_source.value,
                        }
                        for row in before
                    ]
                    driver = conn.connection.driver_connection
                    assert driver is not None
                    cursor = driver.cursor()
                    try:
                        rollups.remove(cursor, self.dialect, before)
                        rollups.add_rows(cursor, self.dialect, after)
                    finally:
                        cursor.close()
        except database_errors() as exc:
            raise classify(exc) from exc

    @contextmanager
    def write_cursor(self) -> Iterator[Any]:
        """A DB-API cursor (sqlite3 or psycopg) in a write transaction, committed on success."""
        try:
            with self._writing() as conn:
                driver = conn.connection.driver_connection
                assert driver is not None
                cursor = driver.cursor()
                try:
                    yield cursor
                finally:
                    cursor.close()
        except database_errors() as exc:
            raise classify(exc) from exc

    def delete_runs(self, run_ids: Sequence[str]) -> int:
        """Delete runs (with their breakdowns) and take them out of the rollups; how many were found.

        For runs sent by mistake. Retention (`delete_ended_before`) is another thing: it keeps
        the rollups, which are the history.
        """
        deleted = 0
        for start in range(0, len(run_ids), IN_CHUNK):
            chunk = list(run_ids[start : start + IN_CHUNK])
            with self.write_cursor() as cursor:
                marks = ", ".join([self._mark] * len(chunk))
                columns = ", ".join(rollups.INPUTS)
                cursor.execute(f"SELECT {columns} FROM runs WHERE run_id IN ({marks})", chunk)  # noqa: S608
                rows = [dict(zip(rollups.INPUTS, row, strict=True)) for row in cursor.fetchall()]
                cursor.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", chunk)  # noqa: S608
                rollups.remove(cursor, self.dialect, rows)
                deleted += len(rows)
        return deleted

    def delete_ended_before(self, cutoff: float, *, batch: int = 500) -> int:
        """Retention: delete up to `batch` of the runs that ended before `cutoff` (oldest first), in
        one short transaction, leaving the rollups as they are but for about as many of the edge
        cells before it, which only ranges after the horizon read; the number of runs deleted.

        Records `cutoff` as the raw horizon: reads know that runs before it are in the rollups only.
        """
        m = self._mark
        with self.write_cursor() as cursor:
            cursor.execute(
                f"DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs WHERE ended_at < {m} "  # noqa: S608
                f"ORDER BY ended_at LIMIT {int(batch)})",
                (cutoff,),
            )
            deleted = int(cursor.rowcount)
            # the edge cells before it too, as many (they serve only ranges after the raw horizon)
            edge = schema.rollup_edge.name
            cut = int(cutoff // schema.EDGE_SECONDS)
            cursor.execute(
                f"DELETE FROM {edge} WHERE bucket < {m} AND bucket <= coalesce((SELECT bucket FROM {edge} "  # noqa: S608
                f"WHERE bucket < {m} ORDER BY bucket LIMIT 1 OFFSET {max(int(batch) - 1, 0)}), {m})",
                (cut, cut, cut),
            )
            upsert = (
                f"INSERT INTO rollup_state (name, value) VALUES ('raw_horizon', {m}) "  # noqa: S608
                "ON CONFLICT (name) DO UPDATE SET value = "
                + ("max" if self.dialect == "sqlite" else "GREATEST")
                + "(rollup_state.value, excluded.value)"
            )
            cursor.execute(upsert, (cutoff,))
        return deleted

    @property
    def _mark(self) -> str:
        return "?" if self.dialect == "sqlite" else "%s"

    def _write_sqlite(self, candidates: Sequence[Run]) -> tuple[set[str], dict[str, str]]:
        """Store `candidates` (distinct run_ids) in one SQLite transaction, through the driver.

        The statements go straight to sqlite3's cursor: SQLAlchemy's execution and result layers
        cost more per commit than the statements themselves for the small groups that single
        POSTs make. The connection still comes from the engine's pool (with its PRAGMAs).
        Returns the run_ids inserted and the stored body hashes of the others.
        """
        try:
            raw = self.engine.raw_connection()
        except SQLAlchemyError as exc:
            raise classify(exc) from exc
        try:
            driver = raw.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            cursor = driver.cursor()
            try:
                try:
                    inserted, stored = write_sqlite_transaction(cursor, candidates, look_first=False)
                except StoredRunsError:  # a retry of runs stored already: rare, and slower
                    inserted, stored = write_sqlite_transaction(cursor, candidates, look_first=True)
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            raise classify(exc) from exc
        finally:
            raw.close()  # back to the pool
        return inserted, stored

    def _stored_hashes(self, conn: Connection, run_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(run_ids), IN_CHUNK):
            chunk = run_ids[start : start + IN_CHUNK]
            rows = conn.execute(
                select(schema.runs.c.run_id, schema.runs.c.body_hash).where(schema.runs.c.run_id.in_(chunk))
            )
            found.update({row.run_id: row.body_hash for row in rows})
        return found

    def _insert(self, conn: Connection, new: Sequence[Run]) -> set[str]:
        """PostgreSQL: COPY the runs through a staging table, then COPY the new ones' breakdowns."""
        if not new:
            return set()
        inserted = insert_postgres(conn, [run_values(r) for r in new])
        kept = [r for r in new if r.run_id in inserted]
        for table, values in child_rows(kept):
            if values:
                copy_rows(conn, table, values)
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            rollups.add(cursor, "postgresql", kept)
        return inserted


def _cost_params(change: CostChange) -> dict[str, Any]:
    return {"b_run_id": change.run_id, "b_cost": change.cost_usd, "b_source": change.cost_source.value}
