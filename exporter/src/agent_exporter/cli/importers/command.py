"""`agent-exporter import --format {swe-agent,claude-code,codex} [PATH...]`: progress while it runs, a
table (or `--json`) at the end, exit status 1 when anything was skipped or not stored."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..importing import ImportAbortedError
from ..remote import connect, fail
from ..render import err, out, print_json, titled_table
from .files import FORMATS, FileImport, default_checkpoint

SHOWN_PROBLEMS = 100


def import_files(
    format_name: str,
    paths: list[Path],
    *,
    url: str,
    batch_size: int,
    backfill: bool,
    checkpoint: Path | None,
    restart: bool,
    as_json: bool,
) -> None:
    """Import the files of one tool's format (see `files.FileImport`)."""
    fmt = FORMATS[format_name]
    missing = [p for p in paths if not p.exists()]
    if missing:
        fail(f"{missing[0]}: no such file or directory")
    if not paths and not any(d.is_dir() for d in fmt.default_dirs()):
        where = ", ".join(str(d) for d in fmt.default_dirs())
        fail(f"no {format_name} files: {where} does not exist; give the files or directories to import")
    marker = checkpoint or default_checkpoint(format_name)
    shown = 0
    progress = Progress(
        SpinnerColumn(),
        TextColumn(f"[bold]importing {format_name}[/bold]"),
        TextColumn("{task.completed} files"),
        TextColumn("{task.fields[current]}"),
        TimeElapsedColumn(),
        console=err,
        disable=as_json,
    )
    task = progress.add_task("import", total=None, current="")

    def on_problem(message: str) -> None:
        nonlocal shown
        shown += 1
        if not as_json and shown <= SHOWN_PROBLEMS:
            progress.console.print(message, markup=False, highlight=False, style="red")

    def on_file(path: Path) -> None:
        progress.update(task, advance=1, current=path.name)

    with connect(url) as client, progress:
        job = FileImport(
            client,
            fmt,
            checkpoint=marker,
            batch_size=batch_size,
            backfill=backfill,
            on_problem=on_problem,
            on_file=on_file,
        )
        try:
            result = job.run(paths, restart=restart)
        except ImportAbortedError as exc:
            progress.stop()
            fail(f"{exc}; rerun the same command to go on (files done are kept in {marker})")
    if as_json:
        print_json(result.as_dict())
    else:
        if shown > SHOWN_PROBLEMS:
            err.print(f"[red]… and {shown - SHOWN_PROBLEMS} more (--json lists them)[/red]")
        table = titled_table(f"imported {format_name}")
        names = (
            "files",
            "unchanged",
            "accepted",
            "duplicates",
            "conflicts",
            "rejected",
            "skipped lines/files",
        )
        for name in names:
            table.add_column(name, justify="right")
        r = result.runs
        values = (
            result.files,
            result.skipped,
            r.accepted,
            r.duplicates,
            r.conflicts,
            r.rejected,
            len(result.problems),
        )
        table.add_row(*(str(v) for v in values))
        out.print(table)
    if result.failed:
        raise typer.Exit(1)
