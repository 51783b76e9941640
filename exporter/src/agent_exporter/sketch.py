"""Mergeable duration sketches: fixed logarithmic buckets with a relative error under 1 %.

A value v > `MIN_VALUE` falls in bucket i = ceil(log_γ v), which covers (γ^(i-1), γ^i], for
γ = 1 + `RELATIVE_ACCURACY` (α). A bucket keeps the count of its values and their sum, and stands
for their mean: a point of the bucket, so within γ - 1 = α of every value in it, and exactly the
value when all of a bucket's values are equal (a batch of timeouts at exactly 600 s reads 600 s,
not 599.6 s). Values at or below `MIN_VALUE` count in a bucket of their own that stands for 0.
Buckets are the same everywhere, so two sketches merge by adding their counts and sums, and a run
leaves one by subtracting its count and its value: an hour's sketch, a day's, and the sum of any of
them are sketches of the same kind, exact in their counts.

A percentile is read as PostgreSQL's `percentile_cont` computes it (`analytics.percentile_rank`):
the values at the two ranks around it, linearly interpolated. Each of the two is within α of the
true value at its rank, so their interpolation is within α of the exact percentile.

Stored, a sketch is a blob of native (int32 bucket, int32 count, float64 sum) entries. Blobs
concatenate into a sketch of their sum: an hour's sketch is appended to by each commit (with
negative counts and sums, when runs leave it), and the reads concatenate them in SQL; `decode` and
`Tally` add repeated buckets up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .analytics import percentile_rank

RELATIVE_ACCURACY: Final = 0.01
GAMMA: Final = 1 + RELATIVE_ACCURACY
_LOG_GAMMA: Final = math.log(GAMMA)
#: durations at or below a microsecond count as 0 (an absolute error under a microsecond)
MIN_VALUE: Final = 1e-6
#: `Tally.percentiles` adds buckets up in an array of a slot per (group, bucket) up to this many
#: slots (8 bytes each, twice), and by sorting the entries beyond
DENSE_LIMIT: Final = 4_000_000
ZERO_BUCKET: Final = math.ceil(math.log(MIN_VALUE) / _LOG_GAMMA) - 1
#: past about 31 years, values share the last bucket (the record's own limits stop far below)
MAX_BUCKET: Final = math.ceil(math.log(1e9) / _LOG_GAMMA)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
#: one stored entry: a bucket, the count of its values, their sum
ENTRY: Final = np.dtype([("bucket", "=i4"), ("count", "=i4"), ("sum", "=f8")])
#: a bucket's count and sum
Bin = tuple[int, float]


def bucket_of(value: float) -> int:
    """The bucket of one value."""
    if value <= MIN_VALUE:
        return ZERO_BUCKET
    return min(MAX_BUCKET, math.ceil(math.log(value) / _LOG_GAMMA))


def buckets_of(values: Floats) -> Ints:
    """`bucket_of` for an array of values."""
    safe = np.maximum(values, MIN_VALUE)
    found = np.minimum(np.ceil(np.log(safe) / _LOG_GAMMA), MAX_BUCKET).astype(np.int64)
    return np.where(values <= MIN_VALUE, ZERO_BUCKET, found)


def value_of(buckets: Ints, counts: Ints, sums: Floats) -> Floats:
    """What each bucket stands for: the mean of its values, kept inside the bucket (a sum that runs
    were subtracted from may be off in its last bits), so within `RELATIVE_ACCURACY` of each."""
    upper = np.power(GAMMA, buckets.astype(np.float64))
    mean = np.clip(sums / np.maximum(counts, 1), upper / GAMMA, upper)
    return np.where(buckets <= ZERO_BUCKET, 0.0, mean)


def encode(bins: Mapping[int, Sequence[float]]) -> bytes:
    """A sketch's blob from bucket counts and sums, `{bucket: (count, sum)}` (empty buckets left
    out; negative counts, which take runs out of a sketch they are appended to, kept)."""
    entries = [(b, int(e[0]), float(e[1])) for b, e in sorted(bins.items()) if e[0]]
    return np.array(entries, dtype=ENTRY).tobytes()


def decode(blob: bytes) -> dict[int, Bin]:
    """Bucket counts and sums of a blob (concatenated blobs add up; buckets whose count adds up to
    zero are left out)."""
    out: dict[int, list[Any]] = {}
    for bucket, count, total in np.frombuffer(blob, dtype=ENTRY).tolist():
        add_bin(out, bucket, count, total)
    return {b: (n, t) for b, (n, t) in out.items() if n}


def add_bin(bins: dict[int, list[Any]], bucket: int, count: int, total: float) -> None:
    """Add `count` values summing to `total` to `bucket` of `bins` ({bucket: [count, sum]})."""
    into = bins.get(bucket)
    if into is None:
        bins[bucket] = [count, total]
    else:
        into[0] += count
        into[1] += total


class Tally:
    """Bucket counts of many groups at once, for reading percentiles off them together.

    Parts arrive as blobs (from the rollups) or raw values, each for a group number, and are kept
    as the bytes they came in (a week by hour holds thousands: joining bytes costs nothing, where
    converting each part to arrays costs more than the arithmetic); `percentiles` adds them all up
    at once.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []  # blobs of ENTRY
        self._owners: list[int] = []  # the group of each part

    def add_blob(self, group: int, blob: bytes) -> None:
        """Add a stored sketch (or several concatenated) to `group`."""
        self.add_blob_to([group], blob)

    def add_blob_to(self, groups: Sequence[int], blob: bytes) -> None:
        """Add a stored sketch (or several concatenated) to each of `groups`, decoded once."""
        if not blob or not groups:
            return
        for group in groups:
            self._parts.append(blob)
            self._owners.append(group)

    def add_values(self, groups: Sequence[int], values: Sequence[float]) -> None:
        """Add raw values, `groups[i]` the group of `values[i]`."""
        of: dict[int, list[float]] = {}
        for group, value in zip(groups, values, strict=True):
            of.setdefault(group, []).append(value)
        for group, mine in of.items():
            raw = np.asarray(mine, dtype=np.float64)
            entries = np.zeros(len(raw), dtype=ENTRY)
            entries["bucket"], entries["count"], entries["sum"] = buckets_of(raw), 1, raw
            self._parts.append(entries.tobytes())
            self._owners.append(group)

    def percentiles(
        self, wanted: Iterable[float], groups: int, ceilings: Sequence[float | None] = ()
    ) -> list[dict[float, float | None]]:
        """Per group 0..groups-1, each wanted percentile (None for a group without values).

        `ceilings[g]`, when given, is the exact maximum of group g: an estimate never exceeds it.
        """
        wanted = tuple(wanted)
        out: list[dict[float, float | None]] = [dict.fromkeys(wanted) for _ in range(groups)]
        if not self._parts:
            return out
        entries = np.frombuffer(b"".join(self._parts), dtype=ENTRY)
        bucket, count = entries["bucket"].astype(np.int64), entries["count"].astype(np.int64)
        total = entries["sum"].astype(np.float64)
        # appended sketches repeat buckets and may take runs back out: add each bucket up first
        lowest = int(bucket.min())
        span = int(bucket.max()) - lowest + 1
        # each entry's slot: its group's first, plus its bucket's place in the span
        starts = np.asarray(self._owners, dtype=np.int64) * span - lowest
        flat = np.repeat(starts, [len(p) // ENTRY.itemsize for p in self._parts]) + bucket
        slots: Ints
        if groups * span <= DENSE_LIMIT:
            # a slot per (group, bucket): two linear passes, where sorting the entries is n log n
            # (a week of hourly sketches at ten million runs: 660,000 entries)
            slots = np.arange(groups * span, dtype=np.int64)
            summed = np.bincount(flat, weights=count, minlength=groups * span).astype(np.int64)
            bucket_sums: Floats = np.bincount(flat, weights=total, minlength=groups * span).astype(np.float64)
        else:
            slots, inverse = np.unique(flat, return_inverse=True)
            summed = np.bincount(inverse, weights=count).astype(np.int64)
            bucket_sums = np.bincount(inverse, weights=total).astype(np.float64)
        kept = summed > 0
        group, bucket, count = slots[kept] // span, slots[kept] % span + lowest, summed[kept]
        sums: Floats = bucket_sums[kept]
        cumulative = np.cumsum(count)
        totals = np.bincount(group, weights=count, minlength=groups).astype(np.int64)
        before = np.concatenate(([0], np.cumsum(totals)[:-1]))
        values = value_of(bucket, count, sums)
        present = [g for g in range(groups) if totals[g] > 0]
        if not present:
            return out
        idx = np.asarray(present, dtype=np.int64)
        n = totals[idx]
        for p in wanted:
            lows, fractions = zip(*(percentile_rank(int(size), p) for size in n.tolist()), strict=True)
            low = np.asarray(lows, dtype=np.int64) - 1  # 0-based rank of the lower neighbour
            high = np.minimum(low + 1, n - 1)
            # the item of rank k sits in the first position whose running count exceeds k
            at_low = np.searchsorted(cumulative, before[idx] + low, side="right")
            at_high = np.searchsorted(cumulative, before[idx] + high, side="right")
            estimate = values[at_low] + np.asarray(fractions) * (values[at_high] - values[at_low])
            for g, v in zip(present, estimate.tolist(), strict=True):
                ceiling = ceilings[g] if g < len(ceilings) else None
                out[g][p] = min(v, ceiling) if ceiling is not None else v
        return out
