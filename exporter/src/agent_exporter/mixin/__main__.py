"""`python -m agent_exporter.mixin generate|check`: render the rules and dashboards, or verify them.

(The native stack that runs them is `python -m agent_exporter.demo.stack`, `make stack`.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import MixinConfigError, load_config
from .generate import CONFIG_PATH, render, stale, write


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m agent_exporter.mixin", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("generate", help="write the rule files and dashboards from alerts/config.yaml")
    sub.add_parser("check", help="exit 1 when a generated file differs from what the configuration renders")
    args = parser.parse_args(argv)

    root: Path = args.root
    try:
        files = render(load_config(root / CONFIG_PATH))
    except MixinConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "generate":
        changed = write(root, files)
        for rel in changed:
            print(f"wrote {rel}")
        print(f"{len(files)} files, {len(changed)} changed")
        return 0
    out_of_date = stale(root, files)
    for rel in out_of_date:
        print(f"stale: {rel} (run `make generate`)", file=sys.stderr)
    return 1 if out_of_date else 0


if __name__ == "__main__":
    sys.exit(main())
