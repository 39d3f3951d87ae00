"""Every message a person may read in the console is a text the catalogs can translate.

The services' and the domain's errors are shown in the console's forms; their messages are
written with ``N_("…", name=value)`` (:mod:`outbound.texts`) so that the French console says
them in French. This test reads the package's source and names each error raised with a bare
string or an f-string instead, so a new one cannot slip in untranslated.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from outbound.texts import N_, Text

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "outbound"

SHOWN = {
    # The API's refusals, each one also a console form's error.
    "RequestError",
    "InvalidRequestError",
    "ImportInputError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "UnsupportedMediaTypeError",
    "RateLimitedError",
    # The domain's refusals, shown where the input was typed.
    "DomainError",
    "TemplateSyntaxError",
    "InvalidNumberError",
    "MappingError",
    "InvalidRoutingRuleError",
    "UnsafeWebhookAddressError",
    "FieldError",
    # Validators of the request bodies and the domain's value checks.
    "ValueError",
    "PydanticCustomError",
}
"""Exceptions (and the flow document's faults) whose words reach a person."""

NOT_SHOWN = ("testing/", "cli/", "adapters/", "config.py", "clock.py", "__main__.py")
"""Code whose errors go to an operator's terminal or a test, never to the console."""


def _words(node: ast.expr) -> bool:
    """A literal sentence: a string, an f-string, or strings joined or formatted."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and any(c.isalpha() for c in node.value)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _words(node.left) or _words(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in {"format", "join"} and _words(node.func.value)
    return False


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _untranslated() -> list[str]:
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(NOT_SHOWN):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or _name(node.func) not in SHOWN:
                continue
            kind = _name(node.func)
            # PydanticCustomError(type, message): the message is the second argument;
            # FieldError(field, line, message): the third.
            position = {"PydanticCustomError": 1, "FieldError": 2}.get(kind or "", 0)
            arguments = list(node.args) + [k.value for k in node.keywords if k.arg == "message"]
            if position < len(node.args):
                arguments = [node.args[position]]
            elif kind in {"PydanticCustomError", "FieldError"}:
                arguments = [k.value for k in node.keywords if k.arg == "message"]
            else:
                arguments = arguments[:1]
            if any(_words(argument) for argument in arguments):
                found.append(f"{relative}:{node.lineno} {kind}")
    return found


def test_every_shown_error_is_written_as_a_text() -> None:
    untranslated = _untranslated()
    assert untranslated == [], (
        f"{len(untranslated)} errors are written as plain strings; write them with "
        f"N_('…', name=value) from outbound.texts: {untranslated}"
    )


def test_a_text_is_its_english_sentence_and_keeps_its_id_and_values() -> None:
    text = N_("no queue %(id)r", id="q_1")
    assert text == "no queue 'q_1'"
    assert isinstance(text, str) and isinstance(text, Text)
    assert (text.msgid, dict(text.values)) == ("no queue %(id)r", {"id": "q_1"})
    assert N_("Field required") == "Field required"


@pytest.mark.parametrize("value", ["plain", N_("inner %(x)s", x=1)])
def test_a_text_survives_pickling(value: str) -> None:
    import pickle

    copy = pickle.loads(pickle.dumps(N_("outer %(v)s", v=value)))
    assert copy == N_("outer %(v)s", v=value)
    assert copy.msgid == "outer %(v)s"
