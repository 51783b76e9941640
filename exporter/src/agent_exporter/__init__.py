"""agent-exporter: a Prometheus exporter for AI-agent executions."""

from typing import Final

__all__ = ["DEFAULT_PORT", "DEFAULT_URL", "__version__"]

#: the port the exporter serves on unless told otherwise, and where clients and the CLI look for it.
#: This module stays standard-library only: the client SDK (agent_exporter.client) imports it.
DEFAULT_PORT: Final = 9477
DEFAULT_URL: Final = f"http://127.0.0.1:{DEFAULT_PORT}"


def __getattr__(name: str) -> str:
    # Looked up on first use, not at import: importlib.metadata costs ~25 ms, and agents that only
    # import the client SDK (agent_exporter.client) should not pay for it.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value: str = version("agent-exporter")
        except PackageNotFoundError:  # running from a source tree that was never installed
            value = "0.0.0"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
