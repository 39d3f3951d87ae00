"""Presence: what users say they are doing, and whether they are online.

A user sets a status (``available``, ``busy``, ``dnd``, ``away``, ``offline``); a supervisor
or an admin may set anyone's. Being *online*, which is what routing needs, also takes being
seen: a request made with one of the user's keys, or a heartbeat, within
``OUTBOUND_PRESENCE_TIMEOUT_SECONDS`` (see :func:`~outbound.services.users.is_online`). "Seen"
is written by authentication (:func:`~outbound.services.auth.authenticate`) at most every
:func:`seen_interval` seconds per user, so requests do not each cost a write.

Every change of status is kept in ``presence_changes`` (from, to, when, by whom) for reports
of time in each status. Going quiet past the timeout is not a change: it is read from
``last_seen_at``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import User
from outbound.clock import Clock
from outbound.domain.users import PresenceStatus
from outbound.errors import ConflictError, InvalidRequestError
from outbound.schemas import Page, PresenceOut
from outbound.services.auth import SEEN_WRITE_SECONDS, Principal
from outbound.services.conversation_log import publish
from outbound.services.pagination import fetch_page
from outbound.services.users import change_presence, load_user, presence_out
from outbound.texts import N_

__all__ = ["PresenceService", "seen_interval"]


def seen_interval(timeout: float) -> float:
    """How often a user's ``last_seen_at`` is written: every 15 s, or more often under a short
    timeout, so that a user who keeps making requests never looks offline between writes."""
    return min(SEEN_WRITE_SECONDS, timeout / 4)


class PresenceService:
    """Reads and sets users' presence."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        timeout: float,
        on_available: Callable[[str], object] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.timeout = timeout
        self.seen_every = seen_interval(timeout)
        # Called with the user's id after they become available (an assignment pass).
        self._on_available = on_available

    def get(self, org_id: str, user_id: str) -> PresenceOut:
        with self._db.read() as session:
            user = load_user(session, org_id, user_id)
        return presence_out(user, self._clock.now(), self.timeout)

    def seen(self, org_id: str, user_id: str) -> None:
        """Record that the user is there (a console page or its live stream), as a request with
        one of their keys does: written at most every :attr:`seen_every` seconds."""
        now = self._clock.now()
        before = now - timedelta(seconds=self.seen_every)
        with self._db.transaction(urgent=True) as session:
            session.execute(
                sa.update(User)
                .where(
                    User.id == user_id,
                    User.org_id == org_id,
                    sa.or_(User.last_seen_at.is_(None), User.last_seen_at <= before),
                )
                .values(last_seen_at=now)
            )

    def set(
        self, org_id: str, user_id: str, status: PresenceStatus, *, by: Principal
    ) -> PresenceOut:
        """Set a user's status (recorded when it changes); 409 for a deactivated user."""
        now = self._clock.now()
        with self._db.transaction(urgent=True) as session:
            user = load_user(session, org_id, user_id, lock=True)
            if not user.active:
                raise ConflictError(
                    N_("the user is deactivated; reactivate them first"), code="user_inactive"
                )
            previous = user.presence
            change_presence(
                session,
                user,
                status,
                source="user" if by.user_id == user.id else "supervisor",
                changed_by=by.user_id,
                now=now,
            )
            if previous != user.presence:
                publish(
                    session,
                    org_id,
                    "presence",
                    {"user_id": user.id, "status": user.presence, "previous": previous},
                    now,
                )
        if status == PresenceStatus.AVAILABLE and self._on_available is not None:
            self._on_available(user_id)
        return presence_out(user, now, self.timeout)

    def list(
        self,
        org_id: str,
        cursor: str | None,
        limit: int,
        *,
        status: str | None = None,
        online: bool | None = None,
    ) -> Page[PresenceOut]:
        """The presence of every active user, newest user first."""
        now = self._clock.now()
        query: sa.Select[Any] = sa.select(User).where(User.org_id == org_id, User.active)
        if status is not None:
            if status not in set(PresenceStatus):
                names = ", ".join(PresenceStatus)
                raise InvalidRequestError(
                    N_("status must be one of: %(names)s", names=names), field="status"
                )
            query = query.where(User.presence == status)
        if online is not None:
            seen = now - timedelta(seconds=self.timeout)
            condition = sa.and_(
                User.presence == PresenceStatus.AVAILABLE.value,
                User.last_seen_at.is_not(None),
                User.last_seen_at >= seen,
            )
            query = query.where(condition if online else sa.not_(condition))
        return fetch_page(
            self._db,
            query,
            User.created_at,
            User.id,
            cursor,
            limit,
            lambda user: presence_out(user, now, self.timeout),
        )
