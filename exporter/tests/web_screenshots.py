"""`make screenshots`: a PNG of each web page, light and dark, at 1280x800 and on a phone (390x844),
from a real exporter fed the shared dataset and demo traffic (tests/webstack.py), into docs/images/.

    python -m tests.web_screenshots                      # docs/images/web-*.png
    python -m tests.web_screenshots --full --out /tmp/s  # whole pages, for looking them over
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from .support import REPO
from .webstack import chromium, fed_exporter

SIZES: Final = {"desktop": (1280, 800), "phone": (390, 844)}
SCHEMES: Final = ("light", "dark")


def pages(failed_run: str) -> dict[str, str]:
    """The pages shot, by name."""
    return {
        "overview": "/",
        "runs": "/runs?from=7d",
        "run": f"/runs/{quote(failed_run, safe='')}",
        "report": "/report",
        "health": "/health",
    }


def _telling(run: dict[str, Any]) -> bool:
    """A failed fixer run with several phases and models: one that shows what a run page holds."""
    return (
        run["agent"] == "fixer"
        and run["status"] == "failure"
        and len(run.get("phases", ())) > 4
        and bool(run.get("usage"))
    )


def main(argv: list[str] | None = None) -> int:
    """Shoot every page in every scheme and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--full", action="store_true", help="the whole page, not the first screen")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        fed_exporter(Path(tmp)) as (server, fed),
        chromium() as browser,
    ):
        failed = next(
            r["run_id"]
            for r in reversed(fed.demo)
            if r["agent"] == "fixer"
            and r["status"] == "failure"
            and len(r.get("phases", ())) > 4
            and r.get("usage")
        )
        for scheme in SCHEMES:
            for size, (width, height) in SIZES.items():
                context = browser.new_context(
                    viewport={"width": width, "height": height}, color_scheme=scheme, device_scale_factor=1
                )
                page = context.new_page()
                for name, path in pages(failed).items():
                    page.goto(server.url + path, wait_until="networkidle")
                    target = args.out / f"web-{name}-{scheme}-{size}.png"
                    page.screenshot(path=str(target), full_page=args.full)
                    print(target.relative_to(args.out.parent.parent) if not args.full else target)
                context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
