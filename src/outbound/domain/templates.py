"""Message templates: parsing ``{Key}`` placeholders and rendering them with values.

Syntax
------
* ``{Key}`` is a placeholder. A key starts with an ASCII letter or ``_`` and continues with
  ASCII letters, digits, ``_``, ``.`` or ``-`` (so ``{Case.Number}`` and ``{first-name}`` work).
* ``{{`` and ``}}`` are a literal ``{`` and ``}``.
* Anything else involving a brace is an error, reported as
  :class:`~outbound.errors.TemplateSyntaxError` with the 0-based index of the fault.

Rendering inserts values literally: a value is never parsed again, so a value that contains
``{X}`` or ``{{`` appears in the message exactly as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from outbound.errors import MissingPlaceholderError, TemplateSyntaxError
from outbound.texts import N_

__all__ = [
    "ParsedTemplate",
    "Placeholder",
    "format_value",
    "parse_template",
    "render",
    "validate_template",
]

_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_KEY_START = _ASCII_LETTERS | {"_"}
_KEY_CONTINUE = _KEY_START | frozenset("0123456789.-")


@dataclass(frozen=True)
class Placeholder:
    """A ``{key}`` slot in a template."""

    key: str


@dataclass(frozen=True)
class ParsedTemplate:
    """A template split into literal text and placeholders.

    ``parts`` alternates freely between literal strings (with ``{{``/``}}`` already turned
    into single braces, adjacent literals merged) and :class:`Placeholder` objects.
    """

    source: str
    parts: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Unique placeholder keys, in order of first appearance."""
        seen: dict[str, None] = {}
        for part in self.parts:
            if isinstance(part, Placeholder):
                seen.setdefault(part.key, None)
        return tuple(seen)


def _describe(char: str) -> str:
    # repr() makes control characters visible in the message without extra quoting rules.
    return repr(char)


def _read_placeholder(text: str, start: int) -> tuple[str, int]:
    """Read the placeholder opened at ``start``; return its key and the index after its ``}``."""
    length = len(text)
    index = start + 1
    if index < length and text[index] == "}":
        raise TemplateSyntaxError(N_("empty placeholder"), start)
    while True:
        if index >= length:
            raise TemplateSyntaxError(N_("unclosed placeholder"), start)
        char = text[index]
        if char == "}":
            return text[start + 1 : index], index + 1
        if char == "{":
            raise TemplateSyntaxError(N_("nested '{' in placeholder"), index)
        if char.isspace():
            raise TemplateSyntaxError(N_("whitespace in placeholder name"), index)
        if index == start + 1:
            if char not in _KEY_START:
                raise TemplateSyntaxError(
                    N_("placeholder name cannot start with %(char)s", char=_describe(char)), index
                )
        elif char not in _KEY_CONTINUE:
            raise TemplateSyntaxError(
                N_("invalid character %(char)s in placeholder name", char=_describe(char)), index
            )
        index += 1


def parse_template(text: str) -> ParsedTemplate:
    """Parse ``text`` into a :class:`ParsedTemplate`.

    Raises :class:`~outbound.errors.TemplateSyntaxError` for an unclosed ``{``, a lone ``}``,
    an empty ``{}``, a nested ``{``, whitespace or any other character not allowed in a
    placeholder name; ``position`` is the index of the offending character (for an unclosed
    or empty placeholder, the index of its ``{``).
    """
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    length = len(text)
    index = 0
    while index < length:
        char = text[index]
        if char == "{":
            if index + 1 < length and text[index + 1] == "{":
                literal.append("{")
                index += 2
                continue
            key, index = _read_placeholder(text, index)
            if literal:
                parts.append("".join(literal))
                literal.clear()
            parts.append(Placeholder(key))
        elif char == "}":
            if index + 1 < length and text[index + 1] == "}":
                literal.append("}")
                index += 2
                continue
            raise TemplateSyntaxError(N_("unmatched '}'"), index)
        else:
            literal.append(char)
            index += 1
    if literal:
        parts.append("".join(literal))
    return ParsedTemplate(source=text, parts=tuple(parts))


def validate_template(text: str) -> None:
    """Raise :class:`~outbound.errors.TemplateSyntaxError` if ``text`` is not a valid template."""
    parse_template(text)


def format_value(value: object) -> str:
    """A placeholder value as text: JSON booleans stay ``true``/``false``, whole numbers
    carry no ``.0`` and no exponent (values arrive as JSON, not as Python objects)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _resolve(values: Mapping[str, object]) -> tuple[dict[str, str], dict[str, str]]:
    """Index non-None values by exact key and by lower-cased ASCII key."""
    exact: dict[str, str] = {}
    folded: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        text = format_value(value)
        exact[key] = text
        # Only ASCII keys can take part in the fallback: placeholder names are ASCII, and
        # Unicode case folding would let e.g. "ß" match "ss" or the Kelvin sign match "k".
        if isinstance(key, str) and key.isascii():
            folded.setdefault(key.lower(), text)
    return exact, folded


def render(
    template: ParsedTemplate | str, values: Mapping[str, object], *, keep_missing: bool = False
) -> str:
    """Render ``template`` with ``values``; return the complete text.

    * Values are inserted literally, never re-parsed; non-``str`` values go through ``str()``.
    * A value of ``None`` counts as missing.
    * Keys match exactly. When no exact key has a value, a case-insensitive (ASCII) match is
      used instead, because Dynamics flows are inconsistent about the case of field names
      (``{FirstName}`` filled from ``firstname``). If several keys differ only by case and
      none matches exactly, the first one in the mapping's iteration order wins.
    * If any placeholder has no value, :class:`~outbound.errors.MissingPlaceholderError` is
      raised for the first such key in order of appearance; a partial text is never returned.
      With ``keep_missing`` such a placeholder is written as it is in the template instead
      (``{Key}``).

    A ``str`` template is parsed first and may raise
    :class:`~outbound.errors.TemplateSyntaxError`.
    """
    parsed = parse_template(template) if isinstance(template, str) else template
    exact, folded = _resolve(values)
    resolved: dict[str, str] = {}
    for key in parsed.placeholders:
        value = exact.get(key)
        if value is None:
            value = folded.get(key.lower())
        if value is None:
            if not keep_missing:
                raise MissingPlaceholderError(key)
            value = "{" + key + "}"
        resolved[key] = value
    return "".join(
        resolved[part.key] if isinstance(part, Placeholder) else part for part in parsed.parts
    )
