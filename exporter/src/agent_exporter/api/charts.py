"""Charts as SVG, drawn on the server: stacked bars, lines and per-run points over time.

Why SVG from Python rather than a JavaScript library: the read API already reduces the runs to a
few hundred buckets, so a chart is a few kilobytes of markup the page carries inline. It needs no
script (the pages work with JavaScript off and under a strict Content-Security-Policy), it takes
its colours from the page's stylesheet (light and dark follow the system with no redraw), its
text is real text, and it is tested like any other function. What it gives up, zooming and
panning, the page's filters and ranges do instead (docs/web.md).

Everything from a record (a model's name, a run id) is escaped: a name is text, never markup.
Times are UTC; each chart states its unit on the axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from markupsafe import Markup, escape

from .. import humanize

Unit = Literal["count", "seconds", "usd", "tokens", "ratio"]
Kind = Literal["bars", "lines", "points"]

WIDTH: Final = 480
HEIGHT: Final = 210
LEFT: Final = 56
RIGHT: Final = 12
TOP: Final = 12
BOTTOM: Final = 26
PLOT_W: Final = WIDTH - LEFT - RIGHT
PLOT_H: Final = HEIGHT - TOP - BOTTOM
#: marker glyphs for per-run points, one per series, so that a series is told apart without colour
MARKERS: Final = ("circle", "cross", "triangle", "square", "diamond")
GLYPHS: Final = {"circle": "●", "cross": "✕", "triangle": "▲", "square": "■", "diamond": "◆"}


@dataclass(frozen=True)
class Series:
    """One named row of values, a value per x (None: nothing to draw there)."""

    name: str
    values: Sequence[float | None]
    tone: str  # a CSS class: ok, bad, err, warn, muted, c1..c6
    dashed: bool = False
    links: Sequence[str | None] = ()  # per-run points: where clicking a point goes


@dataclass(frozen=True)
class Chart:
    """What to draw: x positions (Unix seconds) and series over them."""

    title: str
    unit: Unit
    kind: Kind
    xs: Sequence[float]
    series: Sequence[Series]
    step: float | None = None  # bucket length in seconds; None for per-run points
    notes: Sequence[str] = field(default_factory=tuple)  # what a reader should know (UTC, ...)
    labels: Sequence[str] = ()  # per-run points: a title per x


# --- scales -------------------------------------------------------------------------------------


def nice_step(span: float, target: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `target` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= multiple * power:
            return multiple * power
    return 10.0 * power


def y_ticks(top: float, unit: Unit) -> tuple[float, list[float]]:
    """The axis maximum and its ticks, from 0; rates always span 0-100 %."""
    if unit == "ratio":
        return 1.0, [0.0, 0.25, 0.5, 0.75, 1.0]
    if top <= 0:
        top = 1.0
    if unit == "seconds" and top >= 60:
        step = next((s for s in _DURATION_STEPS if top / s <= 5), _DURATION_STEPS[-1])
    else:
        step = nice_step(top)
    if unit in {"count", "tokens"}:
        step = max(step, 1.0)
    count = math.ceil(top / step - 1e-9)
    return count * step, [i * step for i in range(count + 1)]


#: steps of a duration axis: round seconds, minutes and hours
_DURATION_STEPS: Final = (
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    10800.0,
    21600.0,
)


def _seconds_scale(top: float) -> float:
    return 3600.0 if top >= 7200 else 60.0 if top >= 120 else 1.0


def tick_label(value: float, unit: Unit, top: float) -> str:
    """An axis label: 30m, 2h, $1.5k, 40%, 1.2M."""
    if unit == "ratio":
        return f"{value:.0%}"
    if unit == "seconds":
        scale = _seconds_scale(top)
        suffix = {1.0: "s", 60.0: "m", 3600.0: "h"}[scale]
        number = value / scale
        return f"{number:g}{suffix}"
    if unit == "usd":
        return "$" + _short(value) if value >= 1000 else f"${value:,.2f}".rstrip("0").rstrip(".")
    return _short(value)


def _short(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.2f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.2f}".rstrip("0").rstrip(".")


def value_label(value: float | None, unit: Unit) -> str:
    """A value as a tooltip says it."""
    if value is None:
        return humanize.DASH
    if unit == "ratio":
        return humanize.rate(value)
    if unit == "seconds":
        return humanize.duration(value)
    if unit == "usd":
        return humanize.usd(value)
    return humanize.count(value)


_TIME_STEPS: Final = (
    3600,
    2 * 3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    28 * 86400,
    91 * 86400,
    364 * 86400,
)
_MONDAY: Final = 4 * 86400  # 1970-01-05 was a Monday: weekly ticks fall on Mondays


def time_ticks(start: float, end: float, max_ticks: int = 6) -> list[float]:
    """Round UTC times between start and end: hours, days or Mondays, at most `max_ticks`."""
    span = max(end - start, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= max_ticks), _TIME_STEPS[-1])
    origin = _MONDAY if step >= 7 * 86400 else 0
    first = math.ceil((start - origin) / step) * step + origin
    ticks = []
    tick = first
    while tick <= end:
        ticks.append(float(tick))
        tick += step
    return ticks


def time_label(value: float, step: float) -> str:
    """A time axis label: 14:00 within a day, `Jan 05` across days."""
    moment = datetime.fromtimestamp(value, UTC)
    if step < 86400 and (moment.hour or moment.minute):
        return moment.strftime("%H:%M")
    return moment.strftime("%b %d")


def bucket_label(start: float, step: float | None) -> str:
    """What one bucket or run time is called in a tooltip."""
    moment = datetime.fromtimestamp(start, UTC)
    if step is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    if step < 86400:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    if step == 7 * 86400:
        return "week of " + moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d")


# --- drawing ------------------------------------------------------------------------------------


def _fmt(number: float) -> str:
    return f"{number:.1f}".rstrip("0").rstrip(".")


class _Frame:
    """Positions on the plot of one chart."""

    def __init__(self, chart: Chart, top: float) -> None:
        self.chart = chart
        self.top = top
        xs = chart.xs
        if chart.step is not None:  # buckets: a band each
            self.x0 = xs[0] if xs else 0.0
            self.x1 = (xs[-1] + chart.step) if xs else 1.0
        else:
            self.x0 = min(xs) if xs else 0.0
            self.x1 = max(xs) if xs else 1.0
            pad = max((self.x1 - self.x0) * 0.02, 1.0)
            self.x0, self.x1 = self.x0 - pad, self.x1 + pad

    def x(self, t: float) -> float:
        return LEFT + (t - self.x0) / ((self.x1 - self.x0) or 1.0) * PLOT_W

    def center(self, index: int) -> float:
        step = self.chart.step or 0.0
        return self.x(self.chart.xs[index] + step / 2)

    def band(self) -> float:
        return PLOT_W / max(len(self.chart.xs), 1)

    def y(self, value: float) -> float:
        return TOP + PLOT_H - (value / self.top) * PLOT_H if self.top else TOP + PLOT_H


def _axes(chart: Chart, frame: _Frame, ticks: list[float]) -> list[str]:
    parts = []
    for tick in ticks:
        y = _fmt(frame.y(tick))
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
        label = escape(tick_label(tick, chart.unit, frame.top))
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y}" text-anchor="end" dy="0.32em">{label}</text>'
        )
    times = time_ticks(frame.x0, frame.x1)
    step = times[1] - times[0] if len(times) > 1 else 86400.0
    for t in times:
        x = _fmt(frame.x(t))
        parts.append(f'<line class="axis" x1="{x}" x2="{x}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H + 4}"/>')
        # a label at either edge is anchored inwards, so that it is not cut off
        position = frame.x(t)
        anchor = "end" if position > WIDTH - RIGHT - 24 else "start" if position < LEFT + 24 else "middle"
        parts.append(
            f'<text class="tick" x="{x}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
            f"{escape(time_label(t, step))}</text>"
        )
    base = _fmt(TOP + PLOT_H)
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>')
    return parts


def _bars(chart: Chart, frame: _Frame) -> list[str]:
    parts = []
    band = frame.band()
    width = max(band * 0.8, 1.0)
    for i in range(len(chart.xs)):
        left = _fmt(frame.center(i) - width / 2)
        stacked = 0.0
        for s in chart.series:
            value = s.values[i] or 0.0
            if value <= 0:
                continue
            y_top, y_bottom = frame.y(stacked + value), frame.y(stacked)
            stacked += value
            height = max(y_bottom - y_top, 0.5)
            parts.append(
                f'<rect class="bar {s.tone}" x="{left}" y="{_fmt(y_top)}" width="{_fmt(width)}" '
                f'height="{_fmt(height)}"/>'
            )
    return parts


def _lines(chart: Chart, frame: _Frame) -> list[str]:
    parts = []
    few = len(chart.xs) <= 40
    for s in chart.series:
        path: list[str] = []
        pen_down = False
        dots = []
        for i, value in enumerate(s.values):
            if value is None:
                pen_down = False
                continue
            x, y = _fmt(frame.center(i)), _fmt(frame.y(value))
            path.append(f"{'L' if pen_down else 'M'}{x} {y}")
            pen_down = True
            if few:
                dots.append(f'<circle class="dot {s.tone}" cx="{x}" cy="{y}" r="2.5"/>')
        if path:
            dash = " dashed" if s.dashed else ""
            parts.append(f'<path class="line {s.tone}{dash}" d="{"".join(path)}"/>')
            parts += dots
    return parts


def _marker(shape: str, x: float, y: float) -> str:
    r = 3.2
    if shape == "circle":
        return f"M{_fmt(x - r)} {_fmt(y)}a{r} {r} 0 1 0 {_fmt(2 * r)} 0a{r} {r} 0 1 0 {_fmt(-2 * r)} 0"
    if shape == "square":
        return f"M{_fmt(x - r)} {_fmt(y - r)}h{_fmt(2 * r)}v{_fmt(2 * r)}h{_fmt(-2 * r)}z"
    if shape == "triangle":
        return f"M{_fmt(x)} {_fmt(y - r)}L{_fmt(x + r)} {_fmt(y + r)}H{_fmt(x - r)}z"
    if shape == "diamond":
        return (
            f"M{_fmt(x)} {_fmt(y - r)}L{_fmt(x + r)} {_fmt(y)}"
            f"L{_fmt(x)} {_fmt(y + r)}L{_fmt(x - r)} {_fmt(y)}z"
        )
    return (
        f"M{_fmt(x - r)} {_fmt(y - r)}L{_fmt(x + r)} {_fmt(y + r)}"
        f"M{_fmt(x + r)} {_fmt(y - r)}L{_fmt(x - r)} {_fmt(y + r)}"
    )


def _points(chart: Chart, frame: _Frame) -> list[str]:
    parts = []
    for n, s in enumerate(chart.series):
        shape = MARKERS[n % len(MARKERS)]
        for i, value in enumerate(s.values):
            if value is None:
                continue
            d = _marker(shape, frame.x(chart.xs[i]), frame.y(value))
            title = escape(
                f"{chart.labels[i] if chart.labels else ''} · {s.name} · {value_label(value, chart.unit)}"
            )
            kind = " x" if shape == "cross" else ""
            mark = f'<path class="mark{kind} {s.tone}" d="{d}"><title>{title}</title></path>'
            link = s.links[i] if s.links else None
            parts.append(f'<a href="{escape(link)}">{mark}</a>' if link else mark)
    return parts


def _hover(chart: Chart, frame: _Frame) -> list[str]:
    """A transparent column per bucket whose title lists every series' value there."""
    parts = []
    band = frame.band()
    for i, start in enumerate(chart.xs):
        values = " · ".join(f"{s.name} {value_label(s.values[i], chart.unit)}" for s in chart.series)
        title = escape(f"{bucket_label(start, chart.step)}: {values}")
        left = _fmt(frame.center(i) - band / 2)
        parts.append(
            f'<rect class="hit" x="{left}" y="{TOP}" width="{_fmt(band)}" height="{PLOT_H}">'
            f"<title>{title}</title></rect>"
        )
    return parts


def _summary(chart: Chart) -> str:
    values = [v for s in chart.series for v in s.values if v is not None]
    if not chart.xs or not values:
        return f"{chart.title}: no runs in this range"
    first, last = bucket_label(chart.xs[0], chart.step), bucket_label(chart.xs[-1], chart.step)
    what = "runs" if chart.step is None else "points"
    names = ", ".join(s.name for s in chart.series)
    highest = value_label(max(values), chart.unit)
    return f"{chart.title} ({names}): {len(chart.xs)} {what} from {first} to {last}; highest {highest}"


def render(chart: Chart) -> Markup:
    """The chart as a `<figure>`: its title, a legend, and the SVG."""
    if chart.kind == "bars":
        sums = [sum(s.values[i] or 0.0 for s in chart.series) for i in range(len(chart.xs))]
        highest = max(sums, default=0.0)
    else:
        highest = max((v for s in chart.series for v in s.values if v is not None), default=0.0)
    top, ticks = y_ticks(highest, chart.unit)
    frame = _Frame(chart, top)
    # bars of nothing but zeros are no runs; a line at zero is a figure (every run failed, nothing spent)
    if chart.kind == "bars":
        empty = not any(v for s in chart.series for v in s.values if v)
    else:
        empty = all(v is None for s in chart.series for v in s.values)
    body = _axes(chart, frame, ticks)
    if empty:
        body.append(
            f'<text class="empty" x="{LEFT + PLOT_W / 2}" y="{TOP + PLOT_H / 2}" text-anchor="middle">'
            "no data in this range</text>"
        )
    elif chart.kind == "bars":
        body += _bars(chart, frame)
    elif chart.kind == "lines":
        body += _lines(chart, frame)
    else:
        body += _points(chart, frame)
    if chart.kind != "points" and not empty:
        body += _hover(chart, frame)
    svg = (
        f'<svg class="chart {chart.kind}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(_summary(chart))}" preserveAspectRatio="xMidYMid meet">'
        + "".join(body)
        + "</svg>"
    )
    legend = []
    for n, s in enumerate(chart.series):
        glyph = GLYPHS[MARKERS[n % len(MARKERS)]] if chart.kind == "points" else ""
        style = "dashed" if s.dashed else chart.kind
        legend.append(
            f'<li><span class="swatch {style} {s.tone}" aria-hidden="true">{glyph}</span>'
            f"{escape(s.name)}</li>"
        )
    notes = "".join(f"<span>{escape(n)}</span>" for n in chart.notes)
    return Markup(  # noqa: S704 - every value in it went through escape()
        f'<figure class="chart-box"><figcaption><span class="chart-title">{escape(chart.title)}</span>'
        f'<span class="chart-notes">{notes}</span></figcaption>'
        f'<ul class="legend">{"".join(legend)}</ul>{svg}</figure>'
    )


def timeline(phases: Sequence[tuple[str, float, str | None]]) -> Markup:
    """The phases of a run as bars on a time axis, laid end to end in the order sent (a record gives
    each phase's length, not its start). A failed phase is red and says so in words."""
    row, label_w, right = 26, 150, 90
    width = WIDTH * 2
    plot = width - label_w - right
    total = sum(d for _, d, _ in phases) or 1.0
    height = TOP + row * len(phases) + BOTTOM
    _, ticks = y_ticks(total, "seconds")
    parts = []
    for tick in ticks:
        if tick > total * 1.0001:
            continue
        at = _fmt(label_w + tick / total * plot)
        parts.append(f'<line class="axis" x1="{at}" x2="{at}" y1="{TOP}" y2="{height - BOTTOM + 4}"/>')
        label = escape(tick_label(tick, "seconds", total))
        parts.append(f'<text class="tick" x="{at}" y="{height - 6}" text-anchor="middle">{label}</text>')
    offset = 0.0
    for n, (name, seconds, status) in enumerate(phases):
        y = TOP + n * row
        failed = status in {"failure", "error", "timeout"}
        x = label_w + offset / total * plot
        w = max(seconds / total * plot, 1.0)
        offset += seconds
        words = f"{humanize.duration(seconds)}" + (f" · {status}" if status else "")
        parts.append(
            f'<text x="{label_w - 8}" y="{_fmt(y + row / 2)}" text-anchor="end" dy="0.32em">'
            f"{escape(name)}</text>"
            f'<rect class="bar{" failed" if failed else ""}" x="{_fmt(x)}" y="{_fmt(y + 4)}" '
            f'width="{_fmt(w)}" '
            f'height="{row - 8}"><title>{escape(name)}: {escape(words)}</title></rect>'
            f'<text x="{_fmt(x + w + 6)}" y="{_fmt(y + row / 2)}" dy="0.32em">'
            f"{'✗ ' if failed else ''}{escape(words)}</text>"
        )
    summary = escape(
        "Phases, end to end: " + "; ".join(f"{name} {humanize.duration(d)}" for name, d, _ in phases)
    )
    return Markup(  # noqa: S704 - every value in it went through escape()
        f'<svg class="timeline" viewBox="0 0 {width} {height}" role="img" aria-label="{summary}">'
        + "".join(parts)
        + "</svg>"
    )
