"""`agent-exporter import`: a file of run records (JSON lines) into a running exporter, resumably.

Records go in batches to `POST /api/v1/runs`. After each batch the server acknowledged, a checkpoint
file records the byte offset and line number reached, so that a rerun after an interruption (the
network, the server, Ctrl-C) continues where the last acknowledged batch ended. Runs stored already
come back as duplicates and count nothing again, so resending a batch is harmless. Every line the
server rejects, and every line that is not JSON, is reported with its line number.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, Final

import httpx
import orjson
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from .. import DEFAULT_URL
from .remote import JsonOption, UrlOption, connect, fail
from .render import err, out, print_json, titled_table

CHECKPOINT_VERSION: Final = 1
HEAD_BYTES: Final = 65536  # the checkpoint fingerprints this much of the file's start
RETRIES: Final = 5
_PREFIX = re.compile(r"^runs\[\d+\]\.")


class ImportAbortedError(RuntimeError):
    """The import stopped; the checkpoint holds the last acknowledged line."""


@dataclass(frozen=True, slots=True)
class LineError:
    """Why one line of the file was not stored."""

    line: int
    run_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        who = f" ({self.run_id})" if self.run_id else ""
        where = f"{self.field}: " if self.field else ""
        return f"line {self.line}{who}: {where}{self.message}"


@dataclass(slots=True)
class ImportResult:
    """What an import did (this run of it, not the runs before a resume)."""

    started_at_line: int = 0  # lines skipped because a checkpoint said they were done
    lines: int = 0  # lines read in this run, blank ones included
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0  # by the server
    invalid: int = 0  # not JSON, never sent
    errors: list[LineError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Lines that were not stored: rejected, conflicting or not JSON."""
        return self.rejected + self.conflicts + self.invalid

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of the result (`--json`)."""
        return {
            "resumed_at_line": self.started_at_line,
            "lines": self.lines,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
            "invalid": self.invalid,
            "errors": [
                {"line": e.line, "run_id": e.run_id, "field": e.field, "message": e.message}
                for e in self.errors
            ],
        }


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far an import of one file got: the byte offset and line after the last acknowledged batch."""

    offset: int
    line: int
    head: str  # sha256 of the file's first min(offset, HEAD_BYTES) bytes: is it still the same file?

    @staticmethod
    def fingerprint(path: Path, offset: int) -> str:
        """The digest a checkpoint at `offset` of `path` carries."""
        with path.open("rb") as f:
            return hashlib.sha256(f.read(min(offset, HEAD_BYTES))).hexdigest()

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        """The checkpoint in `path`, or None if there is none or it is unreadable."""
        try:
            data = orjson.loads(path.read_bytes())
            if data.get("version") != CHECKPOINT_VERSION:
                return None
            return cls(int(data["offset"]), int(data["line"]), str(data["head"]))
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return None

    def save(self, path: Path, source: Path) -> None:
        """Write atomically: a crash leaves the old checkpoint or the new one, never half of one."""
        body = {
            "version": CHECKPOINT_VERSION,
            "file": str(source.resolve()),
            "offset": self.offset,
            "line": self.line,
            "head": self.head,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)

    def matches(self, source: Path) -> bool:
        """Whether `source` still starts with the bytes this checkpoint saw."""
        try:
            size = source.stat().st_size
        except OSError:
            return False
        return self.offset <= size and self.fingerprint(source, self.offset) == self.head


def default_checkpoint(source: Path) -> Path:
    """Where the checkpoint of `source` lives unless told: beside it, `<name>.checkpoint`."""
    return source.with_name(source.name + ".checkpoint")


@dataclass(slots=True)
class _Pending:
    records: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    end_offset: int = 0
    end_line: int = 0


class Importer:
    """Sends the records of a JSON-lines stream to the exporter in batches."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        batch_size: int = 500,
        backfill: bool = False,
        max_errors: int = 1000,
        on_error: Callable[[LineError], None] | None = None,
        on_progress: Callable[[int, ImportResult], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.batch_size = batch_size
        self.params = {"backfill": "true"} if backfill else {}
        self.max_errors = max_errors
        self.on_error = on_error
        self.on_progress = on_progress
        self.sleep = sleep

    def run(
        self,
        stream: IO[bytes],
        *,
        start_line: int = 0,
        start_offset: int = 0,
        on_batch_done: Callable[[int, int], None] | None = None,
    ) -> ImportResult:
        """Import the lines of `stream` (positioned at `start_offset`, line `start_line`).

        `on_batch_done(offset, line)` runs after every acknowledged batch: where a rerun may start.
        Raises `ImportAbortedError` when the server cannot take a batch.
        """
        result = ImportResult(started_at_line=start_line)
        pending = _Pending(end_offset=start_offset, end_line=start_line)
        offset, number = start_offset, start_line
        for raw in _lines(stream):
            offset += len(raw)
            number += 1
            result.lines += 1
            text = raw.strip()
            if text:
                try:
                    pending.records.append(orjson.loads(text))
                    pending.lines.append(number)
                except orjson.JSONDecodeError as exc:
                    result.invalid += 1
                    self._error(result, LineError(number, None, "", f"not valid JSON: {exc}"))
            pending.end_offset, pending.end_line = offset, number
            if len(pending.records) >= self.batch_size:
                self._send(pending, result)
                if on_batch_done:
                    on_batch_done(pending.end_offset, pending.end_line)
                pending = _Pending(end_offset=offset, end_line=number)
            if self.on_progress:
                self.on_progress(offset, result)
        if pending.records:
            self._send(pending, result)
        if self.on_progress:
            self.on_progress(offset, result)
        if on_batch_done and (pending.records or pending.end_line > start_line):
            on_batch_done(pending.end_offset, pending.end_line)
        return result

    def send(self, records: list[Any], lines: list[int], result: ImportResult) -> None:
        """Send `records` as one batch (`lines`: where each came from, for its errors), counting what
        the server did with each in `result`; raises `ImportAbortedError` if it cannot take them."""
        self._send(_Pending(records, lines), result)

    def _error(self, result: ImportResult, error: LineError) -> None:
        if len(result.errors) < self.max_errors:
            result.errors.append(error)
        if self.on_error:
            self.on_error(error)

    def _send(self, pending: _Pending, result: ImportResult) -> None:
        body = self._post({"runs": pending.records}, pending.lines[0])
        for item in body.get("results", []):
            index = item.get("index", 0)
            line = pending.lines[index] if 0 <= index < len(pending.lines) else pending.lines[0]
            outcome = item.get("outcome")
            if outcome == "accepted":
                result.accepted += 1
            elif outcome == "duplicate":
                result.duplicates += 1
            else:
                if outcome == "conflict":
                    result.conflicts += 1
                else:
                    result.rejected += 1
                errors = item.get("errors") or [{"field": "", "message": str(outcome)}]
                for e in errors:
                    self._error(
                        result,
                        LineError(
                            line,
                            item.get("run_id"),
                            _PREFIX.sub("", str(e.get("field", ""))),
                            str(e.get("message", "")),
                        ),
                    )

    def _post(self, payload: dict[str, Any], first_line: int) -> dict[str, Any]:
        content = orjson.dumps(payload)
        delay = 1.0
        for attempt in range(1, RETRIES + 1):
            try:
                response = self.client.post(
                    "/api/v1/runs",
                    content=content,
                    params=self.params,
                    headers={"Content-Type": "application/json"},
                )
            except httpx.TransportError as exc:
                if attempt == RETRIES:
                    raise ImportAbortedError(
                        f"cannot reach the exporter at {self.client.base_url} ({exc}) "
                        f"while sending the batch starting at line {first_line}"
                    ) from exc
                self.sleep(delay)
                delay *= 2
                continue
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            message = _error_message(response)
            if response.status_code in (429, 502, 503, 504) and attempt < RETRIES:
                retry_after = response.headers.get("retry-after", "")
                self.sleep(float(retry_after) if retry_after.isdigit() else delay)
                delay *= 2
                continue
            hint = "; lower --batch-size" if response.status_code == 413 else ""
            raise ImportAbortedError(
                f"the exporter refused the batch starting at line {first_line}: "
                f"HTTP {response.status_code}: {message}{hint}"
            )
        raise ImportAbortedError("unreachable")  # the loop returns or raises


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    # readline keeps the exact byte length of each line, newline included: offsets stay exact
    while True:
        raw = stream.readline()
        if not raw:
            return
        yield raw


# --- the command -----------------------------------------------------------------------------------


class ImportFormat(enum.StrEnum):
    """What `agent-exporter import` reads."""

    RUNS = "runs"
    SWE_AGENT = "swe-agent"
    CLAUDE_CODE = "claude-code"
    CODEX = "codex"


def import_runs(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="runs: one file of JSON lines (- reads standard input); the other formats: files or "
            "directories (none: where the tool keeps its files).",
            show_default=False,
        ),
    ] = None,
    *,
    import_format: Annotated[
        ImportFormat, typer.Option("--format", help="runs (run records), swe-agent, claude-code or codex.")
    ] = ImportFormat.RUNS,
    url: UrlOption = DEFAULT_URL,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000, help="Records per request.")] = 500,
    backfill: Annotated[
        bool, typer.Option(help="Historical import: store without counting the runs in the agent_* metrics.")
    ] = False,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoint file (runs: FILE.checkpoint; the others: ~/.cache/agent-exporter/); a rerun "
            "resumes from it."
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option(help="Ignore the checkpoint and start from the first line (or file).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Import runs, in batches, resumably: run records, or what SWE-agent, Claude Code or Codex keep."""
    if import_format is not ImportFormat.RUNS:
        from .importers.command import import_files

        import_files(
            import_format.value,
            [Path(p) for p in paths or []],
            url=url,
            batch_size=batch_size,
            backfill=backfill,
            checkpoint=checkpoint,
            restart=restart,
            as_json=as_json,
        )
        return
    if not paths or len(paths) != 1:
        fail("--format runs imports one FILE of JSON lines (or - for standard input)")
    _import_records(
        paths[0],
        url=url,
        batch_size=batch_size,
        backfill=backfill,
        checkpoint=checkpoint,
        restart=restart,
        as_json=as_json,
    )


def _import_records(
    file: str,
    *,
    url: str,
    batch_size: int,
    backfill: bool,
    checkpoint: Path | None,
    restart: bool,
    as_json: bool,
) -> None:
    """Import run records, in batches, resumably: rerun the same command to continue after an interruption."""
    stdin = file == "-"
    source = Path(file)
    if not stdin and not source.is_file():
        fail(f"{file}: no such file")
    marker = None if stdin else (checkpoint or default_checkpoint(source))
    start_line = start_offset = 0
    if marker is not None and not restart and marker.exists():
        saved = Checkpoint.load(marker)
        if saved is not None and saved.matches(source):
            start_line, start_offset = saved.line, saved.offset
            if not as_json:
                err.print(f"resuming after line {start_line} (checkpoint {marker}; --restart to start over)")
        else:
            err.print(
                f"[yellow]{marker} does not match {file} (changed since?): "
                "starting from the first line[/yellow]"
            )
    total = None if stdin else source.stat().st_size
    shown = 0

    def on_error(e: LineError) -> None:
        nonlocal shown
        shown += 1
        if not as_json and shown <= 100:
            progress.console.print(f"[red]{e}[/red]", markup=False, highlight=False, style="red")

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]importing[/bold]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=err,
        disable=as_json,
    )
    task = progress.add_task("import", total=total, completed=start_offset, counts="")

    def on_progress(offset: int, r: ImportResult) -> None:
        progress.update(
            task, completed=offset, counts=f"{r.accepted} new, {r.duplicates} dup, {r.failed} failed"
        )

    def on_batch_done(offset: int, line: int) -> None:
        if marker is not None:
            Checkpoint(offset, line, Checkpoint.fingerprint(source, offset)).save(marker, source)

    with connect(url) as client, progress:
        importer = Importer(
            client, batch_size=batch_size, backfill=backfill, on_error=on_error, on_progress=on_progress
        )
        try:
            if stdin:
                result = importer.run(sys.stdin.buffer)
            else:
                with source.open("rb") as stream:
                    stream.seek(start_offset)
                    result = importer.run(
                        stream, start_line=start_line, start_offset=start_offset, on_batch_done=on_batch_done
                    )
        except ImportAbortedError as exc:
            progress.stop()
            where = f"; rerun the same command to resume from the checkpoint {marker}" if marker else ""
            fail(f"{exc}{where}")
    if as_json:
        print_json(result.as_dict())
    else:
        if shown > 100:
            err.print(f"[red]… and {shown - 100} more errors (--json lists them)[/red]")
        table = titled_table(f"imported {file}" + (f" from line {start_line + 1}" if start_line else ""))
        for name in ("lines", "accepted", "duplicates", "conflicts", "rejected", "not JSON"):
            table.add_column(name, justify="right")
        table.add_row(
            *(
                str(v)
                for v in (
                    result.lines,
                    result.accepted,
                    result.duplicates,
                    result.conflicts,
                    result.rejected,
                    result.invalid,
                )
            )
        )
        out.print(table)
    if result.failed:
        raise typer.Exit(1)
