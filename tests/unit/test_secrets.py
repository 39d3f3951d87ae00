"""The secret box: the first key encrypts, every key decrypts."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from outbound.adapters.secrets import SecretBox, parse_keys
from outbound.errors import SecretKeyError

NEW, OLD = Fernet.generate_key(), Fernet.generate_key()


def test_keys_are_separated_by_commas_or_new_lines() -> None:
    assert parse_keys(f" {NEW.decode()}, {OLD.decode()} ") == [NEW, OLD]
    assert parse_keys(NEW + b"\n" + OLD + b"\n") == [NEW, OLD]


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old_token = SecretBox(OLD).encrypt({"a": "1"})
    box = SecretBox(f"{NEW.decode()},{OLD.decode()}")
    assert box.key_count == 2
    assert box.decrypt(old_token) == {"a": "1"}
    assert not box.is_current(old_token)
    rotated = box.rotate(old_token)
    assert box.is_current(rotated)
    assert SecretBox(NEW).decrypt(rotated) == {"a": "1"}
    assert SecretBox(NEW).decrypt(box.encrypt({"b": "2"})) == {"b": "2"}


@pytest.mark.parametrize("keys", ["", "not-a-key", f"{NEW.decode()},short"])
def test_a_bad_key_is_a_clear_error(keys: str) -> None:
    with pytest.raises(SecretKeyError, match="generate-secret-key"):
        SecretBox(keys)
