"""Figures as people read them: counts, money, durations, rates and times, for the CLI and the web pages.

Every function takes None for "not known" and answers "-" then, never 0: a figure nobody knows is
not a zero. Times are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

DASH: Final = "-"


def count(value: float | None) -> str:
    """An exact count with thousands separators: 1232 -> 1,232."""
    if value is None:
        return DASH
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def compact(value: float | None) -> str:
    """A large number in few characters: 1234 -> 1,234; 12345 -> 12.3k; 1234567 -> 1.23M."""
    if value is None:
        return DASH
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e4, "k")):
        if abs(value) >= size:
            return f"{value / size:.2f}{suffix}" if suffix != "k" else f"{value / 1e3:.1f}k"
    return count(value)


def usd(value: float | None) -> str:
    """USD with cents ($0.0042 for sub-cent amounts)."""
    if value is None:
        return DASH
    return f"${value:,.4f}" if 0 < abs(value) < 0.01 else f"${value:,.2f}"


def rate(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: 0.435 -> 43.5%."""
    return DASH if value is None else f"{value:.{digits}%}"


def duration(seconds: float | None) -> str:
    """Seconds as 850ms, 42.5s, 3m 05s, 2h 04m (hours beyond a day: 50h 00m)."""
    if seconds is None:
        return DASH
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def moment(value: datetime | float | None, *, seconds: bool = False) -> str:
    """A time as `YYYY-MM-DD HH:MM` in UTC (with seconds when asked)."""
    if value is None:
        return DASH
    when = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def ago(seconds: float | None) -> str:
    """How long ago, in one unit: 45s ago, 12m ago, 5h ago, 3d ago."""
    if seconds is None:
        return DASH
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def span(seconds: float) -> str:
    """A period in words, in its largest whole unit: 7 days, 24 hours, 90 minutes."""
    for noun, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size < 1:
            return plural(round(seconds / size), noun)
    return duration(seconds)


def plural(number: int, noun: str) -> str:
    """`1 run`, `2 runs`."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")
