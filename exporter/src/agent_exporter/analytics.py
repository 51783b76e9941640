"""Statistics over aggregated runs: percentiles, Wilson bounds, Theil-Sen trends, anomaly rules.

Everything here takes numbers that SQL already reduced (a handful of rows per group), never the
rows of every run. The functions are pure, so the tests pin them to known values.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Final

#: z for a two-sided 95 % interval: the default confidence of every Wilson bound here
Z_95: Final = 1.959963984540054
#: below this many data points a trend is not computed ("insufficient data", as the seeds ask)
MIN_TREND_POINTS: Final = 5
INSUFFICIENT_DATA: Final = "insufficient data"
PERCENTILES: Final = (0.5, 0.95, 0.99)


def percentile_rank(n: int, p: float) -> tuple[int, float]:
    """The 1-based row holding the lower neighbour of percentile `p` of `n` sorted values, and the
    fraction of the way to the next row: PostgreSQL's `percentile_cont` (linear interpolation).

    SQL on SQLite fetches rows `rank` and `rank + 1` of each group; `interpolate` finishes the job.
    """
    h = (n - 1) * p
    lower = int(h)
    return lower + 1, h - lower


def interpolate(n: int, p: float, rows: Mapping[int, float]) -> float | None:
    """Percentile `p` of `n` sorted values given (at least) the two rows around it, by 1-based rank."""
    if n <= 0:
        return None
    rank, fraction = percentile_rank(n, p)
    low = rows.get(rank)
    if low is None:
        return None
    high = rows.get(rank + 1)
    if high is None or fraction == 0:
        return low
    return low + fraction * (high - low)


def wilson_lower_bound(successes: int, attempts: int, z: float = Z_95) -> float:
    """The lower end of the Wilson score interval of a success rate.

    Ranking by it instead of the raw rate is what keeps 3 successes out of 3 (bound 0.44) from
    beating 90 out of 100 (bound 0.83): few attempts mean a wide interval, and a low bound.
    """
    if attempts <= 0 or successes <= 0:
        return 0.0  # exactly: the formula leaves float noise (3e-17) that would rank candidates by it
    p = successes / attempts
    z2 = z * z
    centre = p + z2 / (2 * attempts)
    margin = z * math.sqrt(p * (1 - p) / attempts + z2 / (4 * attempts * attempts))
    return max(0.0, (centre - margin) / (1 + z2 / attempts))


def wilson_upper_bound(successes: int, attempts: int, z: float = Z_95) -> float:
    """The upper end of the Wilson score interval of a success rate."""
    if attempts <= 0:
        return 1.0
    return 1.0 - wilson_lower_bound(attempts - successes, attempts, z)


def theil_sen_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The Theil-Sen estimator: the median slope over every pair of points with distinct x.

    Robust to outliers (a single bad day moves it little), O(n²) in the number of points, which is
    a few dozen days here. None with fewer than two distinct x.
    """
    slopes = [
        (y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points) for x2, y2 in points[i + 1 :] if x2 != x1
    ]
    return median(slopes) if slopes else None


class Trend(enum.StrEnum):
    """Where a metric is heading, judged from the user's point of view."""

    IMPROVING = "improving"
    STABLE = "stable"
    DECLINING = "declining"
    INSUFFICIENT = INSUFFICIENT_DATA


@dataclass(frozen=True, slots=True)
class TrendFit:
    """A Theil-Sen fit of one metric over one window and its verdict."""

    points: int
    trend: Trend
    slope_per_day: float | None = None
    level: float | None = None  # the median of the daily values
    change: float | None = None  # slope × window length: the fitted change across the window
    relative_change: float | None = None  # change / |level|


def classify_trend(
    points: Sequence[tuple[float, float]],
    *,
    window_days: float,
    threshold: float,
    higher_is_better: bool,
    min_points: int = MIN_TREND_POINTS,
) -> TrendFit:
    """Fit a Theil-Sen slope to daily `(day, value)` points and classify it.

    The fitted change across the window, relative to the median level, is compared with
    `threshold` (0.1: a 10 % change over the window is a trend, less is stable). Whether a rise
    is good depends on the metric: success rate up is improving; duration, cost and tokens up are
    declining. Fewer than `min_points` points: insufficient data.
    """
    if len(points) < min_points:
        return TrendFit(points=len(points), trend=Trend.INSUFFICIENT)
    slope = theil_sen_slope(points)
    if slope is None:
        return TrendFit(points=len(points), trend=Trend.INSUFFICIENT)
    level = median(y for _, y in points)
    change = slope * window_days
    relative = change / abs(level) if level != 0 else None
    if change == 0 or (relative is not None and abs(relative) < threshold):
        trend = Trend.STABLE
    else:
        rising = change > 0
        trend = Trend.IMPROVING if rising == higher_is_better else Trend.DECLINING
    return TrendFit(
        points=len(points),
        trend=trend,
        slope_per_day=slope,
        level=level,
        change=change,
        relative_change=relative,
    )


def failure_rate_anomaly(
    window_failures: int,
    window_attempts: int,
    baseline_failures: int,
    baseline_attempts: int,
    *,
    min_attempts: int,
    min_increase: float,
    z: float = Z_95,
) -> bool:
    """Whether the window's failure rate is up on the baseline's, by enough and beyond chance.

    Rates are failures over attempts: runs with a verdict, cancelled runs left out (they are neither
    successes nor failures). Both periods need `min_attempts` attempts; the rate must be up by
    `min_increase` (absolute), and the Wilson lower bound of the window's failure rate must be above
    the baseline rate, so that two failures out of three at night do not count as an incident.
    """
    if window_attempts < min_attempts or baseline_attempts < min_attempts:
        return False
    window_rate = window_failures / window_attempts
    baseline_rate = baseline_failures / baseline_attempts
    return (
        window_rate - baseline_rate >= min_increase
        and wilson_lower_bound(window_failures, window_attempts, z) > baseline_rate
    )


def ratio_anomaly(window: float | None, baseline: float | None, ratio: float) -> bool:
    """Whether `window` is at least `ratio` times a positive `baseline`."""
    if window is None or baseline is None or baseline <= 0:
        return False
    return window >= ratio * baseline
