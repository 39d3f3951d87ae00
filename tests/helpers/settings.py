"""Settings the tests share with the processes they start."""

from __future__ import annotations

from cryptography.fernet import Fernet

__all__ = ["SECRET"]

SECRET = Fernet.generate_key().decode()
"""The secret key of this test session: a process started by a test must use it too."""
