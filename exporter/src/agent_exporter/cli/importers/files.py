"""Importing a tool's files: convert each (`Format.convert`), send the runs in batches through
`importing.Importer`, and remember the files done in a checkpoint, so that a rerun skips them.

A file is done once the server acknowledged the batch that carried its runs. A file that changed
since (another size or modification time) is read again: its runs come back as duplicates (the same
run) or as conflicts (a session that went on after it was imported: reported, never overwritten).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

from ..importing import Importer, ImportResult, LineError
from . import Format, Problem, claude_code, codex, swe_agent

#: the formats of `agent-exporter import --format` besides `runs`, by name
FORMATS: Final = {f.name: f for f in (swe_agent.FORMAT, claude_code.FORMAT, codex.FORMAT)}

CHECKPOINT_VERSION: Final = 1


def default_checkpoint(format_name: str) -> Path:
    """Where the files imported in `format_name` are remembered unless told."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "agent-exporter" / f"import-{format_name}.checkpoint"


def _stamp(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


@dataclass(slots=True)
class FilesResult:
    """What an import of files did."""

    files: int = 0
    skipped: int = 0  # done by an earlier import, unchanged since
    runs: ImportResult = field(default_factory=ImportResult)
    problems: list[Problem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # runs the server did not store, with their file

    @property
    def failed(self) -> int:
        """Runs not stored and lines or files skipped as unreadable."""
        return self.runs.rejected + self.runs.conflicts + len(self.problems)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (`--json`)."""
        r = self.runs
        return {
            "files": self.files,
            "unchanged": self.skipped,
            "accepted": r.accepted,
            "duplicates": r.duplicates,
            "conflicts": r.conflicts,
            "rejected": r.rejected,
            "problems": [{"path": str(p.path), "line": p.line, "message": p.message} for p in self.problems],
            "errors": self.errors,
        }


class FileImport:
    """Converts the files of one format and sends their runs."""

    def __init__(
        self,
        client: httpx.Client,
        fmt: Format,
        *,
        checkpoint: Path | None,
        batch_size: int = 500,
        backfill: bool = False,
        on_problem: Callable[[str], None] | None = None,
        on_file: Callable[[Path], None] | None = None,
    ) -> None:
        self.fmt = fmt
        self.checkpoint = checkpoint
        self.batch_size = batch_size
        self.on_problem = on_problem
        self.on_file = on_file
        self.done: dict[str, list[int]] = self._load() if checkpoint else {}
        self.result = FilesResult()
        self._origin: list[Path] = []  # the file of each record sent, by its "line" number
        self.importer = Importer(client, batch_size=batch_size, backfill=backfill, on_error=self._rejected)

    def _load(self) -> dict[str, list[int]]:
        assert self.checkpoint is not None
        try:
            data = orjson.loads(self.checkpoint.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
            return {}
        done = data.get("done")
        return dict(done) if isinstance(done, dict) else {}

    def _save(self) -> None:
        if self.checkpoint is None:
            return
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        tmp.write_bytes(
            orjson.dumps({"version": CHECKPOINT_VERSION, "format": self.fmt.name, "done": self.done})
        )
        os.replace(tmp, self.checkpoint)

    def _rejected(self, error: LineError) -> None:
        path = self._origin[error.line - 1] if 0 < error.line <= len(self._origin) else None
        where = f"{error.field}: " if error.field else ""
        message = f"{path}: run {error.run_id}: {where}{error.message}"
        self.result.errors.append(message)
        if self.on_problem:
            self.on_problem(message)

    def run(self, paths: list[Path], *, restart: bool = False) -> FilesResult:
        """Import the files of `paths` (the tool's own directories when empty)."""
        if restart:
            self.done = {}
        records: list[Any] = []
        lines: list[int] = []
        batch_files: list[tuple[str, list[int]]] = []
        for path in self.fmt.files(paths):
            if self.on_file:
                self.on_file(path)
            self.result.files += 1
            try:
                stamp = _stamp(path)
            except OSError as exc:
                self._problem(Problem(path, 0, f"cannot read: {exc.strerror}"))
                continue
            key = str(path.resolve())
            if self.done.get(key) == stamp:
                self.result.skipped += 1
                continue
            try:
                converted = self.fmt.convert(path)
            except OSError as exc:
                self._problem(Problem(path, 0, f"cannot read: {exc.strerror}"))
                continue
            for problem in converted.problems:
                self._problem(problem)
            for record in converted.records:
                self._origin.append(path)
                records.append(record)
                lines.append(len(self._origin))
            batch_files.append((key, stamp))
            if len(records) >= self.batch_size:
                self._flush(records, lines, batch_files)
                records, lines, batch_files = [], [], []
        self._flush(records, lines, batch_files)
        return self.result

    def _problem(self, problem: Problem) -> None:
        self.result.problems.append(problem)
        if self.on_problem:
            self.on_problem(str(problem))

    def _flush(self, records: list[Any], lines: list[int], files: list[tuple[str, list[int]]]) -> None:
        if records:
            self.importer.send(records, lines, self.result.runs)
        for key, stamp in files:
            self.done[key] = stamp
        if files:
            self._save()
