"""`python -m agent_exporter` is the `agent-exporter` command."""

from .cli import main

main()
