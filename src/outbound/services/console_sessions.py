"""Console sessions: which signed-in sessions of a user are alive, and ending them.

The session cookie (:mod:`outbound.console.session`) names its session by a random id; the
service keeps a row per signed-in session, under the SHA-256 of that id (a database read
gives no cookie). A request of a session is accepted only while its row is alive, so that
ending a session ends it everywhere, a copied cookie included: signing out, "sign out my
other sessions", one session signed out from the list, a new password, a deactivation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import ConsoleSession, User
from outbound.clock import Clock
from outbound.errors import NotFoundError
from outbound.texts import N_

__all__ = [
    "SESSION_LIFETIME",
    "ConsoleSessionOut",
    "ConsoleSessions",
    "end_user_sessions",
    "forget_old_sessions",
    "session_key",
]

SESSION_LIFETIME = timedelta(hours=12)
"""How long a session lasts after its sign-in (its cookie expires then too)."""
TOUCH_EVERY = timedelta(minutes=1)
"""``last_seen_at`` is written at most this often per session, not on every request."""
USER_AGENT_LENGTH = 300


def session_key(sid: str) -> str:
    """The stored key of the session whose cookie holds ``sid``."""
    return hashlib.sha256(sid.encode()).hexdigest()


@dataclass(frozen=True)
class ConsoleSessionOut:
    key: str
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime


def end_user_sessions(
    session: Session, user_id: str, now: datetime, *, keep: str | None = None
) -> int:
    """End every live session of ``user_id`` (but the one of key ``keep``), in the caller's
    transaction; how many were ended."""
    query = sa.update(ConsoleSession).where(
        ConsoleSession.user_id == user_id, ConsoleSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(ConsoleSession.id_hash != keep)
    result = session.execute(query.values(revoked_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def forget_old_sessions(session: Session, now: datetime) -> int:
    """Delete the sessions signed in longer ago than :data:`SESSION_LIFETIME` (ended or not:
    their cookies have expired), in the caller's transaction; how many."""
    result = session.execute(
        sa.delete(ConsoleSession).where(ConsoleSession.created_at < now - SESSION_LIFETIME)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class ConsoleSessions:
    """The console sessions of the users of every organisation."""

    def __init__(
        self, db: Database, clock: Clock, *, max_age: timedelta = SESSION_LIFETIME
    ) -> None:
        self._db = db
        self._clock = clock
        self._max_age = max_age

    def start(self, org_id: str, user_id: str, sid: str, user_agent: str | None) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            session.add(
                ConsoleSession(
                    id_hash=session_key(sid),
                    org_id=org_id,
                    user_id=user_id,
                    user_agent=(user_agent or "")[:USER_AGENT_LENGTH] or None,
                    created_at=now,
                    last_seen_at=now,
                )
            )

    def alive(self, sid: str, user_id: str) -> bool:
        """Whether the session of ``sid`` is ``user_id``'s and not ended (it is then seen)."""
        key = session_key(sid)
        now = self._clock.now()
        with self._db.read() as session:
            row = session.execute(
                sa.select(ConsoleSession.user_id, ConsoleSession.last_seen_at).where(
                    ConsoleSession.id_hash == key, ConsoleSession.revoked_at.is_(None)
                )
            ).one_or_none()
        if row is None or row.user_id != user_id:
            return False
        if now - row.last_seen_at >= TOUCH_EVERY:
            with self._db.transaction() as session:
                session.execute(
                    sa.update(ConsoleSession)
                    .where(ConsoleSession.id_hash == key)
                    .values(last_seen_at=now)
                )
        return True

    def list(self, user_id: str) -> list[ConsoleSessionOut]:
        """The user's live sessions, newest first (those older than a cookie lives are over)."""
        since = self._clock.now() - self._max_age
        with self._db.read() as session:
            rows = session.execute(
                sa.select(ConsoleSession)
                .where(
                    ConsoleSession.user_id == user_id,
                    ConsoleSession.revoked_at.is_(None),
                    ConsoleSession.created_at >= since,
                )
                .order_by(ConsoleSession.created_at.desc())
            ).scalars()
            return [
                ConsoleSessionOut(r.id_hash, r.user_agent, r.created_at, r.last_seen_at)
                for r in rows
            ]

    def alive_by_user(self, org_id: str) -> dict[str, int]:
        """How many live sessions each user of the organisation has (those with any)."""
        since = self._clock.now() - self._max_age
        with self._db.read() as session:
            rows = session.execute(
                sa.select(ConsoleSession.user_id, sa.func.count())
                .where(
                    ConsoleSession.org_id == org_id,
                    ConsoleSession.revoked_at.is_(None),
                    ConsoleSession.created_at >= since,
                )
                .group_by(ConsoleSession.user_id)
            ).all()
        return {user_id: int(n) for user_id, n in rows}

    def end_all(self, org_id: str, user_id: str) -> int:
        """End every session of a user of the organisation (an admin's "sign out everywhere")."""
        with self._db.transaction() as session:
            known = session.execute(
                sa.select(User.id).where(User.id == user_id, User.org_id == org_id)
            ).first()
            if known is None:
                raise NotFoundError(N_("no such user"), field="user_id")
            return end_user_sessions(session, user_id, self._clock.now())

    def end(self, sid: str) -> None:
        """End the session of ``sid`` (signing out)."""
        with self._db.transaction() as session:
            session.execute(
                sa.update(ConsoleSession)
                .where(
                    ConsoleSession.id_hash == session_key(sid),
                    ConsoleSession.revoked_at.is_(None),
                )
                .values(revoked_at=self._clock.now())
            )

    def end_one(self, user_id: str, key: str) -> bool:
        """End one of the user's sessions by its listed key; whether it was alive."""
        with self._db.transaction() as session:
            result = session.execute(
                sa.update(ConsoleSession)
                .where(
                    ConsoleSession.id_hash == key,
                    ConsoleSession.user_id == user_id,
                    ConsoleSession.revoked_at.is_(None),
                )
                .values(revoked_at=self._clock.now())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def end_others(self, user_id: str, sid: str) -> int:
        """End every session of the user but the one of ``sid``; how many."""
        with self._db.transaction() as session:
            return end_user_sessions(session, user_id, self._clock.now(), keep=session_key(sid))
