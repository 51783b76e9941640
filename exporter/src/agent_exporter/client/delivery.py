"""Delivery: a bounded queue the agent appends to, and one background thread that empties it.

The agent's side is `submit`: a counter and a `deque.append` (no I/O, no encoding, no waiting).
The thread batches what is queued into `POST {"runs": [...]}` requests and classifies each answer:

- 2xx: delivered. The body's per-record outcomes are counted; `rejected` records (field errors) and
  `conflict`s (another body under the same run_id) are logged and never sent again.
- network errors, 408, 425, 429, 5xx, and 401/403/404 (a wrong token or URL, fixed by configuration,
  not by dropping runs): retried with exponential backoff and jitter, never sooner than Retry-After.
  After `spool_after_attempts` failures in a row the server counts as unreachable: the batch and
  everything queued afterwards goes to the spool, and the spool is replayed when a probe succeeds.
- 413 splits the batch; any other 4xx is a permanent rejection of the batch: logged, counted, dropped.

Memory stays bounded: when `max_queue` records are waiting (the thread is stuck in a slow request),
`submit` appends the record to the spool from the agent's thread instead (a `write(2)`, no fsync and
no network). Delivery is at least once; the server deduplicates by `run_id`.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from .settings import ClientSettings
from .spool import Spool

if TYPE_CHECKING:
    import random

    from .transport import Response, Transport

log = logging.getLogger("agent_exporter.client")

#: Answers worth retrying: the record is fine, the server (or its configuration) is not.
RETRY_STATUSES: Final = frozenset({401, 403, 404, 408, 425, 429})
TIMESTAMP_FIELDS: Final = ("started_at", "ended_at")


class ClientStats(NamedTuple):
    """What happened to the records handed to a client so far (a snapshot)."""

    submitted: int = 0  # records the agent handed over
    delivered: int = 0  # acknowledged by the server: accepted + duplicates
    accepted: int = 0
    duplicates: int = 0  # the server had them already (a replay after a lost answer)
    conflicts: int = 0  # the run_id is stored with a different body: not stored
    rejected: int = 0  # failed validation (or a permanent 4xx): logged, not retried
    spooled: int = 0  # written to the spool
    replayed: int = 0  # delivered from the spool (also counted in delivered)
    dropped: int = 0  # lost: spool full or disabled, or not JSON-encodable
    requests: int = 0  # POSTs that got an answer
    failures: int = 0  # attempts that failed and will be retried
    errors: int = 0  # internal SDK errors (logged)
    corrupt_lines: int = 0  # torn spool lines skipped on replay
    queued: int = 0  # records waiting in memory now
    unreachable: bool = False  # the server is considered down; new records go to the spool


class _Counters:
    """Mutable counters behind one lock (increments come from the agent's threads and the sender)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, int] = {name: 0 for name in ClientStats._fields if name != "unreachable"}

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.values[name] += n


class _Limited:
    """Logs a kind of message at most `burst` times per `period` seconds, then a count of the rest."""

    def __init__(self, burst: int = 10, period: float = 60.0) -> None:
        self.burst, self.period = burst, period
        self._window: dict[str, tuple[float, int]] = {}

    def __call__(self, level: int, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        start, count = self._window.get(kind, (now, 0))
        if now - start > self.period:
            if count > self.burst:
                log.log(level, "%d more %s messages were suppressed", count - self.burst, kind)
            start, count = now, 0
        count += 1
        self._window[kind] = (start, count)
        if count <= self.burst:
            log.log(level, message, *args)


class _Retry:
    """A failed attempt that should be repeated (after `retry_after` seconds at the earliest)."""

    __slots__ = ("reason", "retry_after")

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after


class Delivery:
    """The queue and the sender thread of one client."""

    def __init__(self, settings: ClientSettings, *, user_agent: Callable[[], str]) -> None:
        self.settings = settings
        self._user_agent = user_agent
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._counters = _Counters()
        self._limited = _Limited()
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._rng: random.Random | None = None  # made on the first failure (importing random is slow)
        self._spool = (
            Spool(
                settings.spool_dir,
                max_bytes=settings.max_spool_bytes,
                segment_records=settings.batch_size,
                segment_bytes=settings.max_batch_bytes,
            )
            if settings.spool_dir is not None
            else None
        )
        self._transport: Transport | None = None
        self._pending: list[bytes] = []  # an encoded batch that failed and waits for its retry
        self._inflight: list[bytes] = []  # the batch of the request under way
        self._failures = 0  # failed attempts in a row
        self._next_attempt = 0.0  # monotonic time before which nothing is sent
        self._unreachable = False
        self._replay_due = self._spool is not None  # replay leftovers of earlier processes at start
        self._next_scan = 0.0
        self._spool_unsynced = False
        self._closing = False
        self._closed = False
        self._working = False  # the sender is in a cycle (records may be between queue and request)
        self._thread: threading.Thread | None = None
        self.start()

    # the agent's side ---------------------------------------------------------------------------

    def submit(self, record: dict[str, Any]) -> None:
        """Queue a record for delivery; returns at once whatever the server does. Never raises."""
        try:
            counters = self._counters
            with counters.lock:
                counters.values["submitted"] += 1
            queue = self._queue
            if self._closed:  # after close (interpreter exit): straight to disk
                self._spill_now([record])
                self._sync_spool()
            elif len(queue) >= self.settings.max_queue:
                self._spill_now([record])
                self._wake.set()
            else:
                queue.append(record)
                if len(queue) >= self.settings.batch_size:
                    self._wake.set()
        except Exception as exc:  # noqa: BLE001 - the SDK must never break the agent: counted and logged
            self.internal_error("submit", exc)

    def stats(self) -> ClientStats:
        """A snapshot of the counters."""
        with self._counters.lock:
            values = dict(self._counters.values)
        inflight, pending = self._inflight, self._pending
        values["queued"] = len(self._queue) + len(pending) + (0 if inflight is pending else len(inflight))
        return ClientStats(**values, unreachable=self._unreachable)

    def flush(self, timeout: float) -> bool:
        """Send what is queued now; True once nothing waits in memory (delivered, rejected or spooled)."""
        deadline = time.monotonic() + timeout
        if self._thread is None or not self._thread.is_alive():
            return self._idle()
        with self._progress:
            self._wake.set()
            while not self._idle():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(min(remaining, 0.05))
                self._wake.set()
        return True

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued within `timeout` seconds, spool the rest, and stop the thread."""
        if self._closed:
            return
        timeout = self.settings.exit_timeout if timeout is None else timeout
        self._exit_deadline = time.monotonic() + timeout
        self._closing = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout + 0.5)
        self._closed = True
        if thread is not None and thread.is_alive():
            # stuck in a request: keep what it holds (a duplicate at worst if the request succeeds)
            inflight, pending = self._inflight, self._pending
            self._spill_lines(list(pending) if inflight is pending else list(inflight) + list(pending))
            self._spill_now(self._drain_queue())
        if self._spool is not None:
            try:
                self._spool.close()
            except OSError as exc:
                self.internal_error("closing the spool", exc)
        if self._transport is not None and (thread is None or not thread.is_alive()):
            self._transport.close()

    def after_fork(self) -> None:
        """In a forked child: the parent delivers what it queued; the child starts afresh."""
        self._queue = collections.deque()
        self._counters = _Counters()
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._pending, self._inflight = [], []
        if self._transport is not None:
            self._transport.close()  # closes the child's copy of the socket only
            self._transport = None
        if self._spool is not None:
            self._spool.forget_after_fork()
            self._spool = Spool(
                self._spool.directory,
                max_bytes=self._spool.max_bytes,
                segment_records=self._spool.segment_records,
                segment_bytes=self._spool.segment_bytes,
            )
        self._thread = None
        if not self._closed:
            self.start()

    def start(self) -> None:
        """Start the sender thread (a daemon: the atexit hook, not the thread, flushes at exit)."""
        self._thread = threading.Thread(target=self._run, name="agent-exporter-client", daemon=True)
        self._thread.start()

    def internal_error(self, where: str, exc: BaseException) -> None:
        """Count and log an SDK bug or an unusable environment; never raise."""
        try:
            self._counters.add("errors")
            self._limited(logging.ERROR, "internal", "agent-exporter client: error in %s: %r", where, exc)
        except Exception:  # noqa: BLE001, S110 - logging itself failed: nothing safe is left to do
            pass

    # the sender thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._wait_time())
            self._wake.clear()
            self._working = True
            try:
                if self._closing:
                    self._drain_for_exit()
                    return
                self._cycle()
            except Exception as exc:  # noqa: BLE001 - the thread must survive anything: counted and logged
                self.internal_error("the sender thread", exc)
                time.sleep(min(1.0, self.settings.flush_interval))  # no tight loop on a persistent bug
            finally:
                self._working = False
                with self._progress:
                    self._progress.notify_all()

    def _wait_time(self) -> float:
        until_attempt = max(0.0, self._next_attempt - time.monotonic())
        if self._unreachable:
            # spill what the agent queued at least every flush_interval; probe when the backoff ends
            return min(self.settings.flush_interval, until_attempt)
        if self._pending or self._replay_due:
            return until_attempt
        return self.settings.flush_interval

    def _idle(self) -> bool:
        return not (self._working or self._queue or self._pending or self._inflight or self._spool_unsynced)

    def _cycle(self) -> None:
        now = time.monotonic()
        if self._spool_unsynced:
            self._sync_spool()
        if self._unreachable:
            self._spill_now(self._drain_queue())
            self._sync_spool()
            if now >= self._next_attempt:
                self._replay()
            return
        if now < self._next_attempt:
            return
        while self._pending or self._queue:
            if not self._pending:
                self._pending = self._take_batch()
                if not self._pending:
                    continue
            result = self._post(self._pending)
            if isinstance(result, _Retry):
                self._failed(result)
                if self._failures >= self.settings.spool_after_attempts and self._spool is not None:
                    self._become_unreachable(result)
                return
            self._pending = []
            self._succeeded()
        if self._spool is not None:
            if not self._replay_due and now >= self._next_scan:
                self._next_scan = now + self.settings.scan_interval
                self._replay_due = self._spool.pending()
            if self._replay_due:
                self._replay()

    def _take_batch(self) -> list[bytes]:
        lines: list[bytes] = []
        size = 0
        queue = self._queue
        while queue and len(lines) < self.settings.batch_size:
            line = self._encode(queue[0])
            if line is not None and lines and size + len(line) + 1 > self.settings.max_batch_bytes - 16:
                break
            queue.popleft()
            if line is not None:
                lines.append(line)
                size += len(line) + 1
        return lines

    def _encode(self, record: Mapping[str, Any]) -> bytes | None:
        try:
            return encode(record)
        except (TypeError, ValueError) as exc:
            self._counters.add("dropped")
            self._limited(
                logging.ERROR,
                "unencodable",
                "agent-exporter client: run %r dropped: it cannot be encoded as JSON (%s)",
                record.get("run_id"),
                exc,
            )
            return None

    def _post(self, lines: list[bytes]) -> _Retry | None:
        """Send one batch; None when it is settled (delivered or permanently rejected)."""
        from .transport import NETWORK_ERRORS, Transport

        body = b'{"runs":[' + b",".join(lines) + b"]}"
        if self._transport is None:
            self._transport = Transport(
                self.settings.endpoint,
                token=self.settings.token,
                timeout=self.settings.timeout,
                user_agent=self._user_agent(),
            )
        timeout = None
        if self._closing:
            timeout = max(0.1, min(self.settings.timeout, self._exit_deadline - time.monotonic()))
        self._inflight = lines
        try:
            response = self._transport.post(body, timeout)
        except NETWORK_ERRORS as exc:
            return _Retry(f"{type(exc).__name__}: {exc}")
        finally:
            self._inflight = []
        self._counters.add("requests")
        return self._settle(lines, response)

    def _settle(self, lines: list[bytes], response: Response) -> _Retry | None:
        status = response.status
        if 200 <= status < 300:
            self._count_outcomes(lines, response.body)
            return None
        if status == 413 and len(lines) > 1:
            half = len(lines) // 2
            first = self._post(lines[:half])
            second = self._post(lines[half:])
            return first or second
        if status in RETRY_STATUSES or status >= 500:
            if status in (401, 403, 404):
                self._limited(
                    logging.ERROR,
                    "config",
                    "agent-exporter client: %s answered %d (%s): check AGENT_EXPORTER_URL and "
                    "AGENT_EXPORTER_TOKEN; runs are kept and retried",
                    self.settings.endpoint,
                    status,
                    _message(response.body),
                )
            return _Retry(f"HTTP {status}: {_message(response.body)}", response.retry_after)
        self._counters.add("rejected", len(lines))
        self._limited(
            logging.ERROR,
            "rejected",
            "agent-exporter client: %d run(s) rejected with HTTP %d and not retried: %s",
            len(lines),
            status,
            _message(response.body),
        )
        return None

    def _count_outcomes(self, lines: list[bytes], body: bytes) -> None:
        try:
            answer = json.loads(body)
            results = answer["results"]
        except (ValueError, TypeError, KeyError):
            # a 2xx without the expected body (a proxy?): the server took the batch
            self._counters.add("delivered", len(lines))
            self._counters.add("accepted", len(lines))
            return
        counts = {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 0}
        for result in results:
            outcome = result.get("outcome")
            if outcome in counts:
                counts[outcome] += 1
            if outcome == "rejected":
                errors = "; ".join(str(e.get("message", e)) for e in result.get("errors", ()))
                self._limited(
                    logging.WARNING,
                    "rejected",
                    "agent-exporter client: run %r rejected by the server (not retried): %s",
                    result.get("run_id"),
                    errors,
                )
            elif outcome == "conflict":
                self._limited(
                    logging.WARNING,
                    "conflict",
                    "agent-exporter client: run_id %r is stored with a different body; this record "
                    "was not stored (run ids must be unique)",
                    result.get("run_id"),
                )
        self._counters.add("accepted", counts["accepted"])
        self._counters.add("duplicates", counts["duplicate"])
        self._counters.add("delivered", counts["accepted"] + counts["duplicate"])
        self._counters.add("conflicts", counts["conflict"])
        self._counters.add("rejected", counts["rejected"])

    def _failed(self, retry: _Retry) -> None:
        self._failures += 1
        self._counters.add("failures")
        base, cap = self.settings.backoff_base, self.settings.backoff_max
        delay = min(cap, base * 2 ** min(self._failures - 1, 30))
        if self._rng is None:
            import random

            self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        delay *= self._rng.uniform(0.5, 1.0)  # jitter: agents restarted together do not retry together
        if retry.retry_after is not None:
            delay = max(delay, min(retry.retry_after, self.settings.max_retry_after))
        self._next_attempt = time.monotonic() + delay
        log.debug("agent-exporter client: attempt failed (%s); next in %.3f s", retry.reason, delay)
        if self._spool is None and self._failures == self.settings.spool_after_attempts:
            self._limited(
                logging.WARNING,
                "unreachable",
                "agent-exporter client: %s unreachable (%s); no spool configured, retrying in memory",
                self.settings.endpoint,
                retry.reason,
            )

    def _succeeded(self) -> None:
        if self._unreachable:
            log.warning("agent-exporter client: %s is reachable again", self.settings.endpoint)
        self._failures = 0
        self._next_attempt = 0.0
        self._unreachable = False

    def _become_unreachable(self, retry: _Retry) -> None:
        if not self._unreachable:
            self._limited(
                logging.WARNING,
                "unreachable",
                "agent-exporter client: %s unreachable after %d attempts (%s); spooling runs to %s",
                self.settings.endpoint,
                self._failures,
                retry.reason,
                self.settings.spool_dir,
            )
        self._unreachable = True
        self._spill_lines(self._pending)
        self._pending = []
        self._spill_now(self._drain_queue())
        self._sync_spool()

    def _replay(self) -> None:
        """Send every claimable spool segment; stop at the first failure (the server is down again)."""
        spool = self._spool
        if spool is None:
            return
        self._sync_spool()
        spool.seal()
        self._replay_due = False
        for segment in spool.claim():
            if self._closing and time.monotonic() >= self._exit_deadline:
                segment.release()
                return
            try:
                lines = self._valid_lines(segment.read_lines())
                start = 0
                while start < len(lines):
                    batch = lines[start : start + self.settings.batch_size]
                    result = self._post(batch)
                    if isinstance(result, _Retry):
                        self._failed(result)
                        if not self._unreachable:
                            self._become_unreachable(result)
                        segment.release()
                        return
                    start += len(batch)
                spool.delete(segment)
                self._counters.add("replayed", len(lines))
                self._succeeded()
            except BaseException:
                segment.release()
                raise
            if len(self._queue) >= self.settings.batch_size and not self._closing:
                self._replay_due = True  # live records first; the rest of the spool next cycle
                self._wake.set()
                return
        # nothing (more) to probe with: the next live batch tells whether the server is back
        self._unreachable = False

    def _valid_lines(self, lines: list[bytes]) -> list[bytes]:
        valid = []
        for line in lines:
            try:
                json.loads(line)
            except ValueError:
                self._counters.add("corrupt_lines")
                self._limited(
                    logging.WARNING,
                    "corrupt",
                    "agent-exporter client: skipped a torn line in the spool (%d bytes)",
                    len(line),
                )
                continue
            valid.append(line)
        return valid

    def _drain_for_exit(self) -> None:
        deadline = self._exit_deadline
        if not self._unreachable and time.monotonic() >= self._next_attempt:
            while (self._pending or self._queue) and time.monotonic() < deadline:
                if not self._pending:
                    self._pending = self._take_batch()
                    if not self._pending:
                        continue
                if isinstance(self._post(self._pending), _Retry):
                    break
                self._pending = []
        leftovers, self._pending = self._pending, []
        self._spill_lines(leftovers)
        self._spill_now(self._drain_queue())
        self._sync_spool()
        if self._replay_due and not self._unreachable and time.monotonic() < deadline:
            self._replay()

    _exit_deadline = 0.0

    # spilling -----------------------------------------------------------------------------------

    def _drain_queue(self) -> list[dict[str, Any]]:
        records = []
        queue = self._queue
        while True:
            try:
                records.append(queue.popleft())
            except IndexError:
                return records

    def _spill_now(self, records: list[dict[str, Any]]) -> None:
        if records:
            self._spill_lines([line for line in map(self._encode, records) if line is not None])

    def _spill_lines(self, lines: list[bytes]) -> None:
        if not lines:
            return
        written = 0
        if self._spool is not None:
            try:
                written = self._spool.append(lines)
            except OSError as exc:
                self.internal_error(f"writing the spool in {self._spool.directory}", exc)
            self._spool_unsynced = self._spool_unsynced or written > 0
            self._replay_due = self._replay_due or written > 0
        self._counters.add("spooled", written)
        lost = len(lines) - written
        if lost:
            self._counters.add("dropped", lost)
            where = (
                f"the spool {self.settings.spool_dir} is full ({self.settings.max_spool_bytes} bytes)"
                if self._spool is not None
                else "no spool is configured"
            )
            self._limited(
                logging.ERROR,
                "dropped",
                "agent-exporter client: %d run(s) lost: the server is unreachable and %s",
                lost,
                where,
            )

    def _sync_spool(self) -> None:
        if self._spool is None or not self._spool_unsynced:
            return
        self._spool_unsynced = False
        try:
            self._spool.sync()
        except OSError as exc:
            self.internal_error(f"syncing the spool in {self._spool.directory}", exc)


def encode(record: Mapping[str, Any]) -> bytes:
    """One record as compact JSON; float timestamps become RFC 3339 (UTC). Raises on NaN or odd types."""
    from datetime import UTC, datetime

    out = {key: value for key, value in record.items() if value is not None}  # None means absent
    for name in TIMESTAMP_FIELDS:
        value = out.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = datetime.fromtimestamp(value, UTC).isoformat(timespec="microseconds")
        elif isinstance(value, datetime):
            out[name] = (value if value.tzinfo else value.astimezone()).isoformat()
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _message(body: bytes) -> str:
    """The server's error message, or the start of the body."""
    try:
        answer = json.loads(body)
        return str(answer["error"]["message"])
    except (ValueError, TypeError, KeyError):
        return body[:200].decode("utf-8", "replace")
