"""Routing: which queue a customer's reply goes to, by an organisation's ordered rules.

A :class:`RoutingRule` has conditions on the facts of a reply (:class:`ReplyFacts`) and names a
queue, the skills and language an agent needs for it, and a priority. Rules are tried in order
(``position``, then ``id``); the first whose conditions all hold wins, and a reply no rule takes
goes to the organisation's fallback queue. :func:`route` explains itself: for each rule it tried,
whether it matched, and which condition did not hold.

A condition is ``field op value``. Fields:

- ``channel``, ``configuration``, ``template``, ``flow_run``: the id of the channel the reply
  came on, and of the outbound configuration, template and flow run of the message it answers.
- ``channel_type``: ``sms`` or ``whatsapp``.
- ``language``: the contact's language (BCP-47). A rule's tag matches that tag and every more
  specific one: ``fr`` matches ``fr``, ``fr-FR`` and ``fr-CA``; ``fr-FR`` does not match ``fr``.
- ``contact.<field>``: a contact field (``contact.segment``; dots go into nested values).
- ``text``: the reply's text.

Ops (:class:`RuleOp`): ``eq``, ``ne``, ``in``, ``not_in``, ``contains``, ``not_contains``,
``starts_with``, ``exists``, ``missing``. Text compares without regard to case, accents or
runs of spaces (``Reembolso`` equals ``reembolso``; ``cafe`` equals ``café``), and numbers as
numbers (``"2"`` equals ``2``). ``contains`` looks for whole words: ``refund`` is in
"I want a REFUND!" but not in "refunded"; a list of keywords matches when any one is there.
A list-valued contact field matches when any item does. An absent value (no template, an
unknown contact field, an empty text) satisfies only ``ne``, ``not_in``, ``not_contains`` and
``missing``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

from outbound.domain.conditions import MISSING, is_field_path, resolve_path
from outbound.domain.locales import normalize_locale
from outbound.errors import InvalidLocaleError, InvalidRoutingRuleError, message_of
from outbound.texts import N_

__all__ = [
    "CHANNEL_TYPES",
    "ROUTING_FIELDS",
    "ReplyFacts",
    "RoutingDecision",
    "RoutingRule",
    "RuleCondition",
    "RuleEvaluation",
    "RuleOp",
    "keyword_matches",
    "language_matches",
    "route",
    "validate_conditions",
    "validate_rule",
]


class RuleOp(StrEnum):
    """How a condition compares a reply's value with its own."""

    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    EXISTS = "exists"
    MISSING = "missing"


_O = RuleOp
_EQUALITY: Final = frozenset({_O.EQ, _O.NE, _O.IN, _O.NOT_IN})
_PRESENCE: Final = frozenset({_O.EXISTS, _O.MISSING})
_ID_OPS: Final = _EQUALITY | _PRESENCE
_FIELD_OPS: Final[Mapping[str, frozenset[RuleOp]]] = {
    "channel": _ID_OPS,
    "channel_type": _EQUALITY,
    "configuration": _ID_OPS,
    "template": _ID_OPS,
    "flow_run": _ID_OPS,
    "language": _ID_OPS,
    "text": frozenset(RuleOp) - {_O.IN, _O.NOT_IN},
}
_CONTACT_PREFIX: Final = "contact."

ROUTING_FIELDS: Final = (*_FIELD_OPS, "contact.<field>")
"""The fields a condition may test."""

CHANNEL_TYPES: Final = frozenset({"sms", "whatsapp"})
"""The values of the ``channel_type`` field (the channel types outbound sends on)."""

Scalar = str | int | float | bool
"""A value a condition compares with."""

_Fail = Callable[[str], InvalidRoutingRuleError]
_NUMBER_RE: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class RuleCondition:
    """``field op value`` (see the module docstring); ``value`` is None for exists/missing."""

    field: str
    op: RuleOp | str = RuleOp.EQ
    value: Scalar | tuple[Scalar, ...] | None = None


@dataclass(frozen=True)
class RoutingRule:
    """An ordered rule: replies meeting every condition go to ``queue_id``.

    The decision carries ``required_skills``, ``required_language`` and ``priority`` on to
    assignment (a larger priority is served first). A rule with no conditions takes every reply
    that reaches it. Disabled rules are listed in explanations but never match.
    """

    id: str
    name: str
    queue_id: str
    position: int = 0
    conditions: tuple[RuleCondition, ...] = ()
    required_skills: frozenset[str] = frozenset()
    required_language: str | None = None
    priority: int = 0
    enabled: bool = True


@dataclass(frozen=True)
class ReplyFacts:
    """What routing knows about a customer's reply.

    The ids of what it answers are None when unknown (a customer who wrote first, or a message
    sent outside a configuration, template or flow run).
    """

    channel_id: str
    channel_type: str
    text: str = ""
    configuration_id: str | None = None
    template_id: str | None = None
    flow_run_id: str | None = None
    contact_fields: Mapping[str, Any] = field(default_factory=dict)
    contact_language: str | None = None


@dataclass(frozen=True)
class RuleEvaluation:
    """How one rule fared: matched, or the first condition that did not hold (its index)."""

    rule_id: str
    rule_name: str
    matched: bool
    failed_condition: int | None
    reason: str


@dataclass(frozen=True)
class RoutingDecision:
    """Where a reply goes and why: the winning rule (None: the fallback queue) and every rule
    tried before it, in order. ``queue_id`` is None only when no rule matched and there is no
    fallback queue."""

    queue_id: str | None
    rule: RoutingRule | None
    required_skills: frozenset[str]
    required_language: str | None
    priority: int
    evaluations: tuple[RuleEvaluation, ...]

    @property
    def is_fallback(self) -> bool:
        return self.rule is None


# --- validation -------------------------------------------------------------------------------


def validate_conditions(
    conditions: Iterable[RuleCondition | Mapping[str, Any]],
) -> tuple[RuleCondition, ...]:
    """Check conditions and return them in canonical form.

    Takes :class:`RuleCondition` objects or mappings with ``field``, ``op`` (default ``eq``) and
    ``value`` (as stored in JSON). Lists become tuples, ops :class:`RuleOp`, language tags their
    canonical spelling, channel types lower case. :class:`InvalidRoutingRuleError` names the
    first faulty condition by index and field: an unknown field or op, an op the field does not
    take, or a value of the wrong kind.
    """
    return tuple(_validate_condition(index, raw) for index, raw in enumerate(conditions))


def validate_rule(rule: RoutingRule) -> RoutingRule:
    """Check a rule and return it in canonical form (see :func:`validate_conditions`).

    Also checks that it names a queue, that skills are non-blank labels (kept stripped) and that
    the required language is a BCP-47 tag (kept canonical).
    """
    if not isinstance(rule.name, str) or not rule.name.strip():
        raise InvalidRoutingRuleError(N_("a rule needs a name"), field="name")
    if not isinstance(rule.queue_id, str) or not rule.queue_id:
        raise InvalidRoutingRuleError(N_("a rule must name a queue"), field="queue_id")
    for attribute in ("position", "priority"):
        if not _is_int(getattr(rule, attribute)):
            raise InvalidRoutingRuleError(N_("must be a whole number"), field=attribute)
    skills: set[str] = set()
    for skill in rule.required_skills:
        if not isinstance(skill, str) or not skill.strip():
            raise InvalidRoutingRuleError(
                N_("skills are non-blank labels, not %(skill)r", skill=skill),
                field="required_skills",
            )
        skills.add(skill.strip())
    language = rule.required_language
    if language is not None:
        language = _tag(
            language, lambda reason: InvalidRoutingRuleError(reason, field="required_language")
        )
    return replace(
        rule,
        conditions=validate_conditions(rule.conditions),
        required_skills=frozenset(skills),
        required_language=language,
    )


def _validate_condition(index: int, raw: RuleCondition | Mapping[str, Any]) -> RuleCondition:
    name: Any
    op_name: Any
    value: Any
    if isinstance(raw, RuleCondition):
        name, op_name, value = raw.field, raw.op, raw.value
    elif isinstance(raw, Mapping):
        unknown = sorted(str(key) for key in raw if key not in ("field", "op", "value"))
        if unknown:
            raise InvalidRoutingRuleError(
                N_("unknown key %(key)r (a condition has field, op and value)", key=unknown[0]),
                index=index,
                field=raw.get("field") if isinstance(raw.get("field"), str) else None,
            )
        name, op_name, value = raw.get("field"), raw.get("op", RuleOp.EQ), raw.get("value")
    else:
        raise InvalidRoutingRuleError(
            N_("a condition is an object with field, op and value"), index=index
        )
    if not isinstance(name, str) or not name:
        raise InvalidRoutingRuleError(N_("a condition needs a field"), index=index)
    allowed = _ops_for(name)
    if allowed is None:
        raise InvalidRoutingRuleError(
            N_(
                "unknown field %(field)r; use one of %(fields)s",
                field=name,
                fields=", ".join(ROUTING_FIELDS),
            ),
            index=index,
            field=name,
        )
    try:
        op = RuleOp(op_name)
    except ValueError:
        raise InvalidRoutingRuleError(
            N_("unknown op %(op)r; use one of %(ops)s", op=op_name, ops=", ".join(RuleOp)),
            index=index,
            field=name,
        ) from None
    if op not in allowed:
        raise InvalidRoutingRuleError(
            N_(
                "%(field)s does not take %(op)s; use one of %(ops)s",
                field=name,
                op=op,
                ops=", ".join(o for o in RuleOp if o in allowed),
            ),
            index=index,
            field=name,
        )
    return RuleCondition(name, op, _validate_value(index, name, op, value))


def _ops_for(name: str) -> frozenset[RuleOp] | None:
    if name.startswith(_CONTACT_PREFIX):
        return frozenset(RuleOp) if is_field_path(name[len(_CONTACT_PREFIX) :]) else None
    return _FIELD_OPS.get(name)


def _validate_value(
    index: int, name: str, op: RuleOp, value: Any
) -> Scalar | tuple[Scalar, ...] | None:
    def fail(reason: str) -> InvalidRoutingRuleError:
        return InvalidRoutingRuleError(reason, index=index, field=name)

    if op in _PRESENCE:
        if value is not None:
            raise fail(N_("%(op)s takes no value, not %(value)r", op=op, value=value))
        return None
    if op in (_O.IN, _O.NOT_IN, _O.CONTAINS, _O.NOT_CONTAINS) and _is_list(value):
        if not value:
            raise fail(N_("%(op)s needs at least one value", op=op))
        return tuple(_validate_scalar(fail, name, op, item) for item in value)
    if op in (_O.IN, _O.NOT_IN):
        raise fail(N_("%(op)s takes a list of values, not %(value)r", op=op, value=value))
    return _validate_scalar(fail, name, op, value)


def _validate_scalar(fail: _Fail, name: str, op: RuleOp, value: Any) -> Scalar:
    if op in (_O.CONTAINS, _O.NOT_CONTAINS, _O.STARTS_WITH):
        if not isinstance(value, str) or not _fold(value):
            raise fail(
                N_(
                    "%(op)s takes non-blank text (or a list of texts), not %(value)r",
                    op=op,
                    value=value,
                )
            )
        return value
    if not isinstance(value, str | int | float):
        raise fail(N_("%(op)s takes a text or a number, not %(value)r", op=op, value=value))
    if name == "language":
        return _tag(value, fail)
    if name == "channel_type":
        if not isinstance(value, str) or value.strip().lower() not in CHANNEL_TYPES:
            raise fail(
                N_(
                    "channel_type is one of %(types)s, not %(value)r",
                    types=", ".join(sorted(CHANNEL_TYPES)),
                    value=value,
                )
            )
        return value.strip().lower()
    if name in ("channel", "configuration", "template", "flow_run") and (
        not isinstance(value, str) or not value
    ):
        raise fail(N_("%(field)s takes an id, not %(value)r", field=name, value=value))
    return value


def _tag(value: Any, fail: _Fail) -> str:
    try:
        if not isinstance(value, str):
            raise InvalidLocaleError(value)
        return normalize_locale(value)
    except InvalidLocaleError:
        raise fail(
            N_("%(value)r is not a BCP-47 language tag (such as fr or pt-BR)", value=value)
        ) from None


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- matching ---------------------------------------------------------------------------------


def language_matches(rule_tag: str, tag: str | None) -> bool:
    """Whether ``tag`` is ``rule_tag`` or a more specific tag of it (``fr`` matches ``fr-CA``).

    Compared subtag by subtag, ignoring case, ``_`` read as ``-``.
    """
    if not tag:
        return False
    wanted = rule_tag.strip().replace("_", "-").lower().split("-")
    actual = tag.strip().replace("_", "-").lower().split("-")
    return actual[: len(wanted)] == wanted


def keyword_matches(text: str, keyword: str) -> bool:
    """Whether ``keyword`` occurs in ``text`` as whole words, ignoring case and accents.

    ``refund`` is in "Refund please" and "a REFUND!", not in "refunded". A keyword of several
    words matches them in that order, whatever the spaces between ("cancel  Order").
    """
    needle = _fold(keyword)
    return bool(needle) and _keyword_pattern(needle).search(_fold(text)) is not None


@functools.lru_cache(maxsize=1024)
def _keyword_pattern(needle: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(needle)}(?!\w)")


def _fold(text: str) -> str:
    """Text as compared: accents dropped, case folded, runs of white space as one space."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def _same(actual: Any, expected: Any) -> bool:
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None:
        return left == right
    return _text(actual) == _text(expected)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
        return float(value)
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _fold(str(value))


# --- routing ----------------------------------------------------------------------------------


def route(
    rules: Iterable[RoutingRule], facts: ReplyFacts, fallback_queue_id: str | None
) -> RoutingDecision:
    """Route a reply: the first rule (by ``position``, then ``id``) whose conditions all hold.

    Rules after the winner are not tried and not listed. No match: ``fallback_queue_id``, no
    required skills or language, priority 0. A rule with a condition that is not valid (stored
    before a check, say) does not match; its evaluation says why.
    """
    evaluations: list[RuleEvaluation] = []
    for rule in sorted(rules, key=lambda r: (r.position, r.id)):
        evaluation = _evaluate(rule, facts)
        evaluations.append(evaluation)
        if evaluation.matched:
            return RoutingDecision(
                queue_id=rule.queue_id,
                rule=rule,
                required_skills=rule.required_skills,
                required_language=rule.required_language,
                priority=rule.priority,
                evaluations=tuple(evaluations),
            )
    return RoutingDecision(
        queue_id=fallback_queue_id,
        rule=None,
        required_skills=frozenset(),
        required_language=None,
        priority=0,
        evaluations=tuple(evaluations),
    )


def _evaluate(rule: RoutingRule, facts: ReplyFacts) -> RuleEvaluation:
    def result(matched: bool, failed: int | None, reason: str) -> RuleEvaluation:
        return RuleEvaluation(rule.id, rule.name, matched, failed, reason)

    if not rule.enabled:
        return result(False, None, N_("disabled"))
    try:
        conditions = validate_conditions(rule.conditions)
    except InvalidRoutingRuleError as exc:
        return result(False, exc.index, N_("invalid condition: %(reason)s", reason=message_of(exc)))
    for index, condition in enumerate(conditions):
        actual = _actual(condition.field, facts)
        if not _holds(RuleOp(condition.op), actual, condition.value, condition.field):
            return result(False, index, _why_not(index, condition, actual))
    if not conditions:
        return result(True, None, N_("no conditions: takes every reply"))
    return result(True, None, N_("every condition holds"))


def _actual(name: str, facts: ReplyFacts) -> Any:
    if name.startswith(_CONTACT_PREFIX):
        return resolve_path(facts.contact_fields, name[len(_CONTACT_PREFIX) :])
    return {
        "channel": facts.channel_id,
        "channel_type": facts.channel_type,
        "configuration": facts.configuration_id,
        "template": facts.template_id,
        "flow_run": facts.flow_run_id,
        "language": facts.contact_language,
        "text": facts.text,
    }[name]


def _blank(value: Any) -> bool:
    return value is MISSING or value is None or (isinstance(value, str) and not value.strip())


def _holds(op: RuleOp, actual: Any, expected: Any, name: str) -> bool:
    if op is _O.EXISTS:
        return not _blank(actual)
    if op is _O.MISSING:
        return _blank(actual)
    negated = {_O.NE: _O.EQ, _O.NOT_IN: _O.IN, _O.NOT_CONTAINS: _O.CONTAINS}
    if op in negated:
        return not _holds(negated[op], actual, expected, name)
    if _blank(actual):
        return False
    if _is_list(actual):
        return any(_holds(op, item, expected, name) for item in actual)
    options = expected if _is_list(expected) else (expected,)
    if op in (_O.EQ, _O.IN):
        if name == "language":
            return any(language_matches(str(option), str(actual)) for option in options)
        return any(_same(actual, option) for option in options)
    if op is _O.CONTAINS:
        return any(keyword_matches(_text(actual), str(option)) for option in options)
    # starts_with
    return _text(actual).startswith(_fold(str(expected)))


def _why_not(index: int, condition: RuleCondition, actual: Any) -> str:
    shown = "" if condition.value is None else f" {_show(condition.value)}"
    held = f"conditions[{index}] {condition.field} {condition.op}{shown}"
    if _blank(actual):
        return N_(
            "%(condition)s does not hold: %(field)s is absent",
            condition=held,
            field=condition.field,
        )
    if condition.field == "text":
        if condition.op is _O.CONTAINS:
            return N_("%(condition)s does not hold: no such word in the text", condition=held)
        if condition.op is _O.NOT_CONTAINS:
            return N_("%(condition)s does not hold: the text has it", condition=held)
        return N_("%(condition)s does not hold", condition=held)
    return N_(
        "%(condition)s does not hold: %(field)s is %(value)s",
        condition=held,
        field=condition.field,
        value=_show(actual),
    )


def _show(value: Any) -> str:
    if _is_list(value):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return repr(value) if isinstance(value, str) else str(value).lower()
