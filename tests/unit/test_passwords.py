"""Argon2 password hashes: salted, checked, and replaced when the parameters change."""

from __future__ import annotations

import argon2

from outbound.adapters.passwords import Passwords

# Cheap parameters: the defaults cost a good fraction of a second per hash.
FAST = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_hashes_are_salted_argon2id_and_check_the_password() -> None:
    passwords = Passwords(FAST)
    first, second = passwords.hash("correct horse"), passwords.hash("correct horse")
    assert first != second
    assert first.startswith("$argon2id$") and "correct horse" not in first
    assert passwords.verify(first, "correct horse").ok
    assert passwords.verify(second, "correct horse").ok
    assert not passwords.verify(first, "correct horse ").ok
    assert not passwords.verify(first, "").ok


def test_no_hash_or_a_damaged_one_never_matches() -> None:
    passwords = Passwords(FAST)
    assert not passwords.verify(None, "anything at all").ok
    assert not passwords.verify("not a hash", "anything at all").ok
    damaged = passwords.hash("correct horse")[:-4] + "AAAA"
    assert not passwords.verify(damaged, "correct horse").ok


def test_a_hash_with_old_parameters_is_replaced_on_success_only() -> None:
    old = Passwords(FAST).hash("correct horse")
    stronger = Passwords(argon2.PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    assert not stronger.verify(old, "wrong horse").ok
    result = stronger.verify(old, "correct horse")
    assert result.ok and result.new_hash is not None
    assert "m=2048,t=2,p=1" in result.new_hash
    again = stronger.verify(result.new_hash, "correct horse")
    assert again.ok and again.new_hash is None
