"""Unit tests for outbound.domain.routing: rule conditions, their checks and ordered routing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outbound.domain.routing import (
    CHANNEL_TYPES,
    ROUTING_FIELDS,
    ReplyFacts,
    RoutingRule,
    RuleCondition,
    RuleOp,
    keyword_matches,
    language_matches,
    route,
    validate_conditions,
    validate_rule,
)
from outbound.errors import DomainError, InvalidRoutingRuleError

FACTS = ReplyFacts(
    channel_id="ch-1",
    channel_type="whatsapp",
    text="Bonjour, je voudrais un REMBOURSEMENT de ma commande n°42 s'il vous plaît",
    configuration_id="cfg-1",
    template_id="tpl-1",
    flow_run_id=None,
    contact_fields={
        "segment": "VIP",
        "score": 7,
        "tags": ["late-payer", "Premium"],
        "address": {"city": "Lyon"},
        "email": None,
        "nickname": "",
    },
    contact_language="fr-FR",
)


def holds(field: str, op: str, value: Any = None, facts: ReplyFacts = FACTS) -> bool:
    rule = RoutingRule("r", "rule", "q", conditions=(RuleCondition(field, op, value),))
    evaluation = route([rule], facts, "fallback").evaluations[0]
    assert "invalid" not in evaluation.reason, evaluation.reason
    return evaluation.matched


def rule(rule_id: str, position: int, *conditions: RuleCondition, **kwargs: Any) -> RoutingRule:
    return RoutingRule(
        rule_id, f"rule {rule_id}", f"q-{rule_id}", position, tuple(conditions), **kwargs
    )


# --- fields and ops ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("channel", "eq", "ch-1", True),
        ("channel", "eq", "CH-1", True),
        ("channel", "eq", "ch-2", False),
        ("channel", "ne", "ch-2", True),
        ("channel", "in", ["ch-2", "ch-1"], True),
        ("channel", "not_in", ["ch-2", "ch-3"], True),
        ("channel", "not_in", ["ch-1"], False),
        ("channel", "exists", None, True),
        ("channel_type", "eq", "whatsapp", True),
        ("channel_type", "eq", "SMS", False),
        ("channel_type", "in", ["sms", "whatsapp"], True),
        ("configuration", "eq", "cfg-1", True),
        ("template", "in", ["tpl-1"], True),
        ("template", "missing", None, False),
        ("flow_run", "missing", None, True),
        ("flow_run", "exists", None, False),
        ("flow_run", "eq", "run-1", False),
        ("flow_run", "ne", "run-1", True),
        ("flow_run", "not_in", ["run-1"], True),
        ("language", "eq", "fr", True),
        ("language", "eq", "fr-FR", True),
        ("language", "eq", "fr-CA", False),
        ("language", "eq", "en", False),
        ("language", "ne", "en", True),
        ("language", "in", ["de", "fr"], True),
        ("language", "not_in", ["fr"], False),
        ("language", "exists", None, True),
        ("text", "contains", "remboursement", True),
        ("text", "contains", "rembourse", False),
        ("text", "contains", "plait", True),
        ("text", "contains", "s'il vous", True),
        ("text", "contains", ["refund", "Remboursement"], True),
        ("text", "contains", ["refund", "money"], False),
        ("text", "not_contains", "stop", True),
        ("text", "not_contains", ["stop", "commande"], False),
        ("text", "starts_with", "  BONJOUR", True),
        ("text", "starts_with", "je", False),
        ("text", "eq", "bonjour", False),
        ("text", "exists", None, True),
        ("contact.segment", "eq", "vip", True),
        ("contact.segment", "ne", "vip", False),
        ("contact.segment", "in", ["gold", "VIP"], True),
        ("contact.segment", "starts_with", "v", True),
        ("contact.segment", "contains", "vip", True),
        ("contact.score", "eq", "7", True),
        ("contact.score", "eq", 7.0, True),
        ("contact.score", "in", [1, 7], True),
        ("contact.score", "starts_with", "7", True),
        ("contact.tags", "eq", "premium", True),
        ("contact.tags", "contains", "payer", True),
        ("contact.tags", "contains", "late", True),
        ("contact.tags", "contains", "pay", False),
        ("contact.tags", "ne", "premium", False),
        ("contact.tags", "not_in", ["gold"], True),
        ("contact.tags", "starts_with", "late", True),
        ("contact.address.city", "eq", "lyon", True),
        ("contact.address.zip", "missing", None, True),
        ("contact.email", "missing", None, True),
        ("contact.email", "exists", None, False),
        ("contact.nickname", "missing", None, True),
        ("contact.unknown", "eq", "x", False),
        ("contact.unknown", "ne", "x", True),
        ("contact.unknown", "not_contains", "x", True),
        ("contact.unknown", "starts_with", "x", False),
    ],
)
def test_condition(field: str, op: str, value: Any, expected: bool) -> None:
    assert holds(field, op, value) is expected


def test_booleans_compare_as_true_and_false() -> None:
    facts = ReplyFacts("c", "sms", contact_fields={"optin": True, "flag": "FALSE"})
    assert holds("contact.optin", "eq", True, facts)
    assert holds("contact.optin", "eq", "true", facts)
    assert holds("contact.flag", "eq", False, facts)
    assert not holds("contact.optin", "eq", 1, facts)


def test_numbers_compare_as_numbers_but_not_nan_or_words() -> None:
    facts = ReplyFacts("c", "sms", contact_fields={"n": "2.50", "word": "nan", "big": "1_000"})
    assert holds("contact.n", "eq", 2.5, facts)
    assert holds("contact.word", "eq", "NaN", facts)
    assert not holds("contact.big", "eq", 1000, facts)


def test_blank_text_counts_as_missing() -> None:
    facts = ReplyFacts("c", "sms", text="   ")
    assert holds("text", "missing", None, facts)
    assert not holds("text", "contains", "x", facts)
    assert holds("text", "not_contains", "x", facts)


def test_no_language_matches_no_tag() -> None:
    facts = ReplyFacts("c", "sms")
    assert not holds("language", "eq", "fr", facts)
    assert holds("language", "ne", "fr", facts)
    assert holds("language", "missing", None, facts)


# --- keywords and languages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "keyword", "expected"),
    [
        ("I want a REFUND!", "refund", True),
        ("refunded already", "refund", False),
        ("prerefund", "refund", False),
        ("refund", "refund", True),
        ("(refund)", "refund", True),
        ("Je veux être remboursé", "rembourse", True),
        ("je veux etre rembourse", "remboursé", True),
        ("STRASSE", "straße", True),
        ("please cancel   my\norder", "cancel my order", True),
        ("please cancel order my", "cancel my order", False),
        ("help!", "help!", True),
        ("#urgent call me", "#urgent", True),
        ("price: 10€", "10€", True),
        ("anything", "   ", False),
        ("", "x", False),
    ],
)
def test_keyword_matches(text: str, keyword: str, expected: bool) -> None:
    assert keyword_matches(text, keyword) is expected


@pytest.mark.parametrize(
    ("rule_tag", "tag", "expected"),
    [
        ("fr", "fr", True),
        ("fr", "fr-FR", True),
        ("fr", "FR_ca", True),
        ("fr-FR", "fr", False),
        ("fr-FR", "fr-fr", True),
        ("fr", "fur", False),
        ("zh-Hant", "zh-Hant-TW", True),
        ("zh-Hant", "zh-Hans", False),
        ("fr", None, False),
        ("fr", "", False),
    ],
)
def test_language_matches(rule_tag: str, tag: str | None, expected: bool) -> None:
    assert language_matches(rule_tag, tag) is expected


# Latin letters with accents: swapcase and casefold agree on them (not on the Turkish dotless i).
words = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzéèàçüößñ0123456789"), min_size=1)


@given(before=st.lists(words, max_size=3), keyword=words, after=st.lists(words, max_size=3))
def test_a_keyword_among_words_is_found_whatever_its_case(
    before: list[str], keyword: str, after: list[str]
) -> None:
    text = " ".join([*before, keyword.swapcase(), *after])
    assert keyword_matches(text, keyword)


@given(keyword=words, glued=words)
def test_a_keyword_glued_to_letters_is_not_found(keyword: str, glued: str) -> None:
    assert not keyword_matches(f"{glued}{keyword}", keyword)
    assert not keyword_matches(f"{keyword}{glued}", keyword)
    assert keyword_matches(f"{glued}, {keyword}.", keyword)


# --- validation -------------------------------------------------------------------------------


def test_every_field_is_documented() -> None:
    assert ROUTING_FIELDS == (
        "channel", "channel_type", "configuration", "template", "flow_run", "language", "text",
        "contact.<field>",
    )  # fmt: skip
    assert CHANNEL_TYPES == {"sms", "whatsapp"}


def test_validation_returns_canonical_conditions() -> None:
    checked = validate_conditions(
        [
            {"field": "language", "op": "in", "value": ["FR_fr", "pt-br"]},
            {"field": "channel_type", "value": " SMS "},
            RuleCondition("text", "contains", ["refund", "money"]),
            {"field": "contact.tags", "op": "exists"},
        ]
    )
    assert checked == (
        RuleCondition("language", RuleOp.IN, ("fr-FR", "pt-BR")),
        RuleCondition("channel_type", RuleOp.EQ, "sms"),
        RuleCondition("text", RuleOp.CONTAINS, ("refund", "money")),
        RuleCondition("contact.tags", RuleOp.EXISTS, None),
    )
    assert all(isinstance(c.op, RuleOp) for c in checked)
    assert validate_conditions([]) == ()


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"field": "colour", "value": "x"}, r"conditions\[1\] \(colour\): unknown field 'colour'"),
        ({"field": "contact.", "value": "x"}, r"\(contact\.\): unknown field"),
        ({"field": "contact.a b", "value": "x"}, r"unknown field 'contact\.a b'"),
        ({"field": "text", "op": "like", "value": "x"}, r"\(text\): unknown op 'like'"),
        ({"field": "text", "op": "in", "value": ["x"]}, r"text does not take in; use one of eq"),
        ({"field": "channel_type", "op": "exists"}, r"channel_type does not take exists"),
        ({"field": "template", "op": "contains", "value": "x"}, r"template does not take"),
        ({"field": "channel", "op": "exists", "value": True}, r"exists takes no value, not True"),
        ({"field": "channel", "op": "in", "value": "ch-1"}, r"in takes a list of values"),
        ({"field": "channel", "op": "in", "value": []}, r"in needs at least one value"),
        ({"field": "channel", "value": ""}, r"channel takes an id, not ''"),
        ({"field": "channel", "value": 5}, r"channel takes an id, not 5"),
        ({"field": "channel", "value": None}, r"eq takes a text or a number, not None"),
        ({"field": "contact.x", "value": {"a": 1}}, r"eq takes a text or a number"),
        ({"field": "contact.x", "value": ["a"]}, r"eq takes a text or a number, not \['a'\]"),
        ({"field": "contact.x", "op": "in", "value": [["a"]]}, r"in takes a text or a number"),
        ({"field": "channel_type", "value": "email"}, r"channel_type is one of sms, whatsapp"),
        ({"field": "language", "value": "klingon"}, r"'klingon' is not a BCP-47 language tag"),
        ({"field": "language", "value": 5}, r"5 is not a BCP-47 language tag"),
        ({"field": "text", "op": "contains", "value": " "}, r"contains takes non-blank text"),
        ({"field": "text", "op": "contains", "value": ["ok", 3]}, r"not 3"),
        ({"field": "text", "op": "contains", "value": []}, r"contains needs at least one value"),
        ({"field": "text", "op": "starts_with", "value": 5}, r"starts_with takes non-blank text"),
        ({"field": "text", "value": "x", "extra": 1}, r"\(text\): unknown key 'extra'"),
        ({"op": "eq", "value": "x"}, r"conditions\[1\]: a condition needs a field"),
        ("text contains x", r"conditions\[1\]: a condition is an object"),
    ],
)
def test_invalid_conditions_are_named_by_index_and_field(condition: Any, message: str) -> None:
    good = {"field": "channel", "value": "ch-1"}
    with pytest.raises(InvalidRoutingRuleError, match=message) as caught:
        validate_conditions([good, condition])
    assert caught.value.index == 1
    if isinstance(condition, dict) and isinstance(condition.get("field"), str):
        assert caught.value.field == condition["field"]
    assert isinstance(caught.value, DomainError)


def test_validate_rule_canonicalises_skills_and_language() -> None:
    checked = validate_rule(
        RoutingRule(
            "r1",
            "Billing",
            "q1",
            conditions=(RuleCondition("language", "eq", "fr_fr"),),
            required_skills=frozenset({" billing ", "fr"}),
            required_language="PT_br",
        )
    )
    assert checked.conditions == (RuleCondition("language", RuleOp.EQ, "fr-FR"),)
    assert checked.required_skills == {"billing", "fr"}
    assert checked.required_language == "pt-BR"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": " "}, r"^name: a rule needs a name"),
        ({"queue_id": ""}, r"^queue_id: a rule must name a queue"),
        ({"position": 1.5}, r"^position: must be a whole number"),
        ({"priority": True}, r"^priority: must be a whole number"),
        ({"required_skills": frozenset({""})}, r"^required_skills: skills are non-blank"),
        ({"required_language": "xx-zz-zz"}, r"^required_language: 'xx-zz-zz' is not a BCP-47"),
        ({"conditions": (RuleCondition("nope"),)}, r"^conditions\[0\] \(nope\): unknown field"),
    ],
)
def test_invalid_rules_name_the_attribute(changes: dict[str, Any], message: str) -> None:
    base = RoutingRule("r1", "Billing", "q1")
    with pytest.raises(InvalidRoutingRuleError, match=message):
        validate_rule(RoutingRule(**{**base.__dict__, **changes}))


# --- route ------------------------------------------------------------------------------------


def test_first_matching_rule_in_order_wins_and_later_rules_are_not_tried() -> None:
    rules = [
        rule("c", 3, RuleCondition("channel_type", "eq", "whatsapp")),
        rule("a", 1, RuleCondition("text", "contains", "refund")),
        rule(
            "b",
            2,
            RuleCondition("language", "eq", "fr"),
            RuleCondition("contact.segment", "eq", "vip"),
            required_skills=frozenset({"billing"}),
            required_language="fr",
            priority=5,
        ),
    ]
    decision = route(rules, FACTS, "fallback")
    assert decision.queue_id == "q-b"
    assert decision.rule == rules[2]
    assert not decision.is_fallback
    assert decision.required_skills == {"billing"}
    assert decision.required_language == "fr"
    assert decision.priority == 5
    assert [(e.rule_id, e.matched, e.failed_condition) for e in decision.evaluations] == [
        ("a", False, 0),
        ("b", True, None),
    ]
    assert decision.evaluations[0].reason == (
        "conditions[0] text contains 'refund' does not hold: no such word in the text"
    )
    assert decision.evaluations[1].reason == "every condition holds"


def test_equal_positions_are_ordered_by_id() -> None:
    rules = [rule("b", 1), rule("a", 1)]
    assert route(rules, FACTS, None).queue_id == "q-a"


def test_no_match_goes_to_the_fallback_with_every_rule_explained() -> None:
    rules = [
        rule("a", 1, RuleCondition("channel_type", "eq", "sms")),
        rule("b", 2, RuleCondition("flow_run", "eq", "run-9")),
        rule("c", 3, RuleCondition("contact.segment", "in", ["gold", "silver"])),
        rule("d", 4, RuleCondition("text", "not_contains", "commande")),
        rule("e", 5, RuleCondition("channel", "eq", "ch-1"), enabled=False),
    ]
    decision = route(rules, FACTS, "fallback")
    assert decision.queue_id == "fallback"
    assert decision.is_fallback and decision.rule is None
    assert decision.required_skills == frozenset()
    assert decision.required_language is None
    assert decision.priority == 0
    assert [e.reason for e in decision.evaluations] == [
        "conditions[0] channel_type eq 'sms' does not hold: channel_type is 'whatsapp'",
        "conditions[0] flow_run eq 'run-9' does not hold: flow_run is absent",
        "conditions[0] contact.segment in ['gold', 'silver'] does not hold: "
        "contact.segment is 'VIP'",
        "conditions[0] text not_contains 'commande' does not hold: the text has it",
        "disabled",
    ]


def test_the_failing_condition_is_the_first_that_does_not_hold() -> None:
    decision = route(
        [
            rule(
                "a",
                1,
                RuleCondition("channel", "exists"),
                RuleCondition("contact.score", "eq", 8),
                RuleCondition("template", "eq", "nope"),
            )
        ],
        FACTS,
        None,
    )
    (evaluation,) = decision.evaluations
    assert evaluation.failed_condition == 1
    assert evaluation.reason == "conditions[1] contact.score eq 8 does not hold: contact.score is 7"
    assert decision.queue_id is None


def test_a_rule_without_conditions_takes_every_reply() -> None:
    decision = route([rule("all", 9)], ReplyFacts("c", "sms"), "fallback")
    assert decision.queue_id == "q-all"
    assert decision.evaluations[0].reason == "no conditions: takes every reply"


def test_an_invalid_stored_condition_never_matches_and_says_why() -> None:
    broken = rule("x", 1, RuleCondition("text", "regex", ".*"))
    decision = route([broken, rule("y", 2)], FACTS, None)
    assert decision.queue_id == "q-y"
    first = decision.evaluations[0]
    assert not first.matched and first.failed_condition == 0
    assert first.reason.startswith("invalid condition: conditions[0] (text): unknown op 'regex'")


def test_no_rules_no_fallback() -> None:
    decision = route([], FACTS, None)
    assert decision.queue_id is None and decision.evaluations == ()


conditions = st.sampled_from(
    [
        RuleCondition("channel_type", "eq", "sms"),
        RuleCondition("channel_type", "eq", "whatsapp"),
        RuleCondition("text", "contains", "remboursement"),
        RuleCondition("text", "contains", "stop"),
        RuleCondition("language", "eq", "fr"),
        RuleCondition("language", "eq", "en"),
        RuleCondition("flow_run", "missing"),
        RuleCondition("contact.segment", "ne", "vip"),
    ]
)


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.lists(conditions, max_size=3), st.booleans()),
        max_size=6,
    )
)
def test_route_picks_the_first_matching_enabled_rule(
    specs: list[tuple[int, list[RuleCondition], bool]],
) -> None:
    rules = [
        rule(f"r{i}", position, *conds, enabled=enabled)
        for i, (position, conds, enabled) in enumerate(specs)
    ]
    decision = route(rules, FACTS, "fallback")
    ordered = sorted(rules, key=lambda r: (r.position, r.id))
    matching = [
        r for r in ordered if r.enabled and all(holds(c.field, c.op, c.value) for c in r.conditions)
    ]
    if matching:
        assert decision.rule == matching[0]
        assert len(decision.evaluations) == ordered.index(matching[0]) + 1
    else:
        assert decision.is_fallback and len(decision.evaluations) == len(rules)
    assert [e.matched for e in decision.evaluations].count(True) == (1 if matching else 0)


def test_a_faulty_condition_is_said_in_french_with_its_place() -> None:
    from outbound.console.i18n import Translator

    with pytest.raises(InvalidRoutingRuleError) as caught:
        validate_conditions([{"field": "channel_type", "op": "eq", "value": "fax"}])
    assert str(caught.value) == (
        "conditions[0] (channel_type): channel_type is one of sms, whatsapp, not 'fax'"
    )
    assert Translator("fr").error(caught.value.args[0]) == (
        "conditions[0] (channel_type) : channel_type doit être parmi sms, whatsapp, et non 'fax'"
    )
