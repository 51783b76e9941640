"""What a web page looks at, read from and written to its URL, so that a view is a link.

The URL takes the read API's own query parameters (`from`, `to`, `agent`, `model`, `status`, ...;
`from=2000-01-01` is all time) plus the page's: `bucket` (hour, day, week, run: the charts'
granularity), `sort` and `page` (the run table). The filter form sends `range` (a preset or
`custom` with the dates `since`/`until`) and empty selects; the page answers such a request with a
redirect to the canonical URL, which holds only what is set.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final
from urllib.parse import urlencode

from fastapi.exceptions import RequestValidationError

from ..aggregates import DAY, HOUR
from ..queries import DIMENSIONS, SORTS, RunFilter
from . import read

ALL_TIME: Final = "2000-01-01"
#: the range presets: (name in the form, `from` in the URL, label)
PRESETS: Final = (
    ("1h", "1h", "last hour"),
    ("24h", "24h", "last 24 hours"),
    ("7d", "7d", "last 7 days"),
    ("30d", "30d", "last 30 days"),
    ("90d", "90d", "last 90 days"),
    ("all", ALL_TIME, "all time"),
)
BUCKETS: Final = ("auto", "hour", "day", "week", "run")
#: the filters the form shows, in its order; provider and environment work in the URL too
SHOWN: Final = ("status", "agent", "model", "issue_type", "project", "team")
ORDER: Final = ("from", "to", "bucket", *DIMENSIONS, "sort", "page")
PAGE_SIZE: Final = 50
MAX_PAGE: Final = 200


class ViewError(ValueError):
    """A query parameter the page cannot use; the message names it."""


@dataclass(frozen=True)
class View:
    """The state of a page: filters, range, granularity, sort and page."""

    params: tuple[tuple[str, str], ...]  # canonical, in ORDER
    flt: RunFilter
    now: float

    @classmethod
    def parse(cls, query: Mapping[str, Sequence[str]], *, default_from: str | None = None) -> View:
        """The view of a canonical query; raises ViewError naming a bad parameter."""
        values = {k: [v for v in query.get(k, ()) if v] for k in ORDER}
        if not values["from"] and default_from is not None:
            values["from"] = [default_from]
        for single in ("from", "to", "bucket", "sort", "page"):
            if len(values[single]) > 1:
                raise ViewError(f"{single}: give it once")
        now = time.time()
        try:
            flt = read.run_filter(
                from_=_one(values["from"]),
                to=_one(values["to"]),
                **{name: values[name] or None for name in DIMENSIONS},
            )
        except RequestValidationError as exc:
            raise ViewError("; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())) from exc
        bucket = _one(values["bucket"])
        if bucket is not None and bucket not in BUCKETS:
            raise ViewError(f"bucket: {bucket!r} is not one of {', '.join(BUCKETS)}")
        sort = _one(values["sort"])
        if sort is not None and sort.removeprefix("-") not in SORTS:
            raise ViewError(f"sort: {sort!r} is not one of {', '.join(SORTS)} (a leading - sorts downwards)")
        page = _one(values["page"])
        if page is not None and not (page.isdigit() and 1 <= int(page) <= MAX_PAGE):
            raise ViewError(f"page: {page!r} is not a page number from 1 to {MAX_PAGE}")
        params = tuple((k, v) for k in ORDER for v in values[k])
        return cls(params, flt, now)

    def get(self, name: str) -> str | None:
        """The value of a single parameter."""
        return next((v for k, v in self.params if k == name), None)

    def values(self, name: str) -> list[str]:
        """Every value of a repeatable parameter."""
        return [v for k, v in self.params if k == name]

    def query(self, *, drop: Iterable[str] = (), **changes: str | None) -> str:
        """The query string of this view with parameters changed (None removes) or dropped."""
        gone = set(drop) | set(changes)
        kept = [(k, v) for k, v in self.params if k not in gone]
        kept += [(k, v) for k, v in changes.items() if v is not None]
        kept.sort(key=lambda kv: ORDER.index(kv[0]))
        return urlencode(kept)

    def link(self, path: str, *, drop: Iterable[str] = (), **changes: str | None) -> str:
        """`path` with this view's query, changed."""
        query = self.query(drop=drop, **changes)
        return f"{path}?{query}" if query else path

    def filters_only(self) -> str:
        """The query of the filters and range alone (for the API and links between pages)."""
        return self.query(drop=("bucket", "sort", "page"))

    @property
    def preset(self) -> str:
        """The range preset this view is on, or `custom`."""
        start, end = self.get("from"), self.get("to")
        if start is None and end is None:
            return "all"
        if end is None:
            for name, value, _ in PRESETS:
                if start == value:
                    return name
        return "custom"

    @property
    def range_label(self) -> str:
        """The range in words: `last 7 days`, `2026-01-01 to 2026-01-08`."""
        for name, _, label in PRESETS:
            if name == self.preset:
                return label
        start = _day(self.flt.start) if self.flt.start is not None else "the first run"
        end = _day(self.flt.end) if self.flt.end is not None else "now"
        return f"{start} to {end}"

    def previous(self) -> RunFilter | None:
        """The period of the same length just before this one (none for all time)."""
        if self.preset == "all" or self.flt.start is None:
            return None
        end = self.flt.end if self.flt.end is not None else self.now
        span = end - self.flt.start
        return replace(self.flt, start=self.flt.start - span, end=self.flt.start)

    def bucket(self, first: float | None, last: float | None) -> str:
        """The charts' granularity: the one asked for, or one that suits the range and the data."""
        asked = self.get("bucket")
        if asked is not None and asked != "auto":
            return asked
        start = self.flt.start if self.flt.start is not None and self.preset != "all" else first
        end = self.flt.end if self.flt.end is not None else self.now
        if start is None or last is None:
            return "day"
        span = max(end - start, 0.0)
        if span <= 2 * HOUR:
            return "run"
        if span <= 3 * DAY:
            return "hour"
        return "day" if span <= 180 * DAY else "week"

    @property
    def sort(self) -> tuple[str, bool]:
        """The run table's order: (column, descending); newest first by default."""
        sort = self.get("sort") or "-ended_at"
        return sort.removeprefix("-"), sort.startswith("-")

    @property
    def page(self) -> int:
        """The run table's page, from 1."""
        return int(self.get("page") or 1)


def _one(values: list[str]) -> str | None:
    return values[0] if values else None


def _day(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M")


def canonical(query: Mapping[str, Sequence[str]]) -> dict[str, list[str]] | None:
    """The canonical parameters of a form submission (`range`, `since`, `until`, empty selects), or
    None when the query is canonical already."""
    form_keys = {"range", "since", "until"}
    if not (form_keys & set(query)) and all(all(query[k]) for k in query) and query.get("bucket") != ["auto"]:
        return None
    # empty selects and the default granularity say nothing: they stay out of the URL
    out = {
        k: [v for v in vs if v and (k, v) != ("bucket", "auto")]
        for k, vs in query.items()
        if k not in form_keys
    }
    chosen = next(iter(query.get("range", ())), None)
    if chosen == "custom":
        since, until = next(iter(query.get("since", ())), ""), next(iter(query.get("until", ())), "")
        out["from"] = [since] if since else []
        # a date picker's end is inclusive: the range runs to the end of that day
        out["to"] = [_after(until)] if until else []
    elif chosen is not None:
        preset = {name: value for name, value, _ in PRESETS}.get(chosen)
        if preset is None:
            raise ViewError(f"range: {chosen!r} is not one of {', '.join(n for n, _, _ in PRESETS)}, custom")
        out["from"], out["to"] = [preset], []
    return {k: v for k, v in out.items() if v}


def _after(day: str) -> str:
    try:
        return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    except ValueError:
        return day  # not a date: the filter names it


def since_value(view: View) -> str:
    """The custom range's start as a date input shows it."""
    return _day(view.flt.start)[:10] if view.flt.start is not None and view.preset == "custom" else ""


def until_value(view: View) -> str:
    """The custom range's (inclusive) end day as a date input shows it."""
    if view.flt.end is None or view.preset != "custom":
        return ""
    return _day(view.flt.end - 1)[:10]
