"""Demo traffic replayed through the real exporter on a simulated clock, and judged by promtool.

The demo's incidents are judged by the shipped rules with their shipped windows: the p95 and token
baselines reach back a week, a silent agent is reported after two hours, a 95% objective's fast
burn needs most of an hour of failures. Prometheus evaluates rules on its wall clock, so a live
stack needs that much real time, or windows so short (an hour in a second) that the 5-minute
windows hold no two scrapes. Here the clock is simulated instead, and everything else is real:

1. `traffic.Traffic` generates the demo's runs (fixed seed, the demo's rate) with the incident;
2. they are posted to a real `agent-exporter serve` as the client encodes them, one scrape interval
   at a time, and its `/metrics` is scraped after each interval: a scrape holds exactly the runs
   that ended before it, as Prometheus would see them from a live demo;
3. the samples of the metrics the rules read become promtool `input_series`, with the labels
   Prometheus attaches (job and instance) and `up`;
4. `promtool test rules` evaluates the shipped alert rules (and the recording rules they read:
   `rules_under_test`) over them every minute, and a query over `ALERTS` gives every alert that
   fired: the first and last minute, and at how many evaluations. The test states exactly that
   list. (test_demo_alerts also runs one scenario live, to check this clock against the wall's.)

The demo's timestamps are Unix times when the replay ran; promtool's clock starts at 0, so
`agent_last_run_timestamp_seconds` (a Unix time) is shifted by the demo's start: `time()` in the
rules is then the offset into the demo, as it would be live.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from agent_exporter.client.delivery import encode
from agent_exporter.mixin.config import format_duration, load_config
from agent_exporter.mixin.generate import ALERT_RULES, CONFIG_PATH, RECORDING_RULES

from .support import REPO

STEP: Final = 60  # simulated seconds between scrapes, and between rule evaluations
JOB: Final = load_config(REPO / CONFIG_PATH).exporter_job  # the scrape's labels, as Prometheus adds them
INSTANCE: Final = "exporter:9477"
TIMESTAMP_METRICS: Final = frozenset({"agent_last_run_timestamp_seconds"})  # Unix times: shifted
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


# -- the rules ------------------------------------------------------------------------------------


def _groups(path: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return groups


def metrics_read(rule_files: Iterable[Path]) -> set[str]:
    """Every name the rules' expressions mention: the metrics (and recorded series) they read."""
    return {
        name
        for path in rule_files
        for group in _groups(path)
        for rule in group["rules"]
        for name in _NAME.findall(rule["expr"])
    }


def rules_under_test(directory: Path, alert: str | None = None) -> Path:
    """The shipped alert rules (all, or only `alert`) and the recording rules they read
    (transitively), as one group with the recording rules first, written to `directory`.

    One group: promtool evaluates separate groups in no fixed order, so an alert that reads a
    recorded series sees this minute's value in one run and the last minute's in the next, and
    fires a minute or two apart from run to run. In one group, rules run in order and the alerts
    read the current recordings. (In Prometheus, groups run on their own timers: a live alert may
    fire up to an evaluation interval later.) Recording rules no alert reads (the dashboards') are
    left out: they decide nothing here and take most of promtool's time.
    """
    recording = [rule for group in _groups(REPO / RECORDING_RULES) for rule in group["rules"]]
    alerting = [rule for group in _groups(REPO / ALERT_RULES) for rule in group["rules"]]
    if alert is not None:
        alerting = [rule for rule in alerting if rule["alert"] == alert]
        if not alerting:
            raise ValueError(f"the shipped rules have no alert {alert}")
    records = {rule["record"] for rule in recording}
    needed: set[str] = set()
    frontier = {n for rule in alerting for n in _NAME.findall(rule["expr"])} & records
    while frontier:
        needed |= frontier
        read = {n for rule in recording if rule["record"] in frontier for n in _NAME.findall(rule["expr"])}
        frontier = read & records - needed
    group = {
        "name": "agent-exporter.demo-replay",
        "rules": [*(rule for rule in recording if rule["record"] in needed), *alerting],
    }
    path = directory / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}, sort_keys=False), encoding="utf-8")
    return path


# -- the replay -----------------------------------------------------------------------------------


@dataclass
class Replay:
    """The scrapes of one replay: per series, a value per scrape (None: the series did not exist)."""

    scrapes: int
    series: dict[str, list[float | None]] = field(default_factory=dict)
    sent: int = 0

    @property
    def horizon(self) -> int:
        """Simulated seconds from the first scrape to the last."""
        return (self.scrapes - 1) * STEP

    def set(self, key: str, index: int, value: float) -> None:
        """Record `value` for series `key` at scrape `index`."""
        values = self.series.get(key)
        if values is None:
            values = self.series[key] = [None] * self.scrapes
        values[index] = value


def replay(
    runs: Iterable[tuple[float, dict[str, Any]]],
    *,
    start: float,
    horizon: int,
    url: str,
    rules: Path,
) -> Replay:
    """POST `runs` ((offset, record) in time order as `Traffic.runs` yields them, offsets in seconds
    after `start`) until `horizon` to the exporter at `url`, encoded as the client encodes them, and
    scrape it every STEP simulated seconds (the first scrape at 0, before any run). Only the metrics
    the `rules` file reads are kept.

    One thread posts and scrapes, in order, while this one generates the next interval's runs and
    reads the last scrape: the exporter and the generator work at the same time. An interval without
    runs is not scraped: nothing the rules read changed, and the previous scrape stands for it.
    """
    keep = metrics_read([rules])
    result = Replay(scrapes=horizon // STEP + 1)
    queue = iter(runs)
    pending = next(queue, None)
    target = f'job="{JOB}", instance="{INSTANCE}"'

    def deliver(http: httpx.Client, batch: list[bytes]) -> str:
        if batch:
            response = http.post(
                f"{url}/api/v1/runs",
                content=b'{"runs":[' + b",".join(batch) + b"]}",
                headers={"Content-Type": "application/json"},
            )
            response.raise_for_status()
            if response.json()["accepted"] != len(batch):
                raise RuntimeError(f"the exporter did not accept every run: {response.text}")
        response = http.get(f"{url}/metrics")
        response.raise_for_status()
        return response.text

    def read(index: int, exposition: str | None) -> None:
        if exposition is None:  # not scraped: the previous scrape stands
            for values in result.series.values():
                values[index] = values[index - 1]
            return
        result.set(f"up{{{target}}}", index, 1.0)
        for name, labels, value in _samples(exposition, keep):
            shifted = value - start if name in TIMESTAMP_METRICS else value
            result.set(f"{name}{{{labels}, {target}}}" if labels else f"{name}{{{target}}}", index, shifted)

    with httpx.Client(timeout=60) as http, ThreadPoolExecutor(1) as pool:
        previous: Future[str] | None = None
        for index in range(result.scrapes):
            batch = []
            while pending is not None and pending[0] < index * STEP:
                batch.append(encode(pending[1]))
                pending = next(queue, None)
            result.sent += len(batch)
            if index > 0 and not batch:
                if previous is not None:
                    read(index - 1, previous.result())
                    previous = None
                read(index, None)
                continue
            scraped = pool.submit(deliver, http, batch)
            if previous is not None:
                read(index - 1, previous.result())
            previous = scraped
        if previous is not None:
            read(result.scrapes - 1, previous.result())
    return result


def _samples(exposition: str, keep: set[str]) -> Iterator[tuple[str, str, float]]:
    """(name, labels as written, value) of the samples of the metrics in `keep`.

    The text format writes labels as PromQL does (`a="b",c="d"`, escaped alike), so the label text
    is used as it is; the exporter writes a series' labels in the same order in every scrape.
    """
    for line in exposition.splitlines():
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        if brace >= 0:
            name = line[:brace]
            close = line.rindex("}")
            labels, value = line[brace + 1 : close], line[close + 1 :].split()[0]
        else:
            name, value = line.split()[:2]
            labels = ""
        if name in keep:
            yield name, labels, float(value)


# -- promtool -------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def compact(values: Iterable[float | None]) -> str:
    """promtool's expanding notation: `v` n + 1 times is `vxn`; `_xn` is n missing samples."""
    out: list[str] = []
    run: list[Any] = []  # [value, count]

    def close() -> None:
        if not run:
            return
        value, count = run
        if value is None:
            out.append("_" if count == 1 else f"_x{count}")
        else:
            out.append(_number(value) if count == 1 else f"{_number(value)}x{count - 1}")

    for value in values:
        if run and run[0] == value and (run[0] is None) == (value is None):
            run[1] += 1
            continue
        close()
        run = [value, 1]
    close()
    return " ".join(out)


#: over the whole replay, per alert: the first and the last evaluation it fired at, and how many
_FIRING: Final = 'ALERTS{alertstate="firing"}'
QUERIES: Final = {
    "first": "min_over_time(timestamp({alerts})[{horizon}:{step}])",
    "last": "max_over_time(timestamp({alerts})[{horizon}:{step}])",
    "evaluations": "count_over_time({alerts}[{horizon}:{step}])",
}


@dataclass(frozen=True)
class Fired:
    """An alert (its labels, `alertname` included) that fired from `first` to `last` (simulated
    seconds into the demo) at `evaluations` evaluations: every one in between if that is
    `(last - first) / STEP + 1`."""

    labels: Mapping[str, str]
    first: int
    last: int
    evaluations: int


def _matcher(labels: Mapping[str, str]) -> str:
    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return "{" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels.items())) + "}"


def promtool_test(result: Replay, expected: Iterable[Fired], rules: Path) -> Path:
    """A promtool test of the `rules` file over `result`, written beside it: the alerts that fired
    during the replay are exactly `expected`, with their first and last minute and evaluations."""
    wanted = list(expected)
    horizon, step = format_duration(result.horizon), format_duration(STEP)
    test = {
        "rule_files": [rules.name],
        "evaluation_interval": step,
        "tests": [
            {
                "name": "demo replay",
                "interval": step,
                "input_series": [
                    {"series": key, "values": compact(values)}
                    for key, values in sorted(result.series.items())
                ],
                "promql_expr_test": [
                    {
                        "expr": query.format(alerts=_FIRING, horizon=horizon, step=step),
                        "eval_time": horizon,
                        "exp_samples": [
                            {
                                "labels": _matcher({**f.labels, "alertstate": "firing"}),
                                "value": getattr(f, key),
                            }
                            for f in wanted
                        ],
                    }
                    for key, query in QUERIES.items()
                ],
            }
        ],
    }
    path = rules.parent / "demo_replay_test.yml"
    path.write_text(json.dumps(test, indent=1), encoding="utf-8")  # JSON is YAML, and fast to write
    return path


def run_promtool(test_file: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` on `test_file`."""
    return subprocess.run(
        ["promtool", "test", "rules", test_file.name],
        cwd=test_file.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


_GOT = re.compile(r'expr: "(min|max|count)_over_time.*?\n\s*got: (.*?)\n', re.S)
_SAMPLE = re.compile(r"\{(.*?)\} ([-+.\dEe]+)")
_PAIR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def fired(output: str) -> list[Fired]:
    """What fired, read from the report of a failed `promtool_test` (what promtool got)."""
    times: dict[tuple[tuple[str, str], ...], dict[str, int]] = {}
    for kind, got in _GOT.findall(output):
        for labels, value in _SAMPLE.findall(got):
            key = tuple(sorted((k, v) for k, v in _PAIR.findall(labels) if k != "alertstate"))
            times.setdefault(key, {})[kind] = round(float(value))
    # a query promtool got right is not reported: -1 there
    return [
        Fired(dict(key), t.get("min", -1), t.get("max", -1), t.get("count", -1))
        for key, t in sorted(times.items())
    ]
