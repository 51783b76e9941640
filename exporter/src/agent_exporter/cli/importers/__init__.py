"""Importers of what agents already keep on disk: one module a tool, each turning its files into run
records (`Converted`) and naming where it keeps them (`default_paths`).

- `swe_agent`: SWE-agent trajectories (`*.traj`), a run each;
- `claude_code`: Claude Code session transcripts (`~/.claude/projects/**/*.jsonl`), a run a session;
- `codex`: Codex CLI rollouts (`$CODEX_HOME/sessions/**/rollout-*.jsonl`), a run a session.

A line or a file that is not what it claims is a `Problem` (path, line, what is wrong) and is
skipped; the rest of the file, and the other files, still import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a line (0: the whole file) of a file was skipped."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass(slots=True)
class Converted:
    """The run records made of one file, and what in it could not be read."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Format:
    """One tool's files: where they are kept, which names they have, and how they become runs."""

    name: str
    pattern: str  # a glob under each default directory
    default_dirs: Callable[[], list[Path]]
    convert: Callable[[Path], Converted]

    def files(self, paths: list[Path]) -> Iterator[Path]:
        """The files to import: each path that is a file, the matching files under each directory,
        and under the tool's own directories when no path is given; in a stable order."""
        roots = paths or [d for d in self.default_dirs() if d.is_dir()]
        for root in roots:
            if root.is_dir():
                yield from sorted(p for p in root.glob(self.pattern) if p.is_file())
            else:
                yield root


def jsonl(path: Path, converted: Converted) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSON-lines file with their line numbers; a line that is not a JSON object
    is reported in `converted` and skipped."""
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, 1):
            text = raw.strip()
            if not text:
                continue
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                converted.problems.append(Problem(path, number, f"not valid JSON: {exc}"))
                continue
            if not isinstance(value, dict):
                converted.problems.append(Problem(path, number, "not a JSON object"))
                continue
            yield number, value


def instant(value: Any) -> float | None:
    """Unix seconds of an RFC 3339 timestamp (`Z` allowed), or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def rfc3339(seconds: float) -> str:
    """An RFC 3339 timestamp of Unix seconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def count(value: Any) -> int:
    """A token or call count, or 0 when the value is not a non-negative integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
