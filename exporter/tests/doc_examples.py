"""The documentation as data, for the tests that hold it to the code: fenced blocks and the shell
commands in them, headings, links and tables of the repository's Markdown; and a shell that runs a
documented command as written against a test's servers.

A command runs unchanged except for the documented addresses: `http://127.0.0.1:9477` (the
exporter) and `http://127.0.0.1:9090` (Prometheus) become the test servers' free loopback ports.
The CLI finds the exporter through `AGENT_EXPORTER_URL`, the variable the docs document, and
`agent-exporter` and `python` are the virtualenv's, first on the `PATH`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .support import REPO

#: every Markdown document of the repository that people read
DOCS: Final = (
    "README.md",
    "WRITEUP.md",
    "docs/record.md",
    "docs/scores.md",
    "docs/api.md",
    "docs/otlp.md",
    "docs/sdk.md",
    "docs/metrics.md",
    "docs/cost.md",
    "docs/alerting.md",
    "docs/dashboards.md",
    "docs/history.md",
    "docs/importing.md",
    "docs/web.md",
    "docs/rollups.md",
    "docs/demo.md",
    "docs/stack.md",
    "docs/configuration.md",
    "docs/security.md",
    "docs/failures.md",
    "docs/scaling.md",
    "docs/architecture.md",
    "docs/design.md",
    "docs/development.md",
    "docs/quality.md",
    "docs/operations.md",
    "docs/runbooks.md",
    "docs/BENCHMARKS.md",
)
EXPORTER_URL: Final = "http://127.0.0.1:9477"
PROMETHEUS_URL: Final = "http://127.0.0.1:9090"
BIN: Final = Path(sys.executable).parent

# an opening fence, alone on its line or after a list item's marker ("3. ```sh")
_FENCE = re.compile(r"^(?P<prefix>\s*(?:(?:\d+\.|[-*+])\s+)?)```(?P<lang>[\w-]*)\s*$")
_LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
_CODE_SPAN = re.compile(r"`[^`]*`")


# -- fenced blocks and commands --------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One fenced block of a document, its text dedented to the fence."""

    doc: str
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    section: str  # the heading the block is under

    @property
    def commands(self) -> list[str]:
        """The shell commands of the block, as written (continuation lines and comments kept)."""
        return shell_commands(self.text)

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def _lines(doc: str) -> list[str]:
    return (REPO / doc).read_text(encoding="utf-8").splitlines()


def fenced_blocks(doc: str) -> list[Block]:
    """Every fenced block of `doc`, in order."""
    lines = _lines(doc)
    blocks = []
    section = ""
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            if (heading := re.match(r"^#{1,6}\s+(.*)$", lines[i])) is not None:
                section = heading[1].strip()
            i += 1
            continue
        indent = len(opening["prefix"])
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            line = lines[i]
            body.append(line[indent:] if not line[:indent].strip() else line)
            i += 1
        blocks.append(Block(doc, start, opening["lang"], "\n".join(body) + "\n", section))
        i += 1
    return blocks


def _balanced(command: str) -> bool:
    try:
        shlex.split(command, comments=True)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def shell_commands(text: str) -> list[str]:
    """The commands of a shell block: a command ends at a line that closes its quotes and does not
    end with a backslash. Lines that are only a comment are not commands."""
    commands: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current.append(line)
        joined = "\n".join(current)
        if line.rstrip().endswith("\\") or not _balanced(joined):
            continue
        commands.append(joined)
        current = []
    if current:
        raise ValueError(f"an unterminated shell command: {' '.join(current)!r}")
    return commands


def command_key(command: str) -> str:
    """`command` without its trailing comment, on one line: how the tests name a command."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(command):
        ch = command[i]
        if ch == "\\" and quote != "'" and i + 1 < len(command):
            out.append(command[i : i + 2])
            i += 2
            continue
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (not out or out[-1][-1].isspace()):
            break
        out.append(ch)
        i += 1
    return " ".join("".join(out).replace("\\\n", " ").split())


def block_of(doc: str, start: str, lang: str = "sh") -> Block:
    """The one `lang` block of `doc` that starts with `start`: its first command (comment aside) for
    a shell block, its first line otherwise."""

    def first(block: Block) -> str:
        if block.lang == "sh":
            return command_key(block.commands[0]) if block.commands else ""
        return block.text.lstrip("\n").splitlines()[0] if block.text.strip() else ""

    found = [b for b in fenced_blocks(doc) if b.lang == lang and first(b).startswith(start)]
    assert len(found) == 1, f"{doc}: {len(found)} {lang} blocks start with {start!r}"
    return found[0]


def blocks_in(doc: str, section: str, lang: str = "sh") -> list[Block]:
    """The `lang` blocks of `doc` under the heading `section`, in order."""
    found = [b for b in fenced_blocks(doc) if b.lang == lang and b.section == section]
    assert found, f"{doc} has no {lang} block under {section!r}"
    return found


# -- headings, anchors, links, tables --------------------------------------------------------------


def prose_lines(doc: str) -> list[tuple[int, str]]:
    """(line number, text) of every line of `doc` outside fenced blocks."""
    lines = _lines(doc)
    inside = {
        n
        for b in fenced_blocks(doc)
        for n in range(b.line, b.line + len(b.text.splitlines()) + 2)  # the fences and the body
    }
    return [(n, text) for n, text in enumerate(lines, 1) if n not in inside]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc: str) -> set[str]:
    """The anchors of `doc`'s headings, with GitHub's -1, -2 suffixes for repeated ones."""
    seen: dict[str, int] = {}
    out = set()
    for _, text in prose_lines(doc):
        heading = re.match(r"^#{1,6}\s+(.*)$", text)
        if heading is None:
            continue
        base = slug(heading[1])
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(doc: str) -> list[tuple[int, str]]:
    """(line, target) of every Markdown link of `doc` outside code."""
    return [
        (n, m["target"]) for n, text in prose_lines(doc) for m in _LINK.finditer(_CODE_SPAN.sub("", text))
    ]


def table(doc: str, header: list[str]) -> list[list[str]]:
    """The rows (cells, stripped) of the table of `doc` whose header row is `header`."""
    lines = [text for _, text in prose_lines(doc)]
    for i, text in enumerate(lines):
        if text.startswith("|") and _cells(text) == header:
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            return rows
    raise AssertionError(f"{doc} has no table with the header {header}")


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def code_spans(text: str) -> list[str]:
    """The contents of the `code spans` of `text`."""
    return [span[1:-1] for span in _CODE_SPAN.findall(text)]


# -- running commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """What a command did."""

    command: str
    returncode: int
    stdout: str
    stderr: str

    def ok(self) -> Done:
        """This, after asserting that the command exited 0."""
        assert self.returncode == 0, (
            f"`{self.command}` exited {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )
        return self

    def json(self) -> Any:
        """Standard output as JSON."""
        return json.loads(self.stdout)

    def http(self) -> tuple[int, Any]:
        """(status, JSON body) of a curl command run with `http_status=True`."""
        body, _, status = self.stdout.rpartition("\n")
        return int(status), json.loads(body)


@dataclass
class Shell:
    """Runs documented commands with bash in `cwd`, pointed at the test's servers."""

    cwd: Path
    exporter_url: str
    prometheus_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def substitute(self, command: str) -> str:
        """`command` with the documented addresses replaced by the test servers'."""
        text = command.replace(EXPORTER_URL, self.exporter_url)
        if self.prometheus_url is not None:
            text = text.replace(PROMETHEUS_URL, self.prometheus_url)
        return text

    def run(
        self,
        command: str,
        *,
        timeout: float = 60,
        http_status: bool = False,
        env: dict[str, str] | None = None,
    ) -> Done:
        """Run `command` (with `set -o pipefail`); `http_status` makes curl print the status code on a
        last line of its own (through a curlrc, so that the command itself stays as documented)."""
        curl_home = self.cwd / (".curl-status" if http_status else ".curl-plain")
        curl_home.mkdir(exist_ok=True)
        (curl_home / ".curlrc").write_text('write-out = "\\n%{http_code}"\n' if http_status else "")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_EXPORTER_")}
        full_env.update(
            PATH=f"{BIN}{os.pathsep}{full_env.get('PATH', '')}",
            AGENT_EXPORTER_URL=self.exporter_url,
            COLUMNS="200",
            CURL_HOME=str(curl_home),
        )
        full_env.update(self.env)
        full_env.update(env or {})
        process = subprocess.run(
            ["bash", "-o", "pipefail", "-c", self.substitute(command)],
            cwd=self.cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Done(command, process.returncode, process.stdout, process.stderr)
