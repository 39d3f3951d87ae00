"""Unit tests for the error tree (outbound.errors) and its HTTP answers (outbound.web.errors)."""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

from starlette.exceptions import HTTPException

import outbound
from outbound import errors
from outbound.errors import (
    DomainError,
    FieldError,
    FlowDefinitionError,
    ImportInputError,
    NotFoundError,
    OutboundError,
    RateLimitedError,
    WebhookSignatureError,
)
from outbound.web.errors import error_response


def _all_subclasses(cls: type[Exception]) -> set[type[Exception]]:
    found: set[type[Exception]] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def _body(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = error_response(exc)
    return response.status_code, json.loads(bytes(response.body)), dict(response.headers)


def test_every_error_lives_in_errors_and_its_drawn_tree() -> None:
    for module in pkgutil.walk_packages(outbound.__path__, "outbound."):
        if ".migrations" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    doc = errors.__doc__ or ""
    for cls in _all_subclasses(OutboundError):
        assert cls.__module__ == "outbound.errors", cls
        assert f"── {cls.__name__} " in doc, cls
        assert cls.__name__ in errors.__all__, cls


def test_domain_errors_carry_no_http_status() -> None:
    for cls in _all_subclasses(DomainError):
        assert not hasattr(cls, "status_code"), cls


def test_a_flow_documents_faults_answer_422_with_every_fault() -> None:
    error = FlowDefinitionError(
        [FieldError("name", 1, "must not be empty"), FieldError("trigger.cron", None, "bad")]
    )
    status, body, _headers = _body(error)
    assert status == 422
    assert body == {
        "error": {
            "code": "invalid_flow",
            "message": "name (line 1): must not be empty (and 1 more)",
            "field": "name",
            "errors": [
                {"field": "name", "line": 1, "message": "must not be empty"},
                {"field": "trigger.cron", "line": None, "message": "bad"},
            ],
        }
    }


def test_request_errors_answer_their_status_in_the_one_shape() -> None:
    assert _body(NotFoundError("no such webhook"))[:2] == (
        404,
        {"error": {"code": "not_found", "message": "no such webhook", "field": None}},
    )
    status, body, _headers = _body(ImportInputError("no header", field="header"))
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        422,
        "invalid_request",
        "header",
    )
    status, body, headers = _body(RateLimitedError("slow down", retry_after=7))
    assert (status, headers["retry-after"], body["error"]["retry_after"]) == (429, "7", 7)


def test_refused_webhooks_and_unknown_errors() -> None:
    assert _body(WebhookSignatureError("X-Twilio-Signature does not match"))[:2] == (
        403,
        {
            "error": {
                "code": "invalid_signature",
                "message": "X-Twilio-Signature does not match",
                "field": None,
            }
        },
    )
    status, body, _headers = _body(RuntimeError("secret detail"))
    assert status == 500
    assert body["error"]["code"] == "internal_error"
    assert "secret" not in json.dumps(body)
    status, body, _headers = _body(HTTPException(405, "Method Not Allowed"))
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")
