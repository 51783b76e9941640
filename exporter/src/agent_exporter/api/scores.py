"""`POST` and `GET /api/v1/runs/{run_id}/scores`: scores given to a run after it ended.

`POST` takes `{"scores": [...]}` (or one score object): each score is judged on its own, as the runs
of a batch are; the valid ones are stored even when others are not, and the answer lists each
score's outcome by index. The status says the worst that happened: 404 for an unknown run (nothing
stored), 422 when a score was rejected (a value outside 0..1 names `scores[i].value` and the rule
`maximum`), 409 when one conflicted, 201 when one was stored, 200 when every one was a duplicate.
A stored score counts in `agent_run_score` once, when it is first stored.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .. import queries
from .. import read_models as m
from ..fields import MAX_SCORES, FieldError, Score, parse_score
from ..outcome import Outcome
from ..record import CONTROL_CHARACTERS, MAX_ID_LENGTH
from ..store import StoreError
from .body import BodyTooLargeError, MalformedJSONError, is_json, parse_json, read_body
from .http import RETRY_AFTER, ORJSONResponse, error_response
from .read import reading
from .service import service

router = APIRouter(prefix="/api/v1", tags=["scores"])

#: the answer's status by the worst outcome among the scores
_WORST: Final = (Outcome.REJECTED, Outcome.CONFLICT, Outcome.ACCEPTED, Outcome.DUPLICATE)


def _unknown_run(run_id: str) -> Response:
    return error_response(
        404, "not_found", f"no run with run_id {run_id[:MAX_ID_LENGTH]!r}; send the run first"
    )


async def post_scores(request: Request) -> Response:
    """Store scores of one run; see the module's docstring for the answer."""
    svc = service(request)
    run_id = request.path_params["run_id"]
    if len(run_id) > MAX_ID_LENGTH or CONTROL_CHARACTERS.search(run_id):
        return _unknown_run(run_id)  # no stored run has such an id
    if not is_json(request.headers.get("content-type")):
        return error_response(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        payload = parse_json(await read_body(request, svc.settings.limits.max_body_bytes))
    except BodyTooLargeError:
        return error_response(413, "body_too_large", "the body is over the limit; send fewer scores")
    except MalformedJSONError as exc:
        return error_response(400, "malformed_json", f"the body is not valid JSON: {exc}")
    items: Any = payload.get("scores") if isinstance(payload, dict) and "scores" in payload else [payload]
    if not isinstance(items, list):
        return error_response(422, "invalid_batch", "scores: must be an array of scores")
    if not items or len(items) > MAX_SCORES:
        return error_response(
            422, "invalid_batch", f"scores: send 1 to {MAX_SCORES} scores (got {len(items)})"
        )
    parsed = [parse_score(item, f"scores[{i}].") for i, item in enumerate(items)]
    valid = [p for p in parsed if isinstance(p, Score)]
    received_at = time.time()
    try:
        stored = await run_in_threadpool(svc.store.scores.add, run_id, valid, received_at)
    except StoreError as exc:
        return error_response(503, exc.code, f"nothing was stored: {exc}; retry later", headers=RETRY_AFTER)
    if stored is None:
        return _unknown_run(run_id)
    outcomes = iter(stored.outcomes)
    results: list[dict[str, Any]] = []
    for i, p in enumerate(parsed):
        if isinstance(p, Score):
            outcome = next(outcomes)
            result: dict[str, Any] = {"index": i, "outcome": outcome.value, "score_id": p.key()}
            if outcome is Outcome.ACCEPTED:
                svc.metrics.observe_score(stored.agent, p.name, p.source, p.value, run_id)
            elif outcome is Outcome.CONFLICT:
                result["errors"] = [
                    FieldError(
                        f"scores[{i}].score_id",
                        "conflict",
                        f"scores[{i}].score_id: {p.key()!r} is stored already with a different body; "
                        "it was not overwritten",
                    ).as_dict()
                ]
        else:
            result = {"index": i, "outcome": Outcome.REJECTED.value, "errors": [e.as_dict() for e in p]}
        results.append(result)
    counts = {o: sum(1 for r in results if r["outcome"] == o.value) for o in Outcome}
    status = next(o for o in _WORST if counts[o]).http_status
    body = {
        "accepted": counts[Outcome.ACCEPTED],
        "duplicates": counts[Outcome.DUPLICATE],
        "conflicts": counts[Outcome.CONFLICT],
        "rejected": counts[Outcome.REJECTED],
        "results": results,
    }
    return ORJSONResponse(body, status_code=status)


@router.get(
    "/runs/{run_id:path}/scores",
    summary="The scores given to one run, in the order they arrived",
    responses={404: {"model": m.Error, "description": "no run with this run_id"}},
)
def get_scores(
    request: Request, run_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]
) -> m.ScoresOut:
    """Every score of the run (`POST` the same path to add some)."""
    if CONTROL_CHARACTERS.search(run_id):
        raise HTTPException(404, f"no run with run_id {run_id!r}: not a valid run_id")
    with reading(request) as conn:
        scores = queries.scores_of(conn, run_id)
    if scores is None:
        raise HTTPException(404, f"no run with run_id {run_id!r}")
    return m.ScoresOut(run_id=run_id, scores=[m.ScoreOut.model_validate(s) for s in scores])
