"""The spool: records the server could not take yet, on local disk, until they are delivered.

A directory of JSON-lines segment files rather than one file, because several agent processes on a
host usually share one configuration (and so one spool path), and because a killed process must not
strand what it wrote:

- A process appends to its own active segment, `<time_ns>-<pid>-<random>.jsonl`, holding an
  exclusive `flock` on it for as long as it writes there. A segment is created as `<name>.new`,
  locked, and only then renamed: a replay never sees a segment its writer has not locked yet.
  A segment is retired when it reaches `segment_records` or `segment_bytes`, and sealed (fsynced,
  closed, lock released) by the next `sync`; `seal` does both, before each replay. So a claimable
  segment is always a durable one.
- Replay, in any process, claims a segment by taking its lock without blocking: a segment whose
  writer is alive is skipped; a sealed one, or one whose writer died (even by SIGKILL: the kernel
  drops the lock), is read, sent and deleted. Oldest first, by name.
- Appends are `write(2)` calls on an `O_APPEND` descriptor; `sync` makes them durable with `fsync`
  (and fsyncs the directory when a segment was created). A line torn by a crash mid-write is skipped
  on replay and counted; every line written before the last `sync` survives a power cut.
- The total size is bounded (`max_bytes`, counted per process and re-measured on every replay scan):
  a full spool refuses records, which the caller counts as dropped. That is the only way to lose one.

Delivery is at least once; the server's idempotency by `run_id` makes it exactly once in the store.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: segments are not shared safely between processes
    fcntl = None  # type: ignore[assignment]

SUFFIX = ".jsonl"
NEW_SUFFIX = ".new"  # a segment being created: not yet locked, never replayed
STALE_NEW_SECONDS = 60.0  # a `.new` file this old was left by a process that died while creating it


class Segment:
    """A claimed segment: this process holds its lock until `delete` or `release`."""

    def __init__(self, path: Path, fd: int, size: int) -> None:
        self.path = path
        self.size = size
        self._fd = fd

    def read_lines(self) -> list[bytes]:
        """Every line of the segment, torn last line included (the caller decodes and counts)."""
        chunks = []
        while True:
            chunk = os.read(self._fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return [line for line in b"".join(chunks).split(b"\n") if line.strip()]

    def delete(self) -> None:
        """The segment was delivered: remove it, then let go of the lock."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.release()

    def release(self) -> None:
        """Give the segment back (it is replayed later)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Spool:
    """Append-only segments in `directory`; thread safe. See the module docstring for the protocol."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_records: int = 100,
        segment_bytes: int = 1024 * 1024,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_records = segment_records
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._fd = -1
        self._path: Path | None = None
        self._retired: list[int] = []  # full segments, still locked until `sync` fsyncs and closes them
        self._records = 0
        self._bytes_in_segment = 0
        self._dirty = False
        self._new_file = False
        self._total: int | None = None  # bytes in the directory, measured lazily

    # writing -------------------------------------------------------------------------------------

    def append(self, lines: list[bytes]) -> int:
        """Append encoded records (one JSON document each, no newline); returns how many fitted.

        Not durable until `sync`. Raises OSError when the directory cannot be written.
        """
        written = 0
        with self._lock:
            if self._total is None:
                self._total = self._measure()
            for line in lines:
                data = line + b"\n"
                if self._total + len(data) > self.max_bytes:
                    break
                if self._fd < 0 or (
                    self._records >= self.segment_records
                    or self._bytes_in_segment + len(data) > self.segment_bytes
                ):
                    self._open_segment()
                _write_all(self._fd, data)
                self._records += 1
                self._bytes_in_segment += len(data)
                self._total += len(data)
                self._dirty = True
                written += 1
        return written

    def sync(self) -> None:
        """Make every append so far durable, and release full segments.

        The fsyncs run outside the lock, on duplicated descriptors: appends never wait for the disk.
        """
        with self._lock:
            fd = os.dup(self._fd) if self._fd >= 0 and self._dirty else -1
            retired, self._retired = self._retired, []
            new_file, self._new_file, self._dirty = self._new_file, False, False
        try:
            for descriptor in [fd, *retired] if fd >= 0 else retired:
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)  # for a retired segment: releases its lock, it is claimable
        finally:
            if new_file:
                _fsync_directory(self.directory)

    def seal(self) -> None:
        """Retire the active segment and sync, so that a replay can claim everything written so far."""
        with self._lock:
            self._retire_segment()
        self.sync()

    def close(self) -> None:
        """Sync and seal; the spool can still be used afterwards."""
        self.seal()

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited descriptors (the locks stay with the parent's copies)."""
        for fd in [self._fd, *self._retired]:
            if fd >= 0:
                os.close(fd)
        self._fd, self._path, self._retired = -1, None, []

    def _open_segment(self) -> None:
        self._retire_segment()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}{SUFFIX}"
        creating = path.with_name(path.name + NEW_SUFFIX)
        fd = os.open(creating, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(creating, path)  # visible to replays only now, locked
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                creating.unlink()
            raise
        self._fd, self._path = fd, path
        self._records = self._bytes_in_segment = 0
        self._new_file = True

    def _retire_segment(self) -> None:
        if self._fd >= 0:
            self._retired.append(self._fd)
            self._dirty = False  # its data is synced with it, by the retired descriptor
        self._fd, self._path = -1, None

    # replaying -----------------------------------------------------------------------------------

    def pending(self) -> bool:
        """Whether any segment file exists (this process's active one included)."""
        try:
            with os.scandir(self.directory) as entries:
                return any(e.name.endswith(SUFFIX) for e in entries)
        except OSError:
            return False

    def claim(self) -> Iterator[Segment]:
        """Segments nobody writes to, oldest first, each locked by this process while in use.

        The caller must `delete` or `release` every segment it gets.
        """
        with self._lock:
            active = self._path
            self._total = self._measure()
        try:
            listing = os.listdir(self.directory)
        except OSError:
            return
        self._remove_stale_new(n for n in listing if n.endswith(NEW_SUFFIX))
        names = sorted(n for n in listing if n.endswith(SUFFIX))
        for name in names:
            path = self.directory / name
            if path == active:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # another process delivered it meanwhile
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)  # a live writer (or another replay) holds it
                    continue
            stat = os.fstat(fd)
            if stat.st_nlink == 0:
                os.close(fd)  # delivered and deleted between our open and our lock
                continue
            yield Segment(path, fd, stat.st_size)

    def delete(self, segment: Segment) -> None:
        """A claimed segment was delivered: remove it and stop counting its bytes."""
        segment.delete()
        with self._lock:
            if self._total is not None:
                self._total = max(0, self._total - segment.size)

    def _remove_stale_new(self, names: Iterable[str]) -> None:
        # a process killed between creating and renaming a segment leaves an empty `.new` file
        for name in names:
            path = self.directory / name
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > STALE_NEW_SECONDS:
                    path.unlink()

    def _measure(self) -> int:
        total = 0
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.endswith(SUFFIX):
                        with contextlib.suppress(OSError):
                            total += entry.stat().st_size
        except OSError:
            return 0
        return total


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_directory(directory: Path) -> None:
    # makes a new segment's directory entry durable; not possible (nor needed) on every platform
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
