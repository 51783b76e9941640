"""What became of one record sent to the exporter, and the HTTP status that says so."""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """What became of one record: its word in responses and metrics, and `http_status`, the status
    of a request that sent that one record.

    The store decides the first three; validation the last.
    """

    ACCEPTED = "accepted"  # stored now, and counted
    DUPLICATE = "duplicate"  # stored already with the same body: counted once
    CONFLICT = "conflict"  # stored already with a different body: reported, never overwritten
    REJECTED = "rejected"  # invalid: nothing stored

    @property
    def http_status(self) -> int:
        """201 accepted, 200 duplicate, 409 conflict, 422 rejected."""
        return _HTTP_STATUS[self]


_HTTP_STATUS = {Outcome.ACCEPTED: 201, Outcome.DUPLICATE: 200, Outcome.CONFLICT: 409, Outcome.REJECTED: 422}
