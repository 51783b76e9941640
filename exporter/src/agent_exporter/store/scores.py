"""Scores given to runs after they ended (`Store.scores`): a code review, an evaluation, peer
feedback, a person. `POST /api/v1/runs/{run_id}/scores` stores them here.

A score is stored once per (run, score id): sent again with the same body it is a duplicate, with
another body a conflict, reported and never overwritten, as runs are. A score without a `score_id`
is keyed by a digest of itself (`fields.Score.key`), so a score re-sent as it was is one score.
The INSERT skips a key stored meanwhile (ON CONFLICT DO NOTHING), so that two replicas storing the
same score at once make one row and two honest answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..fields import Score
from ..outcome import Outcome

if TYPE_CHECKING:
    from . import Store

_COLUMNS = ("run_id", "score_id", "name", "value", "source", "comment", "author", "received_at", "body_hash")


@dataclass(frozen=True, slots=True)
class ScoredRun:
    """What storing scores of one run did: the run's agent (a metric label), one outcome per score."""

    agent: str
    outcomes: list[Outcome]


class RunScores:
    """The scores table of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _mark(self) -> str:
        return "?" if self._store.dialect == "sqlite" else "%s"

    def add(self, run_id: str, scores: Sequence[Score], received_at: float) -> ScoredRun | None:
        """Store `scores` of the run `run_id` in one transaction; None (nothing stored) when no run
        has that id. Within the request the first score of a key counts, as in a batch of runs."""
        m = self._mark
        outcomes: list[Outcome] = []
        with self._store.write_cursor() as cursor:
            cursor.execute(f"SELECT agent FROM runs WHERE run_id = {m}", (run_id,))  # noqa: S608
            row = cursor.fetchone()
            if row is None:
                return None
            insert = (
                f"INSERT INTO run_scores ({', '.join(_COLUMNS)}) VALUES ({', '.join([m] * len(_COLUMNS))}) "  # noqa: S608
                "ON CONFLICT (run_id, score_id) DO NOTHING"
            )
            hashes: dict[str, str] = {}
            for score in scores:
                key, digest = score.key(), score.body_hash()
                if key not in hashes:
                    cursor.execute(insert, _values(run_id, key, score, received_at, digest))
                    if cursor.rowcount == 1:
                        hashes[key] = digest
                        outcomes.append(Outcome.ACCEPTED)
                        continue
                    cursor.execute(
                        f"SELECT body_hash FROM run_scores WHERE run_id = {m} AND score_id = {m}",  # noqa: S608
                        (run_id, key),
                    )
                    hashes[key] = cursor.fetchone()[0]
                outcomes.append(Outcome.DUPLICATE if hashes[key] == digest else Outcome.CONFLICT)
        return ScoredRun(str(row[0]), outcomes)


def _values(run_id: str, key: str, s: Score, received_at: float, digest: str) -> tuple[Any, ...]:
    return (run_id, key, s.name, s.value, s.source, s.comment, s.author, received_at, digest)
