"""The client's configuration: constructor arguments, else `AGENT_EXPORTER_*` environment variables.

| argument | environment | default |
|---|---|---|
| `url` | `AGENT_EXPORTER_URL` | `http://127.0.0.1:9477` (the server's default address) |
| `token` | `AGENT_EXPORTER_TOKEN` | none: no `Authorization` header |
| `spool` | `AGENT_EXPORTER_SPOOL` | `$XDG_STATE_HOME/agent-exporter/spool` (`off` disables it) |

The other knobs (batching, backoff, bounds) are constructor arguments only: they are tuned, not deployed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from .. import DEFAULT_URL

RUNS_PATH = "/api/v1/runs"
SPOOL_OFF = frozenset({"off", "none", "false", "0", "disabled"})


class ClientSettings(NamedTuple):
    """Everything the delivery machinery reads; built once per client (`checked` validates it)."""

    endpoint: str
    token: str | None
    spool_dir: Path | None
    batch_size: int = 100
    max_batch_bytes: int = 1024 * 1024
    max_queue: int = 10_000
    flush_interval: float = 1.0
    timeout: float = 10.0
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    max_retry_after: float = 600.0
    spool_after_attempts: int = 3
    max_spool_bytes: int = 64 * 1024 * 1024
    scan_interval: float = 30.0
    exit_timeout: float = 5.0

    def checked(self) -> ClientSettings:
        """These settings, or ValueError naming every setting out of range."""
        checks = {
            "batch_size": self.batch_size >= 1,
            "max_batch_bytes": self.max_batch_bytes >= 1024,
            "max_queue": self.max_queue >= 1,
            "flush_interval": self.flush_interval > 0,
            "timeout": self.timeout > 0,
            "backoff_base": self.backoff_base > 0,
            "backoff_max": self.backoff_max >= self.backoff_base,
            "max_retry_after": self.max_retry_after >= 0,
            "spool_after_attempts": self.spool_after_attempts >= 1,
            "max_spool_bytes": self.max_spool_bytes >= 0,
            "scan_interval": self.scan_interval > 0,
            "exit_timeout": self.exit_timeout >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid client settings: {', '.join(bad)} (see ClientSettings)")
        return self


def endpoint_url(url: str | None) -> str:
    """The ingest endpoint for a server base URL (or for the endpoint itself)."""
    base = (url or os.environ.get("AGENT_EXPORTER_URL") or DEFAULT_URL).strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"AGENT_EXPORTER_URL must start with http:// or https:// (got {base!r})")
    return base if base.endswith(RUNS_PATH) else base + RUNS_PATH


def bearer_token(token: str | None) -> str | None:
    """The bearer token from the argument or `AGENT_EXPORTER_TOKEN`; blank means none."""
    value = token if token is not None else os.environ.get("AGENT_EXPORTER_TOKEN")
    return value.strip() or None if value else None


def spool_directory(spool: str | os.PathLike[str] | bool | None) -> Path | None:
    """The spool directory: the argument, else `AGENT_EXPORTER_SPOOL`, else the per-user state dir.

    `False` or `off` disables spooling (records the server cannot take are then lost, and counted).
    """
    if spool is False:
        return None
    if spool is None or spool is True:
        env = os.environ.get("AGENT_EXPORTER_SPOOL", "").strip()
        if env.lower() in SPOOL_OFF:
            return None
        if env:
            return Path(env).expanduser()
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(state) / "agent-exporter" / "spool"
    text = os.fspath(spool)
    if text.strip().lower() in SPOOL_OFF:
        return None
    return Path(text).expanduser()
