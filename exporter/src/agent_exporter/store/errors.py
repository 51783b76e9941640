"""What went wrong in the store, said once: `StoreError`, and `classify`, which turns a database
error into one."""

from __future__ import annotations

import sqlite3
import sys

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError


class StoreError(RuntimeError):
    """The store could not do what was asked. `retryable` says whether trying later may help.

    `code` names the cause for machines: `store_read_only`, `store_full` or `store_unavailable`;
    `detail`, the database's own words when it was a database error (`classify` makes those).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        code: str = "store_unavailable",
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.detail = detail or message


def database_errors() -> tuple[type[Exception], ...]:
    """The exceptions a database call raises: SQLAlchemy's, and the drivers' own from their cursors
    (psycopg's only once psycopg is loaded, which a PostgreSQL store does: never imported for it)."""
    psycopg = sys.modules.get("psycopg")
    return (
        (SQLAlchemyError, sqlite3.Error, psycopg.Error)
        if psycopg is not None
        else (SQLAlchemyError, sqlite3.Error)
    )


def classify(exc: Exception) -> StoreError:
    """The `StoreError` a database error stands for: the one place that tells a read-only database
    (`store_read_only`, not retryable), a full disk (`store_full`) and anything else
    (`store_unavailable`: retryable, but for a missing table or data the database refuses) apart."""
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    detail = lines[0] if lines else type(exc).__name__
    lowered = detail.lower()
    if "read-only transaction" in lowered:  # PostgreSQL: a standby, or default_transaction_read_only
        return StoreError(
            f"the database is read-only ({detail}); point database_url at a writable primary",
            retryable=False,
            code="store_read_only",
            detail=detail,
        )
    if "readonly" in lowered or "read-only" in lowered:
        return StoreError(
            f"the database is read-only ({detail}); check the file's permissions and the mount",
            retryable=False,
            code="store_read_only",
            detail=detail,
        )
    if "disk is full" in lowered or "no space" in lowered:
        return StoreError(
            f"the disk is full ({detail}); free space or move the database", code="store_full", detail=detail
        )
    # a missing table, or data the database refuses (a constraint, a value out of range): the same
    # request fails the same way later, and the writer stores the other requests of its group alone
    retryable = "no such table" not in lowered and not _refused_data(exc)
    return StoreError(f"database error: {detail}", retryable=retryable, detail=detail)


def _refused_data(exc: Exception) -> bool:
    """Whether the database refused the data itself: an integrity or data error, from SQLAlchemy or
    straight from a driver's cursor."""
    kinds: list[type[Exception]] = [IntegrityError, DataError, sqlite3.IntegrityError, sqlite3.DataError]
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        kinds += [psycopg.IntegrityError, psycopg.DataError]
    return isinstance(exc, tuple(kinds)) or isinstance(getattr(exc, "orig", None), tuple(kinds))
