"""`GET /api/v1/runs.csv` and `/api/v1/runs.json`: the runs of a view, as a file to download.

They take the read API's filters, and `sort` (a column, `-` first for downwards; newest first by
default) and `limit` (default 10,000, at most 100,000): the run table of the web pages offers its
current view through them. Rows are read and written a thousand at a time, so that a large export
streams in constant memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from .. import queries
from .. import read_models as m
from ..queries import SORTS, RunFilter
from . import read

MAX_EXPORT: Final = 100_000
CHUNK: Final = 1000
COLUMNS: Final = tuple(m.RunSummary.model_fields)

router = APIRouter(prefix="/api/v1", tags=["read"])

Sort = Annotated[
    str,
    Query(
        pattern=r"^-?(" + "|".join(SORTS) + ")$",
        description=f"one of {', '.join(SORTS)}; a leading - sorts downwards (default: newest first)",
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_EXPORT, description="runs at most")]


def _rows(request: Request, flt: RunFilter, sort: str, limit: int) -> Iterator[dict[str, Any]]:
    column, descending = sort.removeprefix("-"), sort.startswith("-")
    sent = 0
    while sent < limit:
        with read.reading(request) as conn:
            rows = queries.list_runs_sorted(
                conn, flt, sort=column, descending=descending, limit=min(CHUNK, limit - sent), offset=sent
            )
        for row in rows:
            yield m.RunSummary.model_validate(read.summary_row(row)).model_dump(mode="json")
        sent += len(rows)
        if len(rows) < CHUNK:
            return


def _filename(extension: str) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return {"Content-Disposition": f'attachment; filename="runs-{stamp}.{extension}"'}


@router.get(
    "/runs.csv",
    summary="The filtered runs as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "a header row, then a row a run"}},
)
def runs_csv(request: Request, flt: read.Filter, sort: Sort = "-ended_at", limit: Limit = 10_000) -> Any:
    """The columns of a run listing (`/api/v1/runs`), a row per run, in the order asked for."""
    rows = _rows(request, flt, sort, limit)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for n, row in enumerate(rows, 1):
            writer.writerow({k: _cell(v) for k, v in row.items()})
            if n % CHUNK == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=_filename("csv"))


def _cell(value: Any) -> Any:
    # a cell starting with = + - @ is a formula to a spreadsheet: quote it as text
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return "" if value is None else value


@router.get(
    "/runs.json",
    summary="The filtered runs as one JSON array",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}, "description": "an array of run listings"}},
)
def runs_json(request: Request, flt: read.Filter, sort: Sort = "-ended_at", limit: Limit = 10_000) -> Any:
    """The runs of `/api/v1/runs` in one array, in the order asked for, without paging."""
    rows = _rows(request, flt, sort, limit)

    def chunks() -> Iterator[bytes]:
        yield b"["
        for n, row in enumerate(rows):
            yield (b"," if n else b"") + orjson.dumps(row)
        yield b"]"

    return StreamingResponse(chunks(), media_type="application/json", headers=_filename("json"))
