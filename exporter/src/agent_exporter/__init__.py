"""agent-exporter: a Prometheus exporter for AI-agent executions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agent-exporter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
