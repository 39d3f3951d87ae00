"""The console's session: a signed cookie, and the CSRF token bound to it.

The cookie holds a random session id (``sid``), and once signed in the user and their
organisation; it is signed (HMAC, :mod:`itsdangerous`) with a key derived from the service's
secret key, so any process of the service can read it and no one can forge it. It is
``HttpOnly``, ``SameSite=Lax``, and ``Secure`` when the request came over HTTPS (directly, or
through a proxy the service is told to trust, or when the public URL is HTTPS). It expires
:data:`SESSION_MAX_AGE_SECONDS` after sign-in; every request reads the user again, so a
deactivated user or a lowered role takes effect at once.

The CSRF token is an HMAC of the session id: every form carries it in a hidden field and every
htmx request in the ``X-CSRF-Token`` header; a state-changing request without the right token
is refused. Signing in starts a new session id (so a token seen before sign-in is worthless
after it), and so does signing out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from outbound.services.console_sessions import SESSION_LIFETIME
from outbound.texts import N_

__all__ = [
    "COOKIE_NAME",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_MAX_AGE_SECONDS",
    "SessionCodec",
    "SessionData",
]

COOKIE_NAME = "outbound_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_MAX_AGE_SECONDS = int(SESSION_LIFETIME.total_seconds())
KEY_PURPOSE = "outbound console session"


@dataclass(frozen=True)
class SessionData:
    """What the cookie says: the session id, and who signed in (nobody yet: ``None``)."""

    sid: str
    user_id: str | None = None
    org_id: str | None = None
    issued_at: float = 0.0

    @classmethod
    def anonymous(cls) -> SessionData:
        return cls(sid=secrets.token_urlsafe(18), issued_at=time.time())

    @classmethod
    def signed_in(cls, user_id: str, org_id: str) -> SessionData:
        return cls(
            sid=secrets.token_urlsafe(18), user_id=user_id, org_id=org_id, issued_at=time.time()
        )


class SessionCodec:
    """Signs and reads session cookies; makes and checks CSRF tokens.

    ``keys`` are derived from the service's secret keys, first key first: the first signs,
    every one verifies (a key rotation does not sign everyone out).
    """

    def __init__(self, keys: Sequence[bytes], *, max_age: int = SESSION_MAX_AGE_SECONDS) -> None:
        if not keys:
            raise ValueError(N_("at least one key is needed"))
        self._keys = list(keys)
        # itsdangerous signs with the last key and tries them all.
        self._serializer = URLSafeTimedSerializer(
            list(reversed(self._keys)), salt="outbound.console.session"
        )
        self.max_age = max_age

    def dumps(self, data: SessionData) -> str:
        payload = {"s": data.sid, "u": data.user_id, "o": data.org_id, "i": data.issued_at}
        return str(self._serializer.dumps(payload))

    def loads(self, cookie: str | None) -> SessionData | None:
        """The session of a cookie, or None if it is absent, forged or too old."""
        if not cookie:
            return None
        try:
            payload = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("s"), str):
            return None
        user_id, org_id = payload.get("u"), payload.get("o")
        if not (isinstance(user_id, str) and isinstance(org_id, str)):
            user_id = org_id = None
        issued = payload.get("i")
        return SessionData(
            sid=payload["s"],
            user_id=user_id,
            org_id=org_id,
            issued_at=float(issued) if isinstance(issued, int | float) else 0.0,
        )

    def csrf_token(self, sid: str) -> str:
        return hmac.new(self._keys[0], b"csrf:" + sid.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, sid: str, token: str | None) -> bool:
        if not token:
            return False
        return any(
            hmac.compare_digest(
                hmac.new(key, b"csrf:" + sid.encode(), hashlib.sha256).hexdigest(), token
            )
            for key in self._keys
        )
