"""Checks of the API's one JSON error shape."""

from __future__ import annotations

from typing import Any

__all__ = ["assert_error"]


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with exactly the documented error shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body
    error: dict[str, Any] = body["error"]
    assert {"code", "message", "field"} <= set(error), error
    assert error["code"] == code, error
    assert error["field"] == field, error
    assert isinstance(error["message"], str) and error["message"], error
    return error
