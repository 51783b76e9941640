"""The agent SDK: record runs without ever slowing, breaking or losing them.

    from agent_exporter import client as exporter

    with exporter.run("fixer", model="claude-sonnet-4-5", issue_type="complexity") as run:
        run.llm_call("claude-sonnet-4-5", input_tokens=12_000, output_tokens=800, cost_usd=0.05)
        run.tool_call("bash", duration_seconds=1.5)

    @exporter.run("triager")
    def triage(issue): ...

    exporter.record_run("reviewer", status="success", duration_seconds=42.0, model="gpt-5")
    exporter.score(run_id, "quality", 0.8, source="review", score_id="pr-17-review")

The module-level functions use a default `Client` configured from the environment
(`AGENT_EXPORTER_URL`, `AGENT_EXPORTER_TOKEN`, `AGENT_EXPORTER_SPOOL`; see `settings`), created on
first use; `configure(...)` replaces it. Recording a run costs the agent's thread a few microseconds:
the record is queued, and a background thread batches, sends, retries and, when the server stays
unreachable, spools it to local disk until it can be delivered (see `delivery` and `spool`). At
interpreter exit the queue is flushed for at most `exit_timeout` seconds and the rest is spooled.

Only the standard library is imported. Nothing here raises into the agent, except `Client(...)`
given an invalid URL or setting, and the agent's own exceptions, which pass through unchanged.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from .. import DEFAULT_URL
from .delivery import ClientStats, Delivery
from .recorder import Phase, Run, current_run, merged, new_run_id
from .settings import ClientSettings, bearer_token, endpoint_url, spool_directory

__all__ = [
    "Client",
    "ClientSettings",
    "ClientStats",
    "Phase",
    "Run",
    "configure",
    "current_run",
    "flush",
    "get_client",
    "record_run",
    "run",
    "score",
]

log = logging.getLogger("agent_exporter.client")
UNKNOWN_AGENT = "unknown"
_deliveries: set[Delivery] = set()  # every open client's delivery, flushed at exit
_deliveries_lock = threading.Lock()


class Client:
    """Records runs and delivers them to one agent-exporter server.

    `defaults` are fields added to every record (agent, agent_version, project, team, environment,
    labels, ...). The keyword arguments tune delivery (`ClientSettings`): tests shorten the backoff.
    Raises ValueError on an invalid URL or setting; nothing else raises.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        spool: str | os.PathLike[str] | bool | None = None,
        defaults: Mapping[str, Any] | None = None,
        **tuning: Any,
    ) -> None:
        self.settings = ClientSettings(
            endpoint=endpoint_url(url),
            token=bearer_token(token),
            spool_dir=spool_directory(spool),
            **tuning,
        ).checked()
        self.defaults: dict[str, Any] = dict(defaults or {})
        self._delivery = Delivery(self.settings, user_agent=_user_agent)
        with _deliveries_lock:
            _deliveries.add(self._delivery)

    def run(self, agent: str | None = None, *, run_id: str | None = None, **fields: Any) -> Run:
        """A run to record: use it in a `with` block, or as a decorator (one run per call).

        `fields` are record fields known up front (model, provider, issue_type, project, labels, ...).
        """
        try:
            record = merged(self.defaults, fields)
            if agent is not None or record.get("agent") is None:
                record["agent"] = agent or UNKNOWN_AGENT
            return Run(self._delivery, record, run_id)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Client.run", exc)
            return Run(self._delivery, {"agent": agent or UNKNOWN_AGENT}, run_id)

    def record_run(
        self, agent: str | None = None, *, run_id: str | None = None, status: str = "success", **fields: Any
    ) -> str:
        """Record a run that already ended, given its fields; returns its run_id.

        Timing is the caller's: pass `duration_seconds`, or `started_at` and `ended_at` (datetimes,
        RFC 3339 strings or Unix seconds).
        """
        run_id = run_id or new_run_id()
        try:
            record = merged(self.defaults, fields)
            if agent is not None or record.get("agent") is None:
                record["agent"] = agent or UNKNOWN_AGENT
            record["run_id"] = run_id
            record["status"] = str(status)
            self._delivery.submit(record)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Client.record_run", exc)
        return run_id

    def score(
        self,
        run_id: str,
        name: str,
        value: float,
        *,
        source: str | None = None,
        score_id: str | None = None,
        comment: str | None = None,
        author: str | None = None,
        timeout: float = 5.0,
    ) -> bool:
        """Score a run after it ended (`POST /api/v1/runs/{run_id}/scores`); True once the server
        holds the score (stored now or before). Runs recorded by this client are delivered first,
        so a run just ended is there to be scored. Synchronous, bounded by `timeout`; never raises:
        a refusal or an unreachable server is counted and logged, and answers False.
        """
        try:
            import json
            from urllib.parse import quote

            from .transport import Transport

            self.flush(timeout)
            score: dict[str, Any] = {"name": name, "value": value}
            for key, given in (
                ("source", source),
                ("score_id", score_id),
                ("comment", comment),
                ("author", author),
            ):
                if given is not None:
                    score[key] = given
            url = f"{self.settings.endpoint}/{quote(run_id, safe='')}/scores"
            transport = Transport(url, token=self.settings.token, timeout=timeout, user_agent=_user_agent())
            try:
                response = transport.post(json.dumps({"scores": [score]}).encode())
            finally:
                transport.close()
            if response.status in (200, 201):
                return True
            log.warning(
                "agent-exporter client: score of run %r refused (%d): %s",
                run_id,
                response.status,
                response.body[:500],
            )
            return False
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Client.score", exc)
            return False

    def flush(self, timeout: float = 5.0) -> bool:
        """Send what is queued; True once nothing waits in memory (delivered, rejected or spooled)."""
        try:
            return self._delivery.flush(timeout)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Client.flush", exc)
            return False

    def stats(self) -> ClientStats:
        """Counters of what happened to the records so far."""
        return self._delivery.stats()

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (for at most `timeout`, default `exit_timeout`), spool the rest, stop.

        Records handed over after `close` go straight to the spool.
        """
        try:
            self._delivery.close(timeout)
        except Exception as exc:  # noqa: BLE001 - never break the agent: counted and logged
            self._delivery.internal_error("Client.close", exc)
        with _deliveries_lock:
            _deliveries.discard(self._delivery)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_default: Client | None = None
_default_lock = threading.Lock()


def get_client() -> Client:
    """The default client, configured from the environment on first use."""
    global _default  # noqa: PLW0603 - the module-level API needs one shared client
    client = _default
    if client is not None:
        return client
    with _default_lock:
        if _default is None:
            try:
                _default = Client()
            except ValueError as exc:
                # a bad AGENT_EXPORTER_URL must not break the agent: record locally, say so loudly
                log.error("agent-exporter client: %s; sending to %s instead", exc, DEFAULT_URL)
                _default = Client(DEFAULT_URL)
        return _default


def configure(
    url: str | None = None,
    *,
    token: str | None = None,
    spool: str | os.PathLike[str] | bool | None = None,
    defaults: Mapping[str, Any] | None = None,
    **tuning: Any,
) -> Client:
    """Replace the default client (the old one is flushed and closed). Raises ValueError on bad settings."""
    global _default
    new = Client(url, token=token, spool=spool, defaults=defaults, **tuning)
    with _default_lock:
        old, _default = _default, new
    if old is not None:
        old.close()
    return new


def run(agent: str | None = None, *, run_id: str | None = None, **fields: Any) -> Run:
    """`Client.run` on the default client."""
    return get_client().run(agent, run_id=run_id, **fields)


def record_run(
    agent: str | None = None, *, run_id: str | None = None, status: str = "success", **fields: Any
) -> str:
    """`Client.record_run` on the default client."""
    return get_client().record_run(agent, run_id=run_id, status=status, **fields)


def score(run_id: str, name: str, value: float, **options: Any) -> bool:
    """`Client.score` on the default client."""
    return get_client().score(run_id, name, value, **options)


def flush(timeout: float = 5.0) -> bool:
    """`Client.flush` on the default client (if one was created)."""
    client = _default
    return client.flush(timeout) if client is not None else True


def _user_agent() -> str:
    from .. import __version__

    return f"agent-exporter-client/{__version__}"


def _close_all() -> None:
    with _deliveries_lock:
        deliveries = list(_deliveries)
        _deliveries.clear()
    for delivery in deliveries:
        try:
            delivery.close()
        except Exception as exc:  # noqa: BLE001 - exiting: report and go on with the other clients
            log.error("agent-exporter client: error while flushing at exit: %r", exc)


def _after_fork_in_child() -> None:
    global _deliveries_lock, _default_lock  # noqa: PLW0603 - locks held at fork time are unusable in the child
    _deliveries_lock = threading.Lock()
    _default_lock = threading.Lock()
    for delivery in list(_deliveries):
        delivery.after_fork()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
