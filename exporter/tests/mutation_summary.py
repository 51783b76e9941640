"""`make mutate`'s last step: the kill rate per module from mutmut's results in exporter/mutants/.

    python -m tests.mutation_summary                    # a table, every module of [tool.mutmut]
    python -m tests.mutation_summary pricing analytics  # some modules
    python -m tests.mutation_summary --json             # for machines
    python -m tests.mutation_summary --markdown         # docs/quality.md's table
    python -m tests.mutation_summary --survivors        # the names to look at (mutmut show NAME)
    mutmut run $(python -m tests.mutation_summary --pending pricing)  # run what is not killed yet

A mutant the tests kill, time out on, or that fails to run counts as killed; one that survives or
that no test reaches counts as surviving, unless docs/quality.md lists it as equivalent (a change
no caller can observe). The rate is killed / (mutants - equivalent). Exit status 1 when a module
is under --min (90 by default), so a run that lets the tests slip fails.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

EXPORTER: Final = Path(__file__).resolve().parents[1]
QUALITY: Final = EXPORTER.parent / "docs" / "quality.md"
#: mutmut's exit codes (mutmut/stats.py): what is not listed here is killed or a failure to run
SURVIVED: Final = {0: "survived", 5: "no tests", 33: "no tests"}
NOT_RUN: Final = {None: "not checked", 2: "interrupted", 34: "skipped"}
#: a mutant's name: agent_exporter.pricing.xǁPriceǁcost__mutmut_7 (ǁ separates class and method)
EQUIVALENT_ROW: Final = re.compile(r"^\|\s*`(agent_exporter\.[^`]+__mutmut_\d+)`\s*\|")


@dataclass(frozen=True)
class ModuleResult:
    module: str
    mutants: int
    killed: int
    survived: int
    equivalent: int
    not_run: int

    @property
    def rate(self) -> float:
        """Percent of the non-equivalent mutants killed (100 for a module with none)."""
        scored = self.killed + self.survived
        return 100.0 if scored == 0 else 100.0 * self.killed / scored


def configured_modules(pyproject: Path = EXPORTER / "pyproject.toml") -> list[str]:
    """The modules [tool.mutmut] only_mutate names, in its order: src/agent_exporter/x.py -> x."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["mutmut"]
    return [Path(path).stem for path in config["only_mutate"]]


def equivalent_mutants(quality: Path = QUALITY) -> set[str]:
    """The mutants docs/quality.md explains as equivalent: table rows starting with `name`."""
    if not quality.is_file():
        return set()
    lines = quality.read_text(encoding="utf-8").splitlines()
    return {match.group(1) for line in lines if (match := EQUIVALENT_ROW.match(line))}


def exit_codes(module: str, mutants_dir: Path) -> dict[str, int | None]:
    """mutmut's recorded exit code for each mutant of one module ({} when it was not run)."""
    meta = mutants_dir / "src" / "agent_exporter" / f"{module}.py.meta"
    if not meta.is_file():
        return {}
    codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return codes


def summarise(module: str, codes: dict[str, int | None], equivalent: set[str]) -> ModuleResult:
    killed = survived = listed = not_run = 0
    for name, code in codes.items():
        if code in NOT_RUN:
            not_run += 1
        elif code not in SURVIVED:
            killed += 1
        elif name in equivalent:
            listed += 1
        else:
            survived += 1
    return ModuleResult(module, len(codes), killed, survived, listed, not_run)


def survivors(codes: dict[str, int | None], equivalent: set[str]) -> list[str]:
    return sorted(name for name, code in codes.items() if code in SURVIVED and name not in equivalent)


def pending(codes: dict[str, int | None], equivalent: set[str]) -> list[str]:
    """The mutants not killed yet: not run, or surviving and not listed as equivalent."""
    return sorted(
        name
        for name, code in codes.items()
        if code in NOT_RUN or (code in SURVIVED and name not in equivalent)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", help="modules of agent_exporter (default: all configured)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants' names")
    parser.add_argument("--markdown", action="store_true", help="print docs/quality.md's table")
    parser.add_argument("--pending", action="store_true", help="print only the names not killed yet")
    parser.add_argument("--min", type=float, default=90.0, help="the least kill rate per module, percent")
    parser.add_argument("--mutants", type=Path, default=EXPORTER / "mutants", help="mutmut's directory")
    args = parser.parse_args(argv)
    modules = args.modules or configured_modules()
    equivalent = equivalent_mutants()
    if args.pending:
        print("\n".join(name for m in modules for name in pending(exit_codes(m, args.mutants), equivalent)))
        return 0
    results, alive = [], []
    for module in modules:
        codes = exit_codes(module, args.mutants)
        results.append(summarise(module, codes, equivalent))
        alive += survivors(codes, equivalent)
    if args.markdown:
        print("| module | mutants | killed | survived | equivalent | not run | kill rate |")
        print("|---|---|---|---|---|---|---|")
        for r in results:
            print(
                f"| `{r.module}` | {r.mutants} | {r.killed} | {r.survived} | {r.equivalent} | {r.not_run} "
                f"| {r.rate:.1f}% |"
            )
    elif args.json:
        rows = [asdict(result) | {"rate": round(result.rate, 1)} for result in results]
        print(json.dumps({"modules": rows, "survivors": alive} if args.survivors else rows, indent=2))
    else:
        print(
            f"{'module':<10} {'mutants':>7} {'killed':>7} {'survived':>8} {'equivalent':>10} {'kill rate':>9}"
        )
        for r in results:
            rate = f"{r.rate:.1f}%" if r.mutants else "not run"
            print(f"{r.module:<10} {r.mutants:>7} {r.killed:>7} {r.survived:>8} {r.equivalent:>10} {rate:>9}")
        if args.survivors:
            print("\n".join(["", *alive]) if alive else "\nno surviving mutant")
    low = [r.module for r in results if not r.mutants or r.not_run or r.rate < args.min]
    if low:
        print(f"under {args.min:g}% or not fully run: {', '.join(low)}", file=sys.stderr)
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
