"""Recipients: a record's context as a send request's contact item.

A flow's ``recipient`` maps the contact item's fields to expressions over the record's context:
``"{contact.mobile_phone}"`` is the value at that path (kept as it is: a number stays a number),
``"Case {case.number}"`` is text with the values put in, and ``{{``/``}}`` are literal braces.
Fields the flow leaves out take defaults for the channel (the contact's phone or WhatsApp number,
its consent, language and time zone, and the case's fields when the record is a case). A context
item whose value is empty is left out, so setting one to null removes a default.
:func:`render_recipient` raises :class:`MappingError` when a record cannot become a contact item.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Final, NamedTuple

from outbound.domain.conditions import is_blank, is_field_path, resolve_path
from outbound.domain.flags import parse_flag
from outbound.errors import MappingError, message_of
from outbound.texts import N_

__all__ = ["MappingError", "check_expression", "provided_context_keys", "render_recipient"]

_CASE_RELATIONSHIP: Final = "incident_msdyn_ocoutboundmessages"
_PHONE_FIELDS: Final = {"sms": "mobile_phone", "whatsapp": "whatsapp_number"}


class _Ref(NamedTuple):
    path: str


def _parse_expression(text: str) -> tuple[str | _Ref, ...]:
    """Literal text and ``{path}`` references; ``{{`` and ``}}`` are literal braces."""
    parts: list[str | _Ref] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in "{}" and text.startswith(char * 2, index):
            literal.append(char)
            index += 2
        elif char == "}":
            raise ValueError(
                N_(
                    "unmatched '}' at position %(position)s (write '}}' for a brace)",
                    position=index,
                )
            )
        elif char == "{":
            end = text.find("}", index)
            if end == -1:
                raise ValueError(
                    N_(
                        "unclosed '{' at position %(position)s (write '{{' for a brace)",
                        position=index,
                    )
                )
            path = text[index + 1 : end].strip()
            if not is_field_path(path):
                raise ValueError(
                    N_("{%(path)s} is not a field path such as {contact.name}", path=path)
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_Ref(path))
            index = end + 1
        else:
            literal.append(char)
            index += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def check_expression(text: str) -> None:
    """Raise :class:`ValueError` naming the fault if ``text`` is not a well-formed expression."""
    _parse_expression(text)


def _text_of(value: Any) -> str:
    if is_blank(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _evaluate(expression: Any, context: Mapping[str, Any], key: str) -> Any:
    if not isinstance(expression, str):
        return expression
    try:
        parts = _parse_expression(expression)
    except ValueError as exc:
        raise MappingError(key, message_of(exc)) from exc
    if len(parts) == 1 and isinstance(parts[0], _Ref):
        return resolve_path(context, parts[0].path)
    return "".join(
        _text_of(resolve_path(context, p.path)) if isinstance(p, _Ref) else p for p in parts
    )


def _optin(value: Any, expression: Any) -> bool:
    if isinstance(value, bool):
        return value
    if is_blank(value) or not str(value).strip():
        return False
    try:
        return parse_flag(str(value))
    except ValueError as exc:
        message = N_(
            "%(value)r from %(expression)s is not yes or no", value=value, expression=expression
        )
        raise MappingError(field="optin", message=message) from exc


def _default_recipient(channel_type: str, context: Mapping[str, Any]) -> dict[str, Any]:
    channel = "whatsapp" if channel_type == "whatsapp" else "sms"
    items = {"CustomerName": "{contact.name}"}
    if not is_blank(resolve_path(context, "case")):
        items |= {
            "CaseName": "{case.title}",
            "CaseNumber": "{case.number}",
            "regardingobjectid": "{case.id}",
            "entityrelationshipname": _CASE_RELATIONSHIP,
        }
    return {
        "tocontactid": f"{{contact.{_PHONE_FIELDS[channel]}}}",
        "optin": f"{{contact.consent.{channel}}}",
        "locale": "{contact.preferred_language}",
        "timezone": "{contact.time_zone}",
        "contextitems": items,
    }


def render_recipient(
    recipient: Mapping[str, Any], context: Mapping[str, Any], channel_type: str
) -> dict[str, Any]:
    """A record's context as a send request's contact item; :class:`MappingError` if it can't."""
    defaults = _default_recipient(channel_type, context)
    spec = {**defaults, **recipient}
    target_expr = spec["tocontactid"]
    target = _evaluate(target_expr, context, "tocontactid")
    if isinstance(target, str):
        target = target.strip()
    if is_blank(target):
        named = _named(target_expr, "tocontactid")
        raise MappingError(
            field="tocontactid", message=N_("no phone number (%(field)s is empty)", field=named)
        )
    if isinstance(target, bool) or not isinstance(target, str | int):
        message = N_(
            "%(value)r from %(expression)s is not a phone number",
            value=target,
            expression=target_expr,
        )
        raise MappingError(field="tocontactid", message=message)
    item: dict[str, Any] = {
        "tocontactid": str(target),
        "optin": _optin(_evaluate(spec["optin"], context, "optin"), spec["optin"]),
    }
    for key in ("locale", "timezone"):
        value = _text_of(_evaluate(spec[key], context, key)).strip()
        if value:
            item[key] = value
    items: dict[str, Any] = {}
    for name, expression in {**defaults["contextitems"], **(spec["contextitems"] or {})}.items():
        value = _evaluate(expression, context, f"contextitems.{name}")
        if is_blank(value):
            continue
        if isinstance(value, date):
            value = value.isoformat()
        elif not isinstance(value, str | int | float):
            message = N_(
                "%(expression)s is not text, a number or true/false", expression=expression
            )
            raise MappingError(field=f"contextitems.{name}", message=message)
        items[name] = value
    item["contextitems"] = items
    if spec.get("sendastemplate") is True:
        item["sendastemplate"] = True
    if spec.get("templateparameters") is not None:
        item["templateparameters"] = {
            str(name): _text_of(_evaluate(expression, context, f"templateparameters.{name}"))
            for name, expression in spec["templateparameters"].items()
        }
    return item


def _named(expression: Any, key: str) -> str:
    """How an error names where an empty value came from: its path, or the expression."""
    if isinstance(expression, str):
        try:
            parts = _parse_expression(expression)
        except ValueError:
            return expression
        if len(parts) == 1 and isinstance(parts[0], _Ref):
            return parts[0].path
        return expression or key
    return key


def provided_context_keys(recipient: Mapping[str, Any], *, case_records: bool) -> frozenset[str]:
    """The context item names (lower case) a flow's mapping fills for every record: its own
    ``contextitems`` and the defaults (``CustomerName``; ``CaseName`` and ``CaseNumber`` when
    the records are cases), less those it sets to null."""
    items: dict[str, Any] = {"CustomerName": "{contact.name}"}
    if case_records:
        items |= {"CaseName": "{case.title}", "CaseNumber": "{case.number}"}
    items |= dict(recipient.get("contextitems") or {})
    return frozenset(name.lower() for name, value in items.items() if value is not None)
