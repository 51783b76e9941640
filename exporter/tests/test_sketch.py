"""The duration sketch: relative error within 1 % on the shared dataset, merges and subtractions
exact in their counts."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_exporter import aggregates, sketch
from agent_exporter.analytics import interpolate
from agent_exporter.demo import swebench
from agent_exporter.queries import RunFilter
from agent_exporter.sketch import (
    GAMMA,
    MIN_VALUE,
    RELATIVE_ACCURACY,
    ZERO_BUCKET,
    Tally,
    bucket_of,
    decode,
    encode,
)
from agent_exporter.store import Store

from .rollup_oracle import as_row, selected
from .support import SHARED_DATA
from .test_rollups import MIDNIGHT, make_run

EVERY_PERCENT = tuple(p / 100 for p in range(1, 100))


def exact(values: list[float], p: float) -> float:
    ranked = dict(enumerate(sorted(values), start=1))
    result = interpolate(len(values), p, ranked)
    assert result is not None
    return result


def dataset_durations() -> list[float]:
    return [float(r["duration_seconds"]) for r in swebench.records(SHARED_DATA)]


def test_every_percentile_of_the_shared_dataset_is_within_one_percent() -> None:
    durations = dataset_durations()
    assert len(durations) == 1232
    tally = Tally()
    tally.add_values([0] * len(durations), durations)
    estimates = tally.percentiles(EVERY_PERCENT, 1)[0]
    errors = {p: abs(estimates[p] - exact(durations, p)) / exact(durations, p) for p in EVERY_PERCENT}  # type: ignore[operator]
    assert max(errors.values()) <= RELATIVE_ACCURACY
    assert RELATIVE_ACCURACY == 0.01


def test_the_summary_of_the_shared_dataset_from_the_rollups_is_within_one_percent(store: Store) -> None:
    records = list(swebench.records(SHARED_DATA))
    runs = [
        make_run(
            f"s-{i}",
            MIDNIGHT - 9 * 86400 + i * 613.7,
            model=r["model"],
            duration_seconds=float(r["duration_seconds"]),
        )
        for i, r in enumerate(records)
    ]
    for start in range(0, len(runs), 100):  # many commits: the day cells' sketches merge repeatedly
        store.insert_runs(runs[start : start + 100])
    rows = [as_row(r) for r in runs]
    with store.engine.connect() as conn:
        for flt in (RunFilter(), RunFilter(MIDNIGHT - 7 * 86400 + 1800.5, MIDNIGHT - 86400 - 7.0)):
            for agg in aggregates.summary(conn, flt, ("model",)):
                durations = [r["duration_seconds"] for r in selected(rows, flt) if r["model"] == agg.key[0]]
                for p, estimate in agg.duration_percentiles.items():
                    assert estimate is not None
                    assert abs(estimate - exact(durations, p)) <= RELATIVE_ACCURACY * exact(durations, p)


@given(st.floats(MIN_VALUE * 1.01, 7 * 86400.0))
def test_a_bucket_stands_for_its_values_within_the_accuracy(value: float) -> None:
    tally = Tally()
    tally.add_values([0], [value])
    estimate = tally.percentiles([0.5], 1)[0][0.5]
    assert estimate is not None
    assert abs(estimate - value) <= RELATIVE_ACCURACY * value * (1 + 1e-12)
    assert GAMMA ** (bucket_of(value) - 1) < value * (1 + 1e-12)


def test_durations_at_or_below_a_microsecond_count_as_zero() -> None:
    assert bucket_of(0.0) == bucket_of(MIN_VALUE) == ZERO_BUCKET
    tally = Tally()
    tally.add_values([0, 0], [0.0, 0.0])
    assert tally.percentiles([0.5, 0.99], 1) == [{0.5: 0.0, 0.99: 0.0}]


def bins(buckets: Counter[int]) -> dict[int, tuple[int, float]]:
    """Bucket counts and sums, for values of 1.5 s each."""
    return {b: (n, 1.5 * n) for b, n in buckets.items()}


@given(st.lists(st.integers(-300, 900), max_size=60), st.lists(st.integers(-300, 900), max_size=60))
def test_appended_sketches_add_up_and_negative_counts_take_runs_back(
    first: list[int], second: list[int]
) -> None:
    a, b = Counter(first), Counter(second)
    both = encode(bins(a)) + encode(bins(b))  # what `sketch || new` stores
    assert decode(both) == bins(a + b)
    taken_back = {k: (-n, -t) for k, (n, t) in bins(b).items()}
    assert decode(both + encode(taken_back)) == bins(a)


def test_a_bucket_of_equal_values_stands_for_exactly_that_value() -> None:
    # ten-minute timeouts and five-minute runs read as 10m00s and 5m00s, not a bucket's midpoint
    tally = Tally()
    tally.add_values([0] * 9, [300.0] * 6 + [600.0] * 3)
    assert tally.percentiles([0.5, 0.99], 1) == [{0.5: 300.0, 0.99: 600.0}]
    # the same through stored blobs, one run taken back out of the 600 s bucket
    stored = Tally()
    blob = encode({bucket_of(300.0): (6, 1800.0), bucket_of(600.0): (3, 1800.0)})
    stored.add_blob(0, blob + encode({bucket_of(600.0): (-1, -600.0)}))
    assert stored.percentiles([0.5, 1.0], 1) == [{0.5: 300.0, 1.0: 600.0}]


def test_a_bucket_of_different_values_stands_for_their_mean_inside_the_bucket() -> None:
    tally = Tally()
    top = GAMMA ** bucket_of(100.0)  # the upper edge of 100 s's bucket
    low, high = top / GAMMA * 1.0001, top * 0.9999
    assert bucket_of(low) == bucket_of(high)
    tally.add_values([0, 0], [low, high])
    assert tally.percentiles([0.0], 1)[0][0.0] == pytest.approx((low + high) / 2, rel=1e-12)


def test_a_group_without_values_has_no_percentiles_and_a_ceiling_caps_the_estimate() -> None:
    tally = Tally()
    tally.add_values([1, 1], [10.0, 10.0])
    found = tally.percentiles([0.5], 2, [None, 10.0])
    assert found[0] == {0.5: None}
    assert found[1][0.5] == 10.0  # the bucket stands for a little more than 10 s: capped at the maximum


@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.floats(0, 7 * 86400), st.integers(1, 3)),
        min_size=1,
        max_size=80,
    )
)
def test_the_buckets_add_up_the_same_in_slots_and_by_sorting(entries: list[tuple[int, float, int]]) -> None:
    # each entry: a group, a duration, and how often it was stored (as appended blobs)
    def percentiles(dense_limit: int) -> list[dict[float, float | None]]:
        tally = Tally()
        for group, duration, times in entries:
            for _ in range(times):
                tally.add_blob(group, encode({bucket_of(duration): (1, duration)}))
        tally.add_blob(0, encode({bucket_of(1.0): (1, 1.0), bucket_of(2.0): (-1, -2.0)}))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sketch, "DENSE_LIMIT", dense_limit)
            return tally.percentiles([0.0, 0.5, 0.95, 1.0], 6)

    assert percentiles(0) == percentiles(sketch.DENSE_LIMIT)
