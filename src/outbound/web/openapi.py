"""The OpenAPI description, completed with what every operation can answer besides success.

FastAPI describes an operation's success and its validation error (422). The service also
answers, in the one JSON error shape of ``web/errors.py``: 401 and 429 to any request with a
key (missing, wrong, or too many failures from one address), 403 for a role that may not call
the operation, 404 for an id that names nothing of the caller's organisation, 409 for a change
that conflicts with the stored state, 413 and 415 for a body too large or of another type. This
module adds those answers to each operation where they can happen, so that a client generated
from the description (or a fuzzer checking it) knows every status it may receive.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import compile_path

__all__ = ["ERROR_SCHEMA", "allowed_methods", "complete_schema", "install_openapi"]

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string", "description": "A stable, machine-readable code."},
                "message": {"type": "string", "description": "What went wrong, for a person."},
                "field": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "The field, parameter or header at fault, when there is one.",
                },
            },
            "additionalProperties": True,
        }
    },
}

_DESCRIPTIONS = {
    401: "No API key, or one that is unknown, revoked or expired",
    403: "The key's role may not do this",
    404: "Nothing of this organisation has this id",
    409: "The change conflicts with what is stored",
    413: "The body is larger than allowed",
    415: "The body is not of a type this operation takes",
    422: "A parameter, header or field is invalid; `field` names it",
    429: "Too many requests or failed authentications; see Retry-After",
}

_WRITES = {"post", "put", "patch", "delete"}
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _error_answer(status: int) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _authenticated(operation: dict[str, Any]) -> bool:
    if operation.get("security"):
        return True
    return any(
        p.get("in") == "header" and p.get("name", "").lower() == "authorization"
        for p in operation.get("parameters", [])
    )


def _hoist_definitions(node: Any, schemas: dict[str, Any]) -> Any:
    """Move ``$defs`` of inline schemas into the components, pointing their references there."""
    if isinstance(node, dict):
        defs = node.pop("$defs", None)
        if isinstance(defs, dict):
            for name, definition in defs.items():
                schemas.setdefault(name, _hoist_definitions(definition, schemas))
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for key, value in node.items():
            node[key] = _hoist_definitions(value, schemas)
    elif isinstance(node, list):
        return [_hoist_definitions(item, schemas) for item in node]
    return node


def complete_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers each operation can give, and resolve inline ``$defs``."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    schema["paths"] = _hoist_definitions(schema.get("paths", {}), schemas)
    for item in schema["paths"].values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            statuses = {422}
            if _authenticated(operation):
                statuses |= {401, 403, 404, 429}
            elif any(p.get("in") == "path" for p in operation.get("parameters", [])):
                statuses.add(404)
            if method in _WRITES:
                statuses.add(409)
            if "requestBody" in operation:
                statuses |= {413, 415}
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                answer = responses.get(str(status))
                if answer is None or "content" not in answer:
                    described = _error_answer(status)
                    if answer and answer.get("description"):
                        described["description"] = answer["description"]
                    responses[str(status)] = described
                elif status == 422:
                    answer["content"] = _error_answer(422)["content"]
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`complete_schema` of the application's routes at ``/openapi.json``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_schema(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 - FastAPI's documented override


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the description lists at ``path`` (for ``Allow`` on a 405)."""
    templates: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        app.state, "path_templates", None
    )
    if templates is None:
        templates = [
            (compile_path(template)[0], sorted(m.upper() for m in item if m in _METHODS))
            for template, item in app.openapi().get("paths", {}).items()
        ]
        app.state.path_templates = templates
    for pattern, methods in templates:
        if pattern.match(path):
            return methods
    return []
