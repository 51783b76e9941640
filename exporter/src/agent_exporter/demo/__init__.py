"""Demo material and local running: realistic agent traffic (traffic.py), the SWE-Bench Pro runs as
records (swebench.py), `agent-exporter demo` (command.py), the stack without Docker (stack.py), and
the one process supervisor they and the tests share (supervisor.py)."""
