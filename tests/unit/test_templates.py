"""Unit tests for outbound.domain.templates."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from outbound.domain.templates import (
    ParsedTemplate,
    Placeholder,
    parse_template,
    render,
    validate_template,
)
from outbound.errors import MissingPlaceholderError, TemplateSyntaxError


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", ()),
        ("plain text", ("plain text",)),
        ("{Name}", (Placeholder("Name"),)),
        ("Hello {Name}!", ("Hello ", Placeholder("Name"), "!")),
        ("{a}{b}", (Placeholder("a"), Placeholder("b"))),
        ("{_x}", (Placeholder("_x"),)),
        ("{x1_2}", (Placeholder("x1_2"),)),
        ("{Case.Number}", (Placeholder("Case.Number"),)),
        ("{first-name}", (Placeholder("first-name"),)),
        ("{a.b-c_d9}", (Placeholder("a.b-c_d9"),)),
        ("{{", ("{",)),
        ("}}", ("}",)),
        ("{{Name}}", ("{Name}",)),
        ("a {{ b }} c", ("a { b } c",)),
        ("{{{Name}}}", ("{", Placeholder("Name"), "}")),
        ("{{}}", ("{}",)),
        ("x{{y{Z}", ("x{y", Placeholder("Z"))),
        ("{A} and {A}", (Placeholder("A"), " and ", Placeholder("A"))),
        ("Café {Nom} ✓", ("Café ", Placeholder("Nom"), " ✓")),
        ("line\n{X}\n", ("line\n", Placeholder("X"), "\n")),
    ],
)
def test_parse_parts(text: str, parts: tuple[str | Placeholder, ...]) -> None:
    parsed = parse_template(text)
    assert parsed.parts == parts
    assert parsed.source == text


@pytest.mark.parametrize(
    ("text", "placeholders"),
    [
        ("", ()),
        ("no placeholders {{x}}", ()),
        ("{B} {A} {B} {C} {A}", ("B", "A", "C")),
        ("{a} {A}", ("a", "A")),
    ],
)
def test_placeholders_unique_in_order(text: str, placeholders: tuple[str, ...]) -> None:
    assert parse_template(text).placeholders == placeholders


def test_parsed_template_is_frozen_and_comparable() -> None:
    parsed = parse_template("Hi {X}")
    assert parsed == ParsedTemplate(source="Hi {X}", parts=("Hi ", Placeholder("X")))
    with pytest.raises(AttributeError):
        parsed.source = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "reason", "position"),
    [
        # unclosed: position of the "{"
        ("{", "unclosed placeholder", 0),
        ("Hello {Name", "unclosed placeholder", 6),
        ("{a} {b", "unclosed placeholder", 4),
        ("{{{", "unclosed placeholder", 2),
        # lone "}"
        ("}", "unmatched '}'", 0),
        ("Hello }", "unmatched '}'", 6),
        ("{a}}", "unmatched '}'", 3),
        ("{{a}", "unmatched '}'", 3),
        ("}}}", "unmatched '}'", 2),
        # empty
        ("{}", "empty placeholder", 0),
        ("abc {} def", "empty placeholder", 4),
        ("{{{}", "empty placeholder", 2),
        # nested "{": position of the inner "{"
        ("{a{b}}", "nested '{' in placeholder", 2),
        ("{Name{{", "nested '{' in placeholder", 5),
        # whitespace: position of the whitespace
        ("{ Name}", "whitespace in placeholder name", 1),
        ("{Name }", "whitespace in placeholder name", 5),
        ("{First Name}", "whitespace in placeholder name", 6),
        ("{a\tb}", "whitespace in placeholder name", 2),
        ("{a\nb}", "whitespace in placeholder name", 2),
        ("{a\u00a0b}", "whitespace in placeholder name", 2),
        ("Hi {a and {b}", "whitespace in placeholder name", 5),
        # bad characters: position of the bad character
        ("{Name!}", "invalid character '!' in placeholder name", 5),
        ("Hi {Name, how are you", "invalid character ',' in placeholder name", 8),
        ("{a:b}", "invalid character ':' in placeholder name", 2),
        ("{a/b}", "invalid character '/' in placeholder name", 2),
        ("{Prénom}", "invalid character 'é' in placeholder name", 3),
        ("{a\u0661}", "invalid character '\u0661' in placeholder name", 2),
        # bad first character
        ("{1abc}", "placeholder name cannot start with '1'", 1),
        ("{.a}", "placeholder name cannot start with '.'", 1),
        ("{-a}", "placeholder name cannot start with '-'", 1),
        ("{!}", "placeholder name cannot start with '!'", 1),
        ("{Éa}", "placeholder name cannot start with 'É'", 1),
    ],
)
def test_syntax_errors(text: str, reason: str, position: int) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse_template(text)
    assert info.value.reason == reason
    assert info.value.position == position
    assert str(info.value) == f"{reason} at position {position}"
    with pytest.raises(TemplateSyntaxError):
        validate_template(text)
    with pytest.raises(TemplateSyntaxError):
        render(text, {})


def test_first_error_wins() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse_template("} {")
    assert info.value.position == 0


@pytest.mark.parametrize("text", ["", "x", "{a}", "{{x}}", "{A.B-c}"])
def test_validate_template_accepts_valid(text: str) -> None:
    validate_template(text)


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("", {}, ""),
        ("plain", {"unused": "x"}, "plain"),
        ("Hello {Name}!", {"Name": "Ana"}, "Hello Ana!"),
        ("{A}{B}{A}", {"A": "1", "B": "2"}, "121"),
        ("{Case.Number}", {"Case.Number": "CAS-01"}, "CAS-01"),
        ("{{Name}} is {Name}", {"Name": "Bo"}, "{Name} is Bo"),
        ("{{{Name}}}", {"Name": "Bo"}, "{Bo}"),
        # values are inserted literally, never re-interpreted
        ("{A}", {"A": "{B}", "B": "no"}, "{B}"),
        ("{A}", {"A": "{{"}, "{{"),
        ("{A}", {"A": "}}"}, "}}"),
        ("{A}", {"A": "{"}, "{"),
        ("{A} {B}", {"A": "{B}", "B": "{A}"}, "{B} {A}"),
        ("{A}", {"A": "%s %(x)s {0}"}, "%s %(x)s {0}"),
        # non-str values go through str()
        ("{N}", {"N": 42}, "42"),
        ("{N}", {"N": 1.5}, "1.5"),
        ("{N}", {"N": True}, "true"),
        ("{N}", {"N": 0}, "0"),
        ("{N}", {"N": ""}, ""),
        ("{N}", {"N": ["a"]}, "['a']"),
        ("Café {X} ✓", {"X": "😀"}, "Café 😀 ✓"),
    ],
)
def test_render(template: str, values: Mapping[str, object], expected: str) -> None:
    assert render(template, values) == expected
    assert render(parse_template(template), values) == expected


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        # no exact key: case-insensitive fallback
        ("{FirstName}", {"firstname": "Ana"}, "Ana"),
        ("{firstname}", {"FIRSTNAME": "Ana"}, "Ana"),
        ("{Case.Number}", {"case.number": "7"}, "7"),
        # exact key wins over case variants, wherever they are in the mapping
        ("{Name}", {"name": "lower", "Name": "exact", "NAME": "upper"}, "exact"),
        ("{name}", {"Name": "title", "name": "exact"}, "exact"),
        # several case variants, none exact: first in mapping order
        ("{Name}", {"NAME": "upper", "name": "lower"}, "upper"),
        # exact key with None counts as missing, so the fallback applies
        ("{Name}", {"Name": None, "name": "lower"}, "lower"),
        # None variants are skipped in the fallback too
        ("{Name}", {"NAME": None, "name": "lower"}, "lower"),
    ],
)
def test_render_case_insensitive_fallback(
    template: str, values: Mapping[str, object], expected: str
) -> None:
    assert render(template, values) == expected


@pytest.mark.parametrize(
    ("template", "values"),
    [
        # only ASCII case-insensitivity: no Unicode folding tricks
        ("{ss}", {"ß": "x"}),
        ("{k}", {"\u212a": "kelvin"}),
        ("{Name}", {"Nam": "x", "Name ": "y"}),
    ],
)
def test_render_fallback_is_ascii_only(template: str, values: Mapping[str, object]) -> None:
    with pytest.raises(MissingPlaceholderError):
        render(template, values)


@pytest.mark.parametrize(
    ("template", "values", "missing"),
    [
        ("{A}", {}, "A"),
        ("{A}", {"A": None}, "A"),
        ("{A} {B}", {"A": "x"}, "B"),
        ("{A} {B}", {"B": "x"}, "A"),
        ("{B} {A}", {}, "B"),
        ("{A} {B} {C}", {"A": "1", "C": None}, "B"),
        ("{A} {B} {A}", {"B": "x"}, "A"),
        ("{{A}} {B}", {}, "B"),
    ],
)
def test_render_missing(template: str, values: Mapping[str, object], missing: str) -> None:
    with pytest.raises(MissingPlaceholderError) as info:
        render(template, values)
    assert info.value.key == missing
    assert str(info.value) == f"missing_placeholder: {missing}"


def test_render_does_not_mutate_values() -> None:
    values: dict[str, object] = {"a": "1", "B": None}
    render("{A}", values)
    assert values == {"a": "1", "B": None}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.0, "2"),
        (1e20, "100000000000000000000"),
        (2.5, "2.5"),
        ("x", "x"),
    ],
)
def test_json_values_render_as_json_users_wrote_them(value: object, text: str) -> None:
    assert render("{V}", {"V": value}) == text


def test_render_can_keep_missing_placeholders_as_written() -> None:
    assert render("Hi {Name}, {Case} {{x}}", {"case": "C-1"}, keep_missing=True) == (
        "Hi {Name}, C-1 {x}"
    )
    assert render("{A}{A}", {}, keep_missing=True) == "{A}{A}"
