"""Idempotent send requests: the ``Idempotency-Key`` header.

A request with a key first reserves it: a ``send_requests`` row in state ``processing``,
committed on its own. The same key again with the same body (its digest, :func:`body_hash`)
gets the stored response once the first request is completed, and 409 while it is still being
processed, unless that reservation is older than the stale delay: its process died, nothing of
it was committed, and the new request takes it over. The same key with another body is 422.

The reservation turns ``completed``, with the response, in the transaction that accepts the
messages (:meth:`IdempotencyKeys.complete`); a request that fails gives its key back. Keys are
remembered for a day, then released by the housekeeping (:func:`forget_expired_keys`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import SendRequest
from outbound.clock import Clock
from outbound.errors import ConflictError, InvalidRequestError
from outbound.schemas import SendOut
from outbound.texts import N_

__all__ = ["IDEMPOTENCY_KEY_LIFETIME", "IdempotencyKeys", "body_hash", "forget_expired_keys"]

IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)


def body_hash(payload: Mapping[str, Any]) -> str:
    """A stable digest of a parsed request body (key order and spacing do not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


_STILL_PROCESSING = N_("a request with this Idempotency-Key is still being processed")


def _in_use(message: str = _STILL_PROCESSING) -> ConflictError:
    return ConflictError(message, field="Idempotency-Key", code="idempotency_key_in_use")


class IdempotencyKeys:
    """Reserves, completes and gives back the idempotency keys of send requests."""

    def __init__(self, db: Database, clock: Clock, *, stale_seconds: float) -> None:
        self._db = db
        self._clock = clock
        self._stale_seconds = stale_seconds

    def reserve(
        self, org_id: str, key: str, digest: str, configuration_id: str, *, urgent: bool = False
    ) -> SendOut | str:
        """Claim an idempotency key: the stored response on a replay, else a request id."""
        for _ in range(2):
            now = self._clock.now()
            try:
                with self._db.transaction(urgent=urgent) as session:
                    existing = session.execute(
                        sa.select(SendRequest).where(
                            SendRequest.org_id == org_id, SendRequest.idempotency_key == key
                        )
                    ).scalar_one_or_none()
                    if existing is None:
                        row = SendRequest(
                            org_id=org_id,
                            configuration_id=configuration_id,
                            idempotency_key=key,
                            body_hash=digest,
                            state="processing",
                            created_at=now,
                        )
                        session.add(row)
                        session.flush()
                        return row.id
                    if existing.body_hash != digest:
                        raise InvalidRequestError(
                            N_("this Idempotency-Key was used with a different request body"),
                            field="Idempotency-Key",
                            code="idempotency_key_reused",
                        )
                    if existing.state == "completed" and existing.response is not None:
                        return SendOut.model_validate(existing.response)
                    age = (now - existing.created_at).total_seconds()
                    if age < self._stale_seconds:
                        raise _in_use(_STILL_PROCESSING)
                    # Its process died mid-request (nothing of it was committed): take over.
                    existing.created_at = now
                    return existing.id
            except IntegrityError:
                continue  # another request inserted the key first; look again
        raise _in_use()

    @staticmethod
    def complete(session: Session, request_id: str, response: dict[str, Any]) -> None:
        """Store the response of a reserved request, in the transaction that accepts it.

        :class:`ConflictError` if the reservation was taken over meanwhile (this process was
        thought dead): the other request's answer stands, and this transaction rolls back.
        """
        updated = session.execute(
            sa.update(SendRequest)
            .where(SendRequest.id == request_id, SendRequest.state == "processing")
            .values(state="completed", response=response)
        )
        if getattr(updated, "rowcount", 1) != 1:
            raise _in_use(N_("a request with this Idempotency-Key was completed meanwhile"))

    def release(self, request_id: str) -> None:
        """Give back the key of a request that failed, so that it may be tried again."""
        with self._db.transaction() as session:
            session.execute(
                sa.delete(SendRequest).where(
                    SendRequest.id == request_id, SendRequest.state == "processing"
                )
            )


def forget_expired_keys(session: Session, now: datetime) -> None:
    """Release the keys of requests completed more than a day ago: they may be used again."""
    session.execute(
        sa.update(SendRequest)
        .where(
            SendRequest.idempotency_key.is_not(None),
            SendRequest.state == "completed",
            SendRequest.created_at < now - IDEMPOTENCY_KEY_LIFETIME,
        )
        .values(idempotency_key=None)
    )
