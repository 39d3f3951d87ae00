"""Users of an organisation: create, read, change, deactivate or delete them; check passwords.

A user with history cannot simply disappear: API keys, presence changes and conversations name
them, and reports will. :meth:`UserService.delete` therefore removes only a user nothing names
yet; any other is deactivated instead (kept, ``active: false``, keys revoked, presence
``offline``). Deactivating a user (``PATCH {"active": false}``) stops their keys at once and
sets them offline; reactivating them brings back their keys that were not revoked.

Lowering a user's role revokes their keys whose role the new role does not allow, so a key
never does more than its user may.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    ApiKey,
    ConsoleSession,
    Conversation,
    ConversationEvent,
    ConversationNote,
    Message,
    Organization,
    PresenceChange,
    QueueMember,
    User,
    new_id,
)
from outbound.adapters.passwords import Passwords
from outbound.clock import Clock
from outbound.domain.presence import is_online as presence_online
from outbound.domain.users import PresenceStatus, UserRole, clean_email, key_roles_for
from outbound.errors import ConflictError, InvalidRequestError, NotFoundError
from outbound.schemas import Page, PresenceOut, UserCreate, UserOut, UserUpdate
from outbound.services.audit import CHANGED, diff, record_audit, snapshot
from outbound.services.auth import Principal
from outbound.services.console_sessions import end_user_sessions
from outbound.services.pagination import fetch_page
from outbound.texts import N_

__all__ = [
    "UserService",
    "change_presence",
    "is_online",
    "load_user",
    "presence_out",
    "require_user",
]

# Columns elsewhere that name a user: a user named in any of them is deactivated, not deleted.
_REFERENCES: tuple[Any, ...] = (
    ApiKey.user_id,
    PresenceChange.user_id,
    Conversation.assigned_to,
    Conversation.offered_to,
    QueueMember.user_id,
    ConversationEvent.actor_user_id,
    ConversationEvent.to_user_id,
    ConversationNote.user_id,
    Message.sent_by_user_id,
)


_AUDITED = (
    "email",
    "name",
    "role",
    "languages",
    "skills",
    "capacity",
    "active",
    "time_zone",
    "ui_language",
)


def _audited(user: User) -> dict[str, Any]:
    return {**snapshot(user, _AUDITED), "password": user.password_hash}


def is_online(user: User, now: datetime, timeout: float) -> bool:
    """Whether work can be given to ``user`` now: active, ``available``, and seen (a request
    with one of their keys, or a heartbeat) within ``timeout`` seconds."""
    return user.active and presence_online(
        user.presence, user.last_seen_at, now, timedelta(seconds=timeout)
    )


def presence_out(user: User, now: datetime, timeout: float) -> PresenceOut:
    return PresenceOut(
        user_id=user.id,
        status=PresenceStatus(user.presence),
        online=is_online(user, now, timeout),
        since=user.presence_changed_at,
        last_seen_at=user.last_seen_at,
    )


def change_presence(
    session: Session,
    user: User,
    status: PresenceStatus,
    *,
    source: str,
    changed_by: str | None,
    now: datetime,
) -> bool:
    """Set ``user``'s presence and record the change (nothing when it is the same)."""
    if user.presence == status:
        return False
    session.add(
        PresenceChange(
            org_id=user.org_id,
            user_id=user.id,
            previous_status=user.presence,
            status=status.value,
            source=source,
            changed_by=changed_by,
            changed_at=now,
        )
    )
    user.presence = status.value
    user.presence_changed_at = now
    return True


def load_user(session: Session, org_id: str, user_id: str, *, lock: bool = False) -> User:
    """The user ``user_id`` of ``org_id`` (404 for another organisation's, as if unknown)."""
    query = sa.select(User).where(User.id == user_id, User.org_id == org_id)
    if lock:
        query = query.with_for_update()
    user = session.execute(query).scalar_one_or_none()
    if user is None:
        raise NotFoundError(N_("no user %(user)r", user=user_id))
    return user


def require_user(who: Principal) -> str:
    """The user a key belongs to; a clear 404 for a key of the organisation's own."""
    if who.user_id is None:
        raise NotFoundError(
            N_(
                "this API key belongs to no user; create one for a user with "
                'POST /v1/api-keys {"role": ..., "user_id": ...}'
            ),
            code="no_user",
        )
    return who.user_id


class UserService:
    """The users of an organisation, their fields and passwords."""

    def __init__(
        self, db: Database, clock: Clock, passwords: Passwords, *, presence_timeout: float
    ) -> None:
        self._db = db
        self._clock = clock
        self._passwords = passwords
        self.presence_timeout = presence_timeout

    def _out(self, user: User) -> UserOut:
        return UserOut(
            id=user.id,
            email=user.email,
            name=user.name,
            role=UserRole(user.role),
            languages=list(user.languages),
            skills=list(user.skills),
            capacity=user.capacity,
            active=user.active,
            time_zone=user.time_zone,
            ui_language=user.ui_language,
            has_password=user.password_hash is not None,
            presence=presence_out(user, self._clock.now(), self.presence_timeout),
            created_at=user.created_at,
            updated_at=user.updated_at,
        )

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A transaction in which a concurrent writer taking the same e-mail address first
        (the unique key) is a 409, not a 500."""
        try:
            with self._db.transaction() as session:
                yield session
        except sa.exc.IntegrityError as exc:
            raise _duplicate_email() from exc

    @staticmethod
    def _check_email_free(
        session: Session, org_id: str, email: str, user_id: str | None = None
    ) -> None:
        query = sa.select(User.id).where(User.org_id == org_id, User.email == email)
        if user_id is not None:
            query = query.where(User.id != user_id)
        if session.execute(query).first() is not None:
            raise _duplicate_email()

    def create(self, org_id: str, data: UserCreate, *, by: Principal | None = None) -> UserOut:
        password_hash = (
            self._passwords.hash(data.password.get_secret_value()) if data.password else None
        )
        now = self._clock.now()
        user = User(
            id=new_id(),
            org_id=org_id,
            email=data.email,
            name=data.name,
            role=data.role.value,
            languages=data.languages,
            skills=data.skills,
            capacity=data.capacity,
            active=data.active,
            time_zone=data.time_zone,
            ui_language=data.ui_language,
            password_hash=password_hash,
            presence=PresenceStatus.OFFLINE.value,
            created_at=now,
            updated_at=now,
        )
        with self._write() as session:
            if session.get(Organization, org_id) is None:
                raise NotFoundError(N_("no organisation %(org)r", org=org_id), field="org_id")
            self._check_email_free(session, org_id, user.email)
            session.add(user)
            changes = diff({}, _audited(user), secrets=["password"])
            record_audit(session, org_id, by, "user.created", "user", user.id, now, changes=changes)
        return self._out(user)

    def get(self, org_id: str, user_id: str) -> UserOut:
        with self._db.read() as session:
            return self._out(load_user(session, org_id, user_id))

    def me(self, who: Principal) -> UserOut:
        return self.get(who.org_id, require_user(who))

    def list(
        self,
        org_id: str,
        cursor: str | None,
        limit: int,
        *,
        role: str | None = None,
        active: bool | None = None,
    ) -> Page[UserOut]:
        query: sa.Select[Any] = sa.select(User).where(User.org_id == org_id)
        if role is not None:
            if role not in set(UserRole):
                names = ", ".join(UserRole)
                raise InvalidRequestError(
                    N_("role must be one of: %(names)s", names=names), field="role"
                )
            query = query.where(User.role == role)
        if active is not None:
            query = query.where(User.active.is_(active))
        return fetch_page(self._db, query, User.created_at, User.id, cursor, limit, self._out)

    def update(
        self, org_id: str, user_id: str, data: UserUpdate, *, by: Principal | None = None
    ) -> UserOut:
        given = data.model_fields_set
        password_hash = None
        if "password" in given and data.password is not None:
            password_hash = self._passwords.hash(data.password.get_secret_value())
        now = self._clock.now()
        with self._write() as session:
            user = load_user(session, org_id, user_id, lock=True)
            before = _audited(user)
            own = by is not None and by.user_id == user.id
            role = data.role if data.role is not None and data.role != user.role else None
            deactivate = data.active is False and user.active
            if own and (role is not None or deactivate):
                raise ConflictError(
                    N_("you may not change your own role nor deactivate yourself"), code="own_user"
                )
            if data.email is not None and data.email != user.email:
                self._check_email_free(session, org_id, data.email, user.id)
                user.email = data.email
            for name in ("name", "languages", "skills", "capacity"):
                value = getattr(data, name)
                if value is not None:
                    setattr(user, name, value)
            for name in ("time_zone", "ui_language"):
                if name in given:
                    setattr(user, name, getattr(data, name))
            if "password" in given:
                user.password_hash = password_hash
                # A new password ends every console session signed in with the old one.
                end_user_sessions(session, user.id, now)
            if role is not None:
                user.role = role.value
                self._revoke_keys(session, user, now, keep=key_roles_for(role))
            if deactivate:
                _deactivate(session, user, now, by)
            elif data.active is not None:
                user.active = data.active
            user.updated_at = now
            changes = diff(before, _audited(user), secrets=["password"])
            if "password" in given and "password" not in changes and password_hash is not None:
                changes["password"] = CHANGED  # a new hash of any password differs anyway
            record_audit(session, org_id, by, "user.updated", "user", user.id, now, changes=changes)
        return self._out(user)

    def delete(self, org_id: str, user_id: str, *, by: Principal | None = None) -> bool:
        """Remove the user if nothing names them (True); else deactivate them, revoke their
        keys and set them offline (False)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            user = load_user(session, org_id, user_id, lock=True)
            if by is not None and by.user_id == user.id:
                raise ConflictError(N_("you may not delete yourself"), code="own_user")
            named = any(
                session.execute(sa.select(column).where(column == user.id).limit(1)).first()
                for column in _REFERENCES
            )
            if not named:
                changes = diff(_audited(user), {}, secrets=["password"])
                record_audit(
                    session, org_id, by, "user.deleted", "user", user.id, now, changes=changes
                )
                # Their sessions name them, but only to let them in: they go with them.
                session.execute(sa.delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
                session.delete(user)
                return True
            self._revoke_keys(session, user, now, keep=frozenset())
            if user.active:
                user.updated_at = now
            record_audit(
                session,
                org_id,
                by,
                "user.deactivated",
                "user",
                user.id,
                now,
                changes={"active": {"from": user.active, "to": False}},
            )
            _deactivate(session, user, now, by)
        return False

    @staticmethod
    def _revoke_keys(session: Session, user: User, now: datetime, *, keep: frozenset[str]) -> None:
        """Revoke ``user``'s keys whose role is not in ``keep``."""
        query = (
            sa.update(ApiKey)
            .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if keep:
            query = query.where(ApiKey.role.not_in(sorted(keep)))
        session.execute(query)

    def _find_by_email(self, org_id: str, email: str) -> User | None:
        try:
            address = clean_email(email)
        except ValueError:
            return None
        with self._db.read() as session:
            return session.execute(
                sa.select(User).where(User.org_id == org_id, User.email == address)
            ).scalar_one_or_none()

    def sign_in(self, email: str, password: str) -> tuple[str, UserOut] | None:
        """The organisation and active user with this e-mail address and password, in any
        organisation (the console's sign-in knows no organisation yet), else None.

        An address used in several organisations is checked against each, oldest first; an
        unknown address costs one hash like a wrong password.
        """
        try:
            address = clean_email(email)
        except ValueError:
            address = None
        users: list[User] = []
        if address is not None:
            with self._db.read() as session:
                users = list(
                    session.execute(
                        sa.select(User)
                        .where(User.email == address, User.active.is_(True))
                        .order_by(User.created_at, User.id)
                    ).scalars()
                )
        if not users:
            self._passwords.verify(None, password)
            return None
        for user in users:
            result = self.verify_password(user.org_id, user.email, password)
            if result is not None:
                return user.org_id, result
        return None

    def verify_password(self, org_id: str, email: str, password: str) -> UserOut | None:
        """The active user of ``org_id`` with this e-mail address and password, else None.

        Takes as long for an unknown address as for a wrong password. When the hashing
        parameters have changed since the password was set, its hash is replaced.
        """
        user = self._find_by_email(org_id, email)
        if user is None or not user.active:
            self._passwords.verify(None, password)
            return None
        result = self._passwords.verify(user.password_hash, password)
        if not result.ok:
            return None
        if result.new_hash is not None:
            with self._db.transaction() as session:
                session.execute(
                    sa.update(User)
                    .where(User.id == user.id, User.password_hash == user.password_hash)
                    .values(password_hash=result.new_hash)
                )
            user.password_hash = result.new_hash
        return self._out(user)


def _deactivate(session: Session, user: User, now: datetime, by: Principal | None) -> None:
    """Deactivate ``user`` (their keys stop working, their console sessions end) and set
    them offline."""
    user.active = False
    end_user_sessions(session, user.id, now)
    change_presence(
        session,
        user,
        PresenceStatus.OFFLINE,
        source="system",
        changed_by=by.user_id if by else None,
        now=now,
    )


def _duplicate_email() -> ConflictError:
    return ConflictError(
        N_("another user of the organisation has this e-mail address"),
        field="email",
        code="duplicate_email",
    )
