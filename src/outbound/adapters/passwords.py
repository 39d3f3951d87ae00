"""Password hashing with Argon2id (``argon2-cffi``).

Unlike API keys (256 random bits, a plain SHA-256 digest suffices), passwords are chosen by
people and guessable, so they get a slow, memory-hard hash. The parameters are argon2-cffi's
defaults (RFC 9106's low-memory profile); when they change, a hash made with the old ones is
replaced at the next successful login (:meth:`Passwords.verify` says so).

A password is never logged, never returned and never kept beyond the call that hashes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["Passwords", "Verification"]


@dataclass(frozen=True)
class Verification:
    """The outcome of checking a password: whether it matched, and the hash to store instead
    of the old one when the hashing parameters have changed since it was made."""

    ok: bool
    new_hash: str | None = None


class Passwords:
    """Hashes and checks passwords; pass a configured :class:`argon2.PasswordHasher` to use
    other parameters (tests use cheap ones)."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher()

    @cached_property
    def _dummy(self) -> str:
        # Checked against when there is no user, so that a wrong e-mail address takes as long
        # as a wrong password and does not reveal which addresses exist. Made on first use:
        # a hash costs a noticeable fraction of a second.
        return self._hasher.hash("not a password of anyone")

    def hash(self, password: str) -> str:
        """A new salted hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> Verification:
        """Whether ``password`` matches ``password_hash`` (``None``: no password set, which
        never matches but costs the same time)."""
        if password_hash is None:
            self._check(self._dummy, password)
            return Verification(ok=False)
        if not self._check(password_hash, password):
            return Verification(ok=False)
        if self._hasher.check_needs_rehash(password_hash):
            return Verification(ok=True, new_hash=self._hasher.hash(password))
        return Verification(ok=True)

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            # A mismatch, or a damaged or foreign hash stored by hand that nothing matches.
            return False
